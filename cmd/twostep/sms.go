package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/twostep-auth/twostep/internal/config"
	"github.com/twostep-auth/twostep/internal/sms"
	"github.com/twostep-auth/twostep/internal/sms/console"
	"github.com/twostep-auth/twostep/internal/sms/plivo"
	"github.com/twostep-auth/twostep/internal/sms/twilio"
	"github.com/twostep-auth/twostep/internal/sms/vonage"
	"github.com/twostep-auth/twostep/internal/sms/webhook"
)

// smsSetup is the SMS sender built from the configuration, with what the
// HTTP server must serve for it (Plivo's one-time answer documents).
type smsSetup struct {
	sender       sms.Sender
	callEnabled  bool
	plivoAnswers http.Handler
}

// newSMS builds the providers in the order TWOSTEP_SMS_PROVIDER lists them:
// a failover chain that moves on only when a provider is unavailable.
func newSMS(cfg config.Config, logger *slog.Logger) (smsSetup, error) {
	var out smsSetup
	client := &http.Client{Timeout: cfg.SMS.Timeout}
	var senders []sms.NamedSender
	for _, name := range cfg.SMS.Providers {
		var s sms.Sender
		switch name {
		case "console":
			s = &console.Sender{Logger: logger}
			out.callEnabled = true
		case "twilio":
			t := cfg.SMS.Twilio
			s = &twilio.Client{AccountSID: t.AccountSID, AuthToken: t.AuthToken, From: t.From, BaseURL: t.BaseURL, HTTP: client}
			out.callEnabled = true
		case "plivo":
			p := cfg.SMS.Plivo
			answers := plivo.NewAnswerStore(plivo.DefaultAnswerTTL)
			s = &plivo.Client{AuthID: p.AuthID, AuthToken: p.AuthToken, From: p.From, BaseURL: p.BaseURL,
				PublicURL: cfg.HTTP.PublicURL, Answers: answers, HTTP: client}
			out.plivoAnswers = plivo.AnswerHandler(answers)
			out.callEnabled = out.callEnabled || cfg.HTTP.PublicURL != ""
		case "vonage":
			v := cfg.SMS.Vonage
			c := &vonage.Client{APIKey: v.APIKey, APISecret: v.APISecret, From: v.From, ApplicationID: v.ApplicationID,
				BaseURL: v.BaseURL, APIURL: v.APIURL, HTTP: client}
			if v.VoiceEnabled() {
				key, err := vonage.ParsePrivateKey([]byte(v.PrivateKey))
				if err != nil {
					return smsSetup{}, fmt.Errorf("TWOSTEP_VONAGE_PRIVATE_KEY: %w", err)
				}
				c.PrivateKey = key
				out.callEnabled = true
			}
			s = c
		case "webhook":
			w := cfg.SMS.Webhook
			s = &webhook.Client{URL: w.URL, Secret: []byte(w.Secret), HTTP: client}
			out.callEnabled = true
		default:
			return smsSetup{}, fmt.Errorf("TWOSTEP_SMS_PROVIDER: unknown provider %q", name)
		}
		senders = append(senders, sms.NamedSender{Name: name, Sender: s})
	}
	out.sender = &sms.Failover{Senders: senders, Logger: logger, Budget: cfg.SMS.Timeout}
	return out, nil
}

// webOTPHost is the host named in the WebOTP line of texts: the public
// URL's host, or the listen address's.
func webOTPHost(cfg config.Config) string {
	if u, err := url.Parse(cfg.HTTP.PublicURL); err == nil && u.Host != "" {
		return u.Hostname()
	}
	return "localhost"
}

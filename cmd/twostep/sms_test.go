package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/sms"
	"github.com/twostep-auth/twostep/internal/sms/smstest"
	"github.com/twostep-auth/twostep/internal/sms/webhook"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
)

// signedPost is one request that reached the webhook receiver.
type signedPost struct {
	timestamp, signature string
	body                 []byte
	verifyErr            error // what webhook.Verify said
}

// signatureChecker stands in front of an smstest webhook receiver: it checks
// every request the way the webhook documentation tells a receiver to (with
// webhook.Verify), keeps it, and hands it on unchanged.
type signatureChecker struct {
	srv    *httptest.Server
	secret []byte
	next   string // the receiver's URL

	mu    sync.Mutex
	posts []signedPost
}

func newSignatureChecker(t *testing.T, secret []byte, next string) *signatureChecker {
	t.Helper()
	c := &signatureChecker{secret: secret, next: next}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *signatureChecker) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, `{"error":"unreadable"}`, http.StatusBadRequest)
		return
	}
	p := signedPost{timestamp: r.Header.Get(webhook.TimestampHeader), signature: r.Header.Get(webhook.SignatureHeader), body: body}
	p.verifyErr = webhook.Verify(c.secret, p.timestamp, p.signature, body, time.Now(), webhook.DefaultTolerance)
	c.mu.Lock()
	c.posts = append(c.posts, p)
	c.mu.Unlock()
	if p.verifyErr != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"bad_signature"}`)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, c.next, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (c *signatureChecker) all() []signedPost {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.posts)
}

// TestServeSMSFailoverToWebhook runs "twostep serve" with
// TWOSTEP_SMS_PROVIDER=twilio,webhook, the Twilio API answering 503: every
// code (phone verification, enrolment, a voice call at sign-in) arrives
// through the signed webhook, and the flows complete with it.
func TestServeSMSFailoverToWebhook(t *testing.T) {
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			twilioSrv := smstest.NewServer()
			t.Cleanup(twilioSrv.Close)
			twilioSrv.SetBehavior(smstest.Behavior{Status: http.StatusServiceUnavailable})
			hook := smstest.NewServer()
			t.Cleanup(hook.Close)
			checker := newSignatureChecker(t, []byte(smstest.WebhookSecret), hook.URL+smstest.WebhookPath)

			vars := databaseVars(t, engine)
			for k, v := range map[string]string{
				"TWOSTEP_SMS_PROVIDER":        "twilio,webhook",
				"TWOSTEP_TWILIO_ACCOUNT_SID":  smstest.AccountSID,
				"TWOSTEP_TWILIO_AUTH_TOKEN":   smstest.AuthToken,
				"TWOSTEP_TWILIO_FROM":         "+15005550006",
				"TWOSTEP_TWILIO_BASE_URL":     twilioSrv.URL,
				"TWOSTEP_WEBHOOK_URL":         checker.srv.URL + "/twostep-hook",
				"TWOSTEP_WEBHOOK_SECRET":      smstest.WebhookSecret,
				"TWOSTEP_ISSUER":              "Example",
				"TWOSTEP_PUBLIC_URL":          "https://auth.example.com",
				"TWOSTEP_SMS_RESEND_COOLDOWN": "0s", // three sends to one phone in a few seconds
			} {
				vars[k] = v
			}
			getenv := environ(vars)
			if engine == sqlstore.EnginePostgres {
				if err := run(t.Context(), []string{"twostep", "migrate"}, getenv, nil, io.Discard, io.Discard); err != nil {
					t.Fatalf("migrate = %v", err)
				}
			}
			srv := startServe(t, getenv)
			base := srv.url + "/authentication"
			const phone = "+14155552671"
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			next := func(n int, channel sms.Channel, purpose string) sms.Message {
				t.Helper()
				m, err := hook.Wait(ctx, phone, n)
				if err != nil {
					t.Fatalf("message %d through the webhook: %v", n, err)
				}
				if m.Channel != channel || m.Purpose != purpose || !regexp.MustCompile(`^[0-9]{6}$`).MatchString(m.Code) {
					t.Fatalf("message %d = %s for %s with a %d-character code, want %s for %s with 6 digits", n, m.Channel, m.Purpose, len(m.Code), channel, purpose)
				}
				return m
			}

			// A phone given at registration is verified with the texted code.
			mustCall(t, http.StatusCreated, http.MethodPost, base+"/local/new", "", map[string]any{"email": "ada@example.com", "password": testPassword, "phone": "+1 (415) 555-2671"})
			m := next(1, sms.ChannelSMS, "phone_verification")
			lines := strings.Split(m.Body, "\n")
			if lines[0] != "Your Example code is "+m.Code || lines[len(lines)-1] != "@auth.example.com #"+m.Code {
				t.Errorf("text = %q, want the code and the WebOTP line for auth.example.com", m.Body)
			}
			codes := []string{m.Code}
			login := mustCall(t, http.StatusOK, http.MethodPost, base+"/local", "", map[string]any{"email": "ada@example.com", "password": testPassword})
			access := login["accessToken"].(string)
			verified := mustCall(t, http.StatusOK, http.MethodPost, base+"/user/phone/verify", access, map[string]any{"code": m.Code})
			if u, _ := verified["user"].(map[string]any); u["phoneVerified"] != true || u["phone"] != phone {
				t.Fatalf("phone verify = %v, want %s verified", verified, phone)
			}

			// SMS 2FA on the verified phone.
			enabled := mustCall(t, http.StatusOK, http.MethodPost, base+"/twoFa/enable", access, map[string]any{"method": "sms"})
			if enabled["to"] != "+1******2671" {
				t.Errorf("enable sms = %v, want to +1******2671", enabled)
			}
			m = next(2, sms.ChannelSMS, "enrolment")
			codes = append(codes, m.Code)
			mustCall(t, http.StatusOK, http.MethodPost, base+"/twoFa/enable/verify", access, map[string]any{"code": m.Code})

			// Sign in with a voice call.
			login = mustCall(t, http.StatusOK, http.MethodPost, base+"/local", "", map[string]any{"email": "ada@example.com", "password": testPassword})
			tok, _ := login["challengeToken"].(string)
			if login["twoFaRequired"] != true || tok == "" {
				t.Fatalf("login with 2FA = %v, want a challenge", login)
			}
			authz := mustCall(t, http.StatusOK, http.MethodPost, base+"/twoFa/authorize", tok, map[string]any{"method": "call"})
			if authz["method"] != "call" || authz["message"] != "A verification code has been sent to +1******2671" {
				t.Errorf("authorize call = %v", authz)
			}
			m = next(3, sms.ChannelCall, "login")
			codes = append(codes, m.Code)
			tokens := mustCall(t, http.StatusOK, http.MethodPost, base+"/twoFa/verify", tok, map[string]any{"code": m.Code, "method": "call"})
			if tokens["accessToken"] == nil {
				t.Fatalf("verify = %v, want tokens", tokens)
			}

			// Twilio was tried for each message and took none.
			if n := twilioSrv.Requests(); n < 3 {
				t.Errorf("requests to the Twilio API = %d, want at least 3 (tried first)", n)
			}
			if n := twilioSrv.Count(""); n != 0 {
				t.Errorf("messages Twilio took = %d, want 0", n)
			}
			// Every webhook request was signed with the secret, over the
			// exact body; the signature does not fit another secret or body.
			posts := checker.all()
			if len(posts) != 3 {
				t.Fatalf("webhook requests = %d, want 3", len(posts))
			}
			for i, p := range posts {
				if p.verifyErr != nil {
					t.Errorf("webhook request %d: webhook.Verify = %v", i+1, p.verifyErr)
				}
				if err := webhook.Verify([]byte("another-secret-of-at-least-32-bytes!"), p.timestamp, p.signature, p.body, time.Now(), 0); err == nil {
					t.Errorf("webhook request %d: the signature fits another secret", i+1)
				}
				if err := webhook.Verify([]byte(smstest.WebhookSecret), p.timestamp, p.signature, append(slices.Clone(p.body), ' '), time.Now(), 0); err == nil {
					t.Errorf("webhook request %d: the signature fits a changed body", i+1)
				}
				var payload webhook.Payload
				if err := json.Unmarshal(p.body, &payload); err != nil || payload.To != phone || payload.Code != codes[i] {
					t.Errorf("webhook request %d: payload to %s with the code %v, want %s and the code sent (%v)", i+1, sms.MaskPhone(payload.To), payload.Code == codes[i], sms.MaskPhone(phone), err)
				}
			}

			if err := srv.stop(); err != nil {
				t.Fatalf("serve at shutdown = %v", err)
			}
			logs := srv.stderr.String()
			if n := strings.Count(logs, `"sms_failover"`); n != 3 {
				t.Errorf("sms_failover log lines = %d, want 3 (one per message):\n%s", n, logs)
			}
			for _, c := range codes {
				if regexp.MustCompile(`(^|[^0-9A-Za-z])` + c + `([^0-9A-Za-z]|$)`).MatchString(logs) {
					t.Errorf("the logs carry a code:\n%s", logs)
				}
			}
			if strings.Contains(logs, phone) {
				t.Errorf("the logs carry the full phone number:\n%s", logs)
			}
		})
	}
}

// Package vonage sends texts through the Vonage SMS API (form POST with
// the API key and secret) and places calls through the Vonage Voice API (a
// JSON POST with an inline NCCO talk action, authenticated by a JWT that
// the application's RSA private key signs).
package vonage

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/sms"
)

// The Vonage API roots.
const (
	DefaultBaseURL = "https://rest.nexmo.com" // SMS API
	DefaultAPIURL  = "https://api.nexmo.com"  // Voice API
)

// jwtLifetime is how long a Voice API token is valid; each call signs a
// new one.
const jwtLifetime = 5 * time.Minute

// Client sends Messages through one Vonage account. Its fields must not
// change once it is in use; Send is safe for concurrent use.
type Client struct {
	// APIKey and APISecret authenticate SMS requests.
	APIKey    string
	APISecret string
	// From is the sender of texts: an E.164 number or a sender ID.
	From string
	// CallFrom is the caller ID of calls, a Vonage number linked to the
	// application; empty means From.
	CallFrom string
	// ApplicationID and PrivateKey (see ParsePrivateKey) sign the JWT of
	// Voice API requests; calls need both.
	ApplicationID string
	PrivateKey    *rsa.PrivateKey
	// BaseURL is the SMS API root and APIURL the Voice API root, without a
	// trailing slash; empty means DefaultBaseURL and DefaultAPIURL.
	BaseURL string
	APIURL  string
	// HTTP sends the requests; nil means a client with a 10 s timeout.
	HTTP *http.Client
	// Now stamps the JWT; nil means time.Now.
	Now func() time.Time
}

// ParsePrivateKey reads the RSA private key of a Vonage application, the
// PEM file Vonage gives out ("-----BEGIN PRIVATE KEY-----", PKCS #8), or
// a PKCS #1 "RSA PRIVATE KEY".
func ParsePrivateKey(pemData []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, errors.New("vonage: private key: no PEM block")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("vonage: private key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("vonage: private key: %T is not an RSA key", k)
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("vonage: private key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("vonage: private key: unexpected PEM block %q", block.Type)
	}
}

// Send texts m.Body to m.To, or, for sms.ChannelCall, calls m.To and says
// m.Body.
//
// The SMS API answers 200 with a status per message part; a non-zero
// status is an error: 6 (unrecognised number prefix), 7 (number barred),
// 33 (number de-activated), 34 (invalid msisdn) and 3 (invalid parameter)
// when its text names the "to" number are sms.ErrInvalidNumber; 1
// (throttled), 5 (internal error) and 10 (too many binds) are
// sms.ErrUnavailable; every other status (4 bad credentials, 2 missing
// parameter, 9 no credit, 15 sender not allowed, 29 destination not
// whitelisted, …) is sms.ErrRejected.
//
// For the Voice API, a 400 whose invalid parameter is the "to" number is
// sms.ErrInvalidNumber, any other 4xx (401 for a bad JWT) sms.ErrRejected.
// For both, a number that is not E.164 is sms.ErrInvalidNumber without a
// request, and a timeout, a connection error, a 429 or a 5xx is
// sms.ErrUnavailable (so is a call without ApplicationID and PrivateKey).
func (c *Client) Send(ctx context.Context, m sms.Message) error {
	if !sms.ValidNumber(m.To) {
		return fmt.Errorf("vonage: %w", sms.ErrInvalidNumber)
	}
	to := strings.TrimPrefix(m.To, "+")
	switch m.Channel {
	case "", sms.ChannelSMS:
		return c.text(ctx, to, m.Body)
	case sms.ChannelCall:
		return c.call(ctx, to, m.Body)
	default:
		return fmt.Errorf("vonage: unknown channel %q: %w", m.Channel, sms.ErrRejected)
	}
}

// smsReply is the SMS API's answer: one entry per message part.
type smsReply struct {
	Messages []struct {
		Status    string `json:"status"`
		ErrorText string `json:"error-text"`
	} `json:"messages"`
}

// text sends one SMS through the SMS API.
func (c *Client) text(ctx context.Context, to, body string) error {
	form := url.Values{
		"api_key":    {c.APIKey},
		"api_secret": {c.APISecret},
		"from":       {strings.TrimPrefix(c.From, "+")},
		"to":         {to},
		"text":       {body},
	}
	if !isGSM7(body) {
		// Without it Vonage sends the text as GSM-7 and mangles
		// characters outside that alphabet.
		form.Set("type", "unicode")
	}
	base := cmp.Or(c.BaseURL, DefaultBaseURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/sms/json", strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("vonage: sms: build request: %w", sms.ErrRejected)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	status, raw, err := sms.Do(c.HTTP, req)
	if err != nil {
		return fmt.Errorf("vonage: sms: %w", err)
	}
	if err := sms.StatusError(fmt.Sprintf("vonage: sms: status %d", status), status, false); err != nil {
		return err
	}
	var reply smsReply
	if err := json.Unmarshal(raw, &reply); err != nil || len(reply.Messages) == 0 {
		return fmt.Errorf("vonage: sms: status %d with an unreadable body: %w", status, sms.ErrUnavailable)
	}
	for _, msg := range reply.Messages {
		if msg.Status == "0" {
			continue
		}
		desc := fmt.Sprintf("vonage: sms: status %s (%s)", msg.Status, sms.Redact(msg.ErrorText))
		switch {
		case msg.Status == "6" || msg.Status == "7" || msg.Status == "33" || msg.Status == "34",
			msg.Status == "3" && namesTo(msg.ErrorText):
			return fmt.Errorf("%s: %w", desc, sms.ErrInvalidNumber)
		case msg.Status == "1" || msg.Status == "5" || msg.Status == "10":
			return fmt.Errorf("%s: %w", desc, sms.ErrUnavailable)
		default:
			return fmt.Errorf("%s: %w", desc, sms.ErrRejected)
		}
	}
	return nil
}

// toWord finds the word "to" ("Invalid 'to' address", "Missing to param").
var toWord = regexp.MustCompile(`(?i)\bto\b|msisdn`)

func namesTo(text string) bool { return toWord.MatchString(text) }

// endpoint is a Voice API phone endpoint.
type endpoint struct {
	Type   string `json:"type"`
	Number string `json:"number"`
}

// talk is the NCCO action that reads text aloud.
type talk struct {
	Action string `json:"action"`
	Text   string `json:"text"`
}

// call places one call through the Voice API with an inline NCCO.
func (c *Client) call(ctx context.Context, to, text string) error {
	if c.ApplicationID == "" || c.PrivateKey == nil {
		return fmt.Errorf("vonage: calls need an application ID and private key: %w", sms.ErrUnavailable)
	}
	from := cmp.Or(c.CallFrom, c.From)
	payload, err := json.Marshal(struct {
		To   []endpoint `json:"to"`
		From endpoint   `json:"from"`
		NCCO []talk     `json:"ncco"`
	}{
		To:   []endpoint{{Type: "phone", Number: to}},
		From: endpoint{Type: "phone", Number: strings.TrimPrefix(from, "+")},
		NCCO: []talk{{Action: "talk", Text: text}},
	})
	if err != nil {
		return fmt.Errorf("vonage: call: encode: %w", sms.ErrRejected)
	}
	token, err := c.jwt()
	if err != nil {
		return fmt.Errorf("vonage: call: %w: %w", sms.ErrRejected, err)
	}
	base := cmp.Or(c.APIURL, DefaultAPIURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/v1/calls", bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("vonage: call: build request: %w", sms.ErrRejected)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	status, raw, err := sms.Do(c.HTTP, req)
	if err != nil {
		return fmt.Errorf("vonage: call: %w", err)
	}
	if status >= 200 && status < 300 {
		return nil
	}
	// Errors come as RFC 7807 problem details.
	var problem struct {
		Title             string `json:"title"`
		Detail            string `json:"detail"`
		InvalidParameters []struct {
			Name   string `json:"name"`
			Reason string `json:"reason"`
		} `json:"invalid_parameters"`
	}
	_ = json.Unmarshal(raw, &problem) // a body that is not a problem leaves it zero
	var parts []string
	for _, s := range []string{problem.Title, problem.Detail} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	toInvalid := false
	for _, p := range problem.InvalidParameters {
		parts = append(parts, p.Name+" "+p.Reason)
		if p.Name == "to" || strings.HasPrefix(p.Name, "to[") || strings.HasPrefix(p.Name, "to.") {
			toInvalid = true
		}
	}
	desc := fmt.Sprintf("vonage: call: status %d", status)
	if len(parts) > 0 {
		desc += " (" + sms.Redact(strings.Join(parts, "; ")) + ")"
	}
	return sms.StatusError(desc, status, status == http.StatusBadRequest && toInvalid)
}

// jwt returns a new RS256 token for the Voice API, with the claims Vonage
// requires: application_id, iat, exp and a unique jti.
func (c *Client) jwt() (string, error) {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, err := json.Marshal(struct {
		ApplicationID string `json:"application_id"`
		IssuedAt      int64  `json:"iat"`
		Expires       int64  `json:"exp"`
		ID            string `json:"jti"`
	}{c.ApplicationID, now.Unix(), now.Add(jwtLifetime).Unix(), rand.Text()})
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	signingInput := header + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.PrivateKey, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// gsm7 is the GSM 03.38 default alphabet and its extension table: the
// characters an SMS of type "text" can carry.
const gsm7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà" +
	"\f^{}\\[~]|€"

// isGSM7 reports whether every character of s is in the GSM-7 alphabet.
func isGSM7(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune(gsm7, r) {
			return false
		}
	}
	return true
}

// Package webhook hands each message to any HTTP endpoint: a JSON POST,
// signed with HMAC-SHA-256, so that a provider twostep has no client for
// can be plugged in with a few lines of code on the receiving side.
//
// # Request
//
// For every text or call, twostep sends (here with the secret
// "example-secret"):
//
//	POST <TWOSTEP_WEBHOOK_URL>
//	Content-Type: application/json
//	X-Twostep-Timestamp: 1735689600
//	X-Twostep-Signature: v1=6c058cbdbf3f81ea4697619253c448b3cf6b4f4a2ae830da89782af5b73d0c09
//
//	{"to":"+14155552671","channel":"sms","body":"Your twostep code is 123456\n\n@auth.example.com #123456","code":"123456","purpose":"login"}
//
// to is E.164; channel is "sms" (text body as is) or "call" (read body
// aloud); code is the code inside body, for receivers that build their own
// text; purpose is login, enrolment, phone_verification or phone_signin.
//
// # Answer
//
// Any 2xx means the message was taken. A 4xx with the JSON body
// {"error":"invalid_number"} means the number cannot be reached: the user
// is told their number is invalid and no other provider is tried. Any
// other 4xx is a configuration error (logged, and the user gets 503). A
// 429, a 5xx, a connection error or no answer within the timeout means
// "unavailable": the next provider in TWOSTEP_SMS_PROVIDER is tried.
//
// # Verifying a request
//
// The signature proves that the request comes from twostep and was not
// changed or replayed. A receiver must:
//
//  1. Read the raw request body, byte for byte, before parsing it.
//  2. Read X-Twostep-Timestamp (Unix seconds) and refuse the request if it
//     is more than 5 minutes from the receiver's clock.
//  3. Compute HMAC-SHA-256 with TWOSTEP_WEBHOOK_SECRET as the key over the
//     timestamp string, a ".", and the raw body, and hex-encode it in lower
//     case.
//  4. Compare it, in constant time, with each "v1=" value of
//     X-Twostep-Signature (a comma-separated list, so that a secret can be
//     rotated); accept if one matches.
//  5. Answer quickly (2xx), and deliver the message afterwards if delivery
//     is slow: twostep waits at most a few seconds.
//
// In Go, Verify does steps 2 to 4:
//
//	body, _ := io.ReadAll(r.Body)
//	err := webhook.Verify(secret, r.Header.Get("X-Twostep-Timestamp"),
//		r.Header.Get("X-Twostep-Signature"), body, time.Now(), 5*time.Minute)
//
// In Python:
//
//	expected = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
//	ok = abs(time.time() - int(ts)) <= 300 and any(
//	    hmac.compare_digest("v1=" + expected, s.strip()) for s in sig.split(","))
//
// With openssl, to check by hand (ts and body exactly as received):
//
//	printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret"
//
// The body carries the code in clear text: serve the endpoint over HTTPS
// only, and keep the code out of the receiver's logs.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/sms"
)

// The headers that carry the signature.
const (
	TimestampHeader = "X-Twostep-Timestamp"
	SignatureHeader = "X-Twostep-Signature"
)

// DefaultTolerance is how far from the receiver's clock a timestamp may be.
const DefaultTolerance = 5 * time.Minute

// Errors Verify returns.
var (
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrBadTimestamp = errors.New("webhook: timestamp missing or too far from now")
)

// Client posts Messages to one URL. Its fields must not change once it is
// in use; Send is safe for concurrent use.
type Client struct {
	// URL receives the POSTs.
	URL string
	// Secret keys the HMAC; the receiver holds the same bytes.
	Secret []byte
	// HTTP sends the requests; nil means a client with a 10 s timeout.
	HTTP *http.Client
	// Now stamps the requests; nil means time.Now.
	Now func() time.Time
}

// Payload is the JSON body of a request.
type Payload struct {
	To      string      `json:"to"`
	Channel sms.Channel `json:"channel"`
	Body    string      `json:"body"`
	Code    string      `json:"code"`
	Purpose string      `json:"purpose"`
}

// Send posts m to the URL, signed. A number that is not E.164, or a 4xx
// answer with {"error":"invalid_number"}, is sms.ErrInvalidNumber; a
// timeout, a connection error, a 429 or a 5xx is sms.ErrUnavailable; any
// other 4xx is sms.ErrRejected.
func (c *Client) Send(ctx context.Context, m sms.Message) error {
	if !sms.ValidNumber(m.To) {
		return fmt.Errorf("webhook: %w", sms.ErrInvalidNumber)
	}
	channel := m.Channel
	if channel == "" {
		channel = sms.ChannelSMS
	}
	if channel != sms.ChannelSMS && channel != sms.ChannelCall {
		return fmt.Errorf("webhook: unknown channel %q: %w", m.Channel, sms.ErrRejected)
	}
	body, err := json.Marshal(Payload{To: m.To, Channel: channel, Body: m.Body, Code: m.Code, Purpose: m.Purpose})
	if err != nil {
		return fmt.Errorf("webhook: encode: %w", sms.ErrRejected)
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	ts := strconv.FormatInt(now.Unix(), 10)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: build request: %w", sms.ErrRejected)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "twostep-webhook/1")
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, "v1="+Sign(c.Secret, ts, body))

	status, raw, err := sms.Do(c.HTTP, req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	var answer struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &answer) // any body but the one above is just a status
	desc := fmt.Sprintf("webhook: status %d", status)
	if answer.Error != "" {
		desc += " (" + sms.Redact(answer.Error) + ")"
	}
	return sms.StatusError(desc, status, answer.Error == "invalid_number")
}

// Sign returns the lower-case hex HMAC-SHA-256, keyed by secret, of
// timestamp + "." + body: the value after "v1=" in X-Twostep-Signature.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request the way a receiver must: timestamp is the
// X-Twostep-Timestamp header (Unix seconds) and must be within tolerance
// of now, either way (DefaultTolerance when tolerance is not positive);
// signature is the X-Twostep-Signature header, a comma-separated list of
// "v1=<hex>" values of which one must equal Sign(secret, timestamp, body),
// compared in constant time; body is the raw request body. It returns nil,
// ErrBadTimestamp or ErrBadSignature.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || timestamp != strconv.FormatInt(sec, 10) {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrBadTimestamp
	}
	want, _ := hex.DecodeString(Sign(secret, timestamp, body))
	ok := false
	for _, s := range strings.Split(signature, ",") {
		v, found := strings.CutPrefix(strings.TrimSpace(s), "v1=")
		if !found {
			continue
		}
		got, err := hex.DecodeString(v)
		if err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

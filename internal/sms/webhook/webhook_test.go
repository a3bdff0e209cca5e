package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/sms"
)

var secret = []byte("example-secret")

const testTo = "+14155552671"

// receiver is a webhook endpoint written the way the package comment tells
// receivers to write one.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	now     time.Time
	respond func(w http.ResponseWriter, r *http.Request) bool

	mu   sync.Mutex
	got  []Payload
	hdrs []http.Header
}

func newReceiver(t *testing.T, now time.Time) *receiver {
	rc := &receiver{t: t, now: now}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("%s with Content-Type %q, want POST application/json", r.Method, r.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(r.Body)
	if err := Verify(secret, r.Header.Get(TimestampHeader), r.Header.Get(SignatureHeader), body, rc.now, 5*time.Minute); err != nil {
		http.Error(w, `{"error":"bad_signature"}`, http.StatusUnauthorized)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var p Payload
	if err := dec.Decode(&p); err != nil {
		rc.t.Errorf("body %s: %v", body, err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, p)
	rc.hdrs = append(rc.hdrs, r.Header.Clone())
	rc.mu.Unlock()
	if rc.respond != nil && rc.respond(w, r) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var now = time.Unix(1735689600, 0)

func client(rc *receiver) *Client {
	return &Client{URL: rc.srv.URL + "/sms?token=abc", Secret: secret, HTTP: rc.srv.Client(), Now: func() time.Time { return now }}
}

func TestSend(t *testing.T) {
	rc := newReceiver(t, now.Add(2*time.Second))
	body := sms.Text("", "twostep", "123456", "auth.example.com")
	m := sms.Message{To: testTo, Channel: sms.ChannelSMS, Body: body, Code: "123456", Purpose: "login"}
	if err := client(rc).Send(t.Context(), m); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	want := []Payload{{To: testTo, Channel: "sms", Body: body, Code: "123456", Purpose: "login"}}
	if diff := cmp.Diff(want, rc.got); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
	if ts := rc.hdrs[0].Get(TimestampHeader); ts != "1735689600" {
		t.Errorf("%s = %q, want 1735689600", TimestampHeader, ts)
	}
	if sig := rc.hdrs[0].Get(SignatureHeader); !strings.HasPrefix(sig, "v1=") || len(sig) != 3+64 {
		t.Errorf("%s = %q, want v1= and 64 hex digits", SignatureHeader, sig)
	}
}

func TestSendCallAndDefaultChannel(t *testing.T) {
	rc := newReceiver(t, now)
	c := client(rc)
	if err := c.Send(t.Context(), sms.Message{To: testTo, Body: "b", Code: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: "b", Code: "1"}); err != nil {
		t.Fatal(err)
	}
	if rc.got[0].Channel != "sms" || rc.got[1].Channel != "call" {
		t.Errorf("channels = %q, %q, want sms, call", rc.got[0].Channel, rc.got[1].Channel)
	}
}

// TestDocExample keeps the example in the package comment true.
func TestDocExample(t *testing.T) {
	body := `{"to":"+14155552671","channel":"sms","body":"Your twostep code is 123456\n\n@auth.example.com #123456","code":"123456","purpose":"login"}`
	p := Payload{To: testTo, Channel: "sms", Body: sms.Text("", "twostep", "123456", "auth.example.com"), Code: "123456", Purpose: "login"}
	got, _ := json.Marshal(p)
	if string(got) != body {
		t.Errorf("payload = %s, want %s", got, body)
	}
	if sig := Sign(secret, "1735689600", []byte(body)); sig != docSignature {
		t.Errorf("Sign = %s, want %s as in the package comment", sig, docSignature)
	}
}

const docSignature = "6c058cbdbf3f81ea4697619253c448b3cf6b4f4a2ae830da89782af5b73d0c09"

func TestVerify(t *testing.T) {
	body := []byte(`{"to":"+14155552671","channel":"sms","body":"x","code":"123456","purpose":"login"}`)
	ts := "1735689600"
	sig := "v1=" + Sign(secret, ts, body)
	tests := []struct {
		name      string
		secret    []byte
		ts, sig   string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{name: "valid", ts: ts, sig: sig, now: now},
		{name: "valid 4m59s late", ts: ts, sig: sig, now: now.Add(4*time.Minute + 59*time.Second)},
		{name: "valid in a rotation list", ts: ts, sig: "v1=" + Sign([]byte("old"), ts, body) + ", " + sig, now: now},
		{name: "upper-case hex", ts: ts, sig: "v1=" + strings.ToUpper(sig[3:]), now: now},
		{name: "default tolerance", ts: ts, sig: sig, now: now.Add(4 * time.Minute), tolerance: -1},
		{name: "old timestamp", ts: ts, sig: sig, now: now.Add(5*time.Minute + time.Second), want: ErrBadTimestamp},
		{name: "future timestamp", ts: ts, sig: sig, now: now.Add(-6 * time.Minute), want: ErrBadTimestamp},
		{name: "tight tolerance", ts: ts, sig: sig, now: now.Add(31 * time.Second), tolerance: 30 * time.Second, want: ErrBadTimestamp},
		{name: "missing timestamp", ts: "", sig: sig, now: now, want: ErrBadTimestamp},
		{name: "non-numeric timestamp", ts: "1735689600.0", sig: sig, now: now, want: ErrBadTimestamp},
		{name: "replayed with a new timestamp", ts: "1735689660", sig: sig, now: now, want: ErrBadSignature},
		{name: "tampered body", ts: ts, sig: sig, body: bytes.Replace(body, []byte("123456"), []byte("000000"), 1), now: now, want: ErrBadSignature},
		{name: "wrong secret", secret: []byte("other"), ts: ts, sig: sig, now: now, want: ErrBadSignature},
		{name: "missing signature", ts: ts, sig: "", now: now, want: ErrBadSignature},
		{name: "bare hex without v1=", ts: ts, sig: sig[3:], now: now, want: ErrBadSignature},
		{name: "v0 scheme", ts: ts, sig: "v0=" + sig[3:], now: now, want: ErrBadSignature},
		{name: "truncated", ts: ts, sig: sig[:len(sig)-2], now: now, want: ErrBadSignature},
		{name: "not hex", ts: ts, sig: "v1=zz", now: now, want: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, b, tol := secret, body, 5*time.Minute
			if tt.secret != nil {
				key = tt.secret
			}
			if tt.body != nil {
				b = tt.body
			}
			if tt.tolerance != 0 {
				tol = tt.tolerance
			}
			if err := Verify(key, tt.ts, tt.sig, b, tt.now, tol); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSendRejectedByReceiverClock(t *testing.T) {
	rc := newReceiver(t, now.Add(10*time.Minute)) // the receiver's clock is ahead: the signature is stale
	err := client(rc).Send(t.Context(), sms.Message{To: testTo, Body: "x", Code: "1"})
	if !errors.Is(err, sms.ErrRejected) {
		t.Errorf("Send = %v, want ErrRejected (401 from the receiver)", err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{name: "invalid number", status: 400, body: `{"error":"invalid_number"}`, want: sms.ErrInvalidNumber},
		{name: "invalid number 422", status: 422, body: `{"error":"invalid_number"}`, want: sms.ErrInvalidNumber},
		{name: "other 400", status: 400, body: `{"error":"bad_request"}`, want: sms.ErrRejected},
		{name: "401", status: 401, body: ``, want: sms.ErrRejected},
		{name: "404", status: 404, body: `not found`, want: sms.ErrRejected},
		{name: "429", status: 429, body: ``, want: sms.ErrUnavailable},
		{name: "500", status: 500, body: `{"error":"invalid_number"}`, want: sms.ErrUnavailable},
		{name: "502", status: 502, body: `<html>`, want: sms.ErrUnavailable},
		{name: "503", status: 503, body: ``, want: sms.ErrUnavailable},
		{name: "200 with a body", status: 200, body: `{"error":"invalid_number"}`, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, now)
			rc.respond = func(w http.ResponseWriter, _ *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
				return true
			}
			err := client(rc).Send(t.Context(), sms.Message{To: testTo, Body: "code 987654", Code: "987654"})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "987654") || strings.Contains(err.Error(), "token=abc") || strings.Contains(err.Error(), "4155552671")) {
				t.Errorf("error %q shows the code, the URL or the number", err)
			}
		})
	}
}

func TestTimeoutAndRefused(t *testing.T) {
	rc := newReceiver(t, now)
	rc.respond = func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return true
	}
	fo := &sms.Failover{Senders: []sms.NamedSender{{Name: "webhook", Sender: client(rc)}}, Budget: 200 * time.Millisecond}
	start := time.Now()
	err := fo.Send(t.Context(), sms.Message{To: testTo, Body: "x"})
	if took := time.Since(start); took > time.Second {
		t.Errorf("Send took %v, want about the 200ms budget", took)
	}
	if !errors.Is(err, sms.ErrUnavailable) || strings.Contains(err.Error(), "token=abc") {
		t.Errorf("Send = %v, want ErrUnavailable without the URL", err)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c := &Client{URL: dead.URL, Secret: secret}
	if err := c.Send(t.Context(), sms.Message{To: testTo, Body: "x"}); !errors.Is(err, sms.ErrUnavailable) {
		t.Errorf("Send to a closed port = %v, want ErrUnavailable", err)
	}
	for _, to := range []string{"4155552671", "+1415555267<1"} {
		if err := c.Send(t.Context(), sms.Message{To: to}); !errors.Is(err, sms.ErrInvalidNumber) {
			t.Errorf("Send(To %q) = %v, want ErrInvalidNumber", to, err)
		}
	}
}

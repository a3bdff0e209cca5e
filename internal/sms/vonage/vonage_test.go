package vonage

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/sms"
)

const (
	testKey    = "abcd1234"
	testSecret = "s3cr3tS3cr3t"
	testApp    = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
	testFrom   = "+14155550100"
	testTo     = "+14155552671"
	badTo      = "+15005550001" // the fake's invalid destination
)

// Answers from Vonage's API reference and troubleshooting guide.
const (
	smsAccepted  = `{"message-count":"1","messages":[{"to":"14155552671","message-id":"0C000000217B7F02","status":"0","remaining-balance":"15.53590000","message-price":"0.03330000","network":"23410"}]}`
	callCreated  = `{"uuid":"63f61863-4a51-4f6b-86e1-46edebcf9356","status":"started","direction":"outbound","conversation_uuid":"CON-f972836a-550f-45fa-956c-12a2ab5b7d22"}`
	unauthorized = `{"type":"https://developer.nexmo.com/api-errors#unauthorized","title":"Unauthorized","detail":"You did not provide correct credentials.","instance":"bf0ca0bf927b3b52e3cb03217e1a1ddf"}`
)

func smsStatus(status, text string) string {
	b, _ := json.Marshal(map[string]any{"message-count": "1", "messages": []map[string]string{{"status": status, "error-text": text}}})
	return string(b)
}

var (
	msisdnRE = regexp.MustCompile(`^[0-9]{7,15}$`) // the SMS and Voice APIs' AddressE164
	smsField = map[string]bool{"api_key": true, "api_secret": true, "from": true, "to": true, "text": true, "type": true}
)

type callBody struct {
	To []struct {
		Type   string `json:"type"`
		Number string `json:"number"`
	} `json:"to"`
	From struct {
		Type   string `json:"type"`
		Number string `json:"number"`
	} `json:"from"`
	NCCO []struct {
		Action string `json:"action"`
		Text   string `json:"text"`
	} `json:"ncco"`
}

type claims struct {
	ApplicationID string `json:"application_id"`
	IssuedAt      int64  `json:"iat"`
	Expires       int64  `json:"exp"`
	ID            string `json:"jti"`
}

// fake is a local Vonage: /sms/json checks the form and credentials and
// answers with per-message statuses; /v1/calls verifies the RS256 JWT with
// the application's public key and checks the JSON body.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	pub     *rsa.PublicKey
	respond func(w http.ResponseWriter, r *http.Request) bool

	mu     sync.Mutex
	forms  []url.Values
	calls  []callBody
	tokens []claims
}

func newFake(t *testing.T, pub *rsa.PublicKey) *fake {
	f := &fake{t: t, pub: pub}
	mux := http.NewServeMux()
	mux.HandleFunc("/sms/json", f.sms)
	mux.HandleFunc("/v1/calls", f.call)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func reply(w http.ResponseWriter, status int, ct, body string) {
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (f *fake) sms(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.Method != http.MethodPost {
		reply(w, 405, "text/plain", "")
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		t.Errorf("sms Content-Type = %q", r.Header.Get("Content-Type"))
	}
	raw, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		t.Errorf("sms body %q: %v", raw, err)
	}
	for k, v := range form {
		if !smsField[k] || len(v) != 1 {
			t.Errorf("sms field %q = %v: not one value of a field twostep sends", k, v)
		}
	}
	if form.Get("from") == "" || form.Get("text") == "" || !msisdnRE.MatchString(form.Get("to")) {
		t.Errorf("sms form %v: want from, text and a to of 7-15 digits", form)
	}
	if form.Has("type") && form.Get("type") != "unicode" {
		t.Errorf("sms type = %q", form.Get("type"))
	}
	f.mu.Lock()
	f.forms = append(f.forms, form)
	f.mu.Unlock()
	if f.respond != nil && f.respond(w, r) {
		return
	}
	switch {
	case form.Get("api_key") != testKey || form.Get("api_secret") != testSecret:
		reply(w, 200, "application/json", smsStatus("4", "Bad Credentials"))
	case "+"+form.Get("to") == badTo:
		reply(w, 200, "application/json", smsStatus("3", "Invalid request :: Invalid 'to' address"))
	default:
		reply(w, 200, "application/json", smsAccepted)
	}
}

func (f *fake) call(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.Method != http.MethodPost {
		reply(w, 405, "text/plain", "")
		return
	}
	c, ok := f.verify(r.Header.Get("Authorization"))
	if !ok {
		reply(w, 401, "application/problem+json", unauthorized)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		t.Errorf("call Content-Type = %q", r.Header.Get("Content-Type"))
	}
	raw, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var body callBody
	if err := dec.Decode(&body); err != nil {
		t.Errorf("call body %s: %v", raw, err)
	}
	if len(body.To) != 1 || body.To[0].Type != "phone" || !msisdnRE.MatchString(body.To[0].Number) ||
		body.From.Type != "phone" || !msisdnRE.MatchString(body.From.Number) ||
		len(body.NCCO) != 1 || body.NCCO[0].Action != "talk" || body.NCCO[0].Text == "" {
		t.Errorf("call body %s: want one phone to, a phone from and one talk action", raw)
	}
	f.mu.Lock()
	f.calls = append(f.calls, body)
	f.tokens = append(f.tokens, c)
	f.mu.Unlock()
	if f.respond != nil && f.respond(w, r) {
		return
	}
	reply(w, 201, "application/json", callCreated)
}

// verify checks the bearer JWT as Vonage does: RS256 under the
// application's public key, the application ID, and a live iat/exp.
func (f *fake) verify(auth string) (claims, bool) {
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return claims{}, false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims{}, false
	}
	hdr, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return claims{}, false
	}
	var h struct{ Alg, Typ string }
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "RS256" || h.Typ != "JWT" {
		return claims{}, false
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(f.pub, crypto.SHA256, digest[:], sig) != nil {
		return claims{}, false
	}
	var c claims
	if json.Unmarshal(payload, &c) != nil {
		return claims{}, false
	}
	now := time.Now().Unix()
	if c.ApplicationID != testApp || c.ID == "" || c.IssuedAt > now+1 || c.Expires <= now {
		return claims{}, false
	}
	return c, true
}

var (
	keyOnce sync.Once
	testRSA *rsa.PrivateKey
)

func key(t *testing.T) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		testRSA = k
	})
	return testRSA
}

func setup(t *testing.T) (*fake, *Client) {
	k := key(t)
	f := newFake(t, &k.PublicKey)
	return f, &Client{
		APIKey: testKey, APISecret: testSecret, From: testFrom,
		ApplicationID: testApp, PrivateKey: k,
		BaseURL: f.srv.URL, APIURL: f.srv.URL, HTTP: f.srv.Client(),
	}
}

func TestSendSMS(t *testing.T) {
	f, c := setup(t)
	body := sms.Text("", "twostep", "123456", "auth.example.com")
	if err := c.Send(t.Context(), sms.Message{To: testTo, Body: body, Code: "123456", Purpose: "login"}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	want := []url.Values{{"api_key": {testKey}, "api_secret": {testSecret}, "from": {"14155550100"}, "to": {"14155552671"}, "text": {body}}}
	if diff := cmp.Diff(want, f.forms); diff != "" {
		t.Errorf("forms (-want +got):\n%s", diff)
	}
}

func TestSendSMSUnicode(t *testing.T) {
	f, c := setup(t)
	body := sms.Text("", "Zürich ✓", "123456", "")
	if err := c.Send(t.Context(), sms.Message{To: testTo, Body: body}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	if got := f.forms[0].Get("type"); got != "unicode" {
		t.Errorf("type = %q, want unicode for %q", got, body)
	}
	if !isGSM7("Your Zürich code is 123456\n\n@a.example #123456 {}[]€") || isGSM7("✓") || isGSM7("ł") {
		t.Error("isGSM7 misjudges its alphabet")
	}
}

func TestCall(t *testing.T) {
	f, c := setup(t)
	now := time.Now().Truncate(time.Second)
	c.Now = func() time.Time { return now }
	c.CallFrom = "+14155550199"
	text := sms.SpeakCode("twostep", "123456")
	if err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: text, Code: "123456"}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	if len(f.calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(f.calls))
	}
	got := f.calls[0]
	if got.To[0].Number != "14155552671" || got.From.Number != "14155550199" || got.NCCO[0].Text != text {
		t.Errorf("call = %+v", got)
	}
	tok := f.tokens[0]
	if tok.IssuedAt != now.Unix() || tok.Expires != now.Add(5*time.Minute).Unix() || len(tok.ID) < 20 {
		t.Errorf("claims = %+v, want iat %d, exp +300 s and a random jti", tok, now.Unix())
	}
	// A second call signs a new token.
	if err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: text}); err != nil {
		t.Fatal(err)
	}
	if f.tokens[0].ID == f.tokens[1].ID {
		t.Error("two calls share a jti")
	}
}

func TestCallWrongKey(t *testing.T) {
	_, c := setup(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c.PrivateKey = other
	if err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: "x"}); !errors.Is(err, sms.ErrRejected) {
		t.Errorf("Send = %v, want ErrRejected", err)
	}
}

func TestCallNotConfigured(t *testing.T) {
	f, c := setup(t)
	c.PrivateKey = nil
	if err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: "x"}); !errors.Is(err, sms.ErrUnavailable) {
		t.Errorf("Send = %v, want ErrUnavailable", err)
	}
	if len(f.calls) != 0 {
		t.Error("a call was placed")
	}
}

func TestSMSErrors(t *testing.T) {
	tests := []struct {
		name   string
		to     string
		secret string
		status int
		body   string
		want   error
	}{
		{name: "invalid to (3)", to: badTo, want: sms.ErrInvalidNumber},
		{name: "bad credentials (4)", secret: "wrong", want: sms.ErrRejected},
		{name: "throttled (1)", body: smsStatus("1", "Throughput Rate Exceeded - please wait [ 0 ] and retry"), want: sms.ErrUnavailable},
		{name: "missing parameter (2)", body: smsStatus("2", "Missing from param"), want: sms.ErrRejected},
		{name: "invalid from (3)", body: smsStatus("3", "Invalid request :: Invalid 'from' address"), want: sms.ErrRejected},
		{name: "internal error (5)", body: smsStatus("5", "Internal Error"), want: sms.ErrUnavailable},
		{name: "invalid message (6)", body: smsStatus("6", "Unroutable message - rejected"), want: sms.ErrInvalidNumber},
		{name: "number barred (7)", body: smsStatus("7", "Number barred"), want: sms.ErrInvalidNumber},
		{name: "no credit (9)", body: smsStatus("9", "Quota Exceeded - rejected"), want: sms.ErrRejected},
		{name: "sender (15)", body: smsStatus("15", "Illegal Sender Address - rejected"), want: sms.ErrRejected},
		{name: "whitelist (29)", body: smsStatus("29", "Non White-listed Destination - rejected"), want: sms.ErrRejected},
		{name: "msisdn (34)", body: smsStatus("34", "Invalid or Missing Msisdn Param"), want: sms.ErrInvalidNumber},
		{name: "second part fails", body: `{"message-count":"2","messages":[{"status":"0"},{"status":"1","error-text":"Throttled"}]}`, want: sms.ErrUnavailable},
		{name: "HTTP 429", status: 429, body: "", want: sms.ErrUnavailable},
		{name: "HTTP 500", status: 500, body: "<html>oops</html>", want: sms.ErrUnavailable},
		{name: "HTTP 503", status: 503, body: "", want: sms.ErrUnavailable},
		{name: "HTTP 401", status: 401, body: "", want: sms.ErrRejected},
		{name: "200 not JSON", status: 200, body: "<html>", want: sms.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := setup(t)
			if tt.body != "" || tt.status != 0 {
				status := tt.status
				if status == 0 {
					status = 200
				}
				f.respond = func(w http.ResponseWriter, _ *http.Request) bool {
					reply(w, status, "application/json", tt.body)
					return true
				}
			}
			if tt.secret != "" {
				c.APISecret = tt.secret
			}
			to := tt.to
			if to == "" {
				to = testTo
			}
			err := c.Send(t.Context(), sms.Message{To: to, Body: "code 987654", Code: "987654"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
			for _, s := range []string{strings.TrimPrefix(to, "+"), "987654", testSecret} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows %q", err, s)
				}
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{name: "invalid to", status: 400, body: `{"type":"https://developer.nexmo.com/api-errors#validation","title":"Bad Request","detail":"The request failed due to validation errors","invalid_parameters":[{"name":"to[0].number","reason":"must match \"\\d{7,15}\""}]}`, want: sms.ErrInvalidNumber},
		{name: "invalid from", status: 400, body: `{"type":"https://developer.nexmo.com/api-errors#validation","title":"Bad Request","invalid_parameters":[{"name":"from.number","reason":"not linked to the application"}]}`, want: sms.ErrRejected},
		{name: "low balance", status: 402, body: `{"type":"https://developer.nexmo.com/api-errors#low-balance","title":"Low balance","detail":"This request could not be performed due to your account balance being low."}`, want: sms.ErrRejected},
		{name: "forbidden", status: 403, body: `{"type":"https://developer.nexmo.com/api-errors#forbidden","title":"Forbidden"}`, want: sms.ErrRejected},
		{name: "429", status: 429, body: `{"type":"https://developer.nexmo.com/api-errors#throttled","title":"Too Many Requests"}`, want: sms.ErrUnavailable},
		{name: "500", status: 500, body: ``, want: sms.ErrUnavailable},
		{name: "503", status: 503, body: `<html>`, want: sms.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := setup(t)
			f.respond = func(w http.ResponseWriter, _ *http.Request) bool {
				reply(w, tt.status, "application/problem+json", tt.body)
				return true
			}
			err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: "x"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRefusedBeforeRequest(t *testing.T) {
	f, c := setup(t)
	for _, to := range []string{"14155552671", "+1415555267a", "+1"} {
		if err := c.Send(t.Context(), sms.Message{To: to, Body: "x"}); !errors.Is(err, sms.ErrInvalidNumber) {
			t.Errorf("Send(To %q) = %v, want ErrInvalidNumber", to, err)
		}
	}
	if len(f.forms) != 0 {
		t.Error("a request was sent")
	}
}

func TestTimeout(t *testing.T) {
	for _, ch := range []sms.Channel{sms.ChannelSMS, sms.ChannelCall} {
		f, c := setup(t)
		f.respond = func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return true
		}
		fo := &sms.Failover{Senders: []sms.NamedSender{{Name: "vonage", Sender: c}}, Budget: 200 * time.Millisecond}
		start := time.Now()
		err := fo.Send(t.Context(), sms.Message{To: testTo, Channel: ch, Body: "x"})
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: Send took %v, want about the 200ms budget", ch, took)
		}
		if !errors.Is(err, sms.ErrUnavailable) {
			t.Errorf("%s: Send = %v, want ErrUnavailable", ch, err)
		}
	}
}

func TestParsePrivateKey(t *testing.T) {
	k := key(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"pkcs1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}),
	} {
		got, err := ParsePrivateKey(data)
		if err != nil || !got.Equal(k) {
			t.Errorf("ParsePrivateKey(%s) = %v, want the key", name, err)
		}
	}
	for name, data := range map[string][]byte{
		"empty":  nil,
		"junk":   []byte("not a key"),
		"public": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}),
		"broken": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := ParsePrivateKey(data); err == nil {
			t.Errorf("ParsePrivateKey(%s) = nil error", name)
		}
	}
}

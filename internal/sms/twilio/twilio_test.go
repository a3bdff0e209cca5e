package twilio

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/sms"
)

const (
	testSID   = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	testToken = "auth-token-0123456789abcdef"
	testFrom  = "+15005550006" // Twilio's magic "valid From" test number
	testTo    = "+14155552671"
)

// Twilio's own error bodies, in the shape of its OpenAPI error schema.
func twilioError(status, code int, message string) string {
	b, _ := json.Marshal(map[string]any{
		"code": code, "message": message, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
	return string(b)
}

// magicTo are Twilio's test-credential numbers that fail, with the error
// Twilio gives for each.
var magicTo = map[string]struct {
	code    int
	message string
}{
	"+15005550001": {21211, "The 'To' number +15005550001 is not a valid phone number."},
	"+15005550002": {21612, "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number: +15005550006 via SMS."},
	"+15005550003": {21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15005550003."},
	"+15005550004": {21610, "Attempt to send to unsubscribed recipient"},
	"+15005550009": {21614, "'To' number is not a valid mobile number"},
}

// Fields the OpenAPI document lists for each resource.
var knownFields = map[string]map[string]bool{
	"Messages.json": set("AddressRetention", "ApplicationSid", "Attempt", "Body", "ContentRetention", "ContentSid", "ContentVariables", "FallbackFrom", "ForceDelivery", "From", "MaxPrice", "MediaUrl", "MessagingServiceSid", "PersistentAction", "ProvideFeedback", "RiskCheck", "ScheduleType", "SendAsMms", "SendAt", "ShortenUrls", "SmartEncoded", "StatusCallback", "To", "TrafficType", "ValidityPeriod"),
	"Calls.json":    set("ApplicationSid", "AsyncAmd", "AsyncAmdStatusCallback", "AsyncAmdStatusCallbackMethod", "Byoc", "CallReason", "CallToken", "CallerId", "ClientNotificationUrl", "FallbackMethod", "FallbackUrl", "From", "MachineDetection", "MachineDetectionSilenceTimeout", "MachineDetectionSpeechEndThreshold", "MachineDetectionSpeechThreshold", "MachineDetectionTimeout", "Method", "Record", "RecordingChannels", "RecordingStatusCallback", "RecordingStatusCallbackEvent", "RecordingStatusCallbackMethod", "RecordingTrack", "SendDigits", "SipAuthPassword", "SipAuthUsername", "StatusCallback", "StatusCallbackEvent", "StatusCallbackMethod", "TimeLimit", "Timeout", "To", "Trim", "Twiml", "Url"),
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var (
	pathRE    = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/(Messages\.json|Calls\.json)$`)
	accountRE = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceRE = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	e164RE    = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
)

// request is what the fake saw.
type request struct {
	Resource string
	Form     url.Values
}

// fake is a local Twilio: it checks each request the way the real API
// does (method, path, account SID, basic auth, content type, fields) and
// answers with Twilio's bodies. respond, when set, overrides the answer to
// a valid request.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	respond func(w http.ResponseWriter, r *http.Request, req request) bool

	mu   sync.Mutex
	reqs []request
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) client() *Client {
	return &Client{AccountSID: testSID, AuthToken: testToken, From: testFrom, BaseURL: f.srv.URL, HTTP: f.srv.Client()}
}

func (f *fake) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil || !accountRE.MatchString(m[1]) {
		reply(w, 404, twilioError(404, 20404, "The requested resource "+r.URL.Path+" was not found"))
		return
	}
	if r.Method != http.MethodPost {
		reply(w, 405, twilioError(405, 20004, "Method not allowed"))
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != m[1] || user != testSID || pass != testToken {
		reply(w, 401, twilioError(401, 20003, "Authenticate"))
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q, want application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	}
	raw, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		t.Errorf("body %q is not a form: %v", raw, err)
	}
	resource := m[2]
	for k, v := range form {
		if !knownFields[resource][k] {
			t.Errorf("%s: field %q is not in Twilio's API", resource, k)
		}
		if len(v) != 1 {
			t.Errorf("%s: field %q sent %d times", resource, k, len(v))
		}
	}
	if !e164RE.MatchString(form.Get("To")) {
		t.Errorf("%s: To = %q, want E.164", resource, form.Get("To"))
	}
	switch resource {
	case "Messages.json":
		if form.Has("From") == form.Has("MessagingServiceSid") {
			t.Errorf("Messages.json: want exactly one of From and MessagingServiceSid, got %v", form)
		}
		if form.Has("MessagingServiceSid") && !serviceRE.MatchString(form.Get("MessagingServiceSid")) {
			t.Errorf("MessagingServiceSid = %q, want MG and 32 hex digits", form.Get("MessagingServiceSid"))
		}
		if form.Get("Body") == "" {
			t.Errorf("Messages.json: empty Body")
		}
	case "Calls.json":
		if form.Get("From") == "" || form.Get("Twiml") == "" {
			t.Errorf("Calls.json: want From and Twiml, got %v", form)
		}
		var doc struct {
			XMLName xml.Name `xml:"Response"`
		}
		if err := xml.Unmarshal([]byte(form.Get("Twiml")), &doc); err != nil {
			t.Errorf("Twiml %q is not a TwiML document: %v", form.Get("Twiml"), err)
		}
	}
	req := request{Resource: resource, Form: form}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()

	if f.respond != nil && f.respond(w, r, req) {
		return
	}
	if e, ok := magicTo[form.Get("To")]; ok {
		reply(w, 400, twilioError(400, e.code, e.message))
		return
	}
	name := "message_created.json"
	if resource == "Calls.json" {
		name = "call_created.json"
	}
	body, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	reply(w, 201, string(body))
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func TestSendSMS(t *testing.T) {
	f := newFake(t)
	body := sms.Text("", "twostep", "123456", "auth.example.com")
	err := f.client().Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelSMS, Body: body, Code: "123456", Purpose: "login"})
	if err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	want := []request{{Resource: "Messages.json", Form: url.Values{"To": {testTo}, "From": {testFrom}, "Body": {"Your twostep code is 123456\n\n@auth.example.com #123456"}}}}
	if diff := cmp.Diff(want, f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestSendSMSMessagingService(t *testing.T) {
	f := newFake(t)
	c := f.client()
	c.From = "MG" + strings.Repeat("0123456789abcdef", 2)
	if err := c.Send(t.Context(), sms.Message{To: testTo, Body: "hi 1"}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	want := []request{{Resource: "Messages.json", Form: url.Values{"To": {testTo}, "MessagingServiceSid": {c.From}, "Body": {"hi 1"}}}}
	if diff := cmp.Diff(want, f.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestCall(t *testing.T) {
	f := newFake(t)
	c := f.client()
	c.From = "MG" + strings.Repeat("0123456789abcdef", 2) // texts go through a service,
	c.CallFrom = "+15005550006"                           // calls need a number
	text := sms.SpeakCode(`A&B <"Co">`, "123456")
	if err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: text, Code: "123456", Purpose: "login"}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Resource != "Calls.json" {
		t.Fatalf("requests = %v, want one to Calls.json", reqs)
	}
	form := reqs[0].Form
	wantTwiml := `<Response><Pause length="1"/><Say voice="alice">Your A&amp;B &lt;&#34;Co&#34;&gt; code is: 1. 2. 3. 4. 5. 6. Again: 1. 2. 3. 4. 5. 6.</Say></Response>`
	if diff := cmp.Diff(url.Values{"To": {testTo}, "From": {"+15005550006"}, "Twiml": {wantTwiml}}, form); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
	var doc struct {
		Say struct {
			Voice string `xml:"voice,attr"`
			Text  string `xml:",chardata"`
		} `xml:"Say"`
	}
	if err := xml.Unmarshal([]byte(form.Get("Twiml")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Say.Text != text || doc.Say.Voice != "alice" {
		t.Errorf("Say = %q (voice %q), want %q (voice alice)", doc.Say.Text, doc.Say.Voice, text)
	}
}

func TestCallWithoutCallerID(t *testing.T) {
	f := newFake(t)
	c := f.client()
	c.From = "MG" + strings.Repeat("0123456789abcdef", 2)
	err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: "x"})
	if !errors.Is(err, sms.ErrUnavailable) {
		t.Errorf("Send = %v, want ErrUnavailable", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent, want 0", n)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		to      string
		token   string
		channel sms.Channel
		status  int
		body    string
		want    error
	}{
		{name: "invalid number 21211", to: "+15005550001", want: sms.ErrInvalidNumber},
		{name: "unroutable 21612", to: "+15005550002", want: sms.ErrInvalidNumber},
		{name: "region 21408", to: "+15005550003", want: sms.ErrInvalidNumber},
		{name: "unsubscribed 21610", to: "+15005550004", want: sms.ErrInvalidNumber},
		{name: "not mobile 21614", to: "+15005550009", want: sms.ErrInvalidNumber},
		{name: "call invalid 21217", channel: sms.ChannelCall, status: 400, body: twilioError(400, 21217, "Phone number does not appear to be valid"), want: sms.ErrInvalidNumber},
		{name: "bad credentials 20003", token: "wrong", want: sms.ErrRejected},
		{name: "bad From 21606", status: 400, body: twilioError(400, 21606, "The From phone number +15005550001 is not a valid, SMS-capable inbound phone number or short code for your account."), want: sms.ErrRejected},
		{name: "suspended 20005", status: 403, body: twilioError(403, 20005, "Account not active"), want: sms.ErrRejected},
		{name: "too many requests 20429", status: 429, body: twilioError(429, 20429, "Too Many Requests"), want: sms.ErrUnavailable},
		{name: "500", status: 500, body: twilioError(500, 20500, "An internal server error has occurred"), want: sms.ErrUnavailable},
		{name: "503 from a proxy", status: 503, body: "<html><body>Service Unavailable</body></html>", want: sms.ErrUnavailable},
		{name: "302", status: 302, body: "", want: sms.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			if tt.status != 0 {
				f.respond = func(w http.ResponseWriter, _ *http.Request, _ request) bool {
					reply(w, tt.status, tt.body)
					return true
				}
			}
			c := f.client()
			if tt.token != "" {
				c.AuthToken = tt.token
			}
			to := tt.to
			if to == "" {
				to = testTo
			}
			err := c.Send(t.Context(), sms.Message{To: to, Channel: tt.channel, Body: "Your code is 987654", Code: "987654"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
			for _, s := range []string{to, "987654", "+15005550006"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows %q", err, s)
				}
			}
		})
	}
}

func TestRefusedBeforeRequest(t *testing.T) {
	f := newFake(t)
	for _, to := range []string{"", "14155552671", "+1 415 555 2671", "+14155552671<14155550000", "sip:a@b.c", "+0123456789"} {
		if err := f.client().Send(t.Context(), sms.Message{To: to, Body: "x"}); !errors.Is(err, sms.ErrInvalidNumber) {
			t.Errorf("Send(To %q) = %v, want ErrInvalidNumber", to, err)
		}
	}
	if err := f.client().Send(t.Context(), sms.Message{To: testTo, Channel: "fax", Body: "x"}); !errors.Is(err, sms.ErrRejected) {
		t.Errorf("Send(channel fax) = %v, want ErrRejected", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent, want 0", n)
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t)
	f.respond = func(w http.ResponseWriter, r *http.Request, _ request) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return true
	}
	fo := &sms.Failover{Senders: []sms.NamedSender{{Name: "twilio", Sender: f.client()}}, Budget: 300 * time.Millisecond}
	start := time.Now()
	err := fo.Send(t.Context(), sms.Message{To: testTo, Body: "x"})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Send took %v, want about the 300ms budget", took)
	}
	if !errors.Is(err, sms.ErrUnavailable) {
		t.Errorf("Send = %v, want ErrUnavailable", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := &Client{AccountSID: testSID, AuthToken: testToken, From: testFrom, BaseURL: base}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Send(ctx, sms.Message{To: testTo, Body: "x"}); !errors.Is(err, sms.ErrUnavailable) {
		t.Errorf("Send = %v, want ErrUnavailable", err)
	}
}

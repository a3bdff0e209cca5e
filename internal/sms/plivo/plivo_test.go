package plivo

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/sms"
)

const (
	testAuthID = "MAXXXXXXXXXXXXXXXXXX"
	testToken  = "plivo-auth-token"
	testFrom   = "+14155550100"
	testTo     = "+14155552671"
	badTo      = "+15005550001" // the fake's unroutable number
)

// Bodies from Plivo's API reference: the documented success answers of
// "Send a message" and "Make a call", and its error shape {api_id, error}.
const (
	messageQueued = `{"api_id":"db342550-7f1d-11e1-8ea7-1231380bc196","message":"message(s) queued","message_uuid":["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]}`
	callFired     = `{"api_id":"97ceeb52-58b6-11e1-86da-77300b68f8bb","message":"call fired","request_uuid":"9834029e-58b6-11e1-8ea7-1231380bc196"}`
	authFailed    = `{"api_id":"a5169572-325d-11ec-8852-0242ac110005","error":"authentication failed"}`
	invalidDst    = `{"api_id":"a5169572-325d-11ec-8852-0242ac110005","error":"'15005550001' is not a valid phone number."}`
)

var (
	pathRE   = regexp.MustCompile(`^/v1/Account/([^/]+)/(Message|Call)/$`)
	numberRE = regexp.MustCompile(`^[1-9][0-9]{7,14}$`) // Plivo's sanitised form: country code and number
)

type messageReq struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Text string `json:"text"`
}

type callReq struct {
	From         string `json:"from"`
	To           string `json:"to"`
	AnswerURL    string `json:"answer_url"`
	AnswerMethod string `json:"answer_method"`
}

// fake is a local Plivo API that checks what Plivo checks: method, path
// (with its trailing slash), basic auth, JSON content type and exactly the
// fields twostep sends.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	respond func(w http.ResponseWriter, r *http.Request) bool

	mu       sync.Mutex
	messages []messageReq
	calls    []callReq
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		reply(w, 404, `{"api_id":"x","error":"not found"}`)
		return
	}
	if r.Method != http.MethodPost {
		reply(w, 405, `{"api_id":"x","error":"method not allowed"}`)
		return
	}
	id, token, ok := r.BasicAuth()
	if !ok || id != m[1] || id != testAuthID || token != testToken {
		reply(w, 401, authFailed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", r.Header.Get("Content-Type"))
	}
	raw, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var dst string
	switch m[2] {
	case "Message":
		var req messageReq
		if err := dec.Decode(&req); err != nil {
			t.Errorf("Message body %s: %v", raw, err)
		}
		if req.Src == "" || req.Text == "" || !numberRE.MatchString(req.Dst) {
			t.Errorf("Message body %s: want src, text and a dst of country code and digits", raw)
		}
		f.mu.Lock()
		f.messages = append(f.messages, req)
		f.mu.Unlock()
		dst = req.Dst
	case "Call":
		var req callReq
		if err := dec.Decode(&req); err != nil {
			t.Errorf("Call body %s: %v", raw, err)
		}
		if !numberRE.MatchString(req.From) || !numberRE.MatchString(req.To) || req.AnswerURL == "" || req.AnswerMethod != "GET" {
			t.Errorf("Call body %s: want from, to, answer_url and answer_method GET", raw)
		}
		f.mu.Lock()
		f.calls = append(f.calls, req)
		f.mu.Unlock()
		dst = req.To
	}
	if f.respond != nil && f.respond(w, r) {
		return
	}
	switch {
	case "+"+dst == badTo:
		reply(w, 400, invalidDst)
	case m[2] == "Message":
		reply(w, 202, messageQueued)
	default:
		reply(w, 201, callFired)
	}
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// setup returns a client for the fake, with its answers served by a local
// twostep at PublicURL.
func setup(t *testing.T) (*fake, *Client, *AnswerStore) {
	f := newFake(t)
	store := NewAnswerStore(time.Minute)
	mux := http.NewServeMux()
	mux.Handle("GET "+AnswerPath+"{id}", AnswerHandler(store))
	public := httptest.NewServer(mux)
	t.Cleanup(public.Close)
	c := &Client{AuthID: testAuthID, AuthToken: testToken, From: testFrom, BaseURL: f.srv.URL, PublicURL: public.URL + "/", Answers: store, HTTP: f.srv.Client()}
	return f, c, store
}

func TestSendSMS(t *testing.T) {
	f, c, _ := setup(t)
	body := sms.Text("", "twostep", "123456", "auth.example.com")
	if err := c.Send(t.Context(), sms.Message{To: testTo, Body: body, Code: "123456", Purpose: "login"}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	want := []messageReq{{Src: "14155550100", Dst: "14155552671", Text: body}}
	if diff := cmp.Diff(want, f.messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestCallAnswerServedOnce(t *testing.T) {
	f, c, store := setup(t)
	text := sms.SpeakCode("A&B", "123456")
	if err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: text, Code: "123456"}); err != nil {
		t.Fatalf("Send = %v, want nil", err)
	}
	if len(f.calls) != 1 {
		t.Fatalf("calls = %v, want 1", f.calls)
	}
	call := f.calls[0]
	if call.From != "14155550100" || call.To != "14155552671" || call.AnswerMethod != "GET" {
		t.Errorf("call = %+v", call)
	}
	prefix := strings.TrimSuffix(c.PublicURL, "/") + AnswerPath
	if !strings.HasPrefix(call.AnswerURL, prefix) || len(call.AnswerURL)-len(prefix) < 26 {
		t.Fatalf("answer_url = %q, want %s and a 128-bit id", call.AnswerURL, prefix)
	}

	// Plivo fetches the answer URL when the call is answered.
	resp, err := http.Get(call.AnswerURL)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/xml" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET answer = %d %q %q, want 200 application/xml no-store", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	var parsed struct {
		XMLName xml.Name `xml:"Response"`
		Wait    struct {
			Length string `xml:"length,attr"`
		} `xml:"Wait"`
		Speak string `xml:"Speak"`
	}
	if err := xml.Unmarshal(doc, &parsed); err != nil {
		t.Fatalf("answer %s: %v", doc, err)
	}
	if parsed.Speak != text || parsed.Wait.Length != "1" {
		t.Errorf("answer speaks %q after wait %q, want %q after 1", parsed.Speak, parsed.Wait.Length, text)
	}

	// Once only.
	resp, err = http.Get(call.AnswerURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("second GET answer = %d, want 404", resp.StatusCode)
	}
	if n := store.Len(); n != 0 {
		t.Errorf("store holds %d answers, want 0", n)
	}
}

func TestCallFailedWithdrawsAnswer(t *testing.T) {
	_, c, store := setup(t)
	err := c.Send(t.Context(), sms.Message{To: badTo, Channel: sms.ChannelCall, Body: "x"})
	if !errors.Is(err, sms.ErrInvalidNumber) {
		t.Fatalf("Send = %v, want ErrInvalidNumber", err)
	}
	if n := store.Len(); n != 0 {
		t.Errorf("store holds %d answers after a failed call, want 0", n)
	}
}

func TestCallNeedsPublicURL(t *testing.T) {
	f, c, _ := setup(t)
	c.PublicURL = ""
	if err := c.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: "x"}); !errors.Is(err, sms.ErrUnavailable) {
		t.Errorf("Send = %v, want ErrUnavailable", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("calls = %v, want none", f.calls)
	}
}

func TestAnswerStore(t *testing.T) {
	s := NewAnswerStore(time.Minute)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	id, err := s.Put([]byte("<Response/>"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := s.Put([]byte("<Response/>"))
	if id == other {
		t.Fatalf("two Puts gave the same id %q", id)
	}
	if _, ok := s.Take("nope"); ok {
		t.Error("Take(unknown) = true")
	}
	now = now.Add(59 * time.Second)
	if doc, ok := s.Take(id); !ok || string(doc) != "<Response/>" {
		t.Errorf("Take(live) = %q, %v", doc, ok)
	}
	if _, ok := s.Take(id); ok {
		t.Error("second Take = true, want false")
	}
	now = now.Add(time.Second)
	if _, ok := s.Take(other); ok {
		t.Error("Take(expired) = true, want false")
	}
}

func TestAnswerStoreConcurrentTake(t *testing.T) {
	s := NewAnswerStore(time.Minute)
	id, _ := s.Put([]byte("x"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 20 {
		wg.Go(func() {
			if _, ok := s.Take(id); ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d of 20 concurrent Takes succeeded, want 1", wins)
	}
}

func TestAnswerHandlerMethod(t *testing.T) {
	s := NewAnswerStore(time.Minute)
	id, _ := s.Put([]byte("<Response/>"))
	rec := httptest.NewRecorder()
	AnswerHandler(s).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, AnswerPath+id, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", rec.Code)
	}
	// Without a {id} route the last path element is the id.
	rec = httptest.NewRecorder()
	AnswerHandler(s).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, AnswerPath+id, nil))
	if rec.Code != 200 || rec.Body.String() != "<Response/>" {
		t.Errorf("GET = %d %q, want 200 <Response/>", rec.Code, rec.Body)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		to     string
		token  string
		status int
		body   string
		want   error
	}{
		{name: "invalid dst", to: badTo, want: sms.ErrInvalidNumber},
		{name: "202 with invalid_number", status: 202, body: `{"api_id":"x","message":"message(s) queued","message_uuid":[],"invalid_number":["14155552671"]}`, want: sms.ErrInvalidNumber},
		{name: "bad credentials", token: "wrong", want: sms.ErrRejected},
		{name: "bad src", status: 400, body: `{"api_id":"x","error":"src parameter not a valid Plivo number"}`, want: sms.ErrRejected},
		{name: "field errors", status: 400, body: `{"api_id":"x","error":{"dst":["This field is required."]}}`, want: sms.ErrInvalidNumber},
		{name: "geo permission 403", status: 403, body: `{"api_id":"x","error":"destination country not enabled"}`, want: sms.ErrRejected},
		{name: "429", status: 429, body: `{"api_id":"x","error":"too many requests"}`, want: sms.ErrUnavailable},
		{name: "500", status: 500, body: `{"api_id":"x","error":"server error"}`, want: sms.ErrUnavailable},
		{name: "503", status: 503, body: `<html>Service Unavailable</html>`, want: sms.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c, _ := setup(t)
			if tt.status != 0 {
				f.respond = func(w http.ResponseWriter, _ *http.Request) bool { reply(w, tt.status, tt.body); return true }
			}
			if tt.token != "" {
				c.AuthToken = tt.token
			}
			to := tt.to
			if to == "" {
				to = testTo
			}
			err := c.Send(t.Context(), sms.Message{To: to, Body: "code 987654", Code: "987654"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
			for _, s := range []string{to, strings.TrimPrefix(to, "+"), "987654"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows %q", err, s)
				}
			}
		})
	}
}

func TestRefusedBeforeRequest(t *testing.T) {
	f, c, _ := setup(t)
	for _, to := range []string{"14155552671", "+14155552671<14155550000", "sip:john@phone.plivo.com", ""} {
		if err := c.Send(t.Context(), sms.Message{To: to, Body: "x"}); !errors.Is(err, sms.ErrInvalidNumber) {
			t.Errorf("Send(To %q) = %v, want ErrInvalidNumber", to, err)
		}
	}
	if len(f.messages)+len(f.calls) != 0 {
		t.Errorf("requests sent, want none")
	}
}

func TestTimeout(t *testing.T) {
	f, c, store := setup(t)
	f.respond = func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return true
	}
	fo := &sms.Failover{Senders: []sms.NamedSender{{Name: "plivo", Sender: c}}, Budget: 200 * time.Millisecond}
	start := time.Now()
	err := fo.Send(t.Context(), sms.Message{To: testTo, Channel: sms.ChannelCall, Body: "x"})
	if took := time.Since(start); took > time.Second {
		t.Errorf("Send took %v, want about the 200ms budget", took)
	}
	if !errors.Is(err, sms.ErrUnavailable) {
		t.Errorf("Send = %v, want ErrUnavailable", err)
	}
	if n := store.Len(); n != 0 {
		t.Errorf("store holds %d answers after a timed-out call, want 0", n)
	}
}

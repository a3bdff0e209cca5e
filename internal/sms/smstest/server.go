package smstest

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/twostep-auth/twostep/internal/sms"
	"github.com/twostep-auth/twostep/internal/sms/twilio"
	"github.com/twostep-auth/twostep/internal/sms/webhook"
)

// The credentials a Server accepts.
const (
	AccountSID = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	AuthToken  = "smstest-auth-token"
	// WebhookSecret is long enough for TWOSTEP_WEBHOOK_SECRET (32 bytes or
	// more), so a twostep server can be pointed at a Server.
	WebhookSecret = "smstest-webhook-secret-0123456789abcdef"
	// WebhookPath is where a Server takes webhook posts.
	WebhookPath = "/webhook"
	// InvalidNumber is refused by a Server as an invalid number (Twilio's
	// test number for error 21211).
	InvalidNumber = "+15005550001"
)

// Behavior tells a Server how to answer.
type Behavior struct {
	// Status, when not zero, is the HTTP status of every answer, with the
	// dialect's error body; the message is not recorded.
	Status int
	// InvalidNumber makes a 4xx Status say the number is invalid (Twilio
	// error 21211; webhook {"error":"invalid_number"}).
	InvalidNumber bool
	// Delay holds each answer back, or until the client gives up.
	Delay time.Duration
}

// Server is a local SMS provider. It speaks two dialects:
//
//   - Twilio: POST /2010-04-01/Accounts/{AccountSID}/Messages.json and
//     Calls.json, form-encoded, with basic auth AccountSID:AuthToken,
//     answered with Twilio's 201 and error bodies. Point twilio.Client at
//     it with TwilioClient.
//   - webhook: POST WebhookPath, signed with WebhookSecret, as sent by
//     webhook.Client (WebhookClient).
//
// It records each message it accepts (with its code, read from the text's
// WebOTP line or from the spoken digits of a call) and can be told to fail
// or to be slow with SetBehavior. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's root, "http://127.0.0.1:port".
	URL string

	srv *httptest.Server
	rec Recorder

	mu       sync.Mutex
	behavior Behavior
	requests int
}

// NewServer starts a Server; Close stops it.
func NewServer() *Server {
	s := &Server{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/{resource}", s.twilio)
	mux.HandleFunc("POST "+WebhookPath, s.webhook)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close stops the server, ending requests held back by a Delay.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// TwilioClient returns a twilio.Client that sends to this server from
// from.
func (s *Server) TwilioClient(from string) *twilio.Client {
	return &twilio.Client{AccountSID: AccountSID, AuthToken: AuthToken, From: from, BaseURL: s.URL, HTTP: s.srv.Client()}
}

// WebhookClient returns a webhook.Client that posts to this server.
func (s *Server) WebhookClient() *webhook.Client {
	return &webhook.Client{URL: s.URL + WebhookPath, Secret: []byte(WebhookSecret), HTTP: s.srv.Client()}
}

// SetBehavior sets how later requests are answered; the zero Behavior
// accepts everything at once.
func (s *Server) SetBehavior(b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior = b
}

// Requests returns how many requests reached the server, failed ones
// included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Messages returns every accepted message, oldest first.
func (s *Server) Messages() []sms.Message { return s.rec.Messages() }

// Last returns the latest message accepted for to.
func (s *Server) Last(to string) (sms.Message, bool) { return s.rec.Last(to) }

// Count returns how many messages were accepted for to (all when empty).
func (s *Server) Count(to string) int { return s.rec.Count(to) }

// Wait blocks until n messages were accepted for to and returns the nth;
// see Recorder.Wait.
func (s *Server) Wait(ctx context.Context, to string, n int) (sms.Message, error) {
	return s.rec.Wait(ctx, to, n)
}

// begin counts a request and applies the behavior's delay; it reports
// false if the client went away meanwhile.
func (s *Server) begin(r *http.Request) (Behavior, bool) {
	s.mu.Lock()
	s.requests++
	b := s.behavior
	s.mu.Unlock()
	if b.Delay > 0 {
		t := time.NewTimer(b.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return b, false
		}
	}
	return b, true
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// twilio serves the Twilio dialect.
func (s *Server) twilio(w http.ResponseWriter, r *http.Request) {
	formErr := r.ParseForm() // read the body first: only then does r.Context() end when the client goes away
	b, ok := s.begin(r)
	if !ok {
		return
	}
	resource := r.PathValue("resource")
	if r.PathValue("sid") != AccountSID || (resource != "Messages.json" && resource != "Calls.json") {
		twilioError(w, 404, 20404, "The requested resource was not found")
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != AccountSID || pass != AuthToken {
		twilioError(w, 401, 20003, "Authenticate")
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		twilioError(w, 400, 20001, "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if formErr != nil {
		twilioError(w, 400, 20001, "Unreadable form")
		return
	}
	to := r.PostForm.Get("To")
	if b.Status != 0 {
		var code int
		switch {
		case b.InvalidNumber:
			code = 21211 // invalid 'To' number
		case b.Status == 401:
			code = 20003 // authenticate
		case b.Status == 429:
			code = 20429 // too many requests
		case b.Status >= 500:
			code = 20500 // internal server error
		default:
			code = 21606 // 'From' is not a valid number for this account
		}
		twilioError(w, b.Status, code, "smstest failure")
		return
	}
	if !e164.MatchString(to) || to == InvalidNumber {
		twilioError(w, 400, 21211, "The 'To' number "+to+" is not a valid phone number.")
		return
	}
	m := sms.Message{To: to, Channel: sms.ChannelSMS, Body: r.PostForm.Get("Body")}
	sid := "SM"
	if resource == "Calls.json" {
		var doc struct {
			Say []string `xml:"Say"`
		}
		if err := xml.Unmarshal([]byte(r.PostForm.Get("Twiml")), &doc); err != nil || r.PostForm.Get("From") == "" {
			twilioError(w, 400, 21205, "Calls need From and a TwiML document")
			return
		}
		m.Channel, m.Body, sid = sms.ChannelCall, strings.Join(doc.Say, " "), "CA"
	} else if r.PostForm.Get("Body") == "" || (r.PostForm.Get("From") == "" && r.PostForm.Get("MessagingServiceSid") == "") {
		twilioError(w, 400, 21602, "Message body and a sender are required")
		return
	}
	m.Code = codeIn(m.Channel, m.Body)
	s.rec.mu.Lock()
	s.rec.record(m)
	n := len(s.rec.msgs)
	s.rec.mu.Unlock()

	sid += fmt.Sprintf("%032x", n)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{
		"account_sid": AccountSID, "api_version": "2010-04-01", "sid": sid, "status": "queued",
		"to": to, "from": r.PostForm.Get("From"), "direction": "outbound-api",
		"uri": "/2010-04-01/Accounts/" + AccountSID + "/" + strings.TrimSuffix(resource, ".json") + "/" + sid + ".json",
	})
}

func twilioError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": message, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}

// webhook serves the webhook dialect.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	b, ok := s.begin(r)
	if !ok {
		return
	}
	if err != nil {
		http.Error(w, `{"error":"unreadable"}`, http.StatusBadRequest)
		return
	}
	if err := webhook.Verify([]byte(WebhookSecret), r.Header.Get(webhook.TimestampHeader), r.Header.Get(webhook.SignatureHeader), body, time.Now(), webhook.DefaultTolerance); err != nil {
		jsonError(w, http.StatusUnauthorized, "bad_signature")
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		jsonError(w, http.StatusBadRequest, "bad_request")
		return
	}
	switch {
	case b.Status != 0 && b.InvalidNumber:
		jsonError(w, b.Status, "invalid_number")
		return
	case b.Status != 0:
		jsonError(w, b.Status, "smstest_failure")
		return
	case !e164.MatchString(p.To) || p.To == InvalidNumber:
		jsonError(w, http.StatusBadRequest, "invalid_number")
		return
	}
	s.rec.mu.Lock()
	s.rec.record(sms.Message{To: p.To, Channel: p.Channel, Body: p.Body, Code: p.Code, Purpose: p.Purpose})
	s.rec.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func jsonError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code})
}

var (
	webOTPCode = regexp.MustCompile(`#([0-9]{4,10})\s*$`)
	sixDigits  = regexp.MustCompile(`\b[0-9]{6}\b`)
	spoken     = regexp.MustCompile(`\b([0-9])\.`)
)

// codeIn finds the code in a text (its WebOTP line, else six digits in a
// row) or in what a call says (the digits before "Again").
func codeIn(channel sms.Channel, body string) string {
	if channel == sms.ChannelCall {
		first, _, _ := strings.Cut(body, "Again")
		var code strings.Builder
		for _, m := range spoken.FindAllStringSubmatch(first, -1) {
			code.WriteString(m[1])
		}
		return code.String()
	}
	if m := webOTPCode.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return sixDigits.FindString(body)
}

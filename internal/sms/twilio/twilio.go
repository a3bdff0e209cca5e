// Package twilio sends texts through Twilio Programmable Messaging
// (Messages.json) and places calls through Twilio Voice (Calls.json with
// inline TwiML), each with one HTTPS request authenticated by the account
// SID and auth token.
package twilio

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/twostep-auth/twostep/internal/sms"
)

// DefaultBaseURL is Twilio's REST API root.
const DefaultBaseURL = "https://api.twilio.com"

// Client sends Messages through one Twilio account. Its fields must not
// change once it is in use; Send is safe for concurrent use.
type Client struct {
	// AccountSID ("AC…") and AuthToken authenticate every request (HTTP
	// basic auth).
	AccountSID string
	AuthToken  string
	// From is the sender of texts: an E.164 number, an alphanumeric sender
	// ID, or a Messaging Service SID ("MG" and 32 hex digits), which is
	// sent as MessagingServiceSid instead.
	From string
	// CallFrom is the caller ID of voice calls, an E.164 Twilio number;
	// empty means From. A Messaging Service cannot place calls.
	CallFrom string
	// BaseURL is the API root without a trailing slash; empty means
	// DefaultBaseURL.
	BaseURL string
	// HTTP sends the requests; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

// invalidNumber lists the Twilio error codes that mean the recipient cannot
// be reached at this number: 21211 invalid 'To' number, 21217 phone number
// does not appear to be valid, 21408 permission to send to this region not
// enabled, 21610 recipient has replied STOP, 21612 cannot route to this
// number, 21614 not a mobile number.
var invalidNumber = map[int]bool{21211: true, 21217: true, 21408: true, 21610: true, 21612: true, 21614: true}

// apiError is Twilio's error body:
// {"code":21211,"message":"…","more_info":"https://www.twilio.com/docs/errors/21211","status":400}.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// Send texts m.Body to m.To, or, for sms.ChannelCall, calls m.To and says
// m.Body. A number that is not E.164, a 4xx carrying one of the
// invalid-number codes above, is sms.ErrInvalidNumber; a timeout, a
// connection error, a 429 or a 5xx is sms.ErrUnavailable (so is a call
// when no caller ID is configured); any other 4xx (bad credentials, a bad
// sender) is sms.ErrRejected.
func (c *Client) Send(ctx context.Context, m sms.Message) error {
	if !sms.ValidNumber(m.To) {
		return fmt.Errorf("twilio: %w", sms.ErrInvalidNumber)
	}
	form := url.Values{"To": {m.To}}
	var resource string
	switch m.Channel {
	case "", sms.ChannelSMS:
		resource = "Messages.json"
		if isMessagingService(c.From) {
			form.Set("MessagingServiceSid", c.From)
		} else {
			form.Set("From", c.From)
		}
		form.Set("Body", m.Body)
	case sms.ChannelCall:
		resource = "Calls.json"
		from := cmp.Or(c.CallFrom, c.From)
		if from == "" || isMessagingService(from) {
			return fmt.Errorf("twilio: calls need a Twilio phone number as caller ID: %w", sms.ErrUnavailable)
		}
		form.Set("From", from)
		form.Set("Twiml", twiml(m.Body))
	default:
		return fmt.Errorf("twilio: unknown channel %q: %w", m.Channel, sms.ErrRejected)
	}
	return c.post(ctx, resource, form)
}

// post sends form to the account's resource and classifies the answer.
func (c *Client) post(ctx context.Context, resource string, form url.Values) error {
	base := cmp.Or(c.BaseURL, DefaultBaseURL)
	endpoint := strings.TrimSuffix(base, "/") + "/2010-04-01/Accounts/" + url.PathEscape(c.AccountSID) + "/" + resource
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("twilio: %s: build request: %w", resource, sms.ErrRejected)
	}
	req.SetBasicAuth(c.AccountSID, c.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	status, body, err := sms.Do(c.HTTP, req)
	if err != nil {
		return fmt.Errorf("twilio: %s: %w", resource, err)
	}
	if status >= 200 && status < 300 {
		// Twilio has taken the message or call (201 with its sid).
		return nil
	}
	var e apiError
	_ = json.Unmarshal(body, &e) // a body that is not Twilio's JSON leaves e zero
	desc := fmt.Sprintf("twilio: %s: status %d", resource, status)
	if e.Code != 0 {
		desc += fmt.Sprintf(", error %d (%s)", e.Code, sms.Redact(e.Message))
	}
	return sms.StatusError(desc, status, invalidNumber[e.Code])
}

// isMessagingService reports whether from is a Messaging Service SID:
// "MG" and 32 hex digits.
func isMessagingService(from string) bool {
	if len(from) != 34 || !strings.HasPrefix(from, "MG") {
		return false
	}
	return strings.Trim(strings.ToLower(from[2:]), "0123456789abcdef") == ""
}

// twiml returns the TwiML of a code call: a one-second pause, so the first
// words are not lost while the phone is raised, then text read by the
// "alice" voice. text is XML-escaped. SpeakCode's text already repeats the
// code, so it is said once.
func twiml(text string) string {
	var b bytes.Buffer
	b.WriteString(`<Response><Pause length="1"/><Say voice="alice">`)
	_ = xml.EscapeText(&b, []byte(text)) // writing to a bytes.Buffer cannot fail
	b.WriteString(`</Say></Response>`)
	return b.String()
}

// Package plivo sends texts through Plivo's Message API and places calls
// through its Call API, each with one HTTPS request authenticated by the
// auth ID and auth token. A call's words reach Plivo through an answer URL
// that twostep serves itself, once (AnswerStore, AnswerHandler).
package plivo

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

// DefaultBaseURL is Plivo's API root.
const DefaultBaseURL = "https://api.plivo.com"

// Client sends Messages through one Plivo account. Its fields must not
// change once it is in use; Send is safe for concurrent use.
type Client struct {
	// AuthID and AuthToken authenticate every request (HTTP basic auth).
	AuthID    string
	AuthToken string
	// From is the sender of texts: a Plivo number (E.164) or a sender ID.
	From string
	// CallFrom is the caller ID of calls, a Plivo number; empty means From.
	CallFrom string
	// BaseURL is the API root without a trailing slash; empty means
	// DefaultBaseURL.
	BaseURL string
	// PublicURL is twostep's public root ("https://auth.example.com"), which
	// Plivo must reach; a call's answer URL is PublicURL+AnswerPath+id.
	PublicURL string
	// Answers holds the answer XML until Plivo fetches it; AnswerHandler
	// must serve the same store. Calls need PublicURL and Answers.
	Answers *AnswerStore
	// HTTP sends the requests; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

// Send texts m.Body to m.To, or, for sms.ChannelCall, calls m.To and
// speaks m.Body. A number that is not E.164, or a 400 whose error names the
// destination, is sms.ErrInvalidNumber (Plivo gives no error codes, only
// text); a timeout, a connection error, a 429 or a 5xx is
// sms.ErrUnavailable (so is a call without PublicURL and Answers); any
// other 4xx is sms.ErrRejected.
func (c *Client) Send(ctx context.Context, m sms.Message) error {
	if !sms.ValidNumber(m.To) {
		return fmt.Errorf("plivo: %w", sms.ErrInvalidNumber)
	}
	dst := strings.TrimPrefix(m.To, "+")
	switch m.Channel {
	case "", sms.ChannelSMS:
		return c.post(ctx, "Message", map[string]string{
			"src":  strings.TrimPrefix(c.From, "+"),
			"dst":  dst,
			"text": m.Body,
		})
	case sms.ChannelCall:
		return c.call(ctx, dst, m.Body)
	default:
		return fmt.Errorf("plivo: unknown channel %q: %w", m.Channel, sms.ErrRejected)
	}
}

// call stores the answer XML, asks Plivo to place the call, and withdraws
// the answer if Plivo did not take the call.
func (c *Client) call(ctx context.Context, to, text string) error {
	if c.Answers == nil || c.PublicURL == "" {
		return fmt.Errorf("plivo: calls need PublicURL and an AnswerStore: %w", sms.ErrUnavailable)
	}
	from := cmp.Or(c.CallFrom, c.From)
	id, err := c.Answers.Put(answerXML(text))
	if err != nil {
		return fmt.Errorf("plivo: Call: %w: %w", sms.ErrUnavailable, err)
	}
	err = c.post(ctx, "Call", map[string]string{
		"from":          strings.TrimPrefix(from, "+"),
		"to":            to,
		"answer_url":    strings.TrimSuffix(c.PublicURL, "/") + AnswerPath + id,
		"answer_method": http.MethodGet,
	})
	if err != nil {
		c.Answers.Take(id)
	}
	return err
}

// answerXML is the Plivo XML a call answers with: a one-second wait, so
// the first words are not lost while the phone is raised, then text spoken
// once (SpeakCode's text already repeats the code).
func answerXML(text string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<Response><Wait length="1"/><Speak>`)
	_ = xml.EscapeText(&b, []byte(text)) // writing to a bytes.Buffer cannot fail
	b.WriteString(`</Speak></Response>`)
	return b.Bytes()
}

// post sends body as JSON to the account's resource ("Message" or "Call")
// and classifies the answer.
func (c *Client) post(ctx context.Context, resource string, body map[string]string) error {
	base := cmp.Or(c.BaseURL, DefaultBaseURL)
	endpoint := strings.TrimSuffix(base, "/") + "/v1/Account/" + url.PathEscape(c.AuthID) + "/" + resource + "/"
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("plivo: %s: encode: %w", resource, sms.ErrRejected)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("plivo: %s: build request: %w", resource, sms.ErrRejected)
	}
	req.SetBasicAuth(c.AuthID, c.AuthToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	status, raw, err := sms.Do(c.HTTP, req)
	if err != nil {
		return fmt.Errorf("plivo: %s: %w", resource, err)
	}
	var reply struct {
		Error         json.RawMessage `json:"error"`
		InvalidNumber []string        `json:"invalid_number"`
		MessageUUID   []string        `json:"message_uuid"`
	}
	_ = json.Unmarshal(raw, &reply) // a body that is not Plivo's JSON leaves reply zero
	desc := fmt.Sprintf("plivo: %s: status %d", resource, status)

	if status >= 200 && status < 300 {
		// A message to one invalid number can come back 202 with the
		// number under invalid_number and nothing queued.
		if resource == "Message" && len(reply.InvalidNumber) > 0 && len(reply.MessageUUID) == 0 {
			return fmt.Errorf("%s, destination listed as invalid: %w", desc, sms.ErrInvalidNumber)
		}
		return nil
	}
	text := errorText(reply.Error)
	if text != "" {
		desc += " (" + sms.Redact(text) + ")"
	}
	return sms.StatusError(desc, status, status == http.StatusBadRequest && aboutDestination(text))
}

// errorText turns Plivo's "error" member, usually a string and sometimes
// an object of field errors, into text.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// aboutDestination reports whether a 400's error text blames the number
// called or texted ("dst", "to"), not the sender or the account.
func aboutDestination(text string) bool {
	t := strings.ToLower(text)
	if strings.Contains(t, "src") || strings.Contains(t, "from") || strings.Contains(t, "sender") {
		return false
	}
	for _, s := range []string{"dst", "destination", "not a valid phone number", "invalid number", "'to'", `"to"`, "to number"} {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

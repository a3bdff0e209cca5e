// Package sms owns what twostep sends to a phone: the Message (a text or a
// voice call carrying a one-time code), the three errors every provider
// returns, the texts themselves (Text, SpeakCode), masking for logs, and
// Failover, which tries an ordered list of providers.
//
// Each provider lives in its own subpackage (twilio, plivo, vonage,
// webhook, console) as a plain HTTP client; smstest holds fakes for tests.
// Every error a provider returns wraps exactly one of ErrInvalidNumber,
// ErrUnavailable or ErrRejected, and never contains the code or a full
// phone number.
package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Channel says how a Message reaches the phone.
type Channel string

// The channels. An empty Channel means ChannelSMS.
const (
	ChannelSMS  Channel = "sms"
	ChannelCall Channel = "call"
)

// Message is one code to deliver.
//
// Body and Code are secret: Message implements slog.LogValuer, fmt.Stringer
// and fmt.GoStringer so that logging or printing a Message shows only the
// masked number, the channel and the purpose.
type Message struct {
	To      string  // E.164, "+14155552671"
	Channel Channel // ChannelSMS or ChannelCall
	Body    string  // the text of an SMS; what to say for a call
	Code    string  // the code inside Body (only the webhook provider sends it on its own)
	Purpose string  // login, enrolment, phone_verification or phone_signin
}

// LogValue shows the message without its body and code.
func (m Message) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("to", MaskPhone(m.To)),
		slog.String("channel", string(m.channel())),
		slog.String("purpose", m.Purpose),
	)
}

// String shows the message without its body and code.
func (m Message) String() string {
	return fmt.Sprintf("%s to %s (%s)", m.channel(), MaskPhone(m.To), m.Purpose)
}

// GoString shows the message without its body and code, for %#v.
func (m Message) GoString() string {
	return fmt.Sprintf("sms.Message{To:%q, Channel:%q, Purpose:%q}", MaskPhone(m.To), m.channel(), m.Purpose)
}

func (m Message) channel() Channel {
	if m.Channel == "" {
		return ChannelSMS
	}
	return m.Channel
}

// The errors providers return, wrapped with detail. Callers test them with
// errors.Is.
var (
	// ErrInvalidNumber means the provider says the number is invalid or
	// cannot be reached (Twilio 21211, for example). The caller answers
	// 400 invalid_phone; it is never retried on another provider.
	ErrInvalidNumber = errors.New("invalid phone number")
	// ErrUnavailable means the provider could not be reached or could not
	// take the message now: a timeout, a connection error, a 5xx or a 429.
	// The caller answers 503 sms_unavailable; Failover tries the next
	// provider.
	ErrUnavailable = errors.New("sms provider unavailable")
	// ErrRejected means the provider refused the request for a reason that
	// retrying will not fix: bad credentials, a bad sender number, a
	// suspended account. Someone must fix the configuration; the caller
	// answers 503 sms_unavailable and it is not retried.
	ErrRejected = errors.New("sms provider rejected the request")
)

// Sender delivers a Message. Its errors wrap ErrInvalidNumber,
// ErrUnavailable or ErrRejected.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// NamedSender is a Sender with the name Failover logs it under
// ("twilio", "plivo", …).
type NamedSender struct {
	Name   string
	Sender Sender
}

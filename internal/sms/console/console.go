// Package console is the development SMS provider: instead of sending, it
// writes each message to the log. It is the default provider so that
// twostep runs without an SMS account.
//
// It is for development only: it logs the message body, which holds the
// one-time code, and so breaks the rule that codes never reach a log.
// Never configure it in production.
package console

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twostep-auth/twostep/internal/sms"
)

// Sender logs messages instead of sending them. It is safe for concurrent
// use.
type Sender struct {
	// Logger receives one Info line per message; nil means slog.Default().
	Logger *slog.Logger
}

// Send logs m at Info as event "sms_console" with the number masked and,
// under key "message", the full body including the code. It refuses a
// number that is not E.164 with sms.ErrInvalidNumber, as real providers
// do, and otherwise never fails.
func (s *Sender) Send(ctx context.Context, m sms.Message) error {
	if !sms.ValidNumber(m.To) {
		return fmt.Errorf("console: %w", sms.ErrInvalidNumber)
	}
	channel := m.Channel
	if channel == "" {
		channel = sms.ChannelSMS
	}
	logger := s.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "sms not sent: development console provider",
		slog.String("event", "sms_console"),
		slog.String("to", sms.MaskPhone(m.To)),
		slog.String("channel", string(channel)),
		slog.String("purpose", m.Purpose),
		slog.String("message", m.Body),
	)
	return nil
}

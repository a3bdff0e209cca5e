package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultBudget is how long Failover.Send may take in all when
// Failover.Budget is zero.
const DefaultBudget = 10 * time.Second

// Failover sends through Senders in order: it moves to the next one only
// when a sender fails with ErrUnavailable, and returns the first success or
// the last error. An invalid number or a rejected request ends the attempt
// at once, since another provider would not fix either.
//
// The whole Send never takes longer than Budget: each attempt gets an
// equal share of what is left (and at most AttemptTimeout), so a provider
// that hangs leaves time for the ones after it, and one that fails fast
// hands its time on.
//
// A Failover with one sender is still useful: it bounds the send by the
// budget and turns stray errors into ErrUnavailable. With no senders, Send
// returns ErrUnavailable. The fields must not change while Send runs; Send
// is safe for concurrent use when the senders are.
type Failover struct {
	Senders []NamedSender
	// Logger receives one Warn line (event "sms_failover") for every
	// attempt Failover moves on from; the final error is returned, not
	// logged. Nil discards.
	Logger *slog.Logger
	// Budget bounds the whole Send; zero means DefaultBudget.
	Budget time.Duration
	// AttemptTimeout, when positive, caps a single attempt below its share
	// of the budget.
	AttemptTimeout time.Duration
}

// Send delivers m through the first sender that takes it. The error wraps
// ErrInvalidNumber, ErrUnavailable or ErrRejected; an error from a sender
// that wraps none of them, or the end of ctx, counts as ErrUnavailable.
func (f *Failover) Send(ctx context.Context, m Message) error {
	if len(f.Senders) == 0 {
		return fmt.Errorf("sms: no provider configured: %w", ErrUnavailable)
	}
	budget := f.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var err error
	for i, s := range f.Senders {
		if ctx.Err() != nil {
			return fmt.Errorf("sms: out of time after %d of %d providers: %w: %w", i, len(f.Senders), ErrUnavailable, ctx.Err())
		}
		share := time.Until(deadline) / time.Duration(len(f.Senders)-i)
		if f.AttemptTimeout > 0 && f.AttemptTimeout < share {
			share = f.AttemptTimeout
		}
		start := time.Now()
		err = f.attempt(ctx, share, s, m)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrUnavailable) || i == len(f.Senders)-1 {
			break
		}
		f.logger().LogAttrs(ctx, slog.LevelWarn, "sms provider unavailable, trying the next one",
			slog.String("event", "sms_failover"),
			slog.String("provider", s.Name),
			slog.String("next", f.Senders[i+1].Name),
			slog.Any("message", m),
			slog.Duration("duration", time.Since(start)),
			slog.String("err", err.Error()),
		)
	}
	return err
}

// attempt runs one sender with its own deadline and classifies what comes
// back.
func (f *Failover) attempt(ctx context.Context, timeout time.Duration, s NamedSender, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := s.Sender.Send(ctx, m)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalidNumber), errors.Is(err, ErrUnavailable), errors.Is(err, ErrRejected):
		return fmt.Errorf("sms via %s: %w", s.Name, err)
	default:
		return fmt.Errorf("sms via %s: %w: %w", s.Name, ErrUnavailable, err)
	}
}

func (f *Failover) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger
}

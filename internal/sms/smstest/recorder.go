// Package smstest holds fake SMS providers for tests: Recorder, an
// in-process sender that keeps every message, and Server, a local HTTP
// server that speaks Twilio's API and twostep's webhook format, records
// what it receives, and can be told to fail or to be slow.
//
// Both keep the codes they receive so that tests can complete a login;
// they are for tests only.
package smstest

import (
	"context"
	"fmt"
	"sync"

	"github.com/twostep-auth/twostep/internal/sms"
)

// Recorder is an sms.Sender that records every message it accepts. The
// zero value is ready to use, and it is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	msgs    []sms.Message
	err     error
	changed chan struct{} // closed and replaced whenever msgs grows
}

// Send records m and returns nil, or returns the error set with SetErr
// without recording anything. A number that is not E.164 is
// sms.ErrInvalidNumber, as with the real providers.
func (r *Recorder) Send(ctx context.Context, m sms.Message) error {
	if !sms.ValidNumber(m.To) {
		return fmt.Errorf("smstest: %w", sms.ErrInvalidNumber)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("smstest: %w: %w", sms.ErrUnavailable, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.record(m)
	return nil
}

// record appends m and wakes waiters; r.mu must be held.
func (r *Recorder) record(m sms.Message) {
	r.msgs = append(r.msgs, m)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// SetErr makes every later Send fail with err (which should wrap one of
// sms's errors) until SetErr(nil).
func (r *Recorder) SetErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// Messages returns a copy of every recorded message, oldest first.
func (r *Recorder) Messages() []sms.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sms.Message(nil), r.msgs...)
}

// Last returns the latest message sent to the number to.
func (r *Recorder) Last(to string) (sms.Message, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if r.msgs[i].To == to {
			return r.msgs[i], true
		}
	}
	return sms.Message{}, false
}

// Count returns how many messages were sent to to; an empty to counts all.
func (r *Recorder) Count(to string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.filter(to))
}

// Wait blocks until at least n messages were sent to to (any number when
// to is empty) and returns the nth, counting from 1; it returns ctx's
// error if ctx ends first.
func (r *Recorder) Wait(ctx context.Context, to string, n int) (sms.Message, error) {
	if n < 1 {
		return sms.Message{}, fmt.Errorf("smstest: Wait(%d): n counts from 1", n)
	}
	for {
		r.mu.Lock()
		if got := r.filter(to); len(got) >= n {
			r.mu.Unlock()
			return got[n-1], nil
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return sms.Message{}, fmt.Errorf("smstest: waiting for message %d to %s: %w", n, sms.MaskPhone(to), ctx.Err())
		}
	}
}

// Reset forgets every message and the error set with SetErr.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = nil
	r.err = nil
}

// filter returns the messages to to (all when to is empty); r.mu must be
// held.
func (r *Recorder) filter(to string) []sms.Message {
	if to == "" {
		return r.msgs
	}
	var out []sms.Message
	for _, m := range r.msgs {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

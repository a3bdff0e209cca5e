package sms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeSender answers with err after delay (or when its deadline passes),
// and notes each call and the time it was given.
type fakeSender struct {
	err   error
	delay time.Duration

	mu     sync.Mutex
	calls  int
	budget time.Duration
}

func (f *fakeSender) Send(ctx context.Context, m Message) error {
	dl, _ := ctx.Deadline()
	f.mu.Lock()
	f.calls++
	f.budget = time.Until(dl)
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return fmt.Errorf("fake: %w: %w", ErrUnavailable, ctx.Err())
		}
	}
	return f.err
}

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var msg = Message{To: "+14155552671", Body: "Your code is 987654", Code: "987654", Purpose: "login"}

func TestFailoverOrder(t *testing.T) {
	unavailable := fmt.Errorf("fake: 503: %w", ErrUnavailable)
	tests := []struct {
		name      string
		errs      []error
		want      error
		wantCalls []int
	}{
		{name: "first succeeds", errs: []error{nil, nil}, want: nil, wantCalls: []int{1, 0}},
		{name: "unavailable moves on", errs: []error{unavailable, nil}, want: nil, wantCalls: []int{1, 1}},
		{name: "invalid number stops", errs: []error{fmt.Errorf("fake: %w", ErrInvalidNumber), nil}, want: ErrInvalidNumber, wantCalls: []int{1, 0}},
		{name: "rejected stops", errs: []error{fmt.Errorf("fake: 401: %w", ErrRejected), nil}, want: ErrRejected, wantCalls: []int{1, 0}},
		{name: "stray error counts as unavailable", errs: []error{errors.New("boom"), nil}, want: nil, wantCalls: []int{1, 1}},
		{name: "all unavailable returns the last", errs: []error{unavailable, fmt.Errorf("second: %w", ErrUnavailable)}, want: ErrUnavailable, wantCalls: []int{1, 1}},
		{name: "unavailable then invalid", errs: []error{unavailable, fmt.Errorf("fake: %w", ErrInvalidNumber), nil}, want: ErrInvalidNumber, wantCalls: []int{1, 1, 0}},
		{name: "only stray error", errs: []error{errors.New("boom")}, want: ErrUnavailable, wantCalls: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Failover
			var fakes []*fakeSender
			for i, err := range tt.errs {
				fs := &fakeSender{err: err}
				fakes = append(fakes, fs)
				f.Senders = append(f.Senders, NamedSender{Name: fmt.Sprint("p", i), Sender: fs})
			}
			err := f.Send(t.Context(), msg)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
			var calls []int
			for _, fs := range fakes {
				calls = append(calls, fs.count())
			}
			if diff := cmp.Diff(tt.wantCalls, calls); diff != "" {
				t.Errorf("calls per sender (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailoverNoSenders(t *testing.T) {
	var f Failover
	if err := f.Send(t.Context(), msg); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Send = %v, want ErrUnavailable", err)
	}
}

func TestFailoverBudget(t *testing.T) {
	slow := &fakeSender{delay: time.Hour}
	fast := &fakeSender{}
	f := Failover{Senders: []NamedSender{{"slow", slow}, {"fast", fast}}, Budget: 400 * time.Millisecond}
	start := time.Now()
	if err := f.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send = %v, want nil from the second sender", err)
	}
	took := time.Since(start)
	if took < 150*time.Millisecond || took > 550*time.Millisecond {
		t.Errorf("Send took %v, want about half the 400ms budget", took)
	}
	if slow.budget > 200*time.Millisecond || slow.budget < 150*time.Millisecond {
		t.Errorf("first attempt had %v, want half of 400ms", slow.budget)
	}
	if fast.budget < 150*time.Millisecond || fast.budget > 250*time.Millisecond {
		t.Errorf("second attempt had %v, want what was left (about 200ms)", fast.budget)
	}

	// Every sender hangs: the whole Send still ends with the budget.
	f = Failover{Senders: []NamedSender{{"a", &fakeSender{delay: time.Hour}}, {"b", &fakeSender{delay: time.Hour}}, {"c", &fakeSender{delay: time.Hour}}}, Budget: 300 * time.Millisecond}
	start = time.Now()
	err := f.Send(t.Context(), msg)
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("Send took %v, want at most the 300ms budget", took)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Send = %v, want ErrUnavailable", err)
	}
}

func TestFailoverAttemptTimeout(t *testing.T) {
	first := &fakeSender{delay: time.Hour}
	f := Failover{Senders: []NamedSender{{"a", first}, {"b", &fakeSender{}}}, Budget: 10 * time.Second, AttemptTimeout: 100 * time.Millisecond}
	start := time.Now()
	if err := f.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Send took %v, want about the 100ms attempt timeout", took)
	}
	if first.budget > 100*time.Millisecond {
		t.Errorf("first attempt had %v, want at most 100ms", first.budget)
	}
}

func TestFailoverDefaultBudget(t *testing.T) {
	only := &fakeSender{}
	f := Failover{Senders: []NamedSender{{"only", only}}}
	if err := f.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if only.budget > DefaultBudget || only.budget < DefaultBudget-time.Second {
		t.Errorf("single sender had %v, want the whole %v", only.budget, DefaultBudget)
	}
}

func TestFailoverCancelled(t *testing.T) {
	second := &fakeSender{}
	f := Failover{Senders: []NamedSender{{"a", &fakeSender{err: fmt.Errorf("x: %w", ErrUnavailable)}}, {"b", second}}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.Send(ctx, msg); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want ErrUnavailable and context.Canceled", err)
	}
	if second.count() != 0 {
		t.Error("a cancelled Send went on to the next provider")
	}
}

func TestFailoverLogs(t *testing.T) {
	var buf bytes.Buffer
	f := Failover{
		Senders: []NamedSender{{"twilio", &fakeSender{err: fmt.Errorf("twilio: status 503: %w", ErrUnavailable)}}, {"plivo", &fakeSender{}}},
		Logger:  slog.New(slog.NewJSONHandler(&buf, nil)),
	}
	if err := f.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"event":"sms_failover"`, `"provider":"twilio"`, `"next":"plivo"`, `+1******2671`, `status 503`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %s lacks %s", out, want)
		}
	}
	if strings.Contains(out, "987654") || strings.Contains(out, "4155552671") {
		t.Errorf("log %s shows the code or the full number", out)
	}
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("%d log lines, want 1 (the failed attempt only)", n)
	}
}

func TestFailoverConcurrent(t *testing.T) {
	f := Failover{Senders: []NamedSender{{"a", &fakeSender{err: fmt.Errorf("x: %w", ErrUnavailable)}}, {"b", &fakeSender{}}}}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := f.Send(context.Background(), msg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

package smstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/sms"
)

const to = "+14155552671"

func TestRecorder(t *testing.T) {
	var r Recorder
	if _, ok := r.Last(to); ok {
		t.Error("Last on an empty recorder = true")
	}
	m := sms.Message{To: to, Body: "b", Code: "123456", Purpose: "login"}
	if err := r.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Last(to); !ok || got != m {
		t.Errorf("Last = %v, %v, want %v", got, ok, m)
	}
	if err := r.Send(t.Context(), sms.Message{To: "4155552671"}); !errors.Is(err, sms.ErrInvalidNumber) {
		t.Errorf("Send(non-E.164) = %v, want ErrInvalidNumber", err)
	}
	fail := fmt.Errorf("down: %w", sms.ErrUnavailable)
	r.SetErr(fail)
	if err := r.Send(t.Context(), m); !errors.Is(err, sms.ErrUnavailable) {
		t.Errorf("Send after SetErr = %v, want it", err)
	}
	if n := r.Count(""); n != 1 {
		t.Errorf("Count = %d, want 1 (failed sends are not recorded)", n)
	}
	r.Reset()
	if n := r.Count(""); n != 0 {
		t.Errorf("Count after Reset = %d", n)
	}
}

func TestRecorderWaitConcurrent(t *testing.T) {
	var r Recorder
	got := make(chan sms.Message, 1)
	go func() {
		m, err := r.Wait(t.Context(), to, 20)
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			r.Send(context.Background(), sms.Message{To: to, Code: fmt.Sprint(i)})
			r.Send(context.Background(), sms.Message{To: "+442071838750", Code: "x"})
		})
	}
	wg.Wait()
	select {
	case m := <-got:
		if m.To != to {
			t.Errorf("Wait = %v, want a message to %s", m, to)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after 20 messages")
	}
	if n := r.Count(to); n != 20 {
		t.Errorf("Count = %d, want 20", n)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Wait(ctx, to, 21); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait for a message never sent = %v, want DeadlineExceeded", err)
	}
}

func TestServerTwilio(t *testing.T) {
	s := NewServer()
	defer s.Close()
	c := s.TwilioClient("+15005550006")
	body := sms.Text("", "twostep", "123456", "auth.example.com")
	if err := c.Send(t.Context(), sms.Message{To: to, Body: body, Code: "123456"}); err != nil {
		t.Fatalf("Send(sms) = %v", err)
	}
	if err := c.Send(t.Context(), sms.Message{To: to, Channel: sms.ChannelCall, Body: sms.SpeakCode("twostep", "654321"), Code: "654321"}); err != nil {
		t.Fatalf("Send(call) = %v", err)
	}
	got := s.Messages()
	want := []sms.Message{
		{To: to, Channel: sms.ChannelSMS, Body: body, Code: "123456"},
		{To: to, Channel: sms.ChannelCall, Body: sms.SpeakCode("twostep", "654321"), Code: "654321"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if err := c.Send(t.Context(), sms.Message{To: InvalidNumber, Body: "x"}); !errors.Is(err, sms.ErrInvalidNumber) {
		t.Errorf("Send(InvalidNumber) = %v, want ErrInvalidNumber", err)
	}
	c.AuthToken = "wrong"
	if err := c.Send(t.Context(), sms.Message{To: to, Body: "x"}); !errors.Is(err, sms.ErrRejected) {
		t.Errorf("Send(wrong token) = %v, want ErrRejected", err)
	}
	if n := s.Count(""); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}

func TestServerWebhook(t *testing.T) {
	s := NewServer()
	defer s.Close()
	m := sms.Message{To: to, Channel: sms.ChannelSMS, Body: "Your code is 123456", Code: "123456", Purpose: "phone_signin"}
	if err := s.WebhookClient().Send(t.Context(), m); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if got, ok := s.Last(to); !ok || got != m {
		t.Errorf("Last = %v, %v, want %v", got, ok, m)
	}
	bad := s.WebhookClient()
	bad.Secret = []byte("wrong")
	if err := bad.Send(t.Context(), m); !errors.Is(err, sms.ErrRejected) {
		t.Errorf("Send(wrong secret) = %v, want ErrRejected", err)
	}
}

func TestServerBehavior(t *testing.T) {
	s := NewServer()
	defer s.Close()
	tests := []struct {
		b    Behavior
		want error
	}{
		{Behavior{Status: 400, InvalidNumber: true}, sms.ErrInvalidNumber},
		{Behavior{Status: 401}, sms.ErrRejected},
		{Behavior{Status: 400}, sms.ErrRejected},
		{Behavior{Status: 429}, sms.ErrUnavailable},
		{Behavior{Status: 500}, sms.ErrUnavailable},
		{Behavior{Status: 503}, sms.ErrUnavailable},
	}
	for _, tt := range tests {
		s.SetBehavior(tt.b)
		for name, c := range map[string]sms.Sender{"twilio": s.TwilioClient("+15005550006"), "webhook": s.WebhookClient()} {
			if err := c.Send(t.Context(), sms.Message{To: to, Body: "x"}); !errors.Is(err, tt.want) {
				t.Errorf("%s with %+v: Send = %v, want %v", name, tt.b, err, tt.want)
			}
		}
	}
	if n := s.Count(""); n != 0 {
		t.Errorf("%d messages recorded while failing, want 0", n)
	}
	if n := s.Requests(); n != 2*len(tests) {
		t.Errorf("Requests = %d, want %d", n, 2*len(tests))
	}
}

// TestFailover runs Failover over real clients and servers: a slow or
// failing provider hands over to the next, an invalid number does not.
func TestFailover(t *testing.T) {
	first, second := NewServer(), NewServer()
	defer first.Close()
	defer second.Close()
	fo := &sms.Failover{
		Senders: []sms.NamedSender{
			{Name: "twilio", Sender: first.TwilioClient("+15005550006")},
			{Name: "webhook", Sender: second.WebhookClient()},
		},
		Budget: time.Second,
	}
	m := sms.Message{To: to, Body: sms.Text("", "twostep", "123456", "a.example"), Code: "123456", Purpose: "login"}

	first.SetBehavior(Behavior{Delay: 10 * time.Second})
	start := time.Now()
	if err := fo.Send(t.Context(), m); err != nil {
		t.Fatalf("Send with a hanging first provider = %v, want nil", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Send took %v, want under the 1s budget", took)
	}
	if got, ok := second.Last(to); !ok || got.Code != "123456" {
		t.Errorf("second provider got %v, %v", got, ok)
	}

	first.SetBehavior(Behavior{Status: 503})
	if err := fo.Send(t.Context(), m); err != nil {
		t.Fatalf("Send with a 503 first provider = %v, want nil", err)
	}
	if n := second.Count(to); n != 2 {
		t.Errorf("second provider has %d messages, want 2", n)
	}

	first.SetBehavior(Behavior{Status: 400, InvalidNumber: true})
	if err := fo.Send(t.Context(), m); !errors.Is(err, sms.ErrInvalidNumber) {
		t.Fatalf("Send with an invalid number = %v, want ErrInvalidNumber", err)
	}
	if n := second.Count(to); n != 2 {
		t.Errorf("second provider has %d messages after an invalid number, want still 2", n)
	}

	first.SetBehavior(Behavior{Status: 401})
	if err := fo.Send(t.Context(), m); !errors.Is(err, sms.ErrRejected) {
		t.Fatalf("Send with bad credentials = %v, want ErrRejected", err)
	}
	if n := second.Count(to); n != 2 {
		t.Errorf("second provider has %d messages after a rejection, want still 2", n)
	}

	first.SetBehavior(Behavior{Status: 500})
	second.SetBehavior(Behavior{Status: 502})
	if err := fo.Send(t.Context(), m); !errors.Is(err, sms.ErrUnavailable) {
		t.Fatalf("Send with both down = %v, want ErrUnavailable", err)
	}
}

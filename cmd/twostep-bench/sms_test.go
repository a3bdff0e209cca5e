package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestSMSPool(n int, spacing time.Duration, readyAt time.Time) *smsPool {
	p := &smsPool{spacing: spacing}
	for i := range n {
		p.users = append(p.users, &smsUser{phone: fmt.Sprintf("+1555000%04d", i), readyAt: readyAt})
	}
	return p
}

func TestSMSPoolRoundRobinAndCooldown(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const spacing = time.Second
	p := newTestSMSPool(3, spacing, t0)

	if _, ok := p.take(t0.Add(-time.Millisecond)); ok {
		t.Fatalf("take before any phone is ready: got a user, want none")
	}
	// Round-robin: 0, 1, 2, each once; busy users are not handed out again.
	var got []*smsUser
	for range 3 {
		u, ok := p.take(t0)
		if !ok {
			t.Fatalf("take %d: pool ran out, want a user", len(got))
		}
		got = append(got, u)
	}
	for i, u := range got {
		if u != p.users[i] {
			t.Errorf("take %d = %s, want %s (round-robin)", i, u.phone, p.users[i].phone)
		}
	}
	if u, ok := p.take(t0); ok {
		t.Fatalf("take with every user busy = %s, want none", u.phone)
	}

	// User 0 was texted (answer at t0+50ms), user 1 failed before any text, user 2 texted later.
	p.release(got[0], t0.Add(50*time.Millisecond))
	p.release(got[1], time.Time{})
	p.release(got[2], t0.Add(300*time.Millisecond))

	// Only user 1 is free at once; the cursor is back at user 0, which is resting.
	if u, ok := p.take(t0.Add(100 * time.Millisecond)); !ok || u != got[1] {
		t.Fatalf("take after release = %v, %v, want the user that was not texted", u, ok)
	}
	if u, ok := p.take(t0.Add(100 * time.Millisecond)); ok {
		t.Fatalf("take with the others resting = %s, want none", u.phone)
	}
	// Resting ends exactly spacing after the answer, not before.
	if u, ok := p.take(t0.Add(50*time.Millisecond + spacing - time.Nanosecond)); ok {
		t.Fatalf("take a nanosecond before the rest ends = %s, want none", u.phone)
	}
	if u, ok := p.take(t0.Add(50*time.Millisecond + spacing)); !ok || u != got[0] {
		t.Fatalf("take when the rest ends = %v, %v, want user 0", u, ok)
	}
	// A release without a text never shortens a rest.
	p.release(got[0], time.Time{})
	if !got[0].readyAt.Equal(t0.Add(50*time.Millisecond + spacing)) {
		t.Errorf("readyAt after a release without a text = %v, want unchanged", got[0].readyAt)
	}
	if want := t0.Add(300*time.Millisecond + spacing); !p.allReadyAt().Equal(want) {
		t.Errorf("allReadyAt = %v, want %v", p.allReadyAt(), want)
	}
}

// TestSMSPoolNoPhoneReusedWithinCooldown simulates clients on a virtual clock: each takes a user,
// the server charges the phone's cooldown some time later and answers later still, and the client
// releases the user with the answer's time. No phone may be charged twice within the cooldown,
// and a pool large enough for the rate must never run out.
func TestSMSPoolNoPhoneReusedWithinCooldown(t *testing.T) {
	const (
		cooldown = time.Second
		clients  = 8
	)
	for _, tc := range []struct {
		users      int
		opTime     time.Duration // from take to the answer of authorize
		wantRunOut bool
	}{
		// 8 clients, an op every 10ms each: 800/s; phones rest 1.1s, so 880 in rest plus 8 busy.
		{users: 1000, opTime: 10 * time.Millisecond},
		{users: 400, opTime: 10 * time.Millisecond, wantRunOut: true},
	} {
		t.Run(fmt.Sprint(tc.users), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.users)))
			start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			p := newTestSMSPool(tc.users, cooldown+smsSpacingMargin, start)
			charged := map[string]time.Time{} // phone → the server's last charge
			now := make([]time.Time, clients)
			for i := range now {
				now[i] = start
			}
			ranOut := false
			for range 20000 {
				// The client whose clock is earliest goes next.
				c := 0
				for i := range now {
					if now[i].Before(now[c]) {
						c = i
					}
				}
				u, ok := p.take(now[c])
				if !ok {
					ranOut = true
					break
				}
				// The server charges the cooldown somewhere between take and answer.
				charge := now[c].Add(time.Duration(rng.Int64N(int64(tc.opTime))))
				answer := now[c].Add(tc.opTime)
				if last, ok := charged[u.phone]; ok && charge.Sub(last) < cooldown {
					t.Fatalf("phone %s charged at %v, only %v after the last charge (cooldown %v)",
						u.phone, charge.Sub(start), charge.Sub(last), cooldown)
				}
				charged[u.phone] = charge
				p.release(u, answer)
				now[c] = answer.Add(time.Duration(rng.Int64N(int64(time.Millisecond))))
			}
			if ranOut != tc.wantRunOut {
				t.Errorf("pool ran out = %v, want %v", ranOut, tc.wantRunOut)
			}
		})
	}
}

// TestSMSPoolConcurrent hands users to goroutines on the real clock, under -race: a user is
// never held by two clients at once, and no phone is texted twice within the cooldown.
func TestSMSPoolConcurrent(t *testing.T) {
	const cooldown = 20 * time.Millisecond
	p := newTestSMSPool(40, cooldown+smsSpacingMargin, time.Now())
	var (
		mu       sync.Mutex
		held     = map[*smsUser]bool{}
		lastText = map[*smsUser]time.Time{}
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(300 * time.Millisecond)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				u, ok := p.take(time.Now())
				if !ok {
					time.Sleep(time.Millisecond) // a test of the pool, not of stopping early
					continue
				}
				mu.Lock()
				if held[u] {
					t.Errorf("%s handed to two clients at once", u.phone)
				}
				held[u] = true
				sent := time.Now()
				if last, ok := lastText[u]; ok && sent.Sub(last) < cooldown {
					t.Errorf("%s texted %v after its last text, within the cooldown %v", u.phone, sent.Sub(last), cooldown)
				}
				lastText[u] = sent
				u.texts++ // only the holder touches it
				held[u] = false
				mu.Unlock()
				p.release(u, time.Now())
			}
		})
	}
	wg.Wait()
}

func TestSMSServerEnv(t *testing.T) {
	lookup := envLookup(smsServerEnv("http://127.0.0.1:9"), func(string) string { return "" })
	for k, want := range map[string]string{
		"TWOSTEP_SMS_PROVIDER":        "twilio",
		"TWOSTEP_TWILIO_BASE_URL":     "http://127.0.0.1:9",
		"TWOSTEP_TWILIO_FROM":         "+15005550006",
		"TWOSTEP_SMS_RESEND_COOLDOWN": "1s",
		"TWOSTEP_SMS_HOURLY_LIMIT":    smsHighLimit,
		"TWOSTEP_SMS_DAILY_LIMIT":     smsHighLimit,
	} {
		if got := lookup(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if sid := lookup("TWOSTEP_TWILIO_ACCOUNT_SID"); len(sid) != 34 || !strings.HasPrefix(sid, "AC") {
		t.Errorf("TWOSTEP_TWILIO_ACCOUNT_SID = %q, want AC and 32 characters", sid)
	}
	if d, err := serverCooldown(lookup); err != nil || d != time.Second {
		t.Errorf("serverCooldown = %v, %v, want 1s", d, err)
	}
	if d, err := serverCooldown(func(string) string { return "" }); err != nil || d != 30*time.Second {
		t.Errorf("serverCooldown unset = %v, %v, want the server default 30s", d, err)
	}

	b := &bench{runID: "ffffffff"}
	seen := map[string]bool{}
	for i := range 1000 {
		ph := b.smsPhone(i)
		if len(ph) != 12 || !strings.HasPrefix(ph, "+1555") || seen[ph] {
			t.Fatalf("smsPhone(%d) = %q: want a distinct +1555 and seven digits", i, ph)
		}
		seen[ph] = true
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks; the name holds a space and a ')'.
	stat := "4242 (two step) R) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 9 0 123456 1000000 5000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat), 100)
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v, want 3s", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2"), 100); err == nil {
		t.Errorf("parseStatCPU of a short line: no error")
	}
	// This process's own line parses.
	if runtime.GOOS != "linux" {
		return
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Errorf("cpuTime(self): %v", err)
	}
}

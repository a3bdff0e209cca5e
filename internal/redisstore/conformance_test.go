package redisstore_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/redisstore"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
)

// counterStore mirrors auth's unexported counterStore: what every back end
// for auth's counters must provide.
type counterStore interface {
	ReserveAttempt(ctx context.Context, key string, now time.Time, policy auth.AttemptPolicy) (time.Duration, error)
	ResetAttempts(ctx context.Context, key string) error
	AttemptState(ctx context.Context, key string) (auth.AttemptState, error)
	HitWindow(ctx context.Context, key string, window time.Time) (int64, error)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestCounterConformance proves that the Redis and SQL back ends of auth's
// counters behave the same.
func TestCounterConformance(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		client := testClient(t)
		runCounterConformance(t, func(t *testing.T) counterStore { return newTestStore(t, client, redisstore.Options{}) })
	})
	t.Run("sqlite", func(t *testing.T) {
		runCounterConformance(t, func(t *testing.T) counterStore { return sqltest.Open(t, sqlstore.EngineSQLite) })
	})
	t.Run("postgres", func(t *testing.T) {
		// An extra cross-check only: sqlstore's own suite is the one that
		// requires PostgreSQL under TWOSTEP_TEST_REQUIRE_ALL.
		if os.Getenv(sqltest.PostgresURLEnv) == "" {
			t.Skipf("%s is not set", sqltest.PostgresURLEnv)
		}
		runCounterConformance(t, func(t *testing.T) counterStore { return sqltest.Open(t, sqlstore.EnginePostgres) })
	})
}

// runCounterConformance runs the counter behaviour tests, each against a
// fresh, empty store from newStore.
func runCounterConformance(t *testing.T, newStore func(t *testing.T) counterStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s counterStore)
	}{
		{"StateReadBack", testStateReadBack},
		{"PolicyWaitAndReset", testPolicyWaitAndReset},
		{"PolicySeesStoredState", testPolicySeesStoredState},
		{"ResetAttempts", testResetAttempts},
		{"Windows", testWindows},
		{"ReserveConcurrent", testReserveConcurrent},
		{"HitWindowConcurrent", testHitWindowConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// allowFive lets five attempts through, then asks to wait a minute after
// the last one; once that has passed it resets the counter.
func allowFive(s auth.AttemptState, now time.Time) (time.Duration, bool) {
	if s.Failures < 5 {
		return 0, false
	}
	if wait := s.LastAt.Add(time.Minute).Sub(now); wait > 0 {
		return wait, false
	}
	return 0, true
}

func wantState(t *testing.T, s counterStore, key string, want auth.AttemptState) {
	t.Helper()
	got, err := s.AttemptState(t.Context(), key)
	if err != nil {
		t.Fatalf("AttemptState(%s) = %v", key, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AttemptState(%s) (-want +got):\n%s", key, diff)
	}
}

func testStateReadBack(t *testing.T, s counterStore) {
	ctx := t.Context()
	wantState(t, s, "login:u1", auth.AttemptState{})

	// Stored in UTC at microsecond precision, whatever the caller's zone.
	now := t0.In(time.FixedZone("X", 5*3600)).Add(1234567 * time.Nanosecond)
	if wait, err := s.ReserveAttempt(ctx, "login:u1", now, allowFive); wait != 0 || err != nil {
		t.Fatalf("ReserveAttempt = %v, %v; want 0, nil", wait, err)
	}
	wantState(t, s, "login:u1", auth.AttemptState{Failures: 1, LastAt: t0.Add(1234 * time.Microsecond)})
	got, err := s.AttemptState(ctx, "login:u1")
	if err != nil {
		t.Fatal(err)
	}
	if got.LastAt.Location() != time.UTC {
		t.Errorf("AttemptState(login:u1).LastAt in %v, want UTC", got.LastAt.Location())
	}
	wantState(t, s, "login:u2", auth.AttemptState{})
}

func testPolicyWaitAndReset(t *testing.T, s counterStore) {
	ctx := t.Context()
	now := t0
	for i := range 5 {
		now = now.Add(time.Second)
		if wait, err := s.ReserveAttempt(ctx, "login:u1", now, allowFive); wait != 0 || err != nil {
			t.Fatalf("ReserveAttempt #%d = %v, %v; want 0, nil", i+1, wait, err)
		}
	}
	wantState(t, s, "login:u1", auth.AttemptState{Failures: 5, LastAt: now})

	wait, err := s.ReserveAttempt(ctx, "login:u1", now.Add(10*time.Second), allowFive)
	if wait != 50*time.Second || err != nil {
		t.Errorf("ReserveAttempt(sixth) = %v, %v; want 50s, nil", wait, err)
	}
	wantState(t, s, "login:u1", auth.AttemptState{Failures: 5, LastAt: now}) // a refused attempt changes nothing

	later := now.Add(time.Minute)
	if wait, err := s.ReserveAttempt(ctx, "login:u1", later, allowFive); wait != 0 || err != nil {
		t.Errorf("ReserveAttempt(after the wait) = %v, %v; want 0, nil", wait, err)
	}
	wantState(t, s, "login:u1", auth.AttemptState{Failures: 1, LastAt: later}) // reset, then counted

	// A reset on a counter that does not exist yet counts one.
	alwaysReset := func(auth.AttemptState, time.Time) (time.Duration, bool) { return 0, true }
	for range 3 {
		if wait, err := s.ReserveAttempt(ctx, "2fa:user:u3", t0, alwaysReset); wait != 0 || err != nil {
			t.Fatalf("ReserveAttempt(alwaysReset) = %v, %v; want 0, nil", wait, err)
		}
		wantState(t, s, "2fa:user:u3", auth.AttemptState{Failures: 1, LastAt: t0})
	}

	// A refused first attempt leaves no counter behind that reads as one.
	refuse := func(auth.AttemptState, time.Time) (time.Duration, bool) { return time.Hour, false }
	if wait, err := s.ReserveAttempt(ctx, "login:u4", t0, refuse); wait != time.Hour || err != nil {
		t.Errorf("ReserveAttempt(refuse) = %v, %v; want 1h, nil", wait, err)
	}
	wantState(t, s, "login:u4", auth.AttemptState{})

	// A negative wait is no wait.
	negative := func(auth.AttemptState, time.Time) (time.Duration, bool) { return -time.Second, false }
	if wait, err := s.ReserveAttempt(ctx, "login:u4", t0, negative); wait != 0 || err != nil {
		t.Errorf("ReserveAttempt(negative wait) = %v, %v; want 0, nil", wait, err)
	}
	wantState(t, s, "login:u4", auth.AttemptState{Failures: 1, LastAt: t0})
}

func testPolicySeesStoredState(t *testing.T, s counterStore) {
	ctx := t.Context()
	var seen []auth.AttemptState
	spy := func(st auth.AttemptState, now time.Time) (time.Duration, bool) {
		seen = append(seen, st)
		return 0, false
	}
	for i := range 3 {
		if _, err := s.ReserveAttempt(ctx, "k", t0.Add(time.Duration(i)*time.Second), spy); err != nil {
			t.Fatal(err)
		}
	}
	want := []auth.AttemptState{
		{},
		{Failures: 1, LastAt: t0},
		{Failures: 2, LastAt: t0.Add(time.Second)},
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("policy saw (-want +got):\n%s", diff)
	}
}

func testResetAttempts(t *testing.T, s counterStore) {
	ctx := t.Context()
	for _, key := range []string{"login:u1", "login:u2"} {
		for range 3 {
			if _, err := s.ReserveAttempt(ctx, key, t0, allowFive); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.ResetAttempts(ctx, "login:u1"); err != nil {
		t.Fatalf("ResetAttempts(login:u1) = %v", err)
	}
	wantState(t, s, "login:u1", auth.AttemptState{})
	wantState(t, s, "login:u2", auth.AttemptState{Failures: 3, LastAt: t0})
	if err := s.ResetAttempts(ctx, "never"); err != nil {
		t.Errorf("ResetAttempts(never) = %v, want nil", err)
	}
	// Counting starts again from zero.
	if wait, err := s.ReserveAttempt(ctx, "login:u1", t0.Add(time.Second), allowFive); wait != 0 || err != nil {
		t.Fatalf("ReserveAttempt(after reset) = %v, %v; want 0, nil", wait, err)
	}
	wantState(t, s, "login:u1", auth.AttemptState{Failures: 1, LastAt: t0.Add(time.Second)})
}

func testWindows(t *testing.T, s counterStore) {
	ctx := t.Context()
	w1, w2 := t0, t0.Add(time.Minute)
	hits := []struct {
		key    string
		window time.Time
		want   int64
	}{
		{"login:ip:a", w1, 1}, {"login:ip:a", w1, 2}, {"login:ip:b", w1, 1},
		{"login:ip:a", w2, 1}, {"login:ip:a", w1, 3},
		// Keys that share a prefix or hold separators stay apart.
		{"login:ip:a:1", w1, 1}, {"login:ip:a", w2, 2}, {"sms:ip:a", w1, 1},
	}
	for _, h := range hits {
		if n, err := s.HitWindow(ctx, h.key, h.window); n != h.want || err != nil {
			t.Errorf("HitWindow(%s, %v) = %d, %v; want %d, nil", h.key, h.window, n, err, h.want)
		}
	}
	// Windows and attempt counters are separate even under one key.
	wantState(t, s, "login:ip:a", auth.AttemptState{})
}

func testReserveConcurrent(t *testing.T, s counterStore) {
	const n = 50
	allowed := reserveConcurrently(t, n, func(int) counterStore { return s })
	if allowed != 5 {
		t.Errorf("%d concurrent ReserveAttempt let %d through, want 5", n, allowed)
	}
	wantState(t, s, "2fa:user:race", auth.AttemptState{Failures: 5, LastAt: t0})
}

// reserveConcurrently makes n attempts at once under allowFive, the i-th
// through store(i), and returns how many were let through. Any error, or a
// refusal other than allowFive's full minute, fails the test.
func reserveConcurrently(t *testing.T, n int, store func(i int) counterStore) int {
	t.Helper()
	ctx := t.Context()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			wait, err := store(i).ReserveAttempt(ctx, "2fa:user:race", t0, allowFive)
			switch {
			case err != nil:
				t.Errorf("ReserveAttempt = %v", err)
			case wait == 0:
				allowed.Add(1)
			case wait != time.Minute:
				t.Errorf("ReserveAttempt wait = %v, want 0 or 1m", wait)
			}
		})
	}
	wg.Wait()
	return int(allowed.Load())
}

func testHitWindowConcurrent(t *testing.T, s counterStore) {
	const n = 50
	counts := hitConcurrently(t, n, func(int) counterStore { return s })
	for i := range n {
		if !counts[int64(i+1)] {
			t.Errorf("%d concurrent HitWindow: no caller got count %d; every count 1..%d should be handed out once", n, i+1, n)
		}
	}
}

// hitConcurrently hits one window n times at once, the i-th hit through
// store(i), and returns the set of counts handed out, failing on any error
// or count handed out twice.
func hitConcurrently(t *testing.T, n int, store func(i int) counterStore) map[int64]bool {
	t.Helper()
	ctx := t.Context()
	var mu sync.Mutex
	counts := make(map[int64]bool)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := store(i).HitWindow(ctx, "login:ip:race", t0)
			if err != nil {
				t.Errorf("HitWindow = %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if counts[got] {
				t.Errorf("HitWindow count %d handed out twice", got)
			}
			counts[got] = true
		})
	}
	wg.Wait()
	return counts
}

package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/redisstore"
)

// Environment variables the tests read.
const (
	redisURLEnv   = "TWOSTEP_TEST_REDIS_URL"
	requireAllEnv = "TWOSTEP_TEST_REQUIRE_ALL"
)

// testClient connects to the Redis named by TWOSTEP_TEST_REDIS_URL with a
// client of its own (its own connection pool), closed when the test ends.
// Without the variable the test is skipped, or failed when
// TWOSTEP_TEST_REQUIRE_ALL=1.
func testClient(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv(redisURLEnv)
	if url == "" {
		if os.Getenv(requireAllEnv) == "1" {
			t.Fatalf("%s is not set and %s=1", redisURLEnv, requireAllEnv)
		}
		t.Skipf("%s is not set", redisURLEnv)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", redisURLEnv, err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() {
		if err := client.Close(); err != nil {
			t.Errorf("close redis client: %v", err)
		}
	})
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("ping %s: %v", redisURLEnv, err)
	}
	return client
}

// testPrefix returns a random key prefix for one test and deletes every key
// under it through client when the test ends.
func testPrefix(t *testing.T, client redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random prefix: %v", err)
	}
	prefix := "twostep-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		// Background, not t.Context: that is cancelled before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := keysUnder(ctx, client, prefix)
		if err != nil {
			t.Errorf("list test keys: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := client.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("delete test keys: %v", err)
			}
		}
	})
	return prefix
}

// keysUnder lists the keys under prefix (which holds no glob characters).
func keysUnder(ctx context.Context, client redis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// onlyKey returns the single key under prefix.
func onlyKey(t *testing.T, client redis.UniversalClient, prefix string) string {
	t.Helper()
	keys, err := keysUnder(t.Context(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("keys under %s = %q, want exactly one", prefix, keys)
	}
	return keys[0]
}

// newTestStore returns a Store over client with a fresh prefix of its own.
func newTestStore(t *testing.T, client redis.UniversalClient, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	return redisstore.New(client, testPrefix(t, client), opts)
}

// TestTwoInstances runs two Stores over two clients, as two twostep
// instances would, against one Redis and prefix: their limits add up.
func TestTwoInstances(t *testing.T) {
	c1, c2 := testClient(t), testClient(t)
	prefix := testPrefix(t, c1)
	stores := []counterStore{
		redisstore.New(c1, prefix, redisstore.Options{}),
		redisstore.New(c2, prefix, redisstore.Options{}),
	}
	through := func(i int) counterStore { return stores[i%2] }

	const n = 50
	if allowed := reserveConcurrently(t, n, through); allowed != 5 {
		t.Errorf("%d concurrent ReserveAttempt over two instances let %d through, want 5", n, allowed)
	}
	for i, s := range stores {
		got, err := s.AttemptState(t.Context(), "2fa:user:race")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(auth.AttemptState{Failures: 5, LastAt: t0}, got); diff != "" {
			t.Errorf("instance %d: AttemptState (-want +got):\n%s", i+1, diff)
		}
	}

	counts := hitConcurrently(t, n, through)
	if len(counts) != n {
		t.Errorf("%d concurrent HitWindow over two instances handed out %d distinct counts, want %d", n, len(counts), n)
	}
	if err := stores[1].ResetAttempts(t.Context(), "2fa:user:race"); err != nil {
		t.Fatal(err)
	}
	wantState(t, stores[0], "2fa:user:race", auth.AttemptState{})
}

func TestExpiry(t *testing.T) {
	client := testClient(t)
	ctx := t.Context()
	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := client.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	between := func(what string, got, lo, hi time.Duration) {
		t.Helper()
		if got <= lo || got > hi {
			t.Errorf("%s TTL = %v, want in (%v, %v]", what, got, lo, hi)
		}
	}
	refuse := func(auth.AttemptState, time.Time) (time.Duration, bool) { return time.Minute, false }

	t.Run("attempts", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			ttl  time.Duration
			want time.Duration
		}{
			{"default", 0, redisstore.DefaultAttemptTTL},
			{"set", time.Hour, time.Hour},
		} {
			prefix := testPrefix(t, client)
			s := redisstore.New(client, prefix, redisstore.Options{AttemptTTL: tt.ttl})
			if _, err := s.ReserveAttempt(ctx, "login:u1", t0, allowFive); err != nil {
				t.Fatal(err)
			}
			key := onlyKey(t, client, prefix)
			between(tt.name, pttl(key), tt.want-time.Minute, tt.want)

			// A refused attempt writes nothing, so it does not extend the
			// TTL; a counted one starts it again.
			if err := client.PExpire(ctx, key, 30*time.Second).Err(); err != nil {
				t.Fatal(err)
			}
			if wait, err := s.ReserveAttempt(ctx, "login:u1", t0, refuse); wait == 0 || err != nil {
				t.Fatalf("ReserveAttempt(refuse) = %v, %v; want a wait", wait, err)
			}
			between(tt.name+" after a refused attempt", pttl(key), 0, 30*time.Second)
			if _, err := s.ReserveAttempt(ctx, "login:u1", t0, allowFive); err != nil {
				t.Fatal(err)
			}
			between(tt.name+" after a counted attempt", pttl(key), tt.want-time.Minute, tt.want)
		}
	})
	t.Run("never", func(t *testing.T) {
		prefix := testPrefix(t, client)
		s := redisstore.New(client, prefix, redisstore.Options{AttemptTTL: -1})
		if _, err := s.ReserveAttempt(ctx, "login:u1", t0, allowFive); err != nil {
			t.Fatal(err)
		}
		if got := pttl(onlyKey(t, client, prefix)); got != -1 {
			t.Errorf("AttemptTTL -1: PTTL = %v, want -1 (no expiry)", got)
		}
	})
	t.Run("windows", func(t *testing.T) {
		prefix := testPrefix(t, client)
		s := redisstore.New(client, prefix, redisstore.Options{AttemptTTL: -1})
		// The longest window is an hour (SMS sends per phone): its count
		// must outlive it.
		if _, err := s.HitWindow(ctx, "sms-hour:+14155552671", t0.Truncate(time.Hour)); err != nil {
			t.Fatal(err)
		}
		between("window", pttl(onlyKey(t, client, prefix)), time.Hour, time.Hour+2*time.Minute)
	})
}

// TestCorruptCounter: a counter Redis holds but the Store cannot read is an
// error, never the zero (permissive) state.
func TestCorruptCounter(t *testing.T) {
	client := testClient(t)
	ctx := t.Context()
	prefix := testPrefix(t, client)
	s := redisstore.New(client, prefix, redisstore.Options{})
	if _, err := s.ReserveAttempt(ctx, "login:u1", t0, allowFive); err != nil {
		t.Fatal(err)
	}
	if err := client.HSet(ctx, onlyKey(t, client, prefix), "failures", "many").Err(); err != nil {
		t.Fatal(err)
	}
	if st, err := s.AttemptState(ctx, "login:u1"); err == nil {
		t.Errorf("AttemptState(corrupt) = %+v, nil; want an error", st)
	}
	if wait, err := s.ReserveAttempt(ctx, "login:u1", t0, allowFive); err == nil {
		t.Errorf("ReserveAttempt(corrupt) = %v, nil; want an error", wait)
	}
}

func TestCanceledContext(t *testing.T) {
	s := newTestStore(t, testClient(t), redisstore.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	checkAllFail(t, ctx, s)
}

// checkAllFail checks that every method of s returns an error.
func checkAllFail(t *testing.T, ctx context.Context, s *redisstore.Store) {
	t.Helper()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping = nil, want an error")
	}
	if wait, err := s.ReserveAttempt(ctx, "login:u1", t0, allowFive); err == nil {
		t.Errorf("ReserveAttempt = %v, nil; want an error", wait)
	}
	if st, err := s.AttemptState(ctx, "login:u1"); err == nil {
		t.Errorf("AttemptState = %+v, nil; want an error", st)
	}
	if err := s.ResetAttempts(ctx, "login:u1"); err == nil {
		t.Error("ResetAttempts = nil, want an error")
	}
	if n, err := s.HitWindow(ctx, "login:ip:a", t0); err == nil {
		t.Errorf("HitWindow = %d, nil; want an error", n)
	}
}

func TestPing(t *testing.T) {
	s := newTestStore(t, testClient(t), redisstore.Options{})
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}

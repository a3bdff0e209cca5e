package redisstore_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/redisstore"
)

// redisServer is a redis-server the test runs itself, so that it can stop
// and start it again on the same port.
type redisServer struct {
	t    *testing.T
	bin  string
	port string
	args []string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// startRedis starts redis-server on a free loopback port with extra
// arguments after the test's own, and stops it when the test ends. Without
// the binary the test is skipped, or failed when TWOSTEP_TEST_REQUIRE_ALL=1.
func startRedis(t *testing.T, extra ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(requireAllEnv) == "1" {
			t.Fatalf("redis-server not found and %s=1: %v", requireAllEnv, err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r := &redisServer{
		t:    t,
		bin:  bin,
		port: port,
		args: append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", t.TempDir(),
			"--save", "", "--appendonly", "no", "--daemonize", "no"}, extra...),
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + r.port }

// start runs the server and waits until it answers.
func (r *redisServer) start() {
	r.t.Helper()
	r.out.Reset()
	r.cmd = exec.CommandContext(r.t.Context(), r.bin, r.args...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	probe := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer probe.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := probe.Ping(r.t.Context()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.stop()
			r.t.Fatalf("redis-server on %s did not answer: %v\n%s", r.addr(), err, r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server abruptly (no shutdown save) and waits for it.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.t.Errorf("kill redis-server: %v", err)
	}
	_ = r.cmd.Wait() // killed: the exit status says so
	r.cmd = nil
}

// clientFor returns a client for r that gives up on a refused dial at once
// (DialerRetries) but keeps the default command retries.
func clientFor(t *testing.T, r *redisServer) *redis.Client {
	client := redis.NewClient(&redis.Options{Addr: r.addr(), DialTimeout: time.Second, DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// waitReady polls s.Ping until it succeeds, as /readyz would.
func waitReady(t *testing.T, s *redisstore.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Ping(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Store did not recover: Ping = %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisDown stops Redis mid-test: every method then fails with an
// error, and the same Store works again once Redis is back.
func TestRedisDown(t *testing.T) {
	r := startRedis(t)
	s := redisstore.New(clientFor(t, r), "twostep:", redisstore.Options{})
	ctx := t.Context()

	for range 5 {
		if wait, err := s.ReserveAttempt(ctx, "login:u1", t0, allowFive); wait != 0 || err != nil {
			t.Fatalf("ReserveAttempt = %v, %v; want 0, nil", wait, err)
		}
	}
	if n, err := s.HitWindow(ctx, "login:ip:a", t0); n != 1 || err != nil {
		t.Fatalf("HitWindow = %d, %v; want 1, nil", n, err)
	}

	r.stop()
	checkAllFail(t, ctx, s)
	for i := range 10 {
		if wait, err := s.ReserveAttempt(ctx, "login:u1", t0.Add(time.Hour), allowFive); err == nil {
			t.Fatalf("ReserveAttempt #%d with Redis down = %v, nil; want an error", i+1, wait)
		}
	}

	// This server keeps nothing on disk, so it comes back empty.
	r.start()
	waitReady(t, s)
	if wait, err := s.ReserveAttempt(ctx, "login:u1", t0, allowFive); wait != 0 || err != nil {
		t.Errorf("ReserveAttempt after restart = %v, %v; want 0, nil", wait, err)
	}
	wantState(t, s, "login:u1", auth.AttemptState{Failures: 1, LastAt: t0})
	if n, err := s.HitWindow(ctx, "login:ip:a", t0); n != 1 || err != nil {
		t.Errorf("HitWindow after restart = %d, %v; want 1, nil", n, err)
	}
	if err := s.ResetAttempts(ctx, "login:u1"); err != nil {
		t.Errorf("ResetAttempts after restart = %v", err)
	}
}

// TestRedisCrashKeepsCounts kills a Redis that fsyncs its append-only file
// on every write: no attempt is let through past the limit across the
// outage, because every counted attempt survived it.
func TestRedisCrashKeepsCounts(t *testing.T) {
	r := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	s := redisstore.New(clientFor(t, r), "twostep:", redisstore.Options{})
	ctx := t.Context()
	lockForAnHour := func(st auth.AttemptState, now time.Time) (time.Duration, bool) {
		if st.Failures < 5 {
			return 0, false
		}
		return st.LastAt.Add(time.Hour).Sub(now), false
	}

	for range 3 {
		if wait, err := s.ReserveAttempt(ctx, "2fa:user:u1", t0, lockForAnHour); wait != 0 || err != nil {
			t.Fatalf("ReserveAttempt = %v, %v; want 0, nil", wait, err)
		}
	}
	r.stop()
	for range 5 {
		if wait, err := s.ReserveAttempt(ctx, "2fa:user:u1", t0, lockForAnHour); err == nil {
			t.Fatalf("ReserveAttempt with Redis down = %v, nil; want an error", wait)
		}
	}
	r.start()
	waitReady(t, s)

	allowed := 0
	for range 10 {
		wait, err := s.ReserveAttempt(ctx, "2fa:user:u1", t0, lockForAnHour)
		if err != nil {
			t.Fatalf("ReserveAttempt after restart = %v", err)
		}
		if wait == 0 {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("after the restart %d more attempts were let through, want 2 (3 before + 2 = 5)", allowed)
	}
	wantState(t, s, "2fa:user:u1", auth.AttemptState{Failures: 5, LastAt: t0})
}

// TestRedisCrashUnderLoad kills and restarts Redis (fsyncing every write)
// while eight callers keep making attempts: no more attempts are let
// through than the limit, and the count reaches it once Redis is back.
func TestRedisCrashUnderLoad(t *testing.T) {
	r := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	s := redisstore.New(clientFor(t, r), "twostep:", redisstore.Options{})
	ctx := t.Context()
	const limit = 100
	allowHundred := func(st auth.AttemptState, now time.Time) (time.Duration, bool) {
		if st.Failures < limit {
			return 0, false
		}
		return time.Hour, false
	}

	var allowed, refused, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				wait, err := s.ReserveAttempt(ctx, "2fa:user:u1", t0, allowHundred)
				switch {
				case err != nil:
					failed.Add(1)
				case wait == 0:
					allowed.Add(1)
				default:
					refused.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s: %d allowed, %d refused, %d failed", what, allowed.Load(), refused.Load(), failed.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	waitFor("some attempts", func() bool { return allowed.Load() >= limit/4 })
	r.stop()
	waitFor("failures while down", func() bool { return failed.Load() >= 8 })
	r.start()
	waitReady(t, s)
	waitFor("refusals", func() bool { return refused.Load() >= 8 })
	close(stop)
	wg.Wait()

	t.Logf("%d allowed, %d refused, %d failed", allowed.Load(), refused.Load(), failed.Load())
	if got := allowed.Load(); got > limit {
		t.Errorf("%d attempts let through, limit %d", got, limit)
	}
	st, err := s.AttemptState(ctx, "2fa:user:u1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Failures != limit {
		t.Errorf("AttemptState.Failures = %d, want %d", st.Failures, limit)
	}
}

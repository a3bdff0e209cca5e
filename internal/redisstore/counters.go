package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twostep-auth/twostep/internal/auth"
)

// Fields of an attempt counter's hash. last_at is in Unix microseconds, the
// precision sqlstore keeps.
const (
	fieldFailures = "failures"
	fieldLastAt   = "last_at"
)

// maxTxTries bounds the optimistic transactions one ReserveAttempt runs.
// Only counted attempts abort others, so a caller loses at most as many
// rounds as attempts the policy lets through meanwhile.
const maxTxTries = 50

// ReserveAttempt reads the counter for key, asks policy whether an attempt
// may go ahead, and if so counts it (failures+1, or 1 when policy asks for a
// reset, and last_at = now) and restarts the counter's TTL. A refused
// attempt changes nothing and returns policy's wait.
//
// It runs as an optimistic transaction (WATCH, read, MULTI/EXEC) retried
// when another writer got in first, so concurrent callers in any number of
// processes never let more attempts through than policy allows. policy may
// therefore be called more than once and must have no side effects. It
// returns an error, never a zero wait, when Redis is unreachable, ctx ends,
// the stored counter cannot be decoded, or the counter stays contended for
// 50 rounds (then wrapping redis.TxFailedErr). An error does not prove that
// the attempt was not counted (the reply may be what got lost), so callers
// must treat it as a refusal.
func (s *Store) ReserveAttempt(ctx context.Context, key string, now time.Time, policy auth.AttemptPolicy) (time.Duration, error) {
	k := s.attemptKey(key)
	var wait time.Duration
	reserve := func(tx *redis.Tx) error {
		m, err := tx.HGetAll(ctx, k).Result()
		if err != nil {
			return err
		}
		st, err := parseState(m)
		if err != nil {
			return err
		}
		w, reset := policy(st, now)
		if w > 0 {
			wait = w
			return nil
		}
		wait = 0
		failures := st.Failures + 1
		if reset {
			failures = 1
		}
		// Absolute values, not HINCRBY: the write is only valid for the
		// state policy saw, which WATCH guarantees.
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, k, fieldFailures, failures, fieldLastAt, now.UnixMicro())
			if s.attemptTTL > 0 {
				p.PExpire(ctx, k, s.attemptTTL)
			}
			return nil
		})
		return err
	}
	for try := range maxTxTries {
		if try > 0 {
			if err := backoff(ctx, try); err != nil {
				return 0, fail("reserve attempt", err)
			}
		}
		err := s.client.Watch(ctx, reserve, k)
		if err == nil {
			return wait, nil
		}
		if !errors.Is(err, redis.TxFailedErr) {
			return 0, fail("reserve attempt", err)
		}
	}
	return 0, fail("reserve attempt", fmt.Errorf("still contended after %d tries: %w", maxTxTries, redis.TxFailedErr))
}

// backoff sleeps before try (1, 2, …) of a conflicting transaction: a
// jittered 0.5–1 ms, doubling up to 16–32 ms, so that contenders spread
// out. It returns ctx's error if ctx ends first.
func backoff(ctx context.Context, try int) error {
	d := time.Millisecond << min(try-1, 5)
	d = d/2 + rand.N(d/2+1) // jitter only: not a secret, math/rand is fine
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ResetAttempts clears the counter for key (deletes it). Clearing a counter
// that does not exist is not an error.
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.attemptKey(key)).Err(); err != nil {
		return fail("reset attempts", err)
	}
	return nil
}

// AttemptState reads the counter for key: the zero state when there is
// none (never counted, reset, or expired).
func (s *Store) AttemptState(ctx context.Context, key string) (auth.AttemptState, error) {
	m, err := s.client.HGetAll(ctx, s.attemptKey(key)).Result()
	if err != nil {
		return auth.AttemptState{}, fail("attempt state", err)
	}
	st, err := parseState(m)
	if err != nil {
		return auth.AttemptState{}, fail("attempt state", err)
	}
	return st, nil
}

// parseState decodes a counter hash; an empty hash is the zero state.
func parseState(m map[string]string) (auth.AttemptState, error) {
	var st auth.AttemptState
	if v, ok := m[fieldFailures]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return auth.AttemptState{}, fmt.Errorf("parse %s %q: %w", fieldFailures, v, err)
		}
		st.Failures = n
	}
	if v, ok := m[fieldLastAt]; ok {
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return auth.AttemptState{}, fmt.Errorf("parse %s %q: %w", fieldLastAt, v, err)
		}
		st.LastAt = time.UnixMicro(us).UTC()
	}
	return st, nil
}

// HitWindow adds one to the counter for key in the window (one minute or
// one hour long) that starts at window and returns the new count. INCR and EXPIRE run in one
// MULTI/EXEC, so a counter never lives without its expiry. If the reply is
// lost and the client retries, a hit may be counted twice: that errs on the
// strict side.
func (s *Store) HitWindow(ctx context.Context, key string, window time.Time) (int64, error) {
	k := s.windowKey(key, window)
	var incr *redis.IntCmd
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, k)
		p.Expire(ctx, k, windowTTL)
		return nil
	})
	if err != nil {
		return 0, fail("hit window", err)
	}
	return incr.Val(), nil
}

// Package redisstore keeps auth's short-lived counters (login throttling,
// second-factor lockout and per-IP rate windows) in Redis, so that several
// twostep instances share them. Every operation is atomic in Redis, keys
// expire (see Options), and a Redis that cannot be reached makes every
// method return an error, never a permissive answer.
package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twostep-auth/twostep/internal/auth"
)

// DefaultAttemptTTL is the AttemptTTL used when Options leaves it zero.
const DefaultAttemptTTL = 24 * time.Hour

// windowTTL is how long a rate-window key lives after each hit. It must
// outlast the longest window auth counts in: per-IP windows are one minute
// long, but the SMS sends to a phone are counted per hour, and a key that
// expired sooner would reset that count (two minutes between sends would
// have lifted the hourly limit). Windows are hit only while they are
// current, so a key is gone at most 62 minutes after its last hit. A
// relative TTL (rather than PEXPIREAT window+62m) keeps the expiry
// independent of any disagreement between the caller's clock and Redis's.
const windowTTL = time.Hour + 2*time.Minute

// Options tunes a Store.
type Options struct {
	// AttemptTTL is how long an attempt counter lives after the last attempt
	// it counted (each counted attempt starts the TTL again; a refused one
	// does not). Zero means DefaultAttemptTTL; a negative value keeps
	// counters until ResetAttempts. It should exceed the longest wait a
	// policy can impose, or the lock ends early when the key expires.
	AttemptTTL time.Duration
}

// Store is auth's counter store over Redis. It is safe for concurrent use,
// also by several processes sharing one Redis and prefix.
type Store struct {
	client     redis.UniversalClient
	prefix     string
	attemptTTL time.Duration // <= 0: no expiry
}

// New returns a Store that keeps its keys in client under prefix (for
// example "twostep:"; tests use a random one). The caller owns client and
// closes it. New does not contact Redis; use Ping for that.
func New(client redis.UniversalClient, prefix string, opts Options) *Store {
	ttl := opts.AttemptTTL
	if ttl == 0 {
		ttl = DefaultAttemptTTL
	}
	return &Store{client: client, prefix: prefix, attemptTTL: ttl}
}

// Ping reports whether Redis answers, for readiness checks. It returns a
// wrapped error when it does not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fail("ping", err)
	}
	return nil
}

// attemptKey is the hash that holds the attempt counter for key.
func (s *Store) attemptKey(key string) string {
	return s.prefix + "attempt:" + key
}

// windowKey is the counter for key in the window starting at window. The
// window comes first, so no key can make two pairs collide.
func (s *Store) windowKey(key string, window time.Time) string {
	return s.prefix + "window:" + strconv.FormatInt(window.UnixMicro(), 10) + ":" + key
}

// fail wraps a Redis error with the operation it broke. Keys are left out of
// the message: a login key holds whatever name the client typed.
func fail(op string, err error) error {
	return fmt.Errorf("redis %s: %w: %w", op, auth.ErrUnavailable, err)
}

// Split returns a store that keeps durable facts in durable (SQL) and the
// short-lived counters (login throttling, lockouts, send cooldowns and
// windows) in counters, shared by every instance. Inside a transaction the
// counters still go to Redis, at once: a counted attempt stays counted even
// when the SQL transaction rolls back, which is the safe direction for a
// limit.
func Split(durable auth.Store, counters *Store) auth.Store {
	return split{Store: durable, c: counters}
}

type split struct {
	auth.Store
	c *Store
}

// WithTx runs fn in a transaction of the durable store whose counter
// methods go to Redis.
func (s split) WithTx(ctx context.Context, fn func(tx auth.Tx) error) error {
	return s.Store.WithTx(ctx, func(tx auth.Tx) error { return fn(splitTx{Tx: tx, c: s.c}) })
}

type splitTx struct {
	auth.Tx
	c *Store
}

func (s splitTx) ReserveAttempt(ctx context.Context, key string, now time.Time, policy auth.AttemptPolicy) (time.Duration, error) {
	return s.c.ReserveAttempt(ctx, key, now, policy)
}

func (s splitTx) ResetAttempts(ctx context.Context, key string) error {
	return s.c.ResetAttempts(ctx, key)
}

func (s splitTx) AttemptState(ctx context.Context, key string) (auth.AttemptState, error) {
	return s.c.AttemptState(ctx, key)
}

func (s splitTx) HitWindow(ctx context.Context, key string, window time.Time) (int64, error) {
	return s.c.HitWindow(ctx, key, window)
}

func (s split) ReserveAttempt(ctx context.Context, key string, now time.Time, policy auth.AttemptPolicy) (time.Duration, error) {
	return s.c.ReserveAttempt(ctx, key, now, policy)
}

func (s split) ResetAttempts(ctx context.Context, key string) error {
	return s.c.ResetAttempts(ctx, key)
}

func (s split) AttemptState(ctx context.Context, key string) (auth.AttemptState, error) {
	return s.c.AttemptState(ctx, key)
}

func (s split) HitWindow(ctx context.Context, key string, window time.Time) (int64, error) {
	return s.c.HitWindow(ctx, key, window)
}

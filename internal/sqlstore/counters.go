package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// claimAttempt creates the counter for key if needed and reads it, in one
// statement that also locks the row on PostgreSQL (the no-op DO UPDATE) until
// the transaction ends; on SQLite the transaction already holds the
// database's write lock (BEGIN IMMEDIATE on the single writer connection).
// An INSERT … DO NOTHING followed by a SELECT … FOR UPDATE would find no row
// when a concurrent ResetAttempts deletes it in between.
const claimAttempt = `INSERT INTO attempts (key, failures, last_at) VALUES (?, 0, NULL)
	ON CONFLICT (key) DO UPDATE SET failures = attempts.failures
	RETURNING failures, last_at`

// reserveAttempt reads the counter for key, asks policy, and either returns
// its wait or counts the attempt (failures+1, or 1 after a reset, and
// last_at = now). A refused attempt changes nothing. It must run inside a
// transaction, which makes it atomic: concurrent callers queue on the row.
func (s store) reserveAttempt(ctx context.Context, key string, now time.Time, policy auth.AttemptPolicy) (time.Duration, error) {
	var st auth.AttemptState
	var last sql.NullInt64
	if err := s.queryRow(ctx, claimAttempt, key).Scan(&st.Failures, &last); err != nil {
		return 0, fmt.Errorf("reserve attempt: read counter: %w", mapErr(err))
	}
	if last.Valid {
		st.LastAt = fromMicros(last.Int64)
	}
	wait, reset := policy(st, now)
	if wait > 0 {
		return wait, nil
	}
	failures := st.Failures + 1
	if reset {
		failures = 1
	}
	_, err := s.exec(ctx, `UPDATE attempts SET failures = ?, last_at = ? WHERE key = ?`, failures, micros(now), key)
	if err != nil {
		return 0, fmt.Errorf("reserve attempt: count: %w", mapErr(err))
	}
	return 0, nil
}

// ResetAttempts clears the counter for key (deletes its row).
func (s store) ResetAttempts(ctx context.Context, key string) error {
	if _, err := s.exec(ctx, `DELETE FROM attempts WHERE key = ?`, key); err != nil {
		return fmt.Errorf("reset attempts: %w", mapErr(err))
	}
	return nil
}

// AttemptState reads the counter for key; the zero state when there is none.
func (s store) AttemptState(ctx context.Context, key string) (auth.AttemptState, error) {
	var st auth.AttemptState
	var last sql.NullInt64
	err := s.queryRow(ctx, `SELECT failures, last_at FROM attempts WHERE key = ?`, key).Scan(&st.Failures, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.AttemptState{}, nil
	}
	if err != nil {
		return auth.AttemptState{}, fmt.Errorf("attempt state: %w", mapErr(err))
	}
	if last.Valid {
		st.LastAt = fromMicros(last.Int64)
	}
	return st, nil
}

// HitWindow adds one to the counter for key in the fixed window that starts
// at window, in one upsert, and returns the new count.
func (s store) HitWindow(ctx context.Context, key string, window time.Time) (int64, error) {
	var n int64
	err := s.queryRow(ctx, `INSERT INTO rate_windows (key, window_start, count) VALUES (?, ?, 1)
		ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + 1
		RETURNING count`, key, micros(window)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("hit window: %w", mapErr(err))
	}
	return n, nil
}

// pruneCounters deletes rate windows that started before before, and
// attempt counters last touched before before that hold no failures. A
// counter with failures is kept however old: a policy may lock an account
// until an administrator resets it, and deleting the row would unlock it.
func (s store) pruneCounters(ctx context.Context, before time.Time) error {
	if _, err := s.exec(ctx, `DELETE FROM rate_windows WHERE window_start < ?`, micros(before)); err != nil {
		return fmt.Errorf("prune rate windows: %w", mapErr(err))
	}
	_, err := s.exec(ctx, `DELETE FROM attempts WHERE failures = 0 AND (last_at IS NULL OR last_at < ?)`, micros(before))
	if err != nil {
		return fmt.Errorf("prune attempts: %w", mapErr(err))
	}
	return nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// CreateChallenge inserts c; a missing user is auth.ErrNotFound and a taken
// hash auth.ErrConflict.
func (s store) CreateChallenge(ctx context.Context, c auth.Challenge) error {
	amr, err := joinList("amr", c.AMR)
	if err != nil {
		return fmt.Errorf("create challenge: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO challenges
		(hash, user_id, created_at, expires_at, attempts, used_at, amr, ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.UserID, micros(c.CreatedAt), micros(c.ExpiresAt), c.Attempts, nullMicros(c.UsedAt),
		amr, c.IP, c.UserAgent)
	if err != nil {
		return fmt.Errorf("create challenge: %w", mapErr(err))
	}
	return nil
}

// ChallengeWithUser returns the challenge and its user in one read;
// auth.ErrNotFound for an unknown hash.
func (s store) ChallengeWithUser(ctx context.Context, hash []byte) (auth.Challenge, auth.User, error) {
	var c auth.Challenge
	var u auth.User
	var created, expires int64
	var used sql.NullInt64
	var amr string
	ud, fillUser := userDest(&u)
	dest := append([]any{&c.Hash, &c.UserID, &created, &expires, &c.Attempts, &used, &amr, &c.IP, &c.UserAgent}, ud...)
	err := s.queryRow(ctx, `SELECT c.hash, c.user_id, c.created_at, c.expires_at, c.attempts, c.used_at, c.amr, c.ip, c.user_agent, `+userColumns+`
		FROM challenges c JOIN users u ON u.id = c.user_id WHERE c.hash = ?`, hash).Scan(dest...)
	if err != nil {
		return auth.Challenge{}, auth.User{}, fmt.Errorf("challenge: %w", mapErr(err))
	}
	c.CreatedAt = fromMicros(created)
	c.ExpiresAt = fromMicros(expires)
	c.UsedAt = timePtr(used)
	c.AMR = splitList(amr)
	fillUser()
	return c, u, nil
}

// ReserveChallengeAttempt adds one to attempts, in one conditional update,
// if the challenge is unused, unexpired at now and has fewer than max
// attempts; it reports whether it did. Concurrent callers never take more
// than max attempts between them.
func (s store) ReserveChallengeAttempt(ctx context.Context, hash []byte, max int, now time.Time) (bool, error) {
	ok, err := s.changed(ctx, `UPDATE challenges SET attempts = attempts + 1
		WHERE hash = ? AND attempts < ? AND used_at IS NULL AND expires_at > ?`,
		hash, max, micros(now))
	if err != nil {
		return false, fmt.Errorf("reserve challenge attempt: %w", err)
	}
	return ok, nil
}

// ConsumeChallenge sets used_at if unset and reports whether it did; of
// concurrent callers exactly one gets true.
func (s store) ConsumeChallenge(ctx context.Context, hash []byte, max int, at time.Time) (bool, error) {
	ok, err := s.changed(ctx, `UPDATE challenges SET used_at = ?
		WHERE hash = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?`,
		micros(at), hash, micros(at), max)
	if err != nil {
		return false, fmt.Errorf("consume challenge: %w", err)
	}
	return ok, nil
}

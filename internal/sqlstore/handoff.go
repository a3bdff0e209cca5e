package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// createHandoff deletes codes that expired before h was made (they can
// never be used, so a table of live codes stays small) and inserts h. A
// taken hash is auth.ErrConflict; a missing session auth.ErrNotFound. It
// must run in a transaction.
func (s store) createHandoff(ctx context.Context, h auth.Handoff) error {
	if _, err := s.exec(ctx, `DELETE FROM handoff_codes WHERE expires_at < ?`, micros(h.CreatedAt)); err != nil {
		return fmt.Errorf("create handoff: prune: %w", mapErr(err))
	}
	_, err := s.exec(ctx, `INSERT INTO handoff_codes (hash, session_id, user_id, created_at, expires_at, used_at, code_challenge)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		h.Hash, h.SessionID, h.UserID, micros(h.CreatedAt), micros(h.ExpiresAt), nullMicros(h.UsedAt), nullString(h.CodeChallenge))
	if err != nil {
		return fmt.Errorf("create handoff: %w", mapErr(err))
	}
	return nil
}

// ConsumeHandoff marks the code used in one conditional update, if it is
// unused and unexpired at at, and returns it; auth.ErrNotFound otherwise.
// Of concurrent callers at most one gets the row.
func (s store) ConsumeHandoff(ctx context.Context, hash []byte, at time.Time) (auth.Handoff, error) {
	h := auth.Handoff{Hash: hash}
	var created, expires int64
	var used sql.NullInt64
	var challenge sql.NullString
	err := s.queryRow(ctx, `UPDATE handoff_codes SET used_at = ?
		WHERE hash = ? AND used_at IS NULL AND expires_at > ?
		RETURNING session_id, user_id, created_at, expires_at, used_at, code_challenge`,
		micros(at), hash, micros(at)).Scan(&h.SessionID, &h.UserID, &created, &expires, &used, &challenge)
	if err != nil {
		return auth.Handoff{}, fmt.Errorf("consume handoff: %w", mapErr(err))
	}
	h.CodeChallenge = challenge.String
	h.CreatedAt = fromMicros(created)
	h.ExpiresAt = fromMicros(expires)
	h.UsedAt = timePtr(used)
	return h, nil
}

// CreateHandoff prunes expired codes and inserts h, in the surrounding
// transaction; see auth.Tx.
func (t txStore) CreateHandoff(ctx context.Context, h auth.Handoff) error {
	return t.createHandoff(ctx, h)
}

// CreateHandoff prunes expired codes and inserts h, in a transaction of its
// own; see auth.Tx.
func (db *DB) CreateHandoff(ctx context.Context, h auth.Handoff) error {
	return db.inTx(ctx, func(s store) error { return s.createHandoff(ctx, h) })
}

// ConsumeHandoff marks the code used and returns it; see auth.Tx.
func (db *DB) ConsumeHandoff(ctx context.Context, hash []byte, at time.Time) (auth.Handoff, error) {
	return db.w.ConsumeHandoff(ctx, hash, at)
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// CreateFactor inserts f; a missing user is auth.ErrNotFound and a taken id
// auth.ErrConflict.
func (s store) CreateFactor(ctx context.Context, f auth.Factor) error {
	_, err := s.exec(ctx, `INSERT INTO factors
		(id, user_id, method, label, sealed_secret, phone, confirmed_at, last_step, created_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.UserID, f.Method, f.Label, nullBytes(f.SealedSecret), f.Phone, nullMicros(f.ConfirmedAt),
		f.LastStep, micros(f.CreatedAt), nullMicros(f.LastUsedAt))
	if err != nil {
		return fmt.Errorf("create factor: %w", mapErr(err))
	}
	return nil
}

// FactorsByUser returns the user's factors, confirmed or pending, oldest
// first (ties by id); none is an empty slice, not an error.
func (s store) FactorsByUser(ctx context.Context, userID string) ([]auth.Factor, error) {
	rows, err := s.query(ctx, `SELECT id, user_id, method, label, sealed_secret, phone, confirmed_at,
		last_step, created_at, last_used_at
		FROM factors WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("factors of user %s: %w", userID, mapErr(err))
	}
	fs, err := scanRows(rows, scanFactor)
	if err != nil {
		return nil, fmt.Errorf("factors of user %s: %w", userID, err)
	}
	return fs, nil
}

// scanFactor reads id, user_id, method, label, sealed_secret, phone,
// confirmed_at, last_step, created_at, last_used_at.
func scanFactor(row scanner) (auth.Factor, error) {
	var f auth.Factor
	var confirmed, lastUsed sql.NullInt64
	var created int64
	if err := row.Scan(&f.ID, &f.UserID, &f.Method, &f.Label, &f.SealedSecret, &f.Phone, &confirmed,
		&f.LastStep, &created, &lastUsed); err != nil {
		return auth.Factor{}, err
	}
	f.ConfirmedAt = timePtr(confirmed)
	f.CreatedAt = fromMicros(created)
	f.LastUsedAt = timePtr(lastUsed)
	return f, nil
}

// ConfirmFactor sets confirmed_at; auth.ErrNotFound when the factor does not
// exist.
func (s store) ConfirmFactor(ctx context.Context, factorID string, at time.Time) error {
	if err := s.updateOne(ctx, `UPDATE factors SET confirmed_at = ? WHERE id = ?`, micros(at), factorID); err != nil {
		return fmt.Errorf("confirm factor %s: %w", factorID, err)
	}
	return nil
}

// AdvanceFactorStep sets last_step = step and last_used_at = at only if
// step > last_step, and reports whether it did: of concurrent callers with
// the same step exactly one gets true, which makes a TOTP step single use.
func (s store) AdvanceFactorStep(ctx context.Context, factorID string, step int64, at time.Time) (bool, error) {
	ok, err := s.changed(ctx, `UPDATE factors SET last_step = ?, last_used_at = ? WHERE id = ? AND last_step < ?`,
		step, micros(at), factorID, step)
	if err != nil {
		return false, fmt.Errorf("advance step of factor %s: %w", factorID, err)
	}
	return ok, nil
}

// DeleteFactor deletes one factor; auth.ErrNotFound when it does not exist.
func (s store) DeleteFactor(ctx context.Context, factorID string) error {
	if err := s.updateOne(ctx, `DELETE FROM factors WHERE id = ?`, factorID); err != nil {
		return fmt.Errorf("delete factor %s: %w", factorID, err)
	}
	return nil
}

// DeleteUserFactors deletes every factor of the user (none is not an error).
func (s store) DeleteUserFactors(ctx context.Context, userID string) error {
	if _, err := s.exec(ctx, `DELETE FROM factors WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("delete factors of user %s: %w", userID, mapErr(err))
	}
	return nil
}

// SetFactorLabel sets a factor's label; auth.ErrNotFound when the factor
// does not exist.
func (s store) SetFactorLabel(ctx context.Context, factorID, label string) error {
	if err := s.updateOne(ctx, `UPDATE factors SET label = ? WHERE id = ?`, label, factorID); err != nil {
		return fmt.Errorf("set label of factor %s: %w", factorID, err)
	}
	return nil
}

// SetFactorLabel sets a factor's label.
func (db *DB) SetFactorLabel(ctx context.Context, factorID, label string) error {
	return db.w.SetFactorLabel(ctx, factorID, label)
}

package sqlstore

import (
	"context"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/token"
)

var (
	_ auth.Store     = (*DB)(nil)
	_ auth.Tx        = txStore{}
	_ token.KeyStore = (*DB)(nil)
)

// txStore is auth.Tx inside one transaction (see DB.WithTx): every method
// runs on the transaction.
type txStore struct{ store }

// ReplaceBackupCodes deletes the user's codes and stores hashes.
func (t txStore) ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error {
	return t.replaceBackupCodes(ctx, userID, hashes, at)
}

// ReserveAttempt counts an attempt for key if policy allows it; see
// auth.Tx. It uses the surrounding transaction.
func (t txStore) ReserveAttempt(ctx context.Context, key string, now time.Time, policy auth.AttemptPolicy) (time.Duration, error) {
	return t.reserveAttempt(ctx, key, now, policy)
}

// DB implements auth.Tx by running each method on the pool it needs: reads
// on the reader, writes on the writer, and multi-statement operations in a
// transaction of their own. The contracts are auth.Tx's.

// CreateUser inserts u; a taken email or username is auth.ErrConflict.
func (db *DB) CreateUser(ctx context.Context, u auth.User) error { return db.w.CreateUser(ctx, u) }

// UserByID returns auth.ErrNotFound when there is no such user.
func (db *DB) UserByID(ctx context.Context, id string) (auth.User, error) {
	return db.r.UserByID(ctx, id)
}

// UserByEmail returns auth.ErrNotFound when no user has this email.
func (db *DB) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	return db.r.UserByEmail(ctx, email)
}

// UserByUsername returns auth.ErrNotFound when no user has this username.
func (db *DB) UserByUsername(ctx context.Context, username string) (auth.User, error) {
	return db.r.UserByUsername(ctx, username)
}

// UpdatePasswordHash replaces the user's password hash.
func (db *DB) UpdatePasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	return db.w.UpdatePasswordHash(ctx, userID, hash, at)
}

// CreateSession inserts s.
func (db *DB) CreateSession(ctx context.Context, s auth.Session) error {
	return db.w.CreateSession(ctx, s)
}

// SessionWithUser returns the session and its user in one read.
func (db *DB) SessionWithUser(ctx context.Context, sessionID string) (auth.Session, auth.User, error) {
	return db.r.SessionWithUser(ctx, sessionID)
}

// MarkSecondFactor records a passed second factor on the session.
func (db *DB) MarkSecondFactor(ctx context.Context, sessionID string, at time.Time, amr []string) error {
	return db.w.MarkSecondFactor(ctx, sessionID, at, amr)
}

// RevokeSession revokes the session unless already revoked.
func (db *DB) RevokeSession(ctx context.Context, sessionID string, at time.Time) (bool, error) {
	return db.w.RevokeSession(ctx, sessionID, at)
}

// RevokeUserSessions revokes the user's active sessions but exceptID.
func (db *DB) RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time) (int, error) {
	return db.w.RevokeUserSessions(ctx, userID, exceptID, at)
}

// ExtendSession sets the session's expires_at.
func (db *DB) ExtendSession(ctx context.Context, sessionID string, expiresAt time.Time) error {
	return db.w.ExtendSession(ctx, sessionID, expiresAt)
}

// CreateRefreshToken inserts t.
func (db *DB) CreateRefreshToken(ctx context.Context, t auth.RefreshToken) error {
	return db.w.CreateRefreshToken(ctx, t)
}

// RefreshTokenByHash returns auth.ErrNotFound for an unknown hash.
func (db *DB) RefreshTokenByHash(ctx context.Context, hash []byte) (auth.RefreshToken, error) {
	return db.r.RefreshTokenByHash(ctx, hash)
}

// DeleteRefreshTokens deletes every refresh token of the session.
func (db *DB) DeleteRefreshTokens(ctx context.Context, sessionID string) error {
	return db.w.DeleteRefreshTokens(ctx, sessionID)
}

// UseRefreshToken marks the token used, once.
func (db *DB) UseRefreshToken(ctx context.Context, hash []byte, at time.Time) (bool, error) {
	return db.w.UseRefreshToken(ctx, hash, at)
}

// CreateChallenge inserts c.
func (db *DB) CreateChallenge(ctx context.Context, c auth.Challenge) error {
	return db.w.CreateChallenge(ctx, c)
}

// ChallengeWithUser returns the challenge and its user in one read.
func (db *DB) ChallengeWithUser(ctx context.Context, hash []byte) (auth.Challenge, auth.User, error) {
	return db.r.ChallengeWithUser(ctx, hash)
}

// ReserveChallengeAttempt takes one of the challenge's attempts.
func (db *DB) ReserveChallengeAttempt(ctx context.Context, hash []byte, max int, now time.Time) (bool, error) {
	return db.w.ReserveChallengeAttempt(ctx, hash, max, now)
}

// ConsumeChallenge marks the challenge used, once.
func (db *DB) ConsumeChallenge(ctx context.Context, hash []byte, max int, at time.Time) (bool, error) {
	return db.w.ConsumeChallenge(ctx, hash, max, at)
}

// CreateFactor inserts f.
func (db *DB) CreateFactor(ctx context.Context, f auth.Factor) error {
	return db.w.CreateFactor(ctx, f)
}

// FactorsByUser returns the user's factors, oldest first.
func (db *DB) FactorsByUser(ctx context.Context, userID string) ([]auth.Factor, error) {
	return db.r.FactorsByUser(ctx, userID)
}

// ConfirmFactor marks the factor's enrolment finished.
func (db *DB) ConfirmFactor(ctx context.Context, factorID string, at time.Time) error {
	return db.w.ConfirmFactor(ctx, factorID, at)
}

// AdvanceFactorStep records a TOTP step as used if it is newer than the last.
func (db *DB) AdvanceFactorStep(ctx context.Context, factorID string, step int64, at time.Time) (bool, error) {
	return db.w.AdvanceFactorStep(ctx, factorID, step, at)
}

// DeleteFactor deletes one factor.
func (db *DB) DeleteFactor(ctx context.Context, factorID string) error {
	return db.w.DeleteFactor(ctx, factorID)
}

// DeleteUserFactors deletes every factor of the user.
func (db *DB) DeleteUserFactors(ctx context.Context, userID string) error {
	return db.w.DeleteUserFactors(ctx, userID)
}

// ReplaceBackupCodes deletes the user's codes and stores hashes, in one
// transaction.
func (db *DB) ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error {
	return db.inTx(ctx, func(s store) error { return s.replaceBackupCodes(ctx, userID, hashes, at) })
}

// UseBackupCode marks the user's code used, once.
func (db *DB) UseBackupCode(ctx context.Context, userID string, hash []byte, at time.Time) (bool, error) {
	return db.w.UseBackupCode(ctx, userID, hash, at)
}

// CountBackupCodes counts the user's unused codes.
func (db *DB) CountBackupCodes(ctx context.Context, userID string) (int, error) {
	return db.r.CountBackupCodes(ctx, userID)
}

// AppendAudit inserts e.
func (db *DB) AppendAudit(ctx context.Context, events ...auth.AuditEvent) error {
	return db.w.AppendAudit(ctx, events...)
}

// AuditEvents returns up to limit audit events (100 when limit <= 0),
// newest first, of one user or, when userID is empty, of everyone.
func (db *DB) AuditEvents(ctx context.Context, userID string, limit int) ([]auth.AuditEvent, error) {
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	return db.r.FindAuditEvents(ctx, auth.AuditFilter{UserID: userID, Limit: limit})
}

// ReserveAttempt counts an attempt for key if policy allows it, in a
// transaction of its own; see auth.Tx.
func (db *DB) ReserveAttempt(ctx context.Context, key string, now time.Time, policy auth.AttemptPolicy) (time.Duration, error) {
	var wait time.Duration
	err := db.inTx(ctx, func(s store) error {
		var err error
		wait, err = s.reserveAttempt(ctx, key, now, policy)
		return err
	})
	return wait, err
}

// ResetAttempts clears the counter for key.
func (db *DB) ResetAttempts(ctx context.Context, key string) error {
	return db.w.ResetAttempts(ctx, key)
}

// AttemptState reads the counter for key.
func (db *DB) AttemptState(ctx context.Context, key string) (auth.AttemptState, error) {
	return db.r.AttemptState(ctx, key)
}

// HitWindow counts one hit for key in the window starting at window.
func (db *DB) HitWindow(ctx context.Context, key string, window time.Time) (int64, error) {
	return db.w.HitWindow(ctx, key, window)
}

// PruneCounters deletes rate windows that started before before and
// attempt counters untouched since before that hold no failures; counters
// with failures stay, since a policy may lock until an administrator acts.
// It is meant for a periodic janitor.
func (db *DB) PruneCounters(ctx context.Context, before time.Time) error {
	return db.inTx(ctx, func(s store) error { return s.pruneCounters(ctx, before) })
}

// SigningKeys returns every signing key, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]token.StoredKey, error) {
	return db.r.SigningKeys(ctx)
}

// InsertSigningKey stores k; a taken id is auth.ErrConflict.
func (db *DB) InsertSigningKey(ctx context.Context, k token.StoredKey) error {
	return db.w.InsertSigningKey(ctx, k)
}

// RetireSigningKeys retires every unretired key but exceptID at at.
func (db *DB) RetireSigningKeys(ctx context.Context, exceptID string, at time.Time) error {
	return db.w.RetireSigningKeys(ctx, exceptID, at)
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// sessionColumns is the column list scanSession reads, for a query over
// sessions s.
const sessionColumns = `s.id, s.user_id, s.created_at, s.expires_at, s.auth_at, s.second_factor_at,
	s.amr, s.revoked_at, s.ip, s.user_agent, s.enrollment_only`

// sessionDest returns the scan destinations for sessionColumns and a
// function that fills sess from them once scanned.
func sessionDest(sess *auth.Session) ([]any, func()) {
	var created, expires, authAt int64
	var secondFactor, revoked sql.NullInt64
	var amr string
	dest := []any{&sess.ID, &sess.UserID, &created, &expires, &authAt, &secondFactor,
		&amr, &revoked, &sess.IP, &sess.UserAgent, &sess.EnrollmentOnly}
	return dest, func() {
		sess.CreatedAt = fromMicros(created)
		sess.ExpiresAt = fromMicros(expires)
		sess.AuthAt = fromMicros(authAt)
		sess.SecondFactorAt = timePtr(secondFactor)
		sess.AMR = splitList(amr)
		sess.RevokedAt = timePtr(revoked)
	}
}

// CreateSession inserts sess; a missing user is auth.ErrNotFound and a taken
// id auth.ErrConflict.
func (s store) CreateSession(ctx context.Context, sess auth.Session) error {
	amr, err := joinList("amr", sess.AMR)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO sessions
		(id, user_id, created_at, expires_at, auth_at, second_factor_at, amr, revoked_at, ip, user_agent, enrollment_only)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, sess.UserID, micros(sess.CreatedAt), micros(sess.ExpiresAt), micros(sess.AuthAt),
		nullMicros(sess.SecondFactorAt), amr, nullMicros(sess.RevokedAt), sess.IP, sess.UserAgent,
		sess.EnrollmentOnly)
	if err != nil {
		return fmt.Errorf("create session: %w", mapErr(err))
	}
	return nil
}

// SessionWithUser returns the session and its user in one read;
// auth.ErrNotFound when the session does not exist.
func (s store) SessionWithUser(ctx context.Context, sessionID string) (auth.Session, auth.User, error) {
	var sess auth.Session
	var u auth.User
	row := s.queryRow(ctx, `SELECT `+sessionColumns+`, `+userColumns+`
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`, sessionID)
	sd, fillSess := sessionDest(&sess)
	ud, fillUser := userDest(&u)
	if err := row.Scan(append(sd, ud...)...); err != nil {
		return auth.Session{}, auth.User{}, fmt.Errorf("session %s: %w", sessionID, mapErr(err))
	}
	fillSess()
	fillUser()
	return sess, u, nil
}

// MarkSecondFactor records that the session passed a second factor at at
// and sets its amr; auth.ErrNotFound when the session does not exist.
func (s store) MarkSecondFactor(ctx context.Context, sessionID string, at time.Time, amr []string) error {
	list, err := joinList("amr", amr)
	if err != nil {
		return fmt.Errorf("mark second factor of session %s: %w", sessionID, err)
	}
	err = s.updateOne(ctx, `UPDATE sessions SET second_factor_at = ?, amr = ? WHERE id = ?`,
		micros(at), list, sessionID)
	if err != nil {
		return fmt.Errorf("mark second factor of session %s: %w", sessionID, err)
	}
	return nil
}

// RevokeSession sets revoked_at unless already set and reports whether it
// changed the row (false also when the session does not exist).
func (s store) RevokeSession(ctx context.Context, sessionID string, at time.Time) (bool, error) {
	ok, err := s.changed(ctx, `UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
		micros(at), sessionID)
	if err != nil {
		return false, fmt.Errorf("revoke session %s: %w", sessionID, err)
	}
	return ok, nil
}

// RevokeUserSessions revokes every session of the user that is active at at
// (unrevoked, expires_at after at) except exceptID, and returns how many.
func (s store) RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time) (int, error) {
	n, err := s.affected(ctx, `UPDATE sessions SET revoked_at = ?
		WHERE user_id = ? AND id <> ? AND revoked_at IS NULL AND expires_at > ?`,
		micros(at), userID, exceptID, micros(at))
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	return int(n), nil
}

// ExtendSession sets expires_at; auth.ErrNotFound when the session does not
// exist.
func (s store) ExtendSession(ctx context.Context, sessionID string, expiresAt time.Time) error {
	err := s.updateOne(ctx, `UPDATE sessions SET expires_at = ? WHERE id = ?`, micros(expiresAt), sessionID)
	if err != nil {
		return fmt.Errorf("extend session %s: %w", sessionID, err)
	}
	return nil
}

// CreateRefreshToken inserts t; a missing session is auth.ErrNotFound and a
// taken hash auth.ErrConflict.
func (s store) CreateRefreshToken(ctx context.Context, t auth.RefreshToken) error {
	_, err := s.exec(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?)`,
		t.Hash, t.SessionID, micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.UsedAt))
	if err != nil {
		return fmt.Errorf("create refresh token: %w", mapErr(err))
	}
	return nil
}

// RefreshTokenByHash returns auth.ErrNotFound for an unknown hash.
func (s store) RefreshTokenByHash(ctx context.Context, hash []byte) (auth.RefreshToken, error) {
	var t auth.RefreshToken
	var created, expires int64
	var used sql.NullInt64
	err := s.queryRow(ctx, `SELECT hash, session_id, created_at, expires_at, used_at
		FROM refresh_tokens WHERE hash = ?`, hash).
		Scan(&t.Hash, &t.SessionID, &created, &expires, &used)
	if err != nil {
		return auth.RefreshToken{}, fmt.Errorf("refresh token: %w", mapErr(err))
	}
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt = fromMicros(expires)
	t.UsedAt = timePtr(used)
	return t, nil
}

// DeleteRefreshTokens deletes every refresh token of the session (none is
// not an error).
func (s store) DeleteRefreshTokens(ctx context.Context, sessionID string) error {
	if _, err := s.exec(ctx, `DELETE FROM refresh_tokens WHERE session_id = ?`, sessionID); err != nil {
		return fmt.Errorf("delete refresh tokens of session %s: %w", sessionID, mapErr(err))
	}
	return nil
}

// UseRefreshToken sets used_at only if it is unset and reports whether it
// did; of concurrent callers exactly one gets true.
func (s store) UseRefreshToken(ctx context.Context, hash []byte, at time.Time) (bool, error) {
	ok, err := s.changed(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL`,
		micros(at), hash)
	if err != nil {
		return false, fmt.Errorf("use refresh token: %w", err)
	}
	return ok, nil
}

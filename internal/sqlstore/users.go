package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// userColumns is the column list userDest reads, for a query over users u.
// TwoFaEnabled is derived: the user has a confirmed factor.
const userColumns = `u.id, u.email, u.username, u.phone, u.phone_verified, u.password_hash,
	u.roles, u.disabled, u.created_at, u.updated_at,
	EXISTS (SELECT 1 FROM factors f WHERE f.user_id = u.id AND f.confirmed_at IS NOT NULL)`

// userDest returns the scan destinations for userColumns and a function
// that fills u from them once scanned.
func userDest(u *auth.User) ([]any, func()) {
	var email, username, hash sql.NullString
	var roles string
	var created, updated int64
	dest := []any{&u.ID, &email, &username, &u.Phone, &u.PhoneVerified, &hash,
		&roles, &u.Disabled, &created, &updated, &u.TwoFaEnabled}
	return dest, func() {
		u.Email = email.String
		u.Username = username.String
		u.PasswordHash = hash.String
		u.Roles = splitList(roles)
		u.CreatedAt = fromMicros(created)
		u.UpdatedAt = fromMicros(updated)
	}
}

func scanUser(row scanner) (auth.User, error) {
	var u auth.User
	dest, fill := userDest(&u)
	if err := row.Scan(dest...); err != nil {
		return auth.User{}, mapErr(err)
	}
	fill()
	return u, nil
}

// CreateUser inserts u. A taken email or username (compared after lower())
// is auth.ErrConflict.
func (s store) CreateUser(ctx context.Context, u auth.User) error {
	roles, err := joinList("role", u.Roles)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO users
		(id, email, username, phone, phone_verified, password_hash, roles, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, nullString(u.Email), nullString(u.Username), u.Phone, u.PhoneVerified,
		nullString(u.PasswordHash), roles, u.Disabled, micros(u.CreatedAt), micros(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create user: %w", mapErr(err))
	}
	return nil
}

// UserByID returns auth.ErrNotFound when there is no such user.
func (s store) UserByID(ctx context.Context, id string) (auth.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ?`, id))
	if err != nil {
		return auth.User{}, fmt.Errorf("user %s: %w", id, err)
	}
	return u, nil
}

// UserByEmail looks the user up by email, case-insensitively (the unique
// index is on lower(email)); auth.ErrNotFound when there is none.
func (s store) UserByEmail(ctx context.Context, email string) (auth.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE lower(u.email) = lower(?)`, email))
	if err != nil {
		return auth.User{}, fmt.Errorf("user by email: %w", err)
	}
	return u, nil
}

// UserByUsername looks the user up by username, case-insensitively;
// auth.ErrNotFound when there is none.
func (s store) UserByUsername(ctx context.Context, username string) (auth.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE lower(u.username) = lower(?)`, username))
	if err != nil {
		return auth.User{}, fmt.Errorf("user by username %q: %w", username, err)
	}
	return u, nil
}

// UpdatePasswordHash replaces the user's hash and sets updated_at to at;
// auth.ErrNotFound when there is no such user.
func (s store) UpdatePasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	err := s.updateOne(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`,
		nullString(hash), micros(at), userID)
	if err != nil {
		return fmt.Errorf("update password hash of user %s: %w", userID, err)
	}
	return nil
}

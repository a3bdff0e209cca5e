package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

const smsCodeColumns = `id, purpose, subject, user_id, phone, code_hash, attempts, sends,
	created_at, last_sent_at, expires_at, used_at`

func scanSMSCode(row scanner) (auth.SMSCode, error) {
	var c auth.SMSCode
	var userID sql.NullString
	var created, sent, expires int64
	var used sql.NullInt64
	if err := row.Scan(&c.ID, &c.Purpose, &c.Subject, &userID, &c.Phone, &c.CodeHash, &c.Attempts, &c.Sends,
		&created, &sent, &expires, &used); err != nil {
		return auth.SMSCode{}, mapErr(err)
	}
	c.UserID = userID.String
	c.CreatedAt = fromMicros(created)
	c.LastSentAt = fromMicros(sent)
	c.ExpiresAt = fromMicros(expires)
	c.UsedAt = timePtr(used)
	return c, nil
}

// SaveSMSCode inserts c, or turns the existing code for (purpose, subject)
// into c: a resend of a live code keeps its attempts, a dead one starts
// afresh. One statement, so concurrent sends cannot lose the count.
func (s store) SaveSMSCode(ctx context.Context, c auth.SMSCode) (auth.SMSCode, error) {
	now := micros(c.LastSentAt)
	out, err := scanSMSCode(s.queryRow(ctx, `INSERT INTO sms_codes
		(id, purpose, subject, user_id, phone, code_hash, attempts, sends, created_at, last_sent_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, 1, ?, ?, ?, NULL)
		ON CONFLICT (purpose, subject) DO UPDATE SET
			attempts = CASE WHEN sms_codes.used_at IS NULL AND sms_codes.expires_at > ? THEN sms_codes.attempts ELSE 0 END,
			sends = CASE WHEN sms_codes.used_at IS NULL AND sms_codes.expires_at > ? THEN sms_codes.sends + 1 ELSE 1 END,
			created_at = CASE WHEN sms_codes.used_at IS NULL AND sms_codes.expires_at > ? THEN sms_codes.created_at ELSE excluded.created_at END,
			id = excluded.id,
			user_id = excluded.user_id,
			phone = excluded.phone,
			code_hash = excluded.code_hash,
			last_sent_at = excluded.last_sent_at,
			expires_at = excluded.expires_at,
			used_at = NULL
		RETURNING `+smsCodeColumns,
		c.ID, c.Purpose, c.Subject, nullString(c.UserID), c.Phone, c.CodeHash,
		micros(c.CreatedAt), now, micros(c.ExpiresAt), now, now, now))
	if err != nil {
		return auth.SMSCode{}, fmt.Errorf("save sms code: %w", err)
	}
	return out, nil
}

// SMSCodeFor returns the code for (purpose, subject); auth.ErrNotFound when
// there is none.
func (s store) SMSCodeFor(ctx context.Context, purpose, subject string) (auth.SMSCode, error) {
	c, err := scanSMSCode(s.queryRow(ctx, `SELECT `+smsCodeColumns+` FROM sms_codes WHERE purpose = ? AND subject = ?`,
		purpose, subject))
	if err != nil {
		return auth.SMSCode{}, fmt.Errorf("sms code: %w", err)
	}
	return c, nil
}

// ReserveSMSCodeAttempt counts one attempt on a live code below max.
func (s store) ReserveSMSCodeAttempt(ctx context.Context, id string, max int, now time.Time) (bool, error) {
	ok, err := s.changed(ctx, `UPDATE sms_codes SET attempts = attempts + 1
		WHERE id = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?`, id, micros(now), max)
	if err != nil {
		return false, fmt.Errorf("reserve sms code attempt: %w", err)
	}
	return ok, nil
}

// ConsumeSMSCode marks the code used, once.
func (s store) ConsumeSMSCode(ctx context.Context, id string, at time.Time) (bool, error) {
	ok, err := s.changed(ctx, `UPDATE sms_codes SET used_at = ? WHERE id = ? AND used_at IS NULL`, micros(at), id)
	if err != nil {
		return false, fmt.Errorf("consume sms code: %w", err)
	}
	return ok, nil
}

// SetUserPhone sets the user's phone and its verified flag. A phone
// verified on another account is auth.ErrConflict (unique index).
func (s store) SetUserPhone(ctx context.Context, userID, phone string, verified bool, at time.Time) error {
	err := s.updateOne(ctx, `UPDATE users SET phone = ?, phone_verified = ?, updated_at = ? WHERE id = ?`,
		phone, verified, micros(at), userID)
	if err != nil {
		return fmt.Errorf("set phone of user %s: %w", userID, err)
	}
	return nil
}

// UserByPhone finds the account with this verified phone.
func (s store) UserByPhone(ctx context.Context, phone string) (auth.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.phone = ? AND u.phone_verified = ?`, phone, true))
	if err != nil {
		return auth.User{}, fmt.Errorf("user by phone: %w", err)
	}
	return u, nil
}

// DB delegations.

// SaveSMSCode stores or resends the live code for (purpose, subject).
func (db *DB) SaveSMSCode(ctx context.Context, c auth.SMSCode) (auth.SMSCode, error) {
	return db.w.SaveSMSCode(ctx, c)
}

// SMSCodeFor reads the code for (purpose, subject).
func (db *DB) SMSCodeFor(ctx context.Context, purpose, subject string) (auth.SMSCode, error) {
	return db.r.SMSCodeFor(ctx, purpose, subject)
}

// ReserveSMSCodeAttempt counts one attempt on a live code below max.
func (db *DB) ReserveSMSCodeAttempt(ctx context.Context, id string, max int, now time.Time) (bool, error) {
	return db.w.ReserveSMSCodeAttempt(ctx, id, max, now)
}

// ConsumeSMSCode marks the code used, once.
func (db *DB) ConsumeSMSCode(ctx context.Context, id string, at time.Time) (bool, error) {
	return db.w.ConsumeSMSCode(ctx, id, at)
}

// SetUserPhone sets the user's phone and its verified flag.
func (db *DB) SetUserPhone(ctx context.Context, userID, phone string, verified bool, at time.Time) error {
	return db.w.SetUserPhone(ctx, userID, phone, verified, at)
}

// UserByPhone finds the account with this verified phone.
func (db *DB) UserByPhone(ctx context.Context, phone string) (auth.User, error) {
	return db.r.UserByPhone(ctx, phone)
}

package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// Settings returns the stored settings document; auth.ErrNotFound when none
// was saved yet.
func (s store) Settings(ctx context.Context) (auth.SettingsRecord, error) {
	var r auth.SettingsRecord
	var doc string
	var at int64
	err := s.queryRow(ctx, `SELECT document, version, updated_at FROM settings WHERE id = 1`).Scan(&doc, &r.Version, &at)
	if err != nil {
		return auth.SettingsRecord{}, fmt.Errorf("settings: %w", mapErr(err))
	}
	r.Document = []byte(doc)
	r.UpdatedAt = fromMicros(at)
	return r, nil
}

// SaveSettings stores r if r.Version follows the stored version (1 when
// none is stored); auth.ErrConflict otherwise.
func (s store) SaveSettings(ctx context.Context, r auth.SettingsRecord) error {
	var ok bool
	var err error
	if r.Version == 1 {
		ok, err = s.changed(ctx, `INSERT INTO settings (id, document, version, updated_at) VALUES (1, ?, 1, ?)
			ON CONFLICT (id) DO NOTHING`, string(r.Document), micros(r.UpdatedAt))
	} else {
		ok, err = s.changed(ctx, `UPDATE settings SET document = ?, version = ?, updated_at = ?
			WHERE id = 1 AND version = ?`, string(r.Document), r.Version, micros(r.UpdatedAt), r.Version-1)
	}
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if !ok {
		return fmt.Errorf("save settings version %d: %w: the settings were changed meanwhile", r.Version, auth.ErrConflict)
	}
	return nil
}

// likeEscaper escapes LIKE's wildcards (with \ as the escape character).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func containsPattern(s string) string { return "%" + likeEscaper.Replace(s) + "%" }

// FindUsers returns the users f selects in (created_at, id) order. Email
// and username are compared lower-cased, so the match ignores case on both
// engines (SQLite's LIKE would, PostgreSQL's would not).
func (s store) FindUsers(ctx context.Context, f auth.UserFilter) ([]auth.User, error) {
	var where []string
	var args []any
	if f.Query != "" {
		p := containsPattern(f.Query)
		match := `lower(u.email) LIKE ? ESCAPE '\' OR lower(u.username) LIKE ? ESCAPE '\' OR u.phone LIKE ? ESCAPE '\'`
		args = append(args, p, p, p)
		if f.PhoneDigits != "" {
			match += ` OR u.phone LIKE ? ESCAPE '\'`
			args = append(args, containsPattern(f.PhoneDigits))
		}
		where = append(where, "("+match+")")
	}
	if f.After != nil {
		at := micros(f.After.CreatedAt)
		where = append(where, `(u.created_at > ? OR (u.created_at = ? AND u.id > ?))`)
		args = append(args, at, at, f.After.ID)
	}
	query := `SELECT ` + userColumns + ` FROM users u`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY u.created_at, u.id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find users: %w", mapErr(err))
	}
	users, err := scanRows(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	return users, nil
}

// SetUserDisabled sets the user's disabled flag and updated_at;
// auth.ErrNotFound when there is no such user.
func (s store) SetUserDisabled(ctx context.Context, userID string, disabled bool, at time.Time) error {
	err := s.updateOne(ctx, `UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?`, disabled, micros(at), userID)
	if err != nil {
		return fmt.Errorf("set disabled of user %s: %w", userID, err)
	}
	return nil
}

// SetSessionEnrollmentOnly sets or clears the session's enrolment-only
// flag; auth.ErrNotFound when the session does not exist.
func (s store) SetSessionEnrollmentOnly(ctx context.Context, sessionID string, on bool) error {
	err := s.updateOne(ctx, `UPDATE sessions SET enrollment_only = ? WHERE id = ?`, on, sessionID)
	if err != nil {
		return fmt.Errorf("set enrollment_only of session %s: %w", sessionID, err)
	}
	return nil
}

// CountStrandedUsers counts users who have a confirmed factor but none
// whose method is in usable.
func (s store) CountStrandedUsers(ctx context.Context, usable []string) (int, error) {
	query := `SELECT count(DISTINCT f.user_id) FROM factors f WHERE f.confirmed_at IS NOT NULL`
	var args []any
	if len(usable) > 0 {
		query += ` AND NOT EXISTS (SELECT 1 FROM factors g
			WHERE g.user_id = f.user_id AND g.confirmed_at IS NOT NULL AND g.method IN (?` +
			strings.Repeat(`, ?`, len(usable)-1) + `))`
		for _, m := range usable {
			args = append(args, m)
		}
	}
	var n int
	if err := s.queryRow(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count stranded users: %w", mapErr(err))
	}
	return n, nil
}

// FindAuditEvents returns the events f selects, newest first (ties by id,
// descending).
func (s store) FindAuditEvents(ctx context.Context, f auth.AuditFilter) ([]auth.AuditEvent, error) {
	var where []string
	var args []any
	add := func(cond string, vs ...any) {
		where = append(where, cond)
		args = append(args, vs...)
	}
	if f.UserID != "" {
		add(`user_id = ?`, f.UserID)
	}
	if f.ActorID != "" {
		add(`actor_id = ?`, f.ActorID)
	}
	if f.Type != "" {
		add(`type = ?`, f.Type)
	}
	if !f.Since.IsZero() {
		add(`time >= ?`, micros(f.Since))
	}
	if !f.Until.IsZero() {
		add(`time < ?`, micros(f.Until))
	}
	if f.Before != nil {
		at := micros(f.Before.Time)
		add(`(time < ? OR (time = ? AND id < ?))`, at, at, f.Before.ID)
	}
	query := `SELECT id, time, type, user_id, actor_id, ip, user_agent, detail FROM audit_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY time DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find audit events: %w", mapErr(err))
	}
	events, err := scanRows(rows, scanAuditEvent)
	if err != nil {
		return nil, fmt.Errorf("find audit events: %w", err)
	}
	return events, nil
}

// scanAuditEvent reads id, time, type, user_id, actor_id, ip, user_agent,
// detail.
func scanAuditEvent(row scanner) (auth.AuditEvent, error) {
	var e auth.AuditEvent
	var at int64
	var user, actor, detail sql.NullString
	if err := row.Scan(&e.ID, &at, &e.Type, &user, &actor, &e.IP, &e.UserAgent, &detail); err != nil {
		return auth.AuditEvent{}, mapErr(err)
	}
	e.Time = fromMicros(at)
	e.UserID = user.String
	e.ActorID = actor.String
	if detail.Valid {
		if err := json.Unmarshal([]byte(detail.String), &e.Detail); err != nil {
			return auth.AuditEvent{}, fmt.Errorf("audit event %s: decode detail: %w", e.ID, err)
		}
	}
	return e, nil
}

// DB runs each administration method on the pool it needs; the contracts
// are auth.Tx's.

// Settings returns the stored settings; auth.ErrNotFound when none.
func (db *DB) Settings(ctx context.Context) (auth.SettingsRecord, error) {
	return db.r.Settings(ctx)
}

// SaveSettings stores r if its version follows the stored one.
func (db *DB) SaveSettings(ctx context.Context, r auth.SettingsRecord) error {
	return db.w.SaveSettings(ctx, r)
}

// FindUsers returns the users f selects in (created_at, id) order.
func (db *DB) FindUsers(ctx context.Context, f auth.UserFilter) ([]auth.User, error) {
	return db.r.FindUsers(ctx, f)
}

// SetUserDisabled sets the user's disabled flag.
func (db *DB) SetUserDisabled(ctx context.Context, userID string, disabled bool, at time.Time) error {
	return db.w.SetUserDisabled(ctx, userID, disabled, at)
}

// SetSessionEnrollmentOnly sets or clears the session's enrolment-only flag.
func (db *DB) SetSessionEnrollmentOnly(ctx context.Context, sessionID string, on bool) error {
	return db.w.SetSessionEnrollmentOnly(ctx, sessionID, on)
}

// CountStrandedUsers counts users with confirmed factors, none of them usable.
func (db *DB) CountStrandedUsers(ctx context.Context, usable []string) (int, error) {
	return db.r.CountStrandedUsers(ctx, usable)
}

// FindAuditEvents returns the events f selects, newest first.
func (db *DB) FindAuditEvents(ctx context.Context, f auth.AuditFilter) ([]auth.AuditEvent, error) {
	return db.r.FindAuditEvents(ctx, f)
}

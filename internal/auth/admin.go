package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuthorizeAdmin lets p act as an administrator: the user holds RoleAdmin
// and, while the settings require 2FA for admins, the session passed a
// second factor. Anything else is ErrForbidden, the same for every caller
// and every target, so a refusal tells nothing about other accounts.
func (s *Service) AuthorizeAdmin(ctx context.Context, p Principal) error {
	if !p.User.HasRole(RoleAdmin) || p.User.Disabled || p.Session.EnrollmentOnly {
		return ErrForbidden
	}
	if s.policy(ctx).requiresTwoFa([]string{RoleAdmin}) && p.Session.SecondFactorAt == nil {
		return ErrForbidden
	}
	return nil
}

// adminEvent is an audit event caused by admin about userID (empty when it
// is about no user).
func (s *Service) adminEvent(typ, userID string, admin Principal, meta RequestMeta, detail map[string]any) AuditEvent {
	e := s.event(typ, userID, meta, detail)
	e.ActorID = admin.User.ID
	return e
}

// Page sizes of the admin lists.
const (
	defaultUserPage  = 50
	maxUserPage      = 100
	defaultAuditPage = 100
	maxAuditPage     = 1000
	maxQueryBytes    = 256
)

// UserFilter selects users for the admin list: a case-insensitive
// substring of the email, username or phone (PhoneDigits, when not empty,
// also matches the digits of the phone), in (CreatedAt, ID) order after
// After, at most Limit.
type UserFilter struct {
	Query       string // lower case; empty: every user
	PhoneDigits string
	After       *UserKey
	Limit       int
}

// UserKey is a position in the admin user list.
type UserKey struct {
	CreatedAt time.Time
	ID        string
}

// UserQuery asks for one page of the admin user list. Limit 0 means 50;
// Cursor is empty or a NextCursor from the previous page.
type UserQuery struct {
	Query  string
	Limit  int
	Cursor string
}

// UserPage is one page of users, oldest first. NextCursor is empty on the
// last page.
type UserPage struct {
	Users      []User
	NextCursor string
}

// ListUsers searches users (administrators only). A limit outside 1 to 100
// or a cursor this server did not make is a *ValidationError.
func (s *Service) ListUsers(ctx context.Context, admin Principal, q UserQuery) (UserPage, error) {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return UserPage{}, err
	}
	limit, err := pageLimit(q.Limit, defaultUserPage, maxUserPage)
	if err != nil {
		return UserPage{}, err
	}
	query := strings.ToLower(strings.TrimSpace(q.Query))
	if len(query) > maxQueryBytes {
		return UserPage{}, invalid("query", fmt.Sprintf("must be at most %d bytes", maxQueryBytes))
	}
	f := UserFilter{Query: query, PhoneDigits: phoneDigits(query), Limit: limit + 1}
	if q.Cursor != "" {
		at, id, err := decodeCursor(userCursorKind, q.Cursor)
		if err != nil {
			return UserPage{}, err
		}
		f.After = &UserKey{CreatedAt: at, ID: id}
	}
	users, err := s.store.FindUsers(ctx, f)
	if err != nil {
		return UserPage{}, fmt.Errorf("list users: %w", err)
	}
	page := UserPage{Users: users}
	if len(users) > limit {
		page.Users = users[:limit]
		last := page.Users[limit-1]
		page.NextCursor = encodeCursor(userCursorKind, last.CreatedAt, last.ID)
	}
	return page, nil
}

// phoneDigits returns the digits of a query that looks like a formatted
// phone number ("+1 (415) 555-2671"), so it finds the stored E.164 form;
// "" for anything else.
func phoneDigits(q string) string {
	var b strings.Builder
	for _, r := range q {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case strings.ContainsRune("+-(). ", r):
		default:
			return ""
		}
	}
	if b.Len() == len(q) {
		return "" // plain digits: Query already matches them
	}
	return b.String()
}

// AdminUser returns a user and their second factors (administrators
// only); ErrNotFound when there is no such user. The status's SudoUntil is
// always nil: sudo belongs to a session.
func (s *Service) AdminUser(ctx context.Context, admin Principal, userID string) (User, TwoFaStatus, error) {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return User{}, TwoFaStatus{}, err
	}
	u, err := s.targetUser(ctx, userID)
	if err != nil {
		return User{}, TwoFaStatus{}, err
	}
	st, err := s.TwoFaStatus(ctx, Principal{User: u})
	if err != nil {
		return User{}, TwoFaStatus{}, err
	}
	st.SudoUntil = nil
	return u, st, nil
}

// targetUser loads the user an admin action is about.
func (s *Service) targetUser(ctx context.Context, userID string) (User, error) {
	if userID == "" || len(userID) > 64 {
		return User{}, fmt.Errorf("user: %w", ErrNotFound)
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return User{}, fmt.Errorf("user: %w", err)
	}
	return u, nil
}

// keepOwnSession is the session an admin action on userID leaves alone:
// the acting admin's own, when they act on themself.
func keepOwnSession(admin Principal, userID string) string {
	if admin.User.ID == userID {
		return admin.Session.ID
	}
	return ""
}

// ResetTwoFa removes a user's second factors, pending ones included, their
// backup codes and their second-factor lock, and revokes their sessions
// (administrators only; ErrNotFound for an unknown user). Their next
// sign-in needs only the password, or enrolment if their role requires
// 2FA. It returns how many sessions it revoked.
func (s *Service) ResetTwoFa(ctx context.Context, admin Principal, userID string, meta RequestMeta) (int, error) {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return 0, err
	}
	u, err := s.targetUser(ctx, userID)
	if err != nil {
		return 0, err
	}
	factors, err := s.store.FactorsByUser(ctx, u.ID)
	if err != nil {
		return 0, fmt.Errorf("reset 2fa: %w", err)
	}
	now := s.clock()
	var n int
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := tx.DeleteUserFactors(ctx, u.ID); err != nil {
			return err
		}
		if err := tx.ReplaceBackupCodes(ctx, u.ID, nil, now); err != nil {
			return err
		}
		if n, err = tx.RevokeUserSessions(ctx, u.ID, keepOwnSession(admin, u.ID), now); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.adminEvent(EventAdminTwoFaReset, u.ID, admin, meta, map[string]any{
			"factors_removed": len(confirmed(factors)), "sessions_revoked": n,
		}))
	})
	if err != nil {
		return 0, fmt.Errorf("reset 2fa: %w", err)
	}
	// The lockout counters may live in Redis, outside the transaction.
	for _, key := range []string{lockKeyPrefix + u.ID, enrolKeyPrefix + u.ID} {
		if err := s.store.ResetAttempts(ctx, key); err != nil {
			return n, fmt.Errorf("reset 2fa: clear lockout: %w", err)
		}
	}
	return n, nil
}

// RevokeSessions signs a user out everywhere (administrators only;
// ErrNotFound for an unknown user). An admin acting on themself keeps the
// session they act from. It returns how many sessions it revoked.
func (s *Service) RevokeSessions(ctx context.Context, admin Principal, userID string, meta RequestMeta) (int, error) {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return 0, err
	}
	u, err := s.targetUser(ctx, userID)
	if err != nil {
		return 0, err
	}
	now := s.clock()
	var n int
	err = s.store.WithTx(ctx, func(tx Tx) error {
		var err error
		if n, err = tx.RevokeUserSessions(ctx, u.ID, keepOwnSession(admin, u.ID), now); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.adminEvent(EventSessionRevoked, u.ID, admin, meta, map[string]any{
			"reason": "admin", "sessions_revoked": n,
		}))
	})
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	return n, nil
}

// SetUserDisabled disables or enables an account (administrators only;
// ErrNotFound for an unknown user). A disabled account cannot sign in and
// its sessions are revoked; an admin cannot disable themself
// (ErrConflict). It returns how many sessions it revoked.
func (s *Service) SetUserDisabled(ctx context.Context, admin Principal, userID string, disabled bool, meta RequestMeta) (int, error) {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return 0, err
	}
	u, err := s.targetUser(ctx, userID)
	if err != nil {
		return 0, err
	}
	if disabled && u.ID == admin.User.ID {
		return 0, fmt.Errorf("disable user: %w: you cannot disable your own account", ErrConflict)
	}
	typ := EventAdminUserEnabled
	if disabled {
		typ = EventAdminUserDisabled
	}
	now := s.clock()
	var n int
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := tx.SetUserDisabled(ctx, u.ID, disabled, now); err != nil {
			return err
		}
		if disabled {
			var err error
			if n, err = tx.RevokeUserSessions(ctx, u.ID, "", now); err != nil {
				return err
			}
		}
		return tx.AppendAudit(ctx, s.adminEvent(typ, u.ID, admin, meta, map[string]any{
			"was_disabled": u.Disabled, "sessions_revoked": n,
		}))
	})
	if err != nil {
		return 0, fmt.Errorf("set user disabled: %w", err)
	}
	return n, nil
}

// AuditFilter selects audit events, newest first: of one user and/or
// actor, of one type, at or after Since and before Until (zero: no bound),
// strictly older than Before, at most Limit.
type AuditFilter struct {
	UserID  string
	ActorID string
	Type    string
	Since   time.Time
	Until   time.Time
	Before  *AuditKey
	Limit   int
}

// AuditKey is a position in the audit log.
type AuditKey struct {
	Time time.Time
	ID   string
}

// AuditQuery asks for one page of the audit log. Limit 0 means 100;
// Cursor is empty or a NextCursor from the previous page of the same
// query.
type AuditQuery struct {
	UserID  string
	ActorID string
	Type    string
	Since   time.Time
	Until   time.Time
	Limit   int
	Cursor  string
}

// AuditPage is one page of audit events, newest first. NextCursor is empty
// on the last page.
type AuditPage struct {
	Events     []AuditEvent
	NextCursor string
}

// AuditEvents reads the audit log (administrators only). A limit outside 1
// to 1000 or a cursor this server did not make is a *ValidationError.
func (s *Service) AuditEvents(ctx context.Context, admin Principal, q AuditQuery) (AuditPage, error) {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return AuditPage{}, err
	}
	limit, err := pageLimit(q.Limit, defaultAuditPage, maxAuditPage)
	if err != nil {
		return AuditPage{}, err
	}
	for field, v := range map[string]string{"userId": q.UserID, "actorId": q.ActorID, "type": q.Type} {
		if len(v) > 64 {
			return AuditPage{}, invalid(field, "must be at most 64 bytes")
		}
	}
	f := AuditFilter{UserID: q.UserID, ActorID: q.ActorID, Type: q.Type, Since: q.Since, Until: q.Until, Limit: limit + 1}
	if q.Cursor != "" {
		at, id, err := decodeCursor(auditCursorKind, q.Cursor)
		if err != nil {
			return AuditPage{}, err
		}
		f.Before = &AuditKey{Time: at, ID: id}
	}
	events, err := s.store.FindAuditEvents(ctx, f)
	if err != nil {
		return AuditPage{}, fmt.Errorf("audit events: %w", err)
	}
	page := AuditPage{Events: events}
	if len(events) > limit {
		page.Events = events[:limit]
		last := page.Events[limit-1]
		page.NextCursor = encodeCursor(auditCursorKind, last.Time, last.ID)
	}
	return page, nil
}

// RecordAuditExport audits that admin exported the audit log with q's
// filter (administrators only).
func (s *Service) RecordAuditExport(ctx context.Context, admin Principal, q AuditQuery, meta RequestMeta) error {
	if err := s.AuthorizeAdmin(ctx, admin); err != nil {
		return err
	}
	detail := map[string]any{}
	for k, v := range map[string]string{"user_id": q.UserID, "actor_id": q.ActorID, "type": q.Type} {
		if v != "" {
			detail[k] = v
		}
	}
	for k, t := range map[string]time.Time{"since": q.Since, "until": q.Until} {
		if !t.IsZero() {
			detail[k] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	if err := s.store.AppendAudit(ctx, s.adminEvent(EventAdminAuditExported, "", admin, meta, detail)); err != nil {
		return fmt.Errorf("record audit export: %w", err)
	}
	return nil
}

func pageLimit(limit, def, most int) (int, error) {
	switch {
	case limit == 0:
		return def, nil
	case limit < 1 || limit > most:
		return 0, invalid("limit", fmt.Sprintf("must be 1 to %d", most))
	}
	return limit, nil
}

// Cursor kinds: a cursor of one list is refused by the other.
const (
	userCursorKind  = "u1"
	auditCursorKind = "a1"
)

// encodeCursor makes the opaque cursor for a position (time, id) in a list.
// Cursors are not secret: they only say where a page starts in a list the
// admin may read anyway.
func encodeCursor(kind string, at time.Time, id string) string {
	raw := kind + ":" + strconv.FormatInt(at.UnixMicro(), 10) + ":" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(kind, cursor string) (time.Time, string, error) {
	bad := invalid("cursor", "is not a cursor from this list")
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(cursor) > 256 {
		return time.Time{}, "", bad
	}
	k, rest, ok := strings.Cut(string(raw), ":")
	if !ok || k != kind {
		return time.Time{}, "", bad
	}
	us, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return time.Time{}, "", bad
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(n).UTC(), id, nil
}

package auth

import (
	"context"
	"time"
)

// Store is what auth needs from storage. Every method of Tx may be called on
// the Store directly (each call its own transaction), or inside WithTx, where
// all calls commit or roll back together.
type Store interface {
	Tx
	// WithTx runs fn in one transaction. It commits when fn returns nil and
	// rolls back otherwise, returning fn's error.
	WithTx(ctx context.Context, fn func(tx Tx) error) error
}

// Tx is the set of storage operations, split by concern.
type Tx interface {
	userStore
	sessionStore
	challengeStore
	factorStore
	backupCodeStore
	smsCodeStore
	auditStore
	counterStore
	settingsStore
	adminStore
	handoffStore
}

type userStore interface {
	// CreateUser inserts u. A taken email or username is ErrConflict.
	CreateUser(ctx context.Context, u User) error
	// UserByID returns ErrNotFound when there is no such user.
	UserByID(ctx context.Context, id string) (User, error)
	// UserByEmail and UserByUsername look up by the lower-case value.
	UserByEmail(ctx context.Context, email string) (User, error)
	UserByUsername(ctx context.Context, username string) (User, error)
	// UpdatePasswordHash replaces the stored hash (rehash on login).
	UpdatePasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	// SetUserPhone sets the user's phone and whether it is verified. A
	// phone verified on another account is ErrConflict.
	SetUserPhone(ctx context.Context, userID, phone string, verified bool, at time.Time) error
	// UserByPhone finds the account whose VERIFIED phone this is;
	// ErrNotFound otherwise.
	UserByPhone(ctx context.Context, phone string) (User, error)
}

type sessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	// SessionWithUser returns the session and its user in one read;
	// ErrNotFound when the session does not exist.
	SessionWithUser(ctx context.Context, sessionID string) (Session, User, error)
	// MarkSecondFactor records that the session passed a second factor at
	// at and sets its amr.
	MarkSecondFactor(ctx context.Context, sessionID string, at time.Time, amr []string) error
	// RevokeSession sets revoked_at unless already set; it reports whether
	// it changed the row.
	RevokeSession(ctx context.Context, sessionID string, at time.Time) (bool, error)
	// RevokeUserSessions revokes every active session of the user except
	// exceptID (may be empty) and returns how many it revoked.
	RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time) (int, error)
	// ExtendSession sets expires_at.
	ExtendSession(ctx context.Context, sessionID string, expiresAt time.Time) error
	// SetSessionEnrollmentOnly sets or clears the session's enrolment-only
	// flag; ErrNotFound when the session does not exist.
	SetSessionEnrollmentOnly(ctx context.Context, sessionID string, on bool) error

	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshTokenByHash returns ErrNotFound for an unknown hash.
	RefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error)
	// DeleteRefreshTokens deletes every refresh token of the session (a
	// step-up hands out a new pair; the old token then simply stops
	// working).
	DeleteRefreshTokens(ctx context.Context, sessionID string) error
	// UseRefreshToken sets used_at only if it is unset and reports whether
	// it did (false: already used, possibly by a concurrent request).
	UseRefreshToken(ctx context.Context, hash []byte, at time.Time) (bool, error)
}

type challengeStore interface {
	CreateChallenge(ctx context.Context, c Challenge) error
	// ChallengeWithUser returns the challenge and its user in one read;
	// ErrNotFound for an unknown hash.
	ChallengeWithUser(ctx context.Context, hash []byte) (Challenge, User, error)
	// ReserveChallengeAttempt adds one to attempts if the challenge is
	// unused, unexpired at now and has fewer than max attempts; it reports
	// whether it did.
	ReserveChallengeAttempt(ctx context.Context, hash []byte, max int, now time.Time) (bool, error)
	// ConsumeChallenge sets used_at if the challenge is unused, unexpired at
	// at and below max attempts, and reports whether it did.
	ConsumeChallenge(ctx context.Context, hash []byte, max int, at time.Time) (bool, error)
}

type factorStore interface {
	CreateFactor(ctx context.Context, f Factor) error
	// FactorsByUser returns the user's factors, confirmed or pending, oldest
	// first.
	FactorsByUser(ctx context.Context, userID string) ([]Factor, error)
	ConfirmFactor(ctx context.Context, factorID string, at time.Time) error
	// AdvanceFactorStep sets last_step = step and last_used_at = at only if
	// step > last_step, and reports whether it did. This is what makes a
	// TOTP time step single use.
	AdvanceFactorStep(ctx context.Context, factorID string, step int64, at time.Time) (bool, error)
	DeleteFactor(ctx context.Context, factorID string) error
	DeleteUserFactors(ctx context.Context, userID string) error
	// SetFactorLabel sets a factor's label; ErrNotFound when the factor
	// does not exist.
	SetFactorLabel(ctx context.Context, factorID, label string) error
}

type backupCodeStore interface {
	// ReplaceBackupCodes deletes the user's codes and stores hashes.
	ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error
	// UseBackupCode marks the user's unused code with this hash used and
	// reports whether it did.
	UseBackupCode(ctx context.Context, userID string, hash []byte, at time.Time) (bool, error)
	// CountBackupCodes counts the user's unused codes.
	CountBackupCodes(ctx context.Context, userID string) (int, error)
}

type smsCodeStore interface {
	// SaveSMSCode stores c as the live code for (c.Purpose, c.Subject). When
	// one exists and is still live (unused, unexpired at c.LastSentAt) it is
	// a resend: the code hash, phone, user and expiry are replaced, sends
	// grows by one and attempts are kept. Otherwise it starts afresh. It
	// returns the stored row.
	SaveSMSCode(ctx context.Context, c SMSCode) (SMSCode, error)
	// SMSCodeFor returns the code for (purpose, subject); ErrNotFound when
	// none.
	SMSCodeFor(ctx context.Context, purpose, subject string) (SMSCode, error)
	// ReserveSMSCodeAttempt adds one to attempts if the code is unused,
	// unexpired at now and below max attempts, and reports whether it did.
	ReserveSMSCodeAttempt(ctx context.Context, id string, max int, now time.Time) (bool, error)
	// ConsumeSMSCode sets used_at if unset and reports whether it did.
	ConsumeSMSCode(ctx context.Context, id string, at time.Time) (bool, error)
}

type auditStore interface {
	// AppendAudit writes the events (one statement for all of them).
	AppendAudit(ctx context.Context, events ...AuditEvent) error
}

type settingsStore interface {
	// Settings returns the stored settings; ErrNotFound when none were
	// saved yet.
	Settings(ctx context.Context) (SettingsRecord, error)
	// SaveSettings stores r if r.Version is one more than the stored
	// version (1 when none is stored), and ErrConflict otherwise.
	SaveSettings(ctx context.Context, r SettingsRecord) error
}

// adminStore is what the administration use cases read and change.
type adminStore interface {
	// FindUsers returns the users f selects in (created_at, id) order.
	FindUsers(ctx context.Context, f UserFilter) ([]User, error)
	// SetUserDisabled sets the user's disabled flag and updated_at;
	// ErrNotFound when there is no such user.
	SetUserDisabled(ctx context.Context, userID string, disabled bool, at time.Time) error
	// CountStrandedUsers counts users who have a confirmed factor but none
	// whose method is among usable (factor methods: MethodAuthenticator,
	// MethodSMS).
	CountStrandedUsers(ctx context.Context, usable []string) (int, error)
	// FindAuditEvents returns the events f selects, newest first (ties by
	// id, descending).
	FindAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
}

// counterStore holds short-lived counters: login throttling, second-factor
// lockout and per-IP windows.
type counterStore interface {
	// ReserveAttempt atomically reads the counter for key, asks policy
	// whether an attempt may go ahead, and if so counts it (failures+1,
	// last_at=now), so that concurrent attempts can never exceed the
	// policy. It returns policy's wait when the attempt is refused.
	ReserveAttempt(ctx context.Context, key string, now time.Time, policy AttemptPolicy) (time.Duration, error)
	// ResetAttempts clears the counter for key.
	ResetAttempts(ctx context.Context, key string) error
	// AttemptState reads the counter for key (zero state when absent).
	AttemptState(ctx context.Context, key string) (AttemptState, error)
	// HitWindow adds one to the counter for key in the fixed window that
	// starts at window and returns the new count.
	HitWindow(ctx context.Context, key string, window time.Time) (int64, error)
}

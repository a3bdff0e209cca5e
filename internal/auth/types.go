// Package auth is twostep's domain: accounts, sessions, second factors and
// the rules that govern them (throttling, lockout, single use, sudo). It
// talks to storage, clocks and randomness only through what it is given.
package auth

import (
	"time"
)

// Roles a user may hold.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Second-factor methods as the contract names them.
const (
	MethodAuthenticator = "authenticator"
	MethodSMS           = "sms"
	MethodCall          = "call"
	MethodBackup        = "backup"
)

// Authentication method references carried in the access token's amr claim
// (RFC 8176).
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
	AMRSMS      = "sms"
	AMRBackup   = "kba"
)

// User is an account. Empty strings mean "none" for Email, Username, Phone
// and PasswordHash.
type User struct {
	ID            string
	Email         string // lower case
	Username      string // lower case
	Phone         string // E.164
	PhoneVerified bool
	PasswordHash  string // argon2id PHC string
	Roles         []string
	Disabled      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// TwoFaEnabled is derived on read: the user has a confirmed factor.
	TwoFaEnabled bool
}

// HasRole reports whether u holds role.
func (u User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Session is one signed-in device. Its refresh tokens rotate; its access
// tokens carry its id as sid, and the server refuses them once RevokedAt is
// set.
type Session struct {
	ID             string
	UserID         string
	CreatedAt      time.Time
	ExpiresAt      time.Time  // the session ends here unless a refresh extends it
	AuthAt         time.Time  // the password (or phone) step
	SecondFactorAt *time.Time // last time this session passed a second factor
	AMR            []string
	RevokedAt      *time.Time
	IP             string
	UserAgent      string
	// EnrollmentOnly marks a session whose tokens may only enrol a second
	// factor (policy requires 2FA and the user has none).
	EnrollmentOnly bool
}

// Active reports whether s can still be used at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt)
}

// RefreshToken is a stored refresh token: only the SHA-256 of the opaque
// value is kept.
type RefreshToken struct {
	Hash      []byte
	SessionID string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// Challenge is the state between a password step and its second factor.
// Only the SHA-256 of the opaque challenge token is stored.
type Challenge struct {
	Hash      []byte
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	Attempts  int
	UsedAt    *time.Time
	AMR       []string // what the first step proved, e.g. ["pwd"]
	IP        string
	UserAgent string
}

// Factor is one second factor of a user: an authenticator (TOTP) or a phone
// for SMS and voice codes. An unconfirmed factor is pending enrolment.
type Factor struct {
	ID           string
	UserID       string
	Method       string // MethodAuthenticator or MethodSMS
	Label        string
	SealedSecret []byte // TOTP secret sealed with the encryption keyring
	Phone        string // E.164, for sms
	ConfirmedAt  *time.Time
	LastStep     int64 // last accepted TOTP time step; 0 when none
	CreatedAt    time.Time
	LastUsedAt   *time.Time
}

// Confirmed reports whether the factor finished enrolment.
func (f Factor) Confirmed() bool { return f.ConfirmedAt != nil }

// AuditEvent is one row of the audit log. Detail never holds a secret, a
// code or a token.
type AuditEvent struct {
	ID        string
	Time      time.Time
	Type      string
	UserID    string
	ActorID   string
	IP        string
	UserAgent string
	Detail    map[string]any
}

// Audit event types (the contract's list).
const (
	EventLoginSucceeded   = "login.succeeded"
	EventLoginFailed      = "login.failed"
	EventChallengeSent    = "twofa.challenge.sent"
	EventVerifySucceeded  = "twofa.verify.succeeded"
	EventVerifyFailed     = "twofa.verify.failed"
	EventTwoFaEnabled     = "twofa.enabled"
	EventTwoFaDisabled    = "twofa.disabled"
	EventTwoFaLocked      = "twofa.locked"
	EventBackupGenerated  = "backup.generated"
	EventBackupUsed       = "backup.used"
	EventPhoneVerified    = "phone.verified"
	EventSessionRevoked   = "session.revoked"
	EventSettingsChanged  = "settings.changed"
	EventAdminTwoFaReset  = "admin.twofa.reset"
	EventUserRegistered   = "user.registered"
	EventRefreshReuse     = "session.refresh_reused"
	EventLoginThrottled   = "login.throttled"
	EventAdminUserCreated = "admin.user.created"
	// Administration beyond the contract's list.
	EventAdminUserDisabled  = "admin.user.disabled"
	EventAdminUserEnabled   = "admin.user.enabled"
	EventAdminAuditExported = "admin.audit.exported"
)

// AttemptState is what an attempt counter holds.
type AttemptState struct {
	Failures int
	LastAt   time.Time // time of the last counted attempt; zero when none
}

// AttemptPolicy decides, from a counter's state, how long the next attempt
// must wait (0: allowed now). reset asks that the counter start again from
// zero before this attempt is counted (for example once a lock has expired).
type AttemptPolicy func(s AttemptState, now time.Time) (wait time.Duration, reset bool)

// SMS code purposes: a code issued for one cannot complete another.
const (
	PurposeLogin             = "login"
	PurposeEnrolment         = "enrolment"
	PurposePhoneVerification = "phone_verification"
	PurposePhoneSignIn       = "phone_signin"
	PurposePhoneSignUp       = "phone_signup"
	// PurposeSudo is a code a signed-in session asked for to step up to
	// sudo mode; it is bound to that session.
	PurposeSudo = "sudo"
)

// SMSCode is a live SMS or voice code. Only an HMAC of the code is stored.
// Subject binds it: the challenge (hex of its hash) for a login, the session
// ("session:" and its id) for a step-up to sudo, the user id for enrolment
// and phone changes, the phone for phone sign-in and sign-up.
type SMSCode struct {
	ID         string
	Purpose    string
	Subject    string
	UserID     string // empty for a phone sign-up before the account exists
	Phone      string // E.164
	CodeHash   []byte
	Attempts   int
	Sends      int
	CreatedAt  time.Time
	LastSentAt time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
}

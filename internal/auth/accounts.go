package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twostep-auth/twostep/internal/password"
	"github.com/twostep-auth/twostep/internal/token"
)

// RegisterInput is a sign-up with email and password.
type RegisterInput struct {
	Email    string
	Username string
	Password string
	Phone    string
	Roles    []string // empty: RoleUser
}

// Register creates an account. A taken email or username is ErrConflict;
// bad fields are a *ValidationError.
func (s *Service) Register(ctx context.Context, in RegisterInput, meta RequestMeta) (User, error) {
	email, username, problems := normalizeIdentity(in.Email, in.Username)
	if err := password.CheckPolicy(in.Password); err != nil {
		problems["password"] = err.Error()
	}
	var phone string
	if in.Phone != "" {
		p, err := NormalizePhone(in.Phone)
		if err != nil {
			return User{}, err
		}
		phone = p
	}
	if len(problems) > 0 {
		return User{}, &ValidationError{Problems: problems}
	}
	if err := s.hitIPWindow(ctx, "signup", meta); err != nil {
		return User{}, err
	}
	hash, err := s.passwords.Hash(ctx, in.Password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	roles := in.Roles
	if len(roles) == 0 {
		roles = []string{RoleUser}
	}
	now := s.clock()
	u := User{
		ID:           s.newID(),
		Email:        email,
		Username:     username,
		Phone:        phone,
		PasswordHash: hash,
		Roles:        roles,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(EventUserRegistered, u.ID, meta, map[string]any{"roles": roles}))
	})
	if errors.Is(err, ErrConflict) {
		return User{}, fmt.Errorf("register: %w: an account with this email or username exists", ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	s.registerPhone(ctx, u, meta)
	return u, nil
}

// normalizeIdentity checks and lower-cases an email (required) and a
// username (optional), returning the problems it found.
func normalizeIdentity(email, username string) (string, string, map[string]string) {
	problems := map[string]string{}
	email = strings.ToLower(strings.TrimSpace(email))
	switch {
	case email == "":
		problems["email"] = "is required"
	case len(email) > 254 || !validEmail(email):
		problems["email"] = "is not a valid email address"
	}
	username = strings.ToLower(strings.TrimSpace(username))
	if username != "" && !validUsername(username) {
		problems["username"] = "must be 3 to 32 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
	}
	return email, username, problems
}

// validEmail accepts a plain ASCII address (an internationalised domain
// goes in its xn-- form). Non-ASCII addresses are refused: they have no
// single lower-case form and look-alike spellings (composed and decomposed
// accents, U+FFFD from broken UTF-8) would make distinct accounts that
// print the same.
func validEmail(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at <= 64 && validDomain(s[at+1:]) && !strings.ContainsAny(s, " \t\r\n<>")
}

// validDomain accepts a lower-case host name of at least two labels, each
// 1 to 63 letters, digits or inner hyphens (RFC 1123).
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '.' || r == '_' || r == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// LoginInput is a password login by email or username.
type LoginInput struct {
	Login    string // email or username
	Password string
}

// LoginResult is either Tokens (done) or a Challenge (a second factor is
// needed).
type LoginResult struct {
	User      User
	Tokens    *Tokens
	Challenge *ChallengeResult
	// EnrollmentRequired is set when the tokens may only enrol a second
	// factor.
	EnrollmentRequired bool
}

// ChallengeResult is a pending second step.
type ChallengeResult struct {
	Token     string
	Methods   []string
	ExpiresIn int // seconds
}

// Login checks a password. Unknown accounts and wrong passwords answer
// ErrInvalidCredentials after the same work; too many failures answer a
// *RateLimitError. A user with a second factor gets a challenge instead of
// tokens.
func (s *Service) Login(ctx context.Context, in LoginInput, meta RequestMeta) (LoginResult, error) {
	login := strings.ToLower(strings.TrimSpace(in.Login))
	if login == "" || len(login) > 254 {
		return LoginResult{}, invalid("email", "is required")
	}
	if in.Password == "" || len(in.Password) > password.MaxLength {
		// Refused before any lookup: it cannot be anyone's password.
		return LoginResult{}, ErrInvalidCredentials
	}
	if err := s.hitIPWindow(ctx, "login", meta); err != nil {
		return LoginResult{}, err
	}

	var u User
	var err error
	if strings.Contains(login, "@") {
		u, err = s.store.UserByEmail(ctx, login)
	} else {
		u, err = s.store.UserByUsername(ctx, login)
	}
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return LoginResult{}, fmt.Errorf("login: look up user: %w", err)
	}

	// The throttle is keyed by the account when it exists, so that email and
	// username share it, and by the typed name otherwise, so that unknown
	// names are throttled exactly like real ones.
	key := "login:name:" + login
	if found {
		key = "login:user:" + u.ID
	}
	now := s.clock()
	wait, err := s.store.ReserveAttempt(ctx, key, now, s.loginPolicy)
	if err != nil {
		return LoginResult{}, fmt.Errorf("login: reserve attempt: %w", err)
	}
	if wait > 0 {
		if found {
			s.audit(ctx, s.event(EventLoginFailed, u.ID, meta, map[string]any{"reason": "throttled"}))
		}
		s.logger.WarnContext(ctx, "login throttled", "event", "login_failed", "reason", "throttled", "user_id", u.ID)
		return LoginResult{}, &RateLimitError{RetryAfter: wait, Reason: "too many failed logins"}
	}

	var ok, rehash bool
	if found && u.PasswordHash != "" {
		ok, rehash, err = s.passwords.Verify(ctx, in.Password, u.PasswordHash)
	} else {
		err = s.passwords.DummyVerify(ctx, in.Password)
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("login: verify password: %w", err)
	}
	if !ok {
		if found {
			s.audit(ctx, s.event(EventLoginFailed, u.ID, meta, map[string]any{"reason": "password"}))
		}
		s.logger.WarnContext(ctx, "login failed", "event", "login_failed", "user_id", u.ID)
		return LoginResult{}, ErrInvalidCredentials
	}
	if err := s.store.ResetAttempts(ctx, key); err != nil {
		return LoginResult{}, fmt.Errorf("login: reset attempts: %w", err)
	}
	if u.Disabled {
		s.audit(ctx, s.event(EventLoginFailed, u.ID, meta, map[string]any{"reason": "disabled"}))
		return LoginResult{}, fmt.Errorf("login: %w: this account is disabled", ErrForbidden)
	}
	if rehash {
		if h, err := s.passwords.Hash(ctx, in.Password); err == nil {
			if err := s.store.UpdatePasswordHash(ctx, u.ID, h, now); err != nil {
				s.logger.WarnContext(ctx, "rehash password", "user_id", u.ID, "err", err)
			}
		}
	}
	return s.afterFirstFactor(ctx, u, []string{AMRPassword}, meta)
}

// loginPolicy allows LoginFreeFailures attempts in a row, then doubles the
// wait after each further failure (1 s, 2 s, 4 s, … up to LoginMaxDelay),
// and stops password login for good after LoginMaxFailures.
func (s *Service) loginPolicy(st AttemptState, now time.Time) (time.Duration, bool) {
	if st.Failures >= s.cfg.LoginMaxFailures {
		return s.cfg.LoginMaxDelay, false
	}
	if st.Failures < s.cfg.LoginFreeFailures {
		return 0, false
	}
	delay := s.cfg.LoginMaxDelay
	if n := st.Failures - s.cfg.LoginFreeFailures; n < 30 {
		if d := time.Second << n; d < delay {
			delay = d
		}
	}
	if wait := st.LastAt.Add(delay).Sub(now); wait > 0 {
		return wait, false
	}
	return 0, false
}

// hitIPWindow counts one action by the client IP in the current minute and
// refuses it past LoginIPLimit.
func (s *Service) hitIPWindow(ctx context.Context, action string, meta RequestMeta) error {
	if s.cfg.LoginIPLimit <= 0 || meta.IP == "" {
		return nil
	}
	now := s.clock()
	window := now.Truncate(time.Minute)
	n, err := s.store.HitWindow(ctx, action+":ip:"+meta.IP, window)
	if err != nil {
		return fmt.Errorf("%s: count ip: %w", action, err)
	}
	if n > int64(s.cfg.LoginIPLimit) {
		return &RateLimitError{RetryAfter: window.Add(time.Minute).Sub(now), Reason: "too many attempts from this address"}
	}
	return nil
}

// afterFirstFactor finishes a login whose first step (password or phone)
// succeeded: a challenge when the user has a second factor, tokens
// otherwise, which may only enrol one when the user's role requires 2FA.
func (s *Service) afterFirstFactor(ctx context.Context, u User, amr []string, meta RequestMeta) (LoginResult, error) {
	factors, err := s.store.FactorsByUser(ctx, u.ID)
	if err != nil {
		return LoginResult{}, fmt.Errorf("login: load factors: %w", err)
	}
	methods := s.loginMethods(ctx, u.ID, factors)
	if len(methods) > 0 {
		ch, err := s.newChallenge(ctx, u, amr, methods, meta)
		if err != nil {
			return LoginResult{}, err
		}
		return LoginResult{User: u, Challenge: &ch}, nil
	}
	enrol := s.enrollmentRequired(ctx, u)
	tokens, err := s.startSession(ctx, u, amr, nil, enrol, meta, s.event(EventLoginSucceeded, u.ID, meta, map[string]any{"amr": amr}))
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{User: u, Tokens: &tokens, EnrollmentRequired: enrol}, nil
}

// startSession creates a session with its first refresh token and signs an
// access token, writing ev in the same transaction. secondFactorAt is set
// when the login passed a second factor; enrollmentOnly limits the session
// to enrolling one.
func (s *Service) startSession(ctx context.Context, u User, amr []string, secondFactorAt *time.Time, enrollmentOnly bool, meta RequestMeta, ev AuditEvent) (Tokens, error) {
	d, err := s.draftSession(u, amr, secondFactorAt, meta, s.clock())
	if err != nil {
		return Tokens{}, fmt.Errorf("start session: %w", err)
	}
	sess := d.sess
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := d.store(ctx, tx); err != nil {
			return err
		}
		if enrollmentOnly {
			// Flagged in the transaction that creates it, before its
			// tokens leave: it is never usable for more.
			if err := tx.SetSessionEnrollmentOnly(ctx, sess.ID, true); err != nil {
				return err
			}
			ev.Detail = withDetail(ev.Detail, "enrollment_only", true)
		}
		ev.Detail = withDetail(ev.Detail, "session_id", sess.ID)
		return tx.AppendAudit(ctx, ev)
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("start session: %w", err)
	}
	return d.pair.tokens, nil
}

// sessionDraft is a new session with its first token pair, made before
// the transaction that stores it: IDs, random tokens and the signature need
// no writer, which on SQLite is one connection that every login waits for.
type sessionDraft struct {
	sess Session
	pair pairDraft
}

// draftSession makes a session for u starting at now and its tokens.
func (s *Service) draftSession(u User, amr []string, secondFactorAt *time.Time, meta RequestMeta, now time.Time) (sessionDraft, error) {
	sess := Session{
		ID:             s.newID(),
		UserID:         u.ID,
		CreatedAt:      now,
		ExpiresAt:      now.Add(s.cfg.RefreshTTL),
		AuthAt:         now,
		SecondFactorAt: secondFactorAt,
		AMR:            amr,
		IP:             meta.IP,
		UserAgent:      truncate(meta.UserAgent, 512),
	}
	pair, err := s.draftPair(sess.ID, u.ID, amr, sess.ExpiresAt, now)
	if err != nil {
		return sessionDraft{}, err
	}
	return sessionDraft{sess: sess, pair: pair}, nil
}

// store writes the session and its refresh token in tx.
func (d sessionDraft) store(ctx context.Context, tx Tx) error {
	if err := tx.CreateSession(ctx, d.sess); err != nil {
		return err
	}
	return d.pair.store(ctx, tx)
}

// pairDraft is a refresh token and a signed access token, made before the
// transaction that stores the refresh token.
type pairDraft struct {
	refresh RefreshToken
	tokens  Tokens
}

// draftPair makes a refresh token for the session and signs an access
// token.
func (s *Service) draftPair(sessionID, userID string, amr []string, expiresAt, now time.Time) (pairDraft, error) {
	rawRefresh, refreshHash, err := s.opaque(32)
	if err != nil {
		return pairDraft{}, err
	}
	access, err := s.issueAccess(userID, sessionID, amr, now)
	if err != nil {
		return pairDraft{}, err
	}
	return pairDraft{
		refresh: RefreshToken{Hash: refreshHash, SessionID: sessionID, CreatedAt: now, ExpiresAt: expiresAt},
		tokens:  Tokens{AccessToken: access, RefreshToken: rawRefresh, ExpiresIn: int(s.cfg.AccessTTL / time.Second)},
	}, nil
}

// store writes the refresh token in tx.
func (d pairDraft) store(ctx context.Context, tx Tx) error {
	return tx.CreateRefreshToken(ctx, d.refresh)
}

// newPair stores a new refresh token for the session in tx and signs an
// access token.
func (s *Service) newPair(ctx context.Context, tx Tx, sessionID, userID string, amr []string, expiresAt, now time.Time) (Tokens, error) {
	d, err := s.draftPair(sessionID, userID, amr, expiresAt, now)
	if err != nil {
		return Tokens{}, err
	}
	if err := d.store(ctx, tx); err != nil {
		return Tokens{}, err
	}
	return d.tokens, nil
}

func withDetail(d map[string]any, k string, v any) map[string]any {
	if d == nil {
		d = map[string]any{}
	}
	d[k] = v
	return d
}

func (s *Service) issueAccess(userID, sessionID string, amr []string, now time.Time) (string, error) {
	access, err := s.tokens.Issue(token.Claims{Subject: userID, SessionID: sessionID, AMR: amr, IssuedAt: now})
	if err != nil {
		return "", fmt.Errorf("issue access token: %w", err)
	}
	return access, nil
}

// Refresh exchanges a refresh token for a new pair. A token presented a
// second time revokes its whole session (reuse detection).
func (s *Service) Refresh(ctx context.Context, refreshToken string, meta RequestMeta) (Tokens, error) {
	if refreshToken == "" || len(refreshToken) > 256 || !utf8.ValidString(refreshToken) {
		return Tokens{}, fmt.Errorf("refresh: %w", ErrUnauthorized)
	}
	now := s.clock()
	hash := hashToken(refreshToken)
	// Reads first, outside the transaction, so that the writer (one
	// connection on SQLite) is held only for the writes. The conditional
	// UseRefreshToken inside the transaction is what makes the token single
	// use; a session revoked between the read and the write gets a token
	// that its next use refuses.
	rt, err := s.store.RefreshTokenByHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return Tokens{}, fmt.Errorf("refresh: unknown token: %w", ErrUnauthorized)
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	sess, u, err := s.store.SessionWithUser(ctx, rt.SessionID)
	if errors.Is(err, ErrNotFound) {
		return Tokens{}, fmt.Errorf("refresh: session gone: %w", ErrUnauthorized)
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if !sess.Active(now) || u.Disabled || !now.Before(rt.ExpiresAt) {
		return Tokens{}, fmt.Errorf("refresh: session or token expired: %w", ErrUnauthorized)
	}
	if sess.EnrollmentOnly {
		// Like every endpoint but enrolment: sign in again if it takes
		// longer than an access token lives.
		return Tokens{}, fmt.Errorf("refresh: %w", ErrEnrollmentRequired)
	}
	rawNext, nextHash, err := s.opaque(32)
	if err != nil {
		return Tokens{}, err
	}
	reused := rt.UsedAt != nil
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if !reused {
			used, err := tx.UseRefreshToken(ctx, hash, now)
			if err != nil {
				return err
			}
			reused = !used
		}
		if reused {
			// Someone holds a copy of a token that was already exchanged:
			// revoke the session, and commit that.
			if _, err := tx.RevokeSession(ctx, sess.ID, now); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, s.event(EventSessionRevoked, sess.UserID, meta, map[string]any{"session_id": sess.ID, "reason": "refresh_token_reused"}))
		}
		// The session slides forward to a full RefreshTTL, but the row is
		// rewritten only once it has lost a thirtieth of it (a day of the
		// default 30): most renewals then cost one write less.
		if full := now.Add(s.cfg.RefreshTTL); full.Sub(sess.ExpiresAt) > s.cfg.RefreshTTL/30 {
			sess.ExpiresAt = full
			if err := tx.ExtendSession(ctx, sess.ID, sess.ExpiresAt); err != nil {
				return err
			}
		}
		return tx.CreateRefreshToken(ctx, RefreshToken{Hash: nextHash, SessionID: sess.ID, CreatedAt: now, ExpiresAt: sess.ExpiresAt})
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if reused {
		s.logger.WarnContext(ctx, "refresh token reused; session revoked", "event", "refresh_reuse", "user_id", sess.UserID, "session_id", sess.ID)
		return Tokens{}, fmt.Errorf("refresh: token reused: %w", ErrUnauthorized)
	}
	access, err := s.issueAccess(sess.UserID, sess.ID, sess.AMR, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, RefreshToken: rawNext, ExpiresIn: int(s.cfg.AccessTTL / time.Second)}, nil
}

// Authenticate checks an access token and that its session is live.
// Anything wrong is ErrUnauthorized.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (Principal, error) {
	now := s.now()
	claims, err := s.tokens.VerifyCtx(ctx, accessToken, now)
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w: %w", ErrUnauthorized, err)
	}
	sess, u, err := s.store.SessionWithUser(ctx, claims.SessionID)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, fmt.Errorf("authenticate: session gone: %w", ErrUnauthorized)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: load session: %w", err)
	}
	if sess.UserID != claims.Subject || !sess.Active(now) || u.Disabled {
		return Principal{}, fmt.Errorf("authenticate: session not active: %w", ErrUnauthorized)
	}
	return Principal{User: u, Session: sess, Claims: claims}, nil
}

// Logout revokes the caller's session: its refresh token and every access
// token it issued stop working.
func (s *Service) Logout(ctx context.Context, p Principal, meta RequestMeta) error {
	now := s.clock()
	err := s.store.WithTx(ctx, func(tx Tx) error {
		if _, err := tx.RevokeSession(ctx, p.Session.ID, now); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(EventSessionRevoked, p.User.ID, meta, map[string]any{"session_id": p.Session.ID, "reason": "logout"}))
	})
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// Unlock clears an account's password-login throttle and second-factor
// lock (an operator's action, after checking who asks).
func (s *Service) Unlock(ctx context.Context, email string, meta RequestMeta) error {
	u, err := s.store.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		return fmt.Errorf("unlock %q: %w", email, err)
	}
	for _, key := range []string{"login:user:" + u.ID, "login:name:" + u.Email, lockKeyPrefix + u.ID} {
		if err := s.store.ResetAttempts(ctx, key); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
	}
	s.audit(ctx, s.event("account.unlocked", u.ID, meta, nil))
	return nil
}

package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twostep-auth/twostep/internal/backupcode"
	"github.com/twostep-auth/twostep/internal/totp"
)

// totpOptions are the parameters every authenticator app understands.
var totpOptions = totp.Options{Period: 30 * time.Second, Digits: 6, Algorithm: totp.SHA1}

const (
	totpSkew          = 1 // steps either side
	backupCodeCount   = 10
	backupCodesLow    = 3
	defaultAuthLabel  = "Authenticator"
	lockKeyPrefix     = "2fa:user:"
	enrolKeyPrefix    = "enrol:user:"
	maxCodeInputBytes = 64
)

// errReplay means a correct code whose time step (or backup code) was
// already used. It is reported to clients as ErrInvalidCode.
var errReplay = errors.New("code already used")

// loginMethods lists the second-factor methods the user really has and the
// settings allow (see allowedMethods), in the order the login answer shows
// them.
func (s *Service) loginMethods(ctx context.Context, userID string, factors []Factor) []string {
	var methods []string
	seen := map[string]bool{}
	for _, f := range factors {
		if !f.Confirmed() || seen[f.Method] {
			continue
		}
		seen[f.Method] = true
		methods = append(methods, f.Method)
		if f.Method == MethodSMS && s.sms.CallEnabled {
			methods = append(methods, MethodCall)
		}
	}
	if len(methods) == 0 {
		return nil
	}
	if n, err := s.store.CountBackupCodes(ctx, userID); err == nil && n > 0 {
		methods = append(methods, MethodBackup)
	}
	return s.allowedMethods(ctx, methods)
}

func confirmed(factors []Factor) []Factor {
	var out []Factor
	for _, f := range factors {
		if f.Confirmed() {
			out = append(out, f)
		}
	}
	return out
}

func (s *Service) newChallenge(ctx context.Context, u User, amr, methods []string, meta RequestMeta) (ChallengeResult, error) {
	raw, hash, err := s.opaque(32)
	if err != nil {
		return ChallengeResult{}, err
	}
	now := s.clock()
	c := Challenge{
		Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ChallengeTTL),
		AMR: amr, IP: meta.IP, UserAgent: truncate(meta.UserAgent, 512),
	}
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := tx.CreateChallenge(ctx, c); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(EventLoginSucceeded, u.ID, meta, map[string]any{"amr": amr, "second_factor": "required"}))
	})
	if err != nil {
		return ChallengeResult{}, fmt.Errorf("create challenge: %w", err)
	}
	return ChallengeResult{Token: raw, Methods: methods, ExpiresIn: int(s.cfg.ChallengeTTL / time.Second)}, nil
}

// liveChallenge loads the challenge for a raw token: ErrUnauthorized when
// there is none, ErrChallengeExpired when it is used, expired or out of
// attempts.
func (s *Service) liveChallenge(ctx context.Context, raw string) (Challenge, User, error) {
	if raw == "" || len(raw) > 256 {
		return Challenge{}, User{}, ErrUnauthorized
	}
	c, u, err := s.store.ChallengeWithUser(ctx, hashToken(raw))
	if errors.Is(err, ErrNotFound) {
		return Challenge{}, User{}, fmt.Errorf("challenge: %w", ErrUnauthorized)
	}
	if err != nil {
		return Challenge{}, User{}, fmt.Errorf("load challenge: %w", err)
	}
	if c.UsedAt != nil || !s.clock().Before(c.ExpiresAt) || c.Attempts >= s.cfg.ChallengeMaxAttempts {
		return Challenge{}, User{}, ErrChallengeExpired
	}
	if u.Disabled {
		return Challenge{}, User{}, ErrChallengeExpired
	}
	return c, u, nil
}

// AuthorizeResult answers /twoFa/authorize.
type AuthorizeResult struct {
	Method     string
	Message    string
	To         string        // masked phone, for sms and call
	RetryAfter time.Duration // resend cooldown, for sms and call
}

// Authorize prepares the second step of a challenge for method (default:
// the user's first method). For an authenticator there is nothing to send.
func (s *Service) Authorize(ctx context.Context, challengeToken, method string, meta RequestMeta) (AuthorizeResult, error) {
	c, u, err := s.liveChallenge(ctx, challengeToken)
	if err != nil {
		return AuthorizeResult{}, err
	}
	return s.authorize(ctx, u, codeScope{challenge: c.Hash}, method, meta)
}

// AuthorizeStepUp prepares a signed-in session's step-up to sudo mode as
// Authorize prepares a login: for sms and call it sends a code bound to the
// session (PurposeSudo) to the user's 2FA phone, under the same limits and
// cooldowns. That code is then accepted by StepUp and as the code of a sudo
// action, for this session only. An enrolment-only session is
// ErrEnrollmentRequired; a method the user lacks, a *ValidationError.
func (s *Service) AuthorizeStepUp(ctx context.Context, p Principal, method string, meta RequestMeta) (AuthorizeResult, error) {
	if p.Session.EnrollmentOnly {
		return AuthorizeResult{}, ErrEnrollmentRequired
	}
	return s.authorize(ctx, p.User, codeScope{sessionID: p.Session.ID}, method, meta)
}

func (s *Service) authorize(ctx context.Context, u User, sc codeScope, method string, meta RequestMeta) (AuthorizeResult, error) {
	factors, err := s.store.FactorsByUser(ctx, u.ID)
	if err != nil {
		return AuthorizeResult{}, fmt.Errorf("authorize: %w", err)
	}
	factors = confirmed(factors)
	if err := s.checkMethodAllowed(ctx, factors, method); err != nil {
		return AuthorizeResult{}, err
	}
	if method == "" {
		if len(factors) == 0 {
			return AuthorizeResult{}, invalid("method", "no second factor is set up for this account")
		}
		method = factors[0].Method
	}
	switch method {
	case MethodAuthenticator:
		if !hasMethod(factors, MethodAuthenticator) {
			return AuthorizeResult{}, invalid("method", "is not set up for this account")
		}
		return AuthorizeResult{Method: method, Message: "Check your authenticator app for the code"}, nil
	case MethodSMS, MethodCall:
		f, ok := firstFactor(factors, MethodSMS)
		if !ok {
			return AuthorizeResult{}, invalid("method", "is not set up for this account")
		}
		purpose, subject := sc.smsCode()
		retry, err := s.sendCode(ctx, purpose, subject, u.ID, f.Phone, method, meta)
		if err != nil {
			return AuthorizeResult{}, err
		}
		return AuthorizeResult{Method: method, To: MaskPhone(f.Phone), RetryAfter: retry,
			Message: "A verification code has been sent to " + MaskPhone(f.Phone)}, nil
	default:
		return AuthorizeResult{}, invalid("method", "must be one of authenticator, sms, call")
	}
}

// firstFactor returns the user's oldest factor of method.
func firstFactor(factors []Factor, method string) (Factor, bool) {
	for _, f := range factors {
		if f.Method == method {
			return f, true
		}
	}
	return Factor{}, false
}

func hasMethod(factors []Factor, method string) bool {
	for _, f := range factors {
		if f.Method == method {
			return true
		}
	}
	return false
}

// codeScope is what a second-factor code is checked for: a login challenge,
// or a signed-in session stepping up to sudo mode.
type codeScope struct {
	challenge []byte // hash of the login challenge; nil for a step-up
	sessionID string // the session stepping up; "" for a login
}

// smsCode names the one live SMS or voice code a code in this scope can
// match: the challenge's login code, or the session's sudo code.
func (sc codeScope) smsCode() (purpose, subject string) {
	if sc.challenge != nil {
		return PurposeLogin, challengeSubject(sc.challenge)
	}
	return PurposeSudo, sudoSubject(sc.sessionID)
}

// match is a code that proved a factor; consume makes it single use inside
// the caller's transaction.
type match struct {
	method  string
	amr     string
	consume func(ctx context.Context, tx Tx, at time.Time) error
}

// matchCode checks code against the user's confirmed factors for method
// ("" means the user's default method; MethodBackup means a backup code).
// It returns ErrInvalidCode when nothing matched and a *ValidationError
// when method names nothing the user has.
func (s *Service) matchCode(ctx context.Context, u User, factors []Factor, sc codeScope, method, code string) (match, error) {
	if len(code) > maxCodeInputBytes {
		return match{}, ErrInvalidCode
	}
	if method == "" {
		if len(factors) == 0 {
			return match{}, ErrInvalidCode
		}
		method = factors[0].Method
	}
	switch method {
	case MethodAuthenticator:
		if !hasMethod(factors, MethodAuthenticator) {
			return match{}, invalid("method", "is not set up for this account")
		}
		norm, ok := totp.Normalize(code)
		if !ok {
			return match{}, ErrInvalidCode
		}
		now := s.clock()
		var found *Factor
		var step int64
		// Every authenticator is checked, whether or not an earlier one
		// matched, so the time taken says nothing about which did.
		for i := range factors {
			f := factors[i]
			if f.Method != MethodAuthenticator {
				continue
			}
			secret, err := s.openSecret(f)
			if err != nil {
				return match{}, err
			}
			if st, ok := totp.Verify(secret, norm, now, totpSkew, totpOptions); ok && found == nil {
				found, step = &f, st
			}
		}
		if found == nil {
			return match{}, ErrInvalidCode
		}
		if step <= found.LastStep {
			return match{}, errReplay
		}
		id := found.ID
		return match{method: MethodAuthenticator, amr: AMROTP, consume: func(ctx context.Context, tx Tx, at time.Time) error {
			ok, err := tx.AdvanceFactorStep(ctx, id, step, at)
			if err != nil {
				return err
			}
			if !ok {
				return errReplay
			}
			return nil
		}}, nil
	case MethodBackup:
		norm, err := backupcode.Normalize(code)
		if err != nil {
			return match{}, ErrInvalidCode
		}
		hash := s.backup.Hash(norm)
		return match{method: MethodBackup, amr: AMROTP, consume: func(ctx context.Context, tx Tx, at time.Time) error {
			ok, err := tx.UseBackupCode(ctx, u.ID, hash, at)
			if err != nil {
				return err
			}
			if !ok {
				return ErrInvalidCode
			}
			return nil
		}}, nil
	case MethodSMS, MethodCall:
		// One live code per challenge (or stepping-up session), whether it
		// came by text or call.
		if !hasMethod(factors, MethodSMS) {
			return match{}, invalid("method", "is not set up for this account")
		}
		purpose, subject := sc.smsCode()
		c, err := s.smsMatch(ctx, purpose, subject, code)
		if err != nil {
			return match{}, err
		}
		return match{method: MethodSMS, amr: AMRSMS, consume: func(ctx context.Context, tx Tx, at time.Time) error {
			return consumeSMS(ctx, tx, c.ID, at)
		}}, nil
	default:
		return match{}, invalid("method", "must be one of authenticator, sms, call")
	}
}

func (s *Service) openSecret(f Factor) ([]byte, error) {
	secret, err := s.sealer.Open(f.SealedSecret, []byte("factor:"+f.ID))
	if err != nil {
		return nil, fmt.Errorf("open factor %s secret: %w", f.ID, err)
	}
	return secret, nil
}

// lockPolicy locks the second factor for LockoutDuration once
// LockoutThreshold wrong codes came in a row; when the lock ends the count
// starts again.
func (s *Service) lockPolicy(st AttemptState, now time.Time) (time.Duration, bool) {
	if st.Failures < s.cfg.LockoutThreshold {
		return 0, false
	}
	until := st.LastAt.Add(s.cfg.LockoutDuration)
	if now.Before(until) {
		return until.Sub(now), false
	}
	return 0, true
}

// checkCode runs one second-factor attempt for u in scope sc, in one
// transaction. The code is checked first, outside it. A right code passes
// unless the account's second factor is locked: it is made single use, the function
// onMatch returned runs and the failure count is cleared. onMatch itself
// runs before the transaction, only for a code that matched, and does what
// needs no writer (new IDs, tokens, signatures), whose results are thrown
// away if the transaction then refuses the code. A wrong (or replayed) code is counted on
// the challenge (for a login) and on the account's lockout counter,
// atomically, before its failure is answered, so concurrent guesses can
// never pass a limit. Wrong codes answer ErrInvalidCode, the one that
// reaches the lockout threshold a *RateLimitError; a dead challenge
// ErrChallengeExpired. The code itself is checked before the transaction,
// so the writer is held only for the writes.
func (s *Service) checkCode(ctx context.Context, u User, sc codeScope, method, code string, meta RequestMeta, onMatch func(m match, at time.Time) (func(tx Tx) error, error)) (match, error) {
	if err := checkMethodName(method, true); err != nil {
		return match{}, err
	}
	factors, err := s.store.FactorsByUser(ctx, u.ID)
	if err != nil {
		return match{}, fmt.Errorf("load factors: %w", err)
	}
	conf := confirmed(factors)
	if err := s.checkMethodAllowed(ctx, conf, method); err != nil {
		return match{}, err
	}
	m, matchErr := s.matchCode(ctx, u, conf, sc, method, code)
	var verr *ValidationError
	if matchErr != nil && !errors.Is(matchErr, ErrInvalidCode) && !errors.Is(matchErr, errReplay) && !errors.As(matchErr, &verr) {
		return match{}, matchErr
	}
	now := s.clock()
	var onSuccess func(tx Tx) error
	if matchErr == nil {
		// What needs no writer is done before the transaction.
		if onSuccess, err = onMatch(m, now); err != nil {
			return match{}, err
		}
	}
	key := lockKeyPrefix + u.ID
	var outcome error // what the caller is told; nil on success
	err = s.store.WithTx(ctx, func(tx Tx) error {
		failure := matchErr
		if failure == nil {
			// A right code is not a guess to count: only a lock stops it.
			// (onSuccess consumes the challenge only if it is still alive.)
			st, err := tx.AttemptState(ctx, key)
			if err != nil {
				return fmt.Errorf("read second-factor attempts: %w", err)
			}
			if wait, _ := s.lockPolicy(st, now); wait > 0 {
				outcome = &RateLimitError{RetryAfter: wait, Reason: "second factor locked after too many wrong codes"}
				return nil
			}
			failure = m.consume(ctx, tx, now)
			if failure == nil {
				if err := onSuccess(tx); err != nil {
					return err
				}
				if st.Failures > 0 || !st.LastAt.IsZero() {
					return tx.ResetAttempts(ctx, key)
				}
				return nil
			}
			if !errors.Is(failure, ErrInvalidCode) && !errors.Is(failure, errReplay) {
				return failure
			}
			// A replayed code: consume wrote nothing; count it as a guess.
		}
		if sc.challenge != nil {
			ok, err := tx.ReserveChallengeAttempt(ctx, sc.challenge, s.cfg.ChallengeMaxAttempts, now)
			if err != nil {
				return err
			}
			if !ok {
				outcome = ErrChallengeExpired
				return nil
			}
		}
		wait, err := tx.ReserveAttempt(ctx, key, now, s.lockPolicy)
		if err != nil {
			return fmt.Errorf("reserve second-factor attempt: %w", err)
		}
		if wait > 0 {
			outcome = &RateLimitError{RetryAfter: wait, Reason: "second factor locked after too many wrong codes"}
			return nil
		}
		if errors.As(failure, &verr) {
			// A method the user does not have: bad input, and still
			// counted as the guess it carried.
			outcome = failure
			return nil
		}
		outcome, err = s.codeFailed(ctx, tx, u, sc, method, meta, failure)
		return err
	})
	if err != nil {
		return match{}, err
	}
	if outcome != nil {
		return match{}, outcome
	}
	return m, nil
}

// codeFailed records a wrong second-factor code in tx and turns the one
// that reaches the lockout threshold into a lock. It returns the error the
// caller answers.
func (s *Service) codeFailed(ctx context.Context, tx Tx, u User, sc codeScope, method string, meta RequestMeta, cause error) (error, error) {
	reason := "wrong_code"
	if errors.Is(cause, errReplay) {
		reason = "code_reused"
	}
	s.logger.WarnContext(ctx, "second factor failed", "event", "twofa_failed", "user_id", u.ID, "reason", reason)
	detail := map[string]any{"method": method, "reason": reason}
	if sc.challenge == nil {
		detail["purpose"] = PurposeSudo
	}
	if err := tx.AppendAudit(ctx, s.event(EventVerifyFailed, u.ID, meta, detail)); err != nil {
		return nil, err
	}
	st, err := tx.AttemptState(ctx, lockKeyPrefix+u.ID)
	if err != nil {
		return nil, fmt.Errorf("read second-factor attempts: %w", err)
	}
	if st.Failures >= s.cfg.LockoutThreshold {
		until := st.LastAt.Add(s.cfg.LockoutDuration)
		if err := tx.AppendAudit(ctx, s.event(EventTwoFaLocked, u.ID, meta, map[string]any{"until": until.Format(time.RFC3339)})); err != nil {
			return nil, err
		}
		return &RateLimitError{RetryAfter: until.Sub(s.clock()), Reason: "second factor locked after too many wrong codes"}, nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidCode, cause), nil
}

// checkMethodName refuses a method that is not one of the contract's names
// before anything is counted.
func checkMethodName(method string, allowBackup bool) error {
	switch method {
	case "", MethodAuthenticator, MethodSMS, MethodCall:
		return nil
	case MethodBackup:
		if allowBackup {
			return nil
		}
	}
	return invalid("method", "must be one of authenticator, sms, call")
}

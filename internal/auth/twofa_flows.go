package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twostep-auth/twostep/internal/backupcode"
	"github.com/twostep-auth/twostep/internal/totp"
)

// MethodInfo describes one confirmed second factor.
type MethodInfo struct {
	ID         string
	Method     string
	Label      string
	To         string // masked phone for sms
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// TwoFaStatus answers GET /twoFa.
type TwoFaStatus struct {
	Enabled              bool
	Methods              []MethodInfo
	BackupCodesRemaining int
	SudoUntil            *time.Time
	Warning              string
}

// TwoFaStatus reports the caller's second factors.
func (s *Service) TwoFaStatus(ctx context.Context, p Principal) (TwoFaStatus, error) {
	factors, err := s.store.FactorsByUser(ctx, p.User.ID)
	if err != nil {
		return TwoFaStatus{}, fmt.Errorf("twofa status: %w", err)
	}
	conf := confirmed(factors)
	st := TwoFaStatus{Enabled: len(conf) > 0, Methods: []MethodInfo{}}
	for _, f := range conf {
		st.Methods = append(st.Methods, MethodInfo{ID: f.ID, Method: f.Method, Label: f.Label, To: MaskPhone(f.Phone), CreatedAt: f.CreatedAt, LastUsedAt: f.LastUsedAt})
	}
	if st.Enabled {
		n, err := s.store.CountBackupCodes(ctx, p.User.ID)
		if err != nil {
			return TwoFaStatus{}, fmt.Errorf("twofa status: %w", err)
		}
		st.BackupCodesRemaining = n
		if n <= backupCodesLow {
			st.Warning = fmt.Sprintf("Only %d backup codes left: generate a new set", n)
		}
	}
	if until := s.sudoUntil(ctx, p.Session, st.Enabled); until.After(s.clock()) {
		st.SudoUntil = &until
	}
	return st, nil
}

// sudoUntil is when the session's sudo mode ends: the sudo time (see
// sudoTTL) after it last passed a second factor, or, for a user without
// one, after its password step.
func (s *Service) sudoUntil(ctx context.Context, sess Session, hasSecondFactor bool) time.Time {
	if hasSecondFactor {
		if sess.SecondFactorAt == nil {
			return time.Time{}
		}
		return sess.SecondFactorAt.Add(s.sudoTTL(ctx))
	}
	return sess.AuthAt.Add(s.sudoTTL(ctx))
}

// requireSudo lets the action go ahead when the session is in sudo mode,
// or when code is a valid current second-factor code (which then renews
// sudo). Otherwise ErrSudoRequired.
func (s *Service) requireSudo(ctx context.Context, p Principal, conf []Factor, code string, meta RequestMeta) error {
	if s.sudoUntil(ctx, p.Session, len(conf) > 0).After(s.clock()) {
		return nil
	}
	if code == "" || len(conf) == 0 {
		return ErrSudoRequired
	}
	_, err := s.checkCode(ctx, p.User, codeScope{sessionID: p.Session.ID}, codeMethod(conf, code), code, meta, func(m match, at time.Time) (func(Tx) error, error) {
		passed := s.sudoPassed(p, m.method, meta)
		return func(tx Tx) error {
			if err := tx.MarkSecondFactor(ctx, p.Session.ID, at, addAMR(p.Session.AMR, m.amr)); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, passed)
		}, nil
	})
	return err
}

// sudoPassed is the audit event of a session that stepped up to sudo mode
// with a code of method.
func (s *Service) sudoPassed(p Principal, method string, meta RequestMeta) AuditEvent {
	return s.event(EventVerifySucceeded, p.User.ID, meta, map[string]any{"method": method, "purpose": PurposeSudo, "session_id": p.Session.ID})
}

// codeMethod guesses which kind of code a sudo prompt got: anything longer
// than eight characters is a backup code; six digits are an authenticator
// code when the user has one, else the session's live sudo SMS or voice
// code (see AuthorizeStepUp). A user with both who wants to use a texted
// code steps up with /twoFa/verify and method sms first.
func codeMethod(conf []Factor, code string) string {
	digits := strings.ReplaceAll(code, " ", "")
	switch {
	case len(digits) > 8:
		return MethodBackup
	case hasMethod(conf, MethodAuthenticator):
		return MethodAuthenticator
	case hasMethod(conf, MethodSMS):
		return MethodSMS
	}
	return ""
}

func addAMR(amr []string, m string) []string {
	out := append([]string(nil), amr...)
	for _, a := range out {
		if a == m {
			return out
		}
	}
	return append(out, m)
}

// Enrollment is a pending authenticator: the secret is shown once, here.
type Enrollment struct {
	FactorID   string
	Secret     string // base32, no padding
	OTPAuthURL string
	QRCode     string // data:image/png;base64,…
}

// EnableAuthenticator starts enrolling an authenticator app. Once 2FA is on
// it needs sudo (or code). The factor stays pending, and any factor it
// replaces keeps working, until ConfirmEnrollment.
func (s *Service) EnableAuthenticator(ctx context.Context, p Principal, label, code string, meta RequestMeta) (Enrollment, error) {
	label, err := cleanLabel(label)
	if err != nil {
		return Enrollment{}, err
	}
	if err := s.checkEnrolAllowed(ctx, MethodAuthenticator); err != nil {
		return Enrollment{}, err
	}
	factors, err := s.store.FactorsByUser(ctx, p.User.ID)
	if err != nil {
		return Enrollment{}, fmt.Errorf("enable authenticator: %w", err)
	}
	if conf := confirmed(factors); len(conf) > 0 {
		if err := s.requireSudo(ctx, p, conf, code, meta); err != nil {
			return Enrollment{}, err
		}
	}
	secret, err := totp.NewSecret(s.rand)
	if err != nil {
		return Enrollment{}, fmt.Errorf("enable authenticator: %w", err)
	}
	f := Factor{ID: s.newID(), UserID: p.User.ID, Method: MethodAuthenticator, Label: label, CreatedAt: s.clock()}
	f.SealedSecret, err = s.sealer.Seal(secret, []byte("factor:"+f.ID))
	if err != nil {
		return Enrollment{}, fmt.Errorf("seal totp secret: %w", err)
	}
	err = s.store.WithTx(ctx, func(tx Tx) error {
		// One pending authenticator at a time: a new start replaces an
		// unfinished one.
		for _, old := range factors {
			if !old.Confirmed() && old.Method == MethodAuthenticator {
				if err := tx.DeleteFactor(ctx, old.ID); err != nil {
					return err
				}
			}
		}
		return tx.CreateFactor(ctx, f)
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("enable authenticator: %w", err)
	}
	account := p.User.Email
	if account == "" {
		account = p.User.Username
	}
	uri := totp.KeyURI(s.cfg.Issuer, account, secret)
	png, err := totp.QRCodePNG(uri, 256)
	if err != nil {
		return Enrollment{}, fmt.Errorf("qr code: %w", err)
	}
	return Enrollment{FactorID: f.ID, Secret: totp.Encode(secret), OTPAuthURL: uri, QRCode: totp.DataURI(png)}, nil
}

func cleanLabel(label string) (string, error) {
	label = strings.TrimSpace(label)
	if label == "" {
		return defaultAuthLabel, nil
	}
	if !utf8.ValidString(label) || utf8.RuneCountInString(label) > 64 {
		return "", invalid("label", "must be at most 64 characters")
	}
	for _, r := range label {
		if !unicode.IsPrint(r) {
			return "", invalid("label", "must be printable text")
		}
	}
	return label, nil
}

// ConfirmResult answers a successful /twoFa/enable/verify.
type ConfirmResult struct {
	Method      string
	BackupCodes []string // only when this turned 2FA on
}

// ConfirmEnrollment confirms the pending factor with a code for it. The
// code's time step is used up. The first factor turns 2FA on and comes with
// backup codes; a factor with the label of an existing one replaces it. The
// calling session passes a second factor; the user's other sessions are
// revoked.
func (s *Service) ConfirmEnrollment(ctx context.Context, p Principal, method, code string, meta RequestMeta) (ConfirmResult, error) {
	if method != "" && method != MethodAuthenticator && method != MethodSMS {
		return ConfirmResult{}, invalid("method", "must be authenticator or sms")
	}
	factors, err := s.store.FactorsByUser(ctx, p.User.ID)
	if err != nil {
		return ConfirmResult{}, fmt.Errorf("confirm enrolment: %w", err)
	}
	var pending *Factor
	for i := len(factors) - 1; i >= 0; i-- {
		if !factors[i].Confirmed() && (method == "" || factors[i].Method == method) {
			pending = &factors[i]
			break
		}
	}
	if pending == nil {
		return ConfirmResult{}, invalid("method", "no enrolment is in progress: call /twoFa/enable first")
	}
	now := s.clock()
	key := enrolKeyPrefix + p.User.ID
	wait, err := s.store.ReserveAttempt(ctx, key, now, s.lockPolicy)
	if err != nil {
		return ConfirmResult{}, fmt.Errorf("confirm enrolment: %w", err)
	}
	if wait > 0 {
		return ConfirmResult{}, &RateLimitError{RetryAfter: wait, Reason: "too many wrong codes"}
	}
	// consume makes the confirming code single use, in the transaction
	// that confirms the factor.
	var consume func(tx Tx) error
	ok := false
	switch pending.Method {
	case MethodAuthenticator:
		secret, err := s.openSecret(*pending)
		if err != nil {
			return ConfirmResult{}, err
		}
		norm, valid := totp.Normalize(code)
		var step int64
		if valid && len(code) <= maxCodeInputBytes {
			step, ok = totp.Verify(secret, norm, now, totpSkew, totpOptions)
		}
		consume = func(tx Tx) error {
			advanced, err := tx.AdvanceFactorStep(ctx, pending.ID, step, now)
			if err != nil {
				return err
			}
			if !advanced {
				return ErrInvalidCode
			}
			return nil
		}
	case MethodSMS:
		c, err := s.smsMatch(ctx, PurposeEnrolment, p.User.ID, code)
		if err != nil && !errors.Is(err, ErrInvalidCode) {
			return ConfirmResult{}, err
		}
		ok = err == nil
		consume = func(tx Tx) error {
			if err := consumeSMS(ctx, tx, c.ID, now); err != nil {
				return ErrInvalidCode
			}
			// The code proved the phone: it becomes the account's
			// verified phone unless the account already has one.
			if !p.User.PhoneVerified {
				if err := tx.SetUserPhone(ctx, p.User.ID, c.Phone, true, now); err != nil && !errors.Is(err, ErrConflict) {
					return err
				}
			}
			return nil
		}
	default:
		return ConfirmResult{}, invalid("method", "is not available")
	}
	if !ok {
		s.audit(ctx, s.event(EventVerifyFailed, p.User.ID, meta, map[string]any{"method": pending.Method, "purpose": "enrolment"}))
		st, err := s.store.AttemptState(ctx, key)
		if err == nil && st.Failures >= s.cfg.LockoutThreshold {
			return ConfirmResult{}, &RateLimitError{RetryAfter: s.cfg.LockoutDuration, Reason: "too many wrong codes"}
		}
		return ConfirmResult{}, ErrInvalidCode
	}

	conf := confirmed(factors)
	turnsOn := len(conf) == 0
	var codes []string
	var hashes [][]byte
	if turnsOn && s.backupCodesOn(ctx) {
		codes, hashes, err = s.newBackupCodes()
		if err != nil {
			return ConfirmResult{}, err
		}
	}
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := consume(tx); err != nil {
			return err
		}
		if err := tx.ConfirmFactor(ctx, pending.ID, now); err != nil {
			return err
		}
		var replaced []string
		for _, old := range conf {
			if old.Method == pending.Method && old.Label == pending.Label {
				if err := tx.DeleteFactor(ctx, old.ID); err != nil {
					return err
				}
				replaced = append(replaced, old.ID)
			}
		}
		if len(hashes) > 0 {
			if err := tx.ReplaceBackupCodes(ctx, p.User.ID, hashes, now); err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, s.event(EventBackupGenerated, p.User.ID, meta, map[string]any{"count": len(hashes)})); err != nil {
				return err
			}
		}
		amr := AMROTP
		if pending.Method == MethodSMS {
			amr = AMRSMS
		}
		if err := tx.MarkSecondFactor(ctx, p.Session.ID, now, addAMR(p.Session.AMR, amr)); err != nil {
			return err
		}
		if err := s.endEnrollmentOnly(ctx, tx, p.Session); err != nil {
			return err
		}
		n, err := s.revokeOtherSessions(ctx, tx, p.User.ID, p.Session.ID, now, meta, EventTwoFaEnabled)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(EventTwoFaEnabled, p.User.ID, meta, map[string]any{
			"method": pending.Method, "factor_id": pending.ID, "label": pending.Label,
			"replaced": replaced, "first_factor": turnsOn, "sessions_revoked": n,
		}))
	})
	if errors.Is(err, ErrInvalidCode) {
		return ConfirmResult{}, ErrInvalidCode
	}
	if err != nil {
		return ConfirmResult{}, fmt.Errorf("confirm enrolment: %w", err)
	}
	if err := s.store.ResetAttempts(ctx, key); err != nil {
		s.logger.ErrorContext(ctx, "reset enrolment attempts", "user_id", p.User.ID, "err", err)
	}
	return ConfirmResult{Method: pending.Method, BackupCodes: codes}, nil
}

func (s *Service) newBackupCodes() ([]string, [][]byte, error) {
	codes, err := backupcode.Generate(s.rand, backupCodeCount)
	if err != nil {
		return nil, nil, fmt.Errorf("generate backup codes: %w", err)
	}
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		norm, err := backupcode.Normalize(c)
		if err != nil {
			return nil, nil, fmt.Errorf("normalize generated backup code: %w", err)
		}
		hashes[i] = s.backup.Hash(norm)
	}
	return codes, hashes, nil
}

// VerifyChallenge completes a login with a second-factor code: tokens for a
// new session that has passed a second factor. The challenge dies on
// success and after ChallengeMaxAttempts wrong codes.
func (s *Service) VerifyChallenge(ctx context.Context, challengeToken, method, code string, meta RequestMeta) (Tokens, error) {
	if err := checkMethodName(method, false); err != nil {
		return Tokens{}, err
	}
	tokens, _, err := s.completeChallenge(ctx, challengeToken, method, code, meta)
	return tokens, err
}

// RecoverResult answers /twoFa/recover.
type RecoverResult struct {
	Tokens    Tokens
	Remaining int
}

// Recover completes a login with a backup code. Each code works once; the
// user's other sessions are revoked.
func (s *Service) Recover(ctx context.Context, challengeToken, code string, meta RequestMeta) (RecoverResult, error) {
	tokens, remaining, err := s.completeChallenge(ctx, challengeToken, MethodBackup, code, meta)
	return RecoverResult{Tokens: tokens, Remaining: remaining}, err
}

func (s *Service) completeChallenge(ctx context.Context, challengeToken, method, code string, meta RequestMeta) (Tokens, int, error) {
	c, u, err := s.liveChallenge(ctx, challengeToken)
	if err != nil {
		return Tokens{}, 0, err
	}
	var tokens Tokens
	remaining := -1
	_, err = s.checkCode(ctx, u, codeScope{challenge: c.Hash}, method, code, meta, func(m match, at time.Time) (func(Tx) error, error) {
		amr := addAMR(c.AMR, m.amr)
		d, err := s.draftSession(u, amr, &at, meta, at)
		if err != nil {
			return nil, err
		}
		events := []AuditEvent{
			s.event(EventVerifySucceeded, u.ID, meta, map[string]any{"method": m.method}),
			s.event(EventLoginSucceeded, u.ID, meta, map[string]any{"amr": amr, "session_id": d.sess.ID}),
		}
		return func(tx Tx) error {
			ok, err := tx.ConsumeChallenge(ctx, c.Hash, s.cfg.ChallengeMaxAttempts, at)
			if err != nil {
				return err
			}
			if !ok {
				return ErrChallengeExpired
			}
			if err := d.store(ctx, tx); err != nil {
				return err
			}
			tokens = d.pair.tokens
			if m.method == MethodBackup {
				if remaining, err = s.afterBackupUsed(ctx, tx, u.ID, d.sess.ID, at, meta); err != nil {
					return err
				}
			}
			return tx.AppendAudit(ctx, events...)
		}, nil
	})
	if err != nil {
		return Tokens{}, 0, err
	}
	return tokens, remaining, nil
}

// afterBackupUsed records a used backup code: it revokes the user's
// sessions other than keep and returns how many codes are left.
func (s *Service) afterBackupUsed(ctx context.Context, tx Tx, userID, keep string, at time.Time, meta RequestMeta) (int, error) {
	remaining, err := tx.CountBackupCodes(ctx, userID)
	if err != nil {
		return 0, err
	}
	n, err := s.revokeOtherSessions(ctx, tx, userID, keep, at, meta, EventBackupUsed)
	if err != nil {
		return 0, err
	}
	if err := tx.AppendAudit(ctx, s.event(EventBackupUsed, userID, meta, map[string]any{"remaining": remaining, "sessions_revoked": n})); err != nil {
		return 0, err
	}
	return remaining, nil
}

// revokeOtherSessions revokes the user's sessions other than keep, after a
// change to their second factors (reason: the event of that change), and
// records the revocation as session.revoked in tx.
func (s *Service) revokeOtherSessions(ctx context.Context, tx Tx, userID, keep string, at time.Time, meta RequestMeta, reason string) (int, error) {
	n, err := tx.RevokeUserSessions(ctx, userID, keep, at)
	if err != nil || n == 0 {
		return n, err
	}
	return n, tx.AppendAudit(ctx, s.event(EventSessionRevoked, userID, meta, map[string]any{
		"reason": reason, "sessions_revoked": n, "kept_session_id": keep,
	}))
}

// StepUp checks a second-factor code for a signed-in session: sudo is
// renewed and a fresh token pair for the same session is returned (the
// session's previous refresh token stops working). An SMS or voice code
// must be the live one AuthorizeStepUp sent for this session.
func (s *Service) StepUp(ctx context.Context, p Principal, method, code string, meta RequestMeta) (Tokens, int, error) {
	if err := checkMethodName(method, true); err != nil {
		return Tokens{}, 0, err
	}
	var tokens Tokens
	remaining := -1
	_, err := s.checkCode(ctx, p.User, codeScope{sessionID: p.Session.ID}, method, code, meta, func(m match, at time.Time) (func(Tx) error, error) {
		amr := addAMR(p.Session.AMR, m.amr)
		passed := s.sudoPassed(p, m.method, meta)
		pair, err := s.draftPair(p.Session.ID, p.User.ID, amr, p.Session.ExpiresAt, at)
		if err != nil {
			return nil, err
		}
		return func(tx Tx) error {
			if err := tx.MarkSecondFactor(ctx, p.Session.ID, at, amr); err != nil {
				return err
			}
			if err := tx.DeleteRefreshTokens(ctx, p.Session.ID); err != nil {
				return err
			}
			if err := pair.store(ctx, tx); err != nil {
				return err
			}
			tokens = pair.tokens
			if m.method == MethodBackup {
				var err error
				if remaining, err = s.afterBackupUsed(ctx, tx, p.User.ID, p.Session.ID, at, meta); err != nil {
					return err
				}
			}
			return tx.AppendAudit(ctx, passed)
		}, nil
	})
	return tokens, remaining, err
}

// GenerateBackupCodes replaces the user's backup codes (sudo). The old set
// stops working at once; the user's other sessions are revoked.
func (s *Service) GenerateBackupCodes(ctx context.Context, p Principal, code string, meta RequestMeta) ([]string, error) {
	factors, err := s.store.FactorsByUser(ctx, p.User.ID)
	if err != nil {
		return nil, fmt.Errorf("backup codes: %w", err)
	}
	conf := confirmed(factors)
	if len(conf) == 0 {
		return nil, fmt.Errorf("backup codes: %w: turn on two-factor authentication first", ErrConflict)
	}
	if err := s.checkBackupCodesOn(ctx); err != nil {
		return nil, err
	}
	if err := s.requireSudo(ctx, p, conf, code, meta); err != nil {
		return nil, err
	}
	codes, hashes, err := s.newBackupCodes()
	if err != nil {
		return nil, err
	}
	now := s.clock()
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := tx.ReplaceBackupCodes(ctx, p.User.ID, hashes, now); err != nil {
			return err
		}
		n, err := s.revokeOtherSessions(ctx, tx, p.User.ID, p.Session.ID, now, meta, EventBackupGenerated)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(EventBackupGenerated, p.User.ID, meta, map[string]any{"count": len(hashes), "sessions_revoked": n}))
	})
	if err != nil {
		return nil, fmt.Errorf("backup codes: %w", err)
	}
	return codes, nil
}

// Disable removes the user's factors of method, or all of them when method
// is empty (sudo). Removing the last factor turns 2FA off and deletes the
// backup codes. The user's other sessions are revoked. It returns whether
// 2FA is now off. A method the user has no factor for is ErrNotFound;
// disabling 2FA that is already off succeeds and changes nothing.
func (s *Service) Disable(ctx context.Context, p Principal, method, code string, meta RequestMeta) (bool, error) {
	if method != "" && method != MethodAuthenticator && method != MethodSMS {
		return false, invalid("method", "must be authenticator or sms")
	}
	factors, err := s.store.FactorsByUser(ctx, p.User.ID)
	if err != nil {
		return false, fmt.Errorf("disable: %w", err)
	}
	conf := confirmed(factors)
	if method != "" && !hasMethod(conf, method) {
		return false, fmt.Errorf("disable: %w: no %s factor on this account", ErrNotFound, method)
	}
	if len(conf) == 0 {
		// Already off (the contract answers 200): nothing to prove and no
		// session to revoke; an unfinished enrolment is dropped.
		for _, f := range factors {
			if err := s.store.DeleteFactor(ctx, f.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return false, fmt.Errorf("disable: %w", err)
			}
		}
		return true, nil
	}
	if err := s.requireSudo(ctx, p, conf, code, meta); err != nil {
		return false, err
	}
	now := s.clock()
	off := true
	err = s.store.WithTx(ctx, func(tx Tx) error {
		var removed []string
		for _, f := range factors {
			if method == "" || f.Method == method {
				if err := tx.DeleteFactor(ctx, f.ID); err != nil {
					return err
				}
				if f.Confirmed() {
					removed = append(removed, f.ID)
				}
			} else if f.Confirmed() {
				off = false
			}
		}
		return s.factorsRemoved(ctx, tx, p, off, now, meta, method, removed)
	})
	if err != nil {
		return false, fmt.Errorf("disable: %w", err)
	}
	return off, nil
}

// factorsRemoved finishes, in tx, a removal of p's confirmed factors
// removed (of method; "" for all): when 2FA is now off the backup codes go
// too, the user's other sessions are revoked, and twofa.disabled records it.
func (s *Service) factorsRemoved(ctx context.Context, tx Tx, p Principal, off bool, now time.Time, meta RequestMeta, method string, removed []string) error {
	if off {
		if err := tx.ReplaceBackupCodes(ctx, p.User.ID, nil, now); err != nil {
			return err
		}
	}
	n, err := s.revokeOtherSessions(ctx, tx, p.User.ID, p.Session.ID, now, meta, EventTwoFaDisabled)
	if err != nil {
		return err
	}
	return tx.AppendAudit(ctx, s.event(EventTwoFaDisabled, p.User.ID, meta, map[string]any{
		"method": method, "removed": removed, "twofa_off": off, "sessions_revoked": n,
	}))
}

// EnableSMS starts enrolling a phone for SMS and voice codes: a pending
// factor and a code sent to phone (or to the account's verified phone when
// phone is empty). Once 2FA is on it needs sudo (or code). It returns the
// masked number.
func (s *Service) EnableSMS(ctx context.Context, p Principal, phone, label, code string, meta RequestMeta) (string, error) {
	if err := s.checkEnrolAllowed(ctx, MethodSMS); err != nil {
		return "", err
	}
	if label == "" {
		label = "SMS"
	}
	label, err := cleanLabel(label)
	if err != nil {
		return "", err
	}
	var e164 string
	switch {
	case phone != "":
		if e164, err = NormalizePhone(phone); err != nil {
			return "", err
		}
	case p.User.PhoneVerified:
		e164 = p.User.Phone
	default:
		return "", invalid("phone", "is required: this account has no verified phone")
	}
	factors, err := s.store.FactorsByUser(ctx, p.User.ID)
	if err != nil {
		return "", fmt.Errorf("enable sms: %w", err)
	}
	if conf := confirmed(factors); len(conf) > 0 {
		if err := s.requireSudo(ctx, p, conf, code, meta); err != nil {
			return "", err
		}
	}
	f := Factor{ID: s.newID(), UserID: p.User.ID, Method: MethodSMS, Label: label, Phone: e164, CreatedAt: s.clock()}
	err = s.store.WithTx(ctx, func(tx Tx) error {
		for _, old := range factors {
			if !old.Confirmed() && old.Method == MethodSMS {
				if err := tx.DeleteFactor(ctx, old.ID); err != nil {
					return err
				}
			}
		}
		return tx.CreateFactor(ctx, f)
	})
	if err != nil {
		return "", fmt.Errorf("enable sms: %w", err)
	}
	if _, err := s.sendCode(ctx, PurposeEnrolment, p.User.ID, p.User.ID, e164, MethodSMS, meta); err != nil {
		return "", err
	}
	return MaskPhone(e164), nil
}

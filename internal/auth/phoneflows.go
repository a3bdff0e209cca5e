package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ChangePhone sends a verification code to a new phone for the signed-in
// user. Replacing a verified phone needs sudo (or code). It returns the
// masked number.
func (s *Service) ChangePhone(ctx context.Context, p Principal, phone, code string, meta RequestMeta) (string, error) {
	e164, err := NormalizePhone(phone)
	if err != nil {
		return "", err
	}
	if p.User.PhoneVerified {
		factors, err := s.store.FactorsByUser(ctx, p.User.ID)
		if err != nil {
			return "", fmt.Errorf("change phone: %w", err)
		}
		if err := s.requireSudo(ctx, p, confirmed(factors), code, meta); err != nil {
			return "", err
		}
	}
	if _, err := s.sendCode(ctx, PurposePhoneVerification, p.User.ID, p.User.ID, e164, MethodSMS, meta); err != nil {
		return "", err
	}
	return MaskPhone(e164), nil
}

// VerifyPhone confirms the phone a code was sent to by ChangePhone (or at
// sign-up) and makes it the user's verified phone. The user's other
// sessions are revoked.
func (s *Service) VerifyPhone(ctx context.Context, p Principal, code string, meta RequestMeta) (User, error) {
	c, err := s.smsMatch(ctx, PurposePhoneVerification, p.User.ID, code)
	if err != nil {
		if errors.Is(err, ErrInvalidCode) {
			s.audit(ctx, s.event(EventVerifyFailed, p.User.ID, meta, map[string]any{"purpose": PurposePhoneVerification}))
		}
		return User{}, err
	}
	now := s.clock()
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := consumeSMS(ctx, tx, c.ID, now); err != nil {
			return err
		}
		if err := tx.SetUserPhone(ctx, p.User.ID, c.Phone, true, now); err != nil {
			return err
		}
		n, err := tx.RevokeUserSessions(ctx, p.User.ID, p.Session.ID, now)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(EventPhoneVerified, p.User.ID, meta, map[string]any{"to": MaskPhone(c.Phone), "sessions_revoked": n}))
	})
	if err := phoneCodeTxErr("verify phone", err); err != nil {
		return User{}, err
	}
	u := p.User
	u.Phone, u.PhoneVerified = c.Phone, true
	return u, nil
}

// PhoneSignUp starts a password-less account for username and phone: the
// account exists, unconfirmed, until PhoneVerify. When the phone already
// belongs to an account, a sign-in code is sent instead, so the answer
// never tells whether a number is known.
func (s *Service) PhoneSignUp(ctx context.Context, username, phone string, meta RequestMeta) error {
	e164, err := NormalizePhone(phone)
	if err != nil {
		return err
	}
	username = strings.ToLower(strings.TrimSpace(username))
	if !validUsername(username) {
		return invalid("username", "must be 3 to 32 characters: letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if err := s.hitIPWindow(ctx, "signup", meta); err != nil {
		return err
	}
	if existing, err := s.store.UserByPhone(ctx, e164); err == nil {
		return s.sendSignIn(ctx, existing, e164, meta)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("phone sign-up: %w", err)
	}
	// The same sign-up again (the code never came, or died): the account it
	// made is still unconfirmed, and gets a new code.
	if pending, err := s.store.UserByUsername(ctx, username); err == nil {
		if pending.Phone != e164 || pending.PhoneVerified || pending.Email != "" || pending.PasswordHash != "" || pending.Disabled {
			return fmt.Errorf("phone sign-up: %w: this username is taken", ErrConflict)
		}
		_, err := s.sendCode(ctx, PurposePhoneSignUp, e164, pending.ID, e164, MethodSMS, meta)
		return err
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("phone sign-up: %w", err)
	}
	now := s.clock()
	u := User{ID: s.newID(), Username: username, Phone: e164, Roles: []string{RoleUser}, CreatedAt: now, UpdatedAt: now}
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(EventUserRegistered, u.ID, meta, map[string]any{"via": "phone"}))
	})
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("phone sign-up: %w: this username is taken", ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("phone sign-up: %w", err)
	}
	_, err = s.sendCode(ctx, PurposePhoneSignUp, e164, u.ID, e164, MethodSMS, meta)
	return err
}

// PhoneSignIn sends a sign-in code to a phone that belongs to an account.
// For an unknown number it does nothing, and answers the same.
func (s *Service) PhoneSignIn(ctx context.Context, phone string, meta RequestMeta) error {
	e164, err := NormalizePhone(phone)
	if err != nil {
		return err
	}
	if err := s.hitIPWindow(ctx, "login", meta); err != nil {
		return err
	}
	u, err := s.store.UserByPhone(ctx, e164)
	if errors.Is(err, ErrNotFound) {
		// Charged like a send, so that the limits answer as for a known
		// number.
		return s.chargeSend(ctx, e164, meta, s.clock())
	}
	if err != nil {
		return fmt.Errorf("phone sign-in: %w", err)
	}
	return s.sendSignIn(ctx, u, e164, meta)
}

// sendSignIn sends a sign-in code. Failures other than limits are logged,
// not returned: the caller's answer must not depend on whether the number
// is known.
func (s *Service) sendSignIn(ctx context.Context, u User, e164 string, meta RequestMeta) error {
	if u.Disabled {
		return s.chargeSend(ctx, e164, meta, s.clock())
	}
	_, err := s.sendCode(ctx, PurposePhoneSignIn, e164, u.ID, e164, MethodSMS, meta)
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return err
	}
	if err != nil {
		s.logger.WarnContext(ctx, "phone sign-in code not sent", "to", MaskPhone(e164), "err", err)
	}
	return nil
}

// PhoneVerify completes a phone sign-up or sign-in with the code sent to
// phone: the account is confirmed (its phone verified) and signed in, or,
// when it has a second factor other than this phone, answers a challenge.
func (s *Service) PhoneVerify(ctx context.Context, phone, code string, meta RequestMeta) (LoginResult, error) {
	e164, err := NormalizePhone(phone)
	if err != nil {
		return LoginResult{}, err
	}
	purpose := PurposePhoneSignIn
	c, err := s.smsMatch(ctx, purpose, e164, code)
	if errors.Is(err, ErrInvalidCode) {
		if _, serr := s.store.SMSCodeFor(ctx, PurposePhoneSignUp, e164); serr == nil {
			purpose = PurposePhoneSignUp
			c, err = s.smsMatch(ctx, purpose, e164, code)
		}
	}
	if err != nil {
		return LoginResult{}, err
	}
	if c.UserID == "" {
		return LoginResult{}, ErrInvalidCode
	}
	u, err := s.store.UserByID(ctx, c.UserID)
	if err != nil {
		return LoginResult{}, fmt.Errorf("phone verify: %w", err)
	}
	if u.Disabled {
		return LoginResult{}, fmt.Errorf("phone verify: %w: this account is disabled", ErrForbidden)
	}
	now := s.clock()
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := consumeSMS(ctx, tx, c.ID, now); err != nil {
			return err
		}
		if purpose == PurposePhoneSignUp {
			if err := tx.SetUserPhone(ctx, u.ID, e164, true, now); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, s.event(EventPhoneVerified, u.ID, meta, map[string]any{"to": MaskPhone(e164), "via": "signup"}))
		}
		return nil
	})
	if err := phoneCodeTxErr("phone verify", err); err != nil {
		return LoginResult{}, err
	}
	u.Phone, u.PhoneVerified = e164, true
	return s.afterFirstFactor(ctx, u, []string{AMRSMS}, meta)
}

// registerPhone sends the verification code for a phone given at sign-up.
// The account exists either way; a failed send is logged.
func (s *Service) registerPhone(ctx context.Context, u User, meta RequestMeta) {
	if u.Phone == "" || s.sender == nil {
		return
	}
	if _, err := s.sendCode(ctx, PurposePhoneVerification, u.ID, u.ID, u.Phone, MethodSMS, meta); err != nil {
		s.logger.WarnContext(ctx, "sign-up phone code not sent", "user_id", u.ID, "to", MaskPhone(u.Phone), "err", err)
	}
}

// phoneCodeTxErr is the caller's error for what a transaction that uses up
// a phone code and stores the phone returned: a code used meanwhile is
// ErrInvalidCode, a phone verified on another account ErrConflict.
func phoneCodeTxErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errReplay):
		return ErrInvalidCode
	case errors.Is(err, ErrConflict):
		return fmt.Errorf("%s: %w: this phone is verified on another account", op, ErrConflict)
	}
	return fmt.Errorf("%s: %w", op, err)
}

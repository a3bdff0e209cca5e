package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// HandoffTTL is how long a handoff code lives: long enough for a browser
// redirect and one server-to-server call, short enough that a code left in
// a log or a history entry is useless.
const HandoffTTL = 60 * time.Second

// Handoff is a stored one-time code that hands a sign-in made on twostep's
// hosted pages to an application. Only the SHA-256 of the code is kept.
type Handoff struct {
	Hash      []byte
	SessionID string // the browser session that signed in
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

type handoffStore interface {
	// CreateHandoff inserts h; a taken hash is ErrConflict.
	CreateHandoff(ctx context.Context, h Handoff) error
	// ConsumeHandoff marks the code with this hash used, if it is unused and
	// unexpired at at, and returns it; ErrNotFound otherwise. Of concurrent
	// callers at most one gets the code.
	ConsumeHandoff(ctx context.Context, hash []byte, at time.Time) (Handoff, error)
}

// CreateHandoff returns a new one-time code, valid for HandoffTTL, that
// ExchangeHandoff turns into tokens for a new session of p's user. The
// session it makes inherits p's session's sign-in: its amr, its password
// time and its second-factor time. An enrolment-only session is
// ErrEnrollmentRequired.
func (s *Service) CreateHandoff(ctx context.Context, p Principal) (string, error) {
	if p.Session.EnrollmentOnly {
		return "", fmt.Errorf("handoff: %w", ErrEnrollmentRequired)
	}
	raw, hash, err := s.opaque(32)
	if err != nil {
		return "", err
	}
	now := s.clock()
	h := Handoff{Hash: hash, SessionID: p.Session.ID, UserID: p.User.ID, CreatedAt: now, ExpiresAt: now.Add(HandoffTTL)}
	if err := s.store.CreateHandoff(ctx, h); err != nil {
		return "", fmt.Errorf("handoff: %w", err)
	}
	return raw, nil
}

// ExchangeHandoff redeems a code made by CreateHandoff: tokens for a new
// session of the user, and the user. The code works once, even under
// concurrent requests; an unknown, used or expired code, or one whose
// browser session was signed out in the meantime, is ErrInvalidCode.
func (s *Service) ExchangeHandoff(ctx context.Context, code string, meta RequestMeta) (User, Tokens, error) {
	if code == "" || len(code) > 256 || !utf8.ValidString(code) {
		return User{}, Tokens{}, fmt.Errorf("exchange: %w", ErrInvalidCode)
	}
	now := s.clock()
	var u User
	var tokens Tokens
	err := s.store.WithTx(ctx, func(tx Tx) error {
		h, err := tx.ConsumeHandoff(ctx, hashToken(code), now)
		if err != nil {
			return err
		}
		src, user, err := tx.SessionWithUser(ctx, h.SessionID)
		if err != nil {
			return err
		}
		if !src.Active(now) || user.Disabled || src.EnrollmentOnly || user.ID != h.UserID {
			return ErrNotFound
		}
		sess := Session{
			ID: s.newID(), UserID: user.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL),
			// The application's session proves what the browser's did, when
			// it did: sudo is not renewed by a handoff.
			AuthAt: src.AuthAt, SecondFactorAt: src.SecondFactorAt, AMR: src.AMR,
			IP: src.IP, UserAgent: src.UserAgent,
		}
		if err := tx.CreateSession(ctx, sess); err != nil {
			return err
		}
		if tokens, err = s.newPair(ctx, tx, sess.ID, user.ID, sess.AMR, sess.ExpiresAt, now); err != nil {
			return err
		}
		u = user
		return tx.AppendAudit(ctx, s.event(EventLoginSucceeded, user.ID, meta, map[string]any{
			"via": "handoff", "amr": sess.AMR, "session_id": sess.ID, "browser_session_id": src.ID,
		}))
	})
	if errors.Is(err, ErrNotFound) {
		return User{}, Tokens{}, fmt.Errorf("exchange: unknown, used or expired code: %w", ErrInvalidCode)
	}
	if err != nil {
		return User{}, Tokens{}, fmt.Errorf("exchange: %w", err)
	}
	return u, tokens, nil
}

package auth

import (
	"context"
	"errors"
	"fmt"
)

// Offer says which features a user may be offered right now, under the
// administrator's settings and the server's configuration. It is advice for
// what to show; every action checks the rules again.
type Offer struct {
	Authenticator bool // enrol an authenticator app
	SMS           bool // enrol a phone for codes by text or call
	Call          bool // codes by voice call
	BackupCodes   bool
	// PhoneSignUp: accounts may be made, and signed in to, with a phone
	// number and a code by text (an SMS provider is configured).
	PhoneSignUp bool
}

// Offer reports what the settings and the configuration allow.
func (s *Service) Offer(ctx context.Context) Offer {
	st := s.policy(ctx)
	phone := s.sender != nil
	return Offer{
		Authenticator: st.methodOn(MethodAuthenticator),
		SMS:           phone && st.factorOn(MethodSMS),
		Call:          phone && s.sms.CallEnabled && st.methodOn(MethodCall),
		BackupCodes:   st.methodOn(MethodBackup),
		PhoneSignUp:   phone,
	}
}

// SessionPrincipal returns the principal of a live session, for a caller
// that holds a session reference of its own (the hosted pages' sealed
// cookie) rather than an access token. A session that is unknown, revoked,
// expired or whose user is disabled is ErrUnauthorized.
func (s *Service) SessionPrincipal(ctx context.Context, sessionID string) (Principal, error) {
	if sessionID == "" || len(sessionID) > 64 {
		return Principal{}, ErrUnauthorized
	}
	sess, u, err := s.store.SessionWithUser(ctx, sessionID)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, fmt.Errorf("session: %w", ErrUnauthorized)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("session: %w", err)
	}
	if !sess.Active(s.now()) || u.Disabled {
		return Principal{}, fmt.Errorf("session not active: %w", ErrUnauthorized)
	}
	return Principal{User: u, Session: sess}, nil
}

// RenameFactor sets the label of one of p's confirmed factors; ErrNotFound
// when p has no such factor.
func (s *Service) RenameFactor(ctx context.Context, p Principal, factorID, label string, meta RequestMeta) error {
	label, err := cleanLabel(label)
	if err != nil {
		return err
	}
	f, err := s.ownFactor(ctx, p, factorID)
	if err != nil {
		return err
	}
	if err := s.store.SetFactorLabel(ctx, f.ID, label); err != nil {
		return fmt.Errorf("rename factor: %w", err)
	}
	s.audit(ctx, s.event("twofa.renamed", p.User.ID, meta, map[string]any{"factor_id": f.ID, "method": f.Method, "label": label}))
	return nil
}

// RemoveFactor removes one of p's confirmed factors (sudo, or code).
// Removing the last one turns 2FA off and deletes the backup codes, as
// Disable does; the user's other sessions are revoked. It reports whether
// 2FA is now off; ErrNotFound when p has no such factor.
func (s *Service) RemoveFactor(ctx context.Context, p Principal, factorID, code string, meta RequestMeta) (bool, error) {
	f, err := s.ownFactor(ctx, p, factorID)
	if err != nil {
		return false, err
	}
	factors, err := s.store.FactorsByUser(ctx, p.User.ID)
	if err != nil {
		return false, fmt.Errorf("remove factor: %w", err)
	}
	conf := confirmed(factors)
	if err := s.requireSudo(ctx, p, conf, code, meta); err != nil {
		return false, err
	}
	off := len(conf) == 1
	now := s.clock()
	err = s.store.WithTx(ctx, func(tx Tx) error {
		if err := tx.DeleteFactor(ctx, f.ID); err != nil {
			return err
		}
		return s.factorsRemoved(ctx, tx, p, off, now, meta, f.Method, []string{f.ID})
	})
	if err != nil {
		return false, fmt.Errorf("remove factor: %w", err)
	}
	return off, nil
}

// ownFactor returns p's confirmed factor with this id; ErrNotFound when
// there is none (or it belongs to someone else).
func (s *Service) ownFactor(ctx context.Context, p Principal, factorID string) (Factor, error) {
	factors, err := s.store.FactorsByUser(ctx, p.User.ID)
	if err != nil {
		return Factor{}, fmt.Errorf("factors: %w", err)
	}
	for _, f := range confirmed(factors) {
		if f.ID == factorID {
			return f, nil
		}
	}
	return Factor{}, fmt.Errorf("factor: %w", ErrNotFound)
}

// maxOwnEvents caps RecentEvents.
const maxOwnEvents = 200

// RecentEvents returns up to limit (1 to 200; anything else means 50) of
// p's own audit events, newest first: sign-ins, failures, changes to second
// factors and sessions.
func (s *Service) RecentEvents(ctx context.Context, p Principal, limit int) ([]AuditEvent, error) {
	if limit <= 0 || limit > maxOwnEvents {
		limit = 50
	}
	events, err := s.store.FindAuditEvents(ctx, AuditFilter{UserID: p.User.ID, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("recent events: %w", err)
	}
	return events, nil
}

// SignOutOtherSessions revokes every session of p's user except p's own
// and returns how many it revoked. It needs no sudo: it only takes access
// away.
func (s *Service) SignOutOtherSessions(ctx context.Context, p Principal, meta RequestMeta) (int, error) {
	now := s.clock()
	var n int
	err := s.store.WithTx(ctx, func(tx Tx) error {
		var err error
		n, err = tx.RevokeUserSessions(ctx, p.User.ID, p.Session.ID, now)
		if err != nil || n == 0 {
			return err
		}
		return tx.AppendAudit(ctx, s.event(EventSessionRevoked, p.User.ID, meta, map[string]any{
			"reason": "signed_out_elsewhere", "sessions_revoked": n, "kept_session_id": p.Session.ID,
		}))
	})
	if err != nil {
		return 0, fmt.Errorf("sign out other sessions: %w", err)
	}
	return n, nil
}

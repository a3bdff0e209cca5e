package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
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
	// CodeChallenge is the application's S256 PKCE code challenge, or ""
	// when it sent none.
	CodeChallenge string
}

// PKCE (RFC 7636), S256 only: the application keeps a random code_verifier,
// sends BASE64URL(SHA-256(verifier)) with its return_to, and must present
// the verifier to exchange the code, so a code intercepted on its way back
// (another app claiming the redirect, a log, a referrer) is useless alone.

// ValidCodeChallenge reports whether c has the form of an S256 code
// challenge: 43 base64url characters, no padding (a SHA-256).
func ValidCodeChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// validCodeVerifier reports whether v is a code_verifier: 43 to 128
// characters from A-Z a-z 0-9 - . _ ~ (RFC 7636 section 4.1).
func validCodeVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// pkceMatches reports whether verifier answers challenge, in constant time.
// With no challenge, a verifier is refused too: that is what a code whose
// challenge was stripped from the sign-in link looks like.
func pkceMatches(challenge, verifier string) bool {
	if challenge == "" || verifier == "" {
		return challenge == "" && verifier == ""
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
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
// time and its second-factor time. codeChallenge, when not "", is an S256
// PKCE challenge the exchange must answer. An enrolment-only session is
// ErrEnrollmentRequired.
func (s *Service) CreateHandoff(ctx context.Context, p Principal, codeChallenge string) (string, error) {
	if p.Session.EnrollmentOnly {
		return "", fmt.Errorf("handoff: %w", ErrEnrollmentRequired)
	}
	if codeChallenge != "" && !ValidCodeChallenge(codeChallenge) {
		return "", fmt.Errorf("handoff: %w", invalid("code_challenge", "must be 43 base64url characters (S256)"))
	}
	raw, hash, err := s.opaque(32)
	if err != nil {
		return "", err
	}
	now := s.clock()
	h := Handoff{Hash: hash, SessionID: p.Session.ID, UserID: p.User.ID, CreatedAt: now, ExpiresAt: now.Add(HandoffTTL), CodeChallenge: codeChallenge}
	if err := s.store.CreateHandoff(ctx, h); err != nil {
		return "", fmt.Errorf("handoff: %w", err)
	}
	return raw, nil
}

// ExchangeHandoff redeems a code made by CreateHandoff: tokens for a new
// session of the user, and the user. The code works once, even under
// concurrent requests; an unknown, used or expired code, or one whose
// browser session was signed out in the meantime, is ErrInvalidCode. A
// code made with a PKCE challenge needs the matching verifier, and one made
// without refuses a verifier; a wrong or missing verifier is ErrInvalidCode
// and uses the code up. A verifier of the wrong form is a
// *ValidationError and changes nothing.
func (s *Service) ExchangeHandoff(ctx context.Context, code, verifier string, meta RequestMeta) (User, Tokens, error) {
	if code == "" || len(code) > 256 || !utf8.ValidString(code) {
		return User{}, Tokens{}, fmt.Errorf("exchange: %w", ErrInvalidCode)
	}
	if verifier != "" && !validCodeVerifier(verifier) {
		return User{}, Tokens{}, fmt.Errorf("exchange: %w", invalid("codeVerifier", "must be 43 to 128 characters from A-Z a-z 0-9 - . _ ~"))
	}
	now := s.clock()
	var u User
	var tokens Tokens
	pkceFailed := false
	err := s.store.WithTx(ctx, func(tx Tx) error {
		h, err := tx.ConsumeHandoff(ctx, hashToken(code), now)
		if err != nil {
			return err
		}
		if !pkceMatches(h.CodeChallenge, verifier) {
			// Committed: the code is used up, so a verifier cannot be
			// guessed at.
			pkceFailed = true
			return tx.AppendAudit(ctx, s.event(EventLoginFailed, h.UserID, meta, map[string]any{
				"via": "handoff", "reason": "pkce_mismatch", "browser_session_id": h.SessionID,
			}))
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
	if pkceFailed {
		s.logger.WarnContext(ctx, "handoff code exchanged with a wrong or missing PKCE verifier", "event", "handoff_pkce_mismatch")
		return User{}, Tokens{}, fmt.Errorf("exchange: code verifier does not match: %w", ErrInvalidCode)
	}
	return u, tokens, nil
}

// Package token issues and verifies access tokens: JWTs signed with Ed25519
// (alg EdDSA, typ at+jwt) whose signing keys it creates, seals, rotates and
// publishes as a JWKS document.
package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenType is the JWT typ header of an access token (RFC 9068).
const tokenType = "at+jwt"

// iatLeeway is how far in the future a token's iat may be, to absorb clock
// skew between instances.
const iatLeeway = 5 * time.Second

// maxTokenSize bounds the input Verify parses; real tokens are well under
// 1 KiB.
const maxTokenSize = 8 << 10

var (
	// ErrInvalid is returned, wrapped with the reason, for any access token
	// that Verify does not accept.
	ErrInvalid = errors.New("invalid access token")

	// ErrUnknownKey is returned, wrapped, when an access token names a key
	// this Keyring has not loaded. errors.Is(err, ErrInvalid) holds for it
	// too. Reloading the keys (Refresh, VerifyCtx) may make such a token
	// valid.
	ErrUnknownKey = fmt.Errorf("%w: unknown signing key", ErrInvalid)
)

// Claims are the claims of an access token that callers set and read.
// Times have whole-second precision in a token.
type Claims struct {
	Subject   string   // user ID (sub)
	SessionID string   // session ID (sid)
	AMR       []string // authentication methods, e.g. ["pwd","otp"] (amr)
	IssuedAt  time.Time
	ExpiresAt time.Time
	ID        string // unique token ID (jti)
}

// wireClaims is the JSON payload of an access token. aud is a single string,
// and times are whole seconds, independent of jwt's package-level settings.
type wireClaims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub"`
	SessionID string   `json:"sid"`
	IssuedAt  *int64   `json:"iat,omitempty"`
	ExpiresAt *int64   `json:"exp,omitempty"`
	ID        string   `json:"jti"`
	AMR       []string `json:"amr,omitempty"`
}

func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return numericDate(w.ExpiresAt) }
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return numericDate(w.IssuedAt) }
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (w *wireClaims) GetIssuer() (string, error)                   { return w.Issuer, nil }
func (w *wireClaims) GetSubject() (string, error)                  { return w.Subject, nil }
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{w.Audience}, nil
}

func numericDate(sec *int64) (*jwt.NumericDate, error) {
	if sec == nil {
		return nil, nil
	}
	return &jwt.NumericDate{Time: time.Unix(*sec, 0)}, nil
}

// Issue signs c with the current signing key and returns the compact JWT.
// c.IssuedAt is required. A zero c.ExpiresAt becomes IssuedAt + AccessTTL;
// a later one than that is refused, so that no token outlives the time its
// key stays published after retirement. An empty c.ID is filled with 128
// random bits, base64url-encoded. Issue fails before the first successful
// Load.
func (k *Keyring) Issue(c Claims) (string, error) {
	signer := k.keys.Load().signer
	if signer == nil {
		return "", errors.New("issue token: no signing key loaded")
	}
	if c.Subject == "" || c.SessionID == "" {
		return "", errors.New("issue token: empty subject or session id")
	}
	if c.IssuedAt.IsZero() {
		return "", errors.New("issue token: zero issued-at time")
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.IssuedAt.Add(k.opts.AccessTTL)
	}
	if !c.ExpiresAt.After(c.IssuedAt) || c.ExpiresAt.Sub(c.IssuedAt) > k.opts.AccessTTL {
		return "", fmt.Errorf("issue token: lifetime %v not in (0, %v]", c.ExpiresAt.Sub(c.IssuedAt), k.opts.AccessTTL)
	}
	if c.ID == "" {
		id, err := randomString(k.opts.Rand, 16)
		if err != nil {
			return "", fmt.Errorf("issue token: generate id: %w", err)
		}
		c.ID = id
	}
	iat, exp := c.IssuedAt.Unix(), c.ExpiresAt.Unix()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &wireClaims{
		Issuer:    k.opts.Issuer,
		Audience:  k.opts.Audience,
		Subject:   c.Subject,
		SessionID: c.SessionID,
		IssuedAt:  &iat,
		ExpiresAt: &exp,
		ID:        c.ID,
		AMR:       c.AMR,
	})
	t.Header["typ"] = tokenType
	t.Header["kid"] = signer.id
	s, err := t.SignedString(signer.private)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return s, nil
}

// Verify checks raw at time now and returns its claims. It accepts only a
// token that this Keyring could have issued: alg EdDSA, typ at+jwt, a kid
// naming a loaded key still valid at now, a good signature, the configured
// iss and aud, an exp after now, an iat at most 5 seconds after now, and
// non-empty sub, sid and jti; input over 8 KiB is refused unparsed. Any
// other input yields an error wrapping ErrInvalid (ErrUnknownKey for an
// unknown kid). Verify does no I/O and never panics.
func (k *Keyring) Verify(raw string, now time.Time) (Claims, error) {
	if len(raw) > maxTokenSize {
		return Claims{}, fmt.Errorf("%w: %d bytes is too long", ErrInvalid, len(raw))
	}
	ks := k.keys.Load()
	if c, ok := ks.cache.get(raw, now, ks); ok {
		return c, nil
	}
	unknownKey := false
	var usedKid string
	keyFunc := func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
			return nil, errors.New("alg is not EdDSA")
		}
		if typ, _ := t.Header["typ"].(string); typ != tokenType {
			return nil, errors.New("typ is not " + tokenType)
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("crit header is not supported")
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("missing kid")
		}
		key, ok := ks.verify[kid]
		if !ok {
			unknownKey = true
			return nil, errors.New("unknown kid")
		}
		if !key.validAt(now) {
			return nil, errors.New("signing key retired")
		}
		usedKid = kid
		return key.public, nil
	}
	var w wireClaims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(k.opts.Issuer),
		jwt.WithAudience(k.opts.Audience),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
	)
	if _, err := p.ParseWithClaims(raw, &w, keyFunc); err != nil {
		if unknownKey {
			return Claims{}, fmt.Errorf("%w: %v", ErrUnknownKey, err)
		}
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case w.IssuedAt == nil:
		return Claims{}, fmt.Errorf("%w: missing iat", ErrInvalid)
	case time.Unix(*w.IssuedAt, 0).After(now.Add(iatLeeway)):
		return Claims{}, fmt.Errorf("%w: iat is in the future", ErrInvalid)
	case w.Subject == "":
		return Claims{}, fmt.Errorf("%w: missing sub", ErrInvalid)
	case w.SessionID == "":
		return Claims{}, fmt.Errorf("%w: missing sid", ErrInvalid)
	case w.ID == "":
		return Claims{}, fmt.Errorf("%w: missing jti", ErrInvalid)
	}
	c := Claims{
		Subject:   w.Subject,
		SessionID: w.SessionID,
		AMR:       w.AMR,
		IssuedAt:  time.Unix(*w.IssuedAt, 0).UTC(),
		ExpiresAt: time.Unix(*w.ExpiresAt, 0).UTC(),
		ID:        w.ID,
	}
	ks.cache.put(raw, usedKid, c)
	return c, nil
}

// VerifyCtx is Verify, except that when raw names an unknown key it rereads
// the keys from the store (as Refresh does, at most once per second of now
// across all callers) and verifies once more. Such a token appears when
// another instance has rotated the key. If the reread fails, the error
// returned still wraps ErrUnknownKey and mentions the failure.
func (k *Keyring) VerifyCtx(ctx context.Context, raw string, now time.Time) (Claims, error) {
	c, err := k.Verify(raw, now)
	if !errors.Is(err, ErrUnknownKey) {
		return c, err
	}
	if rerr := k.refreshLimited(ctx, now); rerr != nil {
		return Claims{}, fmt.Errorf("%w (key refresh failed: %v)", err, rerr)
	}
	return k.Verify(raw, now)
}

// refreshLimited rereads the keys unless an unknown kid made it reread them
// (or try to) less than refreshInterval before now. A caller that waited for
// a concurrent reread skips its own and benefits from the other's.
func (k *Keyring) refreshLimited(ctx context.Context, now time.Time) error {
	if err := k.acquire(ctx); err != nil {
		return err
	}
	defer k.release()
	if !k.lastSync.IsZero() && now.Before(k.lastSync.Add(refreshInterval)) {
		return nil
	}
	k.lastSync = now // a failed read counts too, so a broken store is not hammered
	return k.syncLocked(ctx, now, syncRead)
}

package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// forge signs claims with method and key under the given header fields
// (a nil value deletes a field), as an attacker or a buggy issuer would.
func forge(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
		} else {
			tok.Header[name] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign forged token: %v", err)
	}
	return s
}

// goodClaims are the claims Issue would write at now.
func goodClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "user-1",
		"sid": "session-1",
		"iat": now.Unix(),
		"exp": now.Add(DefaultAccessTTL).Unix(),
		"jti": "jti-1",
		"amr": []string{"pwd", "otp"},
	}
}

func with(c jwt.MapClaims, name string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, x := range c {
		out[k] = x
	}
	if v == nil {
		delete(out, name)
	} else {
		out[name] = v
	}
	return out
}

// segments splits a compact JWT and decodes its payload and signature.
func segments(t testing.TB, raw string) (header, payload string, sig []byte) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d segments", raw, len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return parts[0], parts[1], sig
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	now := start()
	k, _ := loadedKeyring(t, now)
	in := Claims{
		Subject:   "user-1",
		SessionID: "session-1",
		AMR:       []string{"pwd", "otp"},
		IssuedAt:  now,
		ExpiresAt: now.Add(10 * time.Minute),
		ID:        "fixed-id",
	}
	raw, err := k.Issue(in)
	if err != nil {
		t.Fatalf("Issue(%+v) = %v, want nil", in, err)
	}
	for _, at := range []time.Time{now.Add(-iatLeeway), now, now.Add(10*time.Minute - time.Second)} {
		got, err := k.Verify(raw, at)
		if err != nil {
			t.Fatalf("Verify(%q) at %v = %v, want nil", raw, at, err)
		}
		if diff := cmp.Diff(in, got); diff != "" {
			t.Errorf("Verify(%q) claims mismatch (-want +got):\n%s", raw, diff)
		}
	}
}

func TestIssueWireFormat(t *testing.T) {
	t.Parallel()
	now := start()
	k, store := loadedKeyring(t, now)
	raw, err := k.Issue(Claims{Subject: "user-1", SessionID: "session-1", AMR: []string{"pwd"}, IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	h, p, _ := segments(t, raw)
	var header, payload map[string]any
	for seg, dst := range map[string]*map[string]any{h: &header, p: &payload} {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	wantHeader := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": store.snapshot()[0].ID}
	if diff := cmp.Diff(wantHeader, header); diff != "" {
		t.Errorf("Issue() header mismatch (-want +got):\n%s", diff)
	}
	jti, _ := payload["jti"].(string)
	if b, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(b) != 16 {
		t.Errorf("Issue() jti = %q, want 128 bits base64url", jti)
	}
	delete(payload, "jti")
	wantPayload := map[string]any{
		"iss": testIssuer,
		"aud": testAudience, // a single string, not an array
		"sub": "user-1",
		"sid": "session-1",
		"iat": float64(now.Unix()),
		"exp": float64(now.Add(DefaultAccessTTL).Unix()),
		"amr": []any{"pwd"},
	}
	if diff := cmp.Diff(wantPayload, payload); diff != "" {
		t.Errorf("Issue() payload mismatch (-want +got):\n%s", diff)
	}
}

func TestIssueDefaults(t *testing.T) {
	t.Parallel()
	now := start().Add(500 * time.Millisecond)
	k, _ := loadedKeyring(t, now)
	c := Claims{Subject: "user-1", SessionID: "session-1", IssuedAt: now}
	raw1, err := k.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	raw2, err := k.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	got1, err := k.Verify(raw1, now)
	if err != nil {
		t.Fatalf("Verify(%q) = %v, want nil", raw1, err)
	}
	got2, err := k.Verify(raw2, now)
	if err != nil {
		t.Fatalf("Verify(%q) = %v, want nil", raw2, err)
	}
	want := Claims{
		Subject:   "user-1",
		SessionID: "session-1",
		IssuedAt:  now.Truncate(time.Second),
		ExpiresAt: now.Add(DefaultAccessTTL).Truncate(time.Second),
	}
	if diff := cmp.Diff(want, got1, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "ID" }, cmp.Ignore())); diff != "" {
		t.Errorf("Verify(%q) claims mismatch (-want +got):\n%s", raw1, diff)
	}
	if got1.ID == "" || got1.ID == got2.ID {
		t.Errorf("Issue() twice gave token IDs %q and %q, want two distinct non-empty IDs", got1.ID, got2.ID)
	}
}

func TestIssueRejects(t *testing.T) {
	t.Parallel()
	now := start()
	k, _ := loadedKeyring(t, now)
	ok := Claims{Subject: "user-1", SessionID: "session-1", IssuedAt: now}
	tests := []struct {
		name string
		c    Claims
	}{
		{"no subject", Claims{SessionID: "s", IssuedAt: now}},
		{"no session", Claims{Subject: "u", IssuedAt: now}},
		{"no issued at", Claims{Subject: "u", SessionID: "s"}},
		{"expires before issued", Claims{Subject: "u", SessionID: "s", IssuedAt: now, ExpiresAt: now.Add(-time.Second)}},
		{"lifetime over TTL", Claims{Subject: "u", SessionID: "s", IssuedAt: now, ExpiresAt: now.Add(DefaultAccessTTL + time.Second)}},
	}
	for _, tt := range tests {
		if raw, err := k.Issue(tt.c); err == nil {
			t.Errorf("%s: Issue(%+v) = %q, nil; want an error", tt.name, tt.c, raw)
		}
	}
	unloaded := newTestKeyring(t, &memStore{}, Options{})
	if raw, err := unloaded.Issue(ok); err == nil {
		t.Errorf("Issue(%+v) before Load = %q, nil; want an error", ok, raw)
	}
}

func TestVerifyAcceptsIATWithinLeeway(t *testing.T) {
	t.Parallel()
	now := start()
	k, _ := loadedKeyring(t, now)
	priv := k.keys.Load().signer.private
	kid := k.keys.Load().signer.id
	raw := forge(t, jwt.SigningMethodEdDSA, priv, map[string]any{"typ": "at+jwt", "kid": kid},
		goodClaims(now.Add(iatLeeway)))
	if _, err := k.Verify(raw, now); err != nil {
		t.Errorf("Verify(%q) = %v, want nil", raw, err)
	}
}

// TestVerifyRejects tampers with each pinned part of a token, one at a
// time, and tries the known JWT attacks.
func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	now := start()
	k, _ := loadedKeyring(t, now)
	signer := k.keys.Load().signer
	pub := signer.private.Public().(ed25519.PublicKey)
	hdr := map[string]any{"typ": "at+jwt", "kid": signer.id}
	good := goodClaims(now)
	ed := func(header map[string]any, claims jwt.MapClaims) string {
		h := map[string]any{}
		for k, v := range hdr {
			h[k] = v
		}
		for k, v := range header {
			h[k] = v
		}
		return forge(t, jwt.SigningMethodEdDSA, signer.private, h, claims)
	}

	valid := ed(nil, good)
	if _, err := k.Verify(valid, now); err != nil {
		t.Fatalf("Verify(%q) = %v, want nil (forge helper is broken)", valid, err)
	}
	h, p, sig := segments(t, valid)

	flipped := append([]byte(nil), sig...)
	flipped[10] ^= 0x01
	editedPayload, _ := json.Marshal(with(good, "sub", "admin"))
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"` + signer.id + `"}`))
	// The last character of a 64-byte signature carries 4 unused bits; a
	// different character decodes to the same bytes unless decoding is strict.
	encSig := base64.RawURLEncoding.EncodeToString(sig)
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", encSig[len(encSig)-1])
	nonCanonical := encSig[:len(encSig)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last+1])

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		raw         string
		wantUnknown bool
	}{
		{"iss other", ed(nil, with(good, "iss", "https://evil.example")), false},
		{"iss missing", ed(nil, with(good, "iss", nil)), false},
		{"aud other", ed(nil, with(good, "aud", "someone-else")), false},
		{"aud missing", ed(nil, with(good, "aud", nil)), false},
		{"aud array", ed(nil, with(good, "aud", []string{testAudience})), false},
		{"typ JWT", ed(map[string]any{"typ": "JWT"}, good), false},
		{"typ missing", ed(map[string]any{"typ": nil}, good), false},
		{"typ upper case", ed(map[string]any{"typ": "AT+JWT"}, good), false},
		{"kid unknown", ed(map[string]any{"kid": "no-such-key"}, good), true},
		{"kid missing", ed(map[string]any{"kid": nil}, good), false},
		{"kid not a string", ed(map[string]any{"kid": 7}, good), false},
		{"crit header", ed(map[string]any{"crit": []string{"exp"}}, good), false},
		{"exp past", ed(nil, with(good, "exp", now.Add(-time.Second).Unix())), false},
		{"exp now", ed(nil, with(good, "exp", now.Unix())), false},
		{"exp missing", ed(nil, with(good, "exp", nil)), false},
		{"exp a string", ed(nil, with(good, "exp", "tomorrow")), false},
		{"iat missing", ed(nil, with(good, "iat", nil)), false},
		{"iat future", ed(nil, with(good, "iat", now.Add(iatLeeway+time.Second).Unix())), false},
		{"sub empty", ed(nil, with(good, "sub", "")), false},
		{"sid missing", ed(nil, with(good, "sid", nil)), false},
		{"jti missing", ed(nil, with(good, "jti", nil)), false},
		{"amr not a list", ed(nil, with(good, "amr", "pwd")), false},
		{"signature bit flip", h + "." + p + "." + base64.RawURLEncoding.EncodeToString(flipped), false},
		{"signature non-canonical base64", h + "." + p + "." + nonCanonical, false},
		{"signature padded", valid + "==", false},
		{"signature empty", h + "." + p + ".", false},
		{"payload edited", h + "." + base64.RawURLEncoding.EncodeToString(editedPayload) + "." + encSig, false},
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, good), false},
		{"alg none with original signature", noneHeader + "." + p + "." + encSig, false},
		{"HS256 with public key", forge(t, jwt.SigningMethodHS256, []byte(pub), hdr, good), false},
		{"HS256 with public key as x", forge(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub)), hdr, good), false},
		{"HS256 with JWKS", forge(t, jwt.SigningMethodHS256, k.JWKS(), hdr, good), false},
		{"RS256", forge(t, jwt.SigningMethodRS256, rsaKey, hdr, good), false},
		{"ES256", forge(t, jwt.SigningMethodES256, ecKey, hdr, good), false},
		{"EdDSA with another key and known kid", forge(t, jwt.SigningMethodEdDSA, otherKey, hdr, good), false},
		{"truncated", valid[:len(valid)-10], false},
		{"two segments", h + "." + p, false},
		{"four segments", valid + ".x", false},
		{"empty", "", false},
		{"garbage", "not a token", false},
		{"huge", h + "." + strings.Repeat("A", 1<<20) + "." + encSig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := k.Verify(tt.raw, now)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify(%q) = %+v, %v, want %v", tt.raw, c, err, ErrInvalid)
			}
			if got := errors.Is(err, ErrUnknownKey); got != tt.wantUnknown {
				t.Errorf("Verify(%q) = %v; errors.Is(err, ErrUnknownKey) = %t, want %t", tt.raw, err, got, tt.wantUnknown)
			}
			if diff := cmp.Diff(Claims{}, c); diff != "" {
				t.Errorf("Verify(%q) returned claims with an error (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

func TestVerifyBeforeLoad(t *testing.T) {
	t.Parallel()
	now := start()
	issuer, _ := loadedKeyring(t, now)
	raw, err := issuer.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	k := newTestKeyring(t, &memStore{}, Options{})
	if _, err := k.Verify(raw, now); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify(%q) before Load = %v, want %v", raw, err, ErrUnknownKey)
	}
}

func TestVerifyOtherIssuerAndAudience(t *testing.T) {
	t.Parallel()
	now := start()
	store := &memStore{}
	k := newTestKeyring(t, store, Options{})
	if err := k.Load(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	raw, err := k.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	// Same keys, different configuration: the token must not cross over.
	for _, opts := range []Options{{Issuer: "https://other.example"}, {Audience: "other-service"}} {
		other := newTestKeyring(t, store, opts)
		if err := other.Load(t.Context(), now); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Verify(raw, now); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) with %+v = %v, want %v", raw, opts, err, ErrInvalid)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	now := start()
	k, _ := loadedKeyring(b, now)
	raw, err := k.Issue(Claims{Subject: "user-1", SessionID: "session-1", AMR: []string{"pwd", "otp"}, IssuedAt: now})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(raw, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	now := start()
	k, _ := loadedKeyring(b, now)
	c := Claims{Subject: "user-1", SessionID: "session-1", AMR: []string{"pwd", "otp"}, IssuedAt: now}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Issue(c); err != nil {
			b.Fatal(err)
		}
	}
}

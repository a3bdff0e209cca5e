package token

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

type jwk struct {
	Kty, Crv, X, Kid, Use, Alg string
}

// jwksKids returns the kids of the JWKS document k serves, checking every
// entry's fixed fields and that x is the stored public key.
func jwksKids(t *testing.T, k *Keyring, store *memStore) []string {
	t.Helper()
	var doc struct{ Keys []jwk }
	if err := json.Unmarshal(k.JWKS(), &doc); err != nil {
		t.Fatalf("JWKS() = %s: %v", k.JWKS(), err)
	}
	public := map[string]string{}
	for _, sk := range store.snapshot() {
		public[sk.ID] = base64.RawURLEncoding.EncodeToString(sk.Public)
	}
	kids := []string{}
	for _, got := range doc.Keys {
		want := jwk{Kty: "OKP", Crv: "Ed25519", X: public[got.Kid], Kid: got.Kid, Use: "sig", Alg: "EdDSA"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("JWKS() key %q mismatch (-want +got):\n%s", got.Kid, diff)
		}
		kids = append(kids, got.Kid)
	}
	return kids
}

func activeKids(store *memStore) []string {
	var kids []string
	for _, sk := range store.snapshot() {
		if sk.RetiredAt == nil {
			kids = append(kids, sk.ID)
		}
	}
	return kids
}

func TestLoadCreatesOneKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := start()
	k, store := loadedKeyring(t, now)
	if err := k.Load(ctx, now.Add(time.Minute)); err != nil {
		t.Fatalf("second Load() = %v, want nil", err)
	}
	// A second instance on the same store adopts the key.
	k2 := newTestKeyring(t, store, Options{})
	if err := k2.Load(ctx, now.Add(2*time.Minute)); err != nil {
		t.Fatalf("Load() on second keyring = %v, want nil", err)
	}
	keys := store.snapshot()
	if len(keys) != 1 {
		t.Fatalf("store holds %d keys after three Loads, want 1", len(keys))
	}
	sk := keys[0]
	if len(sk.ID) != 16 || sk.RetiredAt != nil || !sk.CreatedAt.Equal(now) {
		t.Errorf("stored key = {ID: %q, CreatedAt: %v, RetiredAt: %v}, want a 16-character ID created at %v, not retired", sk.ID, sk.CreatedAt, sk.RetiredAt, now)
	}
	if diff := cmp.Diff([]string{sk.ID}, jwksKids(t, k2, store)); diff != "" {
		t.Errorf("JWKS() kids mismatch (-want +got):\n%s", diff)
	}
	if k.JWKSETag() != k2.JWKSETag() {
		t.Errorf("JWKSETag() = %s and %s on two instances with the same keys, want equal", k.JWKSETag(), k2.JWKSETag())
	}
}

func TestSealedKeyIsNotRaw(t *testing.T) {
	t.Parallel()
	k, store := loadedKeyring(t, start())
	sk := store.snapshot()[0]
	priv := k.keys.Load().signer.private
	if bytes.Contains(sk.Sealed, priv.Seed()) || bytes.Contains(sk.Sealed, priv) {
		t.Errorf("stored Sealed = %x contains the raw private key", sk.Sealed)
	}
	sealer := newSealer(t, 1)
	if _, err := sealer.Open(sk.Sealed, []byte("signing-key:other")); err == nil {
		t.Errorf("Open(sealed, other kid) = nil error, want the aad to bind the key to its kid")
	}
	seed, err := sealer.Open(sk.Sealed, []byte("signing-key:"+sk.ID))
	if err != nil {
		t.Fatalf("Open(sealed, %q) = %v, want nil", "signing-key:"+sk.ID, err)
	}
	if !bytes.Equal(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), sk.Public) {
		t.Errorf("unsealed seed does not derive the stored public key")
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := start()
	_, store := loadedKeyring(t, now)
	sk := store.snapshot()[0]

	// The sealed key moved to another kid: its aad no longer matches.
	moved := &memStore{keys: []StoredKey{{ID: "moved-key-id-000", Public: sk.Public, Sealed: sk.Sealed, CreatedAt: now}}}
	// The public key does not match the sealed private key.
	otherPub, _, _ := ed25519.GenerateKey(nil)
	mismatched := &memStore{keys: []StoredKey{{ID: sk.ID, Public: otherPub, Sealed: sk.Sealed, CreatedAt: now}}}
	malformed := &memStore{keys: []StoredKey{{ID: sk.ID, Public: sk.Public[:31], Sealed: sk.Sealed, CreatedAt: now}}}
	failing := &memStore{err: errors.New("database is down")}

	tests := []struct {
		name string
		k    *Keyring
	}{
		{"open fails", NewKeyring(store, brokenSealer{newSealer(t, 1)}, Options{Issuer: testIssuer, Audience: testAudience})},
		{"wrong sealing key", NewKeyring(store, newSealer(t, 2), Options{Issuer: testIssuer, Audience: testAudience})},
		{"aad mismatch", newTestKeyring(t, moved, Options{})},
		{"public key mismatch", newTestKeyring(t, mismatched, Options{})},
		{"malformed public key", newTestKeyring(t, malformed, Options{})},
		{"store fails", newTestKeyring(t, failing, Options{})},
		{"no issuer", NewKeyring(&memStore{}, newSealer(t, 1), Options{Audience: testAudience})},
		{"no audience", NewKeyring(&memStore{}, newSealer(t, 1), Options{Issuer: testIssuer})},
		{"nil store", NewKeyring(nil, newSealer(t, 1), Options{Issuer: testIssuer, Audience: testAudience})},
	}
	for _, tt := range tests {
		if err := tt.k.Load(ctx, now); err == nil {
			t.Errorf("%s: Load() = nil, want an error", tt.name)
		}
		c := Claims{Subject: "u", SessionID: "s", IssuedAt: now}
		if raw, err := tt.k.Issue(c); err == nil {
			t.Errorf("%s: Issue(%+v) after failed Load = %q, nil; want an error", tt.name, c, raw)
		}
	}
}

func TestLoadFailureKeepsPreviousKeys(t *testing.T) {
	t.Parallel()
	now := start()
	k, store := loadedKeyring(t, now)
	etag := k.JWKSETag()
	store.mu.Lock()
	store.err = errors.New("database is down")
	store.mu.Unlock()
	if err := k.Refresh(t.Context(), now.Add(time.Minute)); err == nil {
		t.Fatalf("Refresh() with failing store = nil, want an error")
	}
	if got := k.JWKSETag(); got != etag {
		t.Errorf("JWKSETag() after failed Refresh = %s, want %s", got, etag)
	}
	raw, err := k.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: now})
	if err != nil {
		t.Fatalf("Issue() after failed Refresh = %v, want nil", err)
	}
	if _, err := k.Verify(raw, now); err != nil {
		t.Errorf("Verify(%q) after failed Refresh = %v, want nil", raw, err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t0 := start()
	k, store := loadedKeyring(t, t0)
	oldKid := store.snapshot()[0].ID
	oldPriv := k.keys.Load().signer.private
	etag0 := k.JWKSETag()

	before, err := k.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	// A token whose exp lies far beyond the key's life, so that only the
	// key's retirement can end it.
	longLived := forge(t, jwt.SigningMethodEdDSA, oldPriv, map[string]any{"typ": "at+jwt", "kid": oldKid},
		with(goodClaims(t0), "exp", t0.Add(24*time.Hour).Unix()))

	t1 := t0.Add(10 * time.Minute)
	if err := k.Rotate(ctx, t1); err != nil {
		t.Fatalf("Rotate() = %v, want nil", err)
	}
	active := activeKids(store)
	if len(active) != 1 || active[0] == oldKid {
		t.Fatalf("unretired keys after Rotate = %v, want one new key", active)
	}
	newKid := active[0]
	if diff := cmp.Diff([]string{newKid, oldKid}, jwksKids(t, k, store)); diff != "" {
		t.Errorf("JWKS() kids after Rotate mismatch (-want +got):\n%s", diff)
	}
	if k.JWKSETag() == etag0 {
		t.Errorf("JWKSETag() = %s after Rotate, want a new tag", etag0)
	}

	after, err := k.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: t1})
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := segments(t, after); !strings.Contains(mustDecode(t, h), newKid) {
		t.Errorf("Issue() after Rotate signed with header %s, want kid %s", mustDecode(t, h), newKid)
	}
	for _, raw := range []string{before, after, longLived} {
		if _, err := k.Verify(raw, t1.Add(time.Minute)); err != nil {
			t.Errorf("Verify(%q) after rotation = %v, want nil", raw, err)
		}
	}

	// The old key verifies until retirement + AccessTTL + a minute.
	end := t1.Add(DefaultAccessTTL + retiredKeyLeeway)
	if _, err := k.Verify(longLived, end.Add(-time.Second)); err != nil {
		t.Errorf("Verify(%q) just before the retired key expires = %v, want nil", longLived, err)
	}
	if _, err := k.Verify(longLived, end); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify(%q) when the retired key expires = %v, want %v", longLived, err, ErrInvalid)
	}

	if err := k.Load(ctx, end); err != nil {
		t.Fatalf("Load() = %v, want nil", err)
	}
	if diff := cmp.Diff([]string{newKid}, jwksKids(t, k, store)); diff != "" {
		t.Errorf("JWKS() kids after the retired key expired mismatch (-want +got):\n%s", diff)
	}
	if _, err := k.Verify(longLived, end); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify(%q) after the retired key was dropped = %v, want %v", longLived, err, ErrUnknownKey)
	}
	fresh, err := k.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: end})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(fresh, end); err != nil {
		t.Errorf("Verify(%q) with the new key = %v, want nil", fresh, err)
	}
}

func mustDecode(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadRotatesWhenDue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t0 := start()
	store := &memStore{}
	k := newTestKeyring(t, store, Options{Rotation: 24 * time.Hour})
	for _, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(24*time.Hour - time.Second)} {
		if err := k.Load(ctx, at); err != nil {
			t.Fatal(err)
		}
		if n := len(store.snapshot()); n != 1 {
			t.Fatalf("store holds %d keys after Load at %v, want 1", n, at)
		}
	}
	oldKid := store.snapshot()[0].ID
	t1 := t0.Add(24 * time.Hour)
	if err := k.Load(ctx, t1); err != nil {
		t.Fatal(err)
	}
	keys := store.snapshot()
	if len(keys) != 2 {
		t.Fatalf("store holds %d keys after Load at rotation time, want 2", len(keys))
	}
	for _, sk := range keys {
		if sk.ID == oldKid && (sk.RetiredAt == nil || !sk.RetiredAt.Equal(t1)) {
			t.Errorf("old key RetiredAt = %v, want %v", sk.RetiredAt, t1)
		}
		if sk.ID != oldKid && sk.RetiredAt != nil {
			t.Errorf("new key RetiredAt = %v, want nil", sk.RetiredAt)
		}
	}
	if got := k.keys.Load().signer.id; got == oldKid {
		t.Errorf("signing kid after rotation = %s, want the new key", got)
	}
}

func TestLoadAdoptsNewerKeyFromStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t0 := start()
	a, store := loadedKeyring(t, t0)
	b := newTestKeyring(t, store, Options{})
	if err := b.Load(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if err := a.Rotate(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(store.snapshot()) != 2 {
		t.Errorf("store holds %d keys, want 2 (Load must not rotate again)", len(store.snapshot()))
	}
	if ga, gb := a.keys.Load().signer.id, b.keys.Load().signer.id; ga != gb {
		t.Errorf("signing kids = %s and %s after Load, want both on the newest key", ga, gb)
	}
}

// TestConcurrentLoad races two instances loading an empty store, many
// times over: both may create a key, but after Refresh they agree on the
// signer and verify each other's tokens.
func TestConcurrentLoad(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := start()
	raced := 0
	defer func() { t.Logf("%d of 50 rounds created two keys", raced) }()
	for i := range 50 {
		store := &memStore{}
		a := newTestKeyring(t, store, Options{})
		b := newTestKeyring(t, store, Options{})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, k := range []*Keyring{a, b} {
			wg.Go(func() { errs[j] = k.Load(ctx, now) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: concurrent Load() = %v, want nil", i, err)
		}
		if len(store.snapshot()) > 1 {
			raced++
		}
		if active := activeKids(store); len(active) != 1 {
			t.Errorf("round %d: unretired keys = %v, want exactly one", i, active)
		}
		for _, k := range []*Keyring{a, b} {
			if err := k.Refresh(ctx, now.Add(time.Second)); err != nil {
				t.Fatalf("round %d: Refresh() = %v, want nil", i, err)
			}
		}
		if a.JWKSETag() != b.JWKSETag() {
			t.Errorf("round %d: JWKS() = %s and %s, want equal", i, a.JWKS(), b.JWKS())
		}
		c := Claims{Subject: "u", SessionID: "s", IssuedAt: now}
		rawA, errA := a.Issue(c)
		rawB, errB := b.Issue(c)
		if err := errors.Join(errA, errB); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Verify(rawA, now); err != nil {
			t.Errorf("round %d: b.Verify(%q) = %v, want nil", i, rawA, err)
		}
		if _, err := a.Verify(rawB, now); err != nil {
			t.Errorf("round %d: a.Verify(%q) = %v, want nil", i, rawB, err)
		}
	}
}

// TestConcurrentUse issues, verifies and reloads at once, for the race
// detector.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := start()
	k, _ := loadedKeyring(t, now)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				at := now.Add(time.Duration(j) * time.Second)
				switch i % 4 {
				case 0:
					if err := k.Rotate(ctx, at); err != nil {
						t.Error(err)
					}
				case 1:
					if err := k.Refresh(ctx, at); err != nil {
						t.Error(err)
					}
				default:
					raw, err := k.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: at})
					if err != nil {
						t.Error(err)
						continue
					}
					if _, err := k.VerifyCtx(ctx, raw, at); err != nil {
						t.Errorf("VerifyCtx(%q) = %v, want nil", raw, err)
					}
					_ = k.JWKS()
				}
			}
		})
	}
	wg.Wait()
}

func TestVerifyCtxRefreshesUnknownKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t0 := start()
	a, store := loadedKeyring(t, t0)
	b := newTestKeyring(t, store, Options{})
	if err := b.Load(ctx, t0); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Minute)
	if err := a.Rotate(ctx, t1); err != nil {
		t.Fatal(err)
	}
	raw, err := a.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: t1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(raw, t1); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Verify(%q) before refresh = %v, want %v", raw, err, ErrUnknownKey)
	}
	reads := store.readCount()
	if _, err := b.VerifyCtx(ctx, raw, t1); err != nil {
		t.Fatalf("VerifyCtx(%q) = %v, want nil", raw, err)
	}
	if got := store.readCount() - reads; got != 1 {
		t.Errorf("VerifyCtx(%q) read the store %d times, want 1", raw, got)
	}
	if ga, gb := a.keys.Load().signer.id, b.keys.Load().signer.id; ga != gb {
		t.Errorf("signing kid after VerifyCtx refresh = %s, want %s", gb, ga)
	}

	// Unknown kids reread the store at most once per second.
	priv := a.keys.Load().signer.private
	bogus := forge(t, jwt.SigningMethodEdDSA, priv, map[string]any{"typ": "at+jwt", "kid": "no-such-key"}, goodClaims(t1))
	for _, tt := range []struct {
		at        time.Time
		wantReads int
	}{
		{t1.Add(500 * time.Millisecond), 0},
		{t1.Add(999 * time.Millisecond), 0},
		{t1.Add(time.Second), 1},
		{t1.Add(1500 * time.Millisecond), 0},
	} {
		reads := store.readCount()
		if _, err := b.VerifyCtx(ctx, bogus, tt.at); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("VerifyCtx(%q) = %v, want %v", bogus, err, ErrUnknownKey)
		}
		if got := store.readCount() - reads; got != tt.wantReads {
			t.Errorf("VerifyCtx(%q) at %v read the store %d times, want %d", bogus, tt.at, got, tt.wantReads)
		}
	}

	// Other failures never touch the store.
	reads = store.readCount()
	if _, err := b.VerifyCtx(ctx, "garbage", t1.Add(time.Hour)); !errors.Is(err, ErrInvalid) {
		t.Errorf("VerifyCtx(%q) = %v, want %v", "garbage", err, ErrInvalid)
	}
	if got := store.readCount() - reads; got != 0 {
		t.Errorf("VerifyCtx(%q) read the store %d times, want 0", "garbage", got)
	}
}

// TestVerifyCtxRefreshesRightAfterLoad: a key another instance made just
// after this one loaded (two instances starting or rotating at once) is
// picked up at once, not a refreshInterval later.
func TestVerifyCtxRefreshesRightAfterLoad(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	t0 := start()
	a, store := loadedKeyring(t, t0)
	b := newTestKeyring(t, store, Options{})
	if err := b.Load(ctx, t0); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(100 * time.Millisecond)
	if err := a.Rotate(ctx, t1); err != nil {
		t.Fatal(err)
	}
	raw, err := a.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: t1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.VerifyCtx(ctx, raw, t1.Add(100*time.Millisecond)); err != nil {
		t.Errorf("VerifyCtx of a token signed with a key made 100ms after Load = %v, want nil", err)
	}
}

func TestVerifyCtxRefreshFailure(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := start()
	k, store := loadedKeyring(t, now)
	bogus := forge(t, jwt.SigningMethodEdDSA, k.keys.Load().signer.private,
		map[string]any{"typ": "at+jwt", "kid": "no-such-key"}, goodClaims(now))
	store.mu.Lock()
	store.err = errors.New("database is down")
	store.mu.Unlock()
	_, err := k.VerifyCtx(ctx, bogus, now.Add(time.Minute))
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "database is down") {
		t.Errorf("VerifyCtx(%q) = %v, want %v mentioning the store failure", bogus, err, ErrUnknownKey)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := k.VerifyCtx(canceled, bogus, now.Add(2*time.Minute)); !errors.Is(err, ErrInvalid) {
		t.Errorf("VerifyCtx(%q) with canceled context = %v, want %v", bogus, err, ErrInvalid)
	}
}

func TestJWKSBeforeLoadAndCopy(t *testing.T) {
	t.Parallel()
	k := newTestKeyring(t, &memStore{}, Options{})
	if got, want := string(k.JWKS()), `{"keys":[]}`; got != want {
		t.Errorf("JWKS() before Load = %s, want %s", got, want)
	}
	if err := k.Load(t.Context(), start()); err != nil {
		t.Fatal(err)
	}
	doc := k.JWKS()
	want := string(doc)
	clear(doc)
	if got := string(k.JWKS()); got != want {
		t.Errorf("JWKS() after the caller modified a previous result = %s, want %s", got, want)
	}
	if tag := k.JWKSETag(); len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		t.Errorf("JWKSETag() = %s, want a quoted entity tag", tag)
	}
	etag := k.JWKSETag()
	if err := k.Refresh(t.Context(), start().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := k.JWKSETag(); got != etag {
		t.Errorf("JWKSETag() after Refresh with no change = %s, want %s", got, etag)
	}
}

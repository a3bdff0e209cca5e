package token

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
)

// DefaultAccessTTL is the access token lifetime used when Options.AccessTTL
// is zero.
const DefaultAccessTTL = 15 * time.Minute

// retiredKeyLeeway is how long past R + AccessTTL a key retired at R stays
// valid, to cover instances that have not yet picked up a rotation and clock
// skew between them.
const retiredKeyLeeway = time.Minute

// refreshInterval is the least time between two store reads that VerifyCtx
// triggers on an unknown kid.
const refreshInterval = time.Second

// createAttempts bounds how often one Load creates a key when racing
// instances leave the store without an unretired key.
const createAttempts = 3

// StoredKey is a signing key as persisted; Sealed is the private key (its
// 32-byte Ed25519 seed) sealed by the caller's Sealer with additional data
// "signing-key:" + ID.
// RetiredAt is nil while the key may sign.
type StoredKey struct {
	ID        string
	Public    ed25519.PublicKey
	Sealed    []byte
	CreatedAt time.Time
	RetiredAt *time.Time
}

// KeyStore persists signing keys. Several instances may share one store.
type KeyStore interface {
	// SigningKeys returns all keys, in any order.
	SigningKeys(ctx context.Context) ([]StoredKey, error)
	// InsertSigningKey stores a new key.
	InsertSigningKey(ctx context.Context, k StoredKey) error
	// RetireSigningKeys sets RetiredAt to at on every unretired key but
	// exceptID.
	RetireSigningKeys(ctx context.Context, exceptID string, at time.Time) error
}

// Sealer encrypts private keys at rest. Open must fail when aad differs from
// the aad given to Seal.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Options configures a Keyring.
type Options struct {
	// Issuer and Audience are written to and required in every token
	// (iss and aud). Both must be non-empty.
	Issuer, Audience string
	// AccessTTL is the lifetime of an access token; zero means
	// DefaultAccessTTL. A retired key stays valid for verification for
	// AccessTTL plus a minute after its retirement.
	AccessTTL time.Duration
	// Rotation is the age at which Load replaces the signing key; zero
	// means never.
	Rotation time.Duration
	// Rand is the source of keys, key IDs and token IDs; nil means
	// crypto/rand.Reader. It must be safe for concurrent use.
	Rand io.Reader
	// Logger receives key creation events; nil discards them.
	Logger *slog.Logger
}

// Keyring owns the Ed25519 keys that sign and verify access tokens, and the
// JWKS document that publishes them.
//
// Call Load at start-up and then periodically, well within AccessTTL (every
// minute is a good default): it creates the first key, rotates when due and
// picks up keys written by other instances. Verify never does I/O; VerifyCtx
// additionally reloads the keys (at most once per second) when a token names
// a key this instance has not seen yet.
//
// A Keyring is safe for concurrent use.
type Keyring struct {
	store  KeyStore
	sealer Sealer
	opts   Options

	keys atomic.Pointer[keySet]

	// syncSem serialises store reads and writes so that a stale snapshot
	// never replaces a newer one; it is a channel so waiting honours ctx.
	// lastSync, guarded by it, is when VerifyCtx last reread the keys for an
	// unknown kid. Load and Refresh do not count: the read they made may
	// have missed a key that another instance inserted a moment later (two
	// instances starting or rotating at once), and that instance's tokens
	// must not be refused for a whole refreshInterval.
	syncSem  chan struct{}
	lastSync time.Time
}

// keySet is an immutable snapshot of the keys loaded from the store.
type keySet struct {
	signer *signingKey // nil until loaded
	verify map[string]verifyKey
	jwks   []byte
	etag   string
	// cache remembers tokens already verified against this snapshot, so a
	// client that presents the same access token on every request costs
	// one signature check, not one per request. A new snapshot (rotation,
	// reload) starts with an empty cache.
	cache *verifiedCache
}

type signingKey struct {
	id      string
	private ed25519.PrivateKey
}

type verifyKey struct {
	public ed25519.PublicKey
	until  time.Time // zero while the key is not retired
}

func (v verifyKey) validAt(now time.Time) bool {
	return v.until.IsZero() || now.Before(v.until)
}

// NewKeyring returns a Keyring over store and sealer. It holds no keys until
// Load succeeds: before that Issue fails and Verify rejects every token.
func NewKeyring(store KeyStore, sealer Sealer, opts Options) *Keyring {
	if opts.AccessTTL == 0 {
		opts.AccessTTL = DefaultAccessTTL
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Keyring{
		store:   store,
		sealer:  sealer,
		opts:    opts,
		syncSem: make(chan struct{}, 1),
	}
	empty := []byte(`{"keys":[]}`)
	k.keys.Store(&keySet{verify: map[string]verifyKey{}, jwks: empty, etag: etagOf(empty), cache: newVerifiedCache()})
	return k
}

// Load reads the keys from the store and makes them current. If no key is
// unretired it creates one and retires the rest; if the newest unretired key
// is at least Options.Rotation old it rotates. The newest unretired key (by
// CreatedAt, then ID) signs; every key not retired more than AccessTTL plus
// a minute before now verifies. Load is safe to call from several instances
// sharing one store at once. On error the previous keys stay in use.
func (k *Keyring) Load(ctx context.Context, now time.Time) error {
	return k.sync(ctx, now, syncEnsure)
}

// Rotate creates a new signing key, retires every other key at now, and
// makes the new key current, whatever the age of the current key.
func (k *Keyring) Rotate(ctx context.Context, now time.Time) error {
	return k.sync(ctx, now, syncRotate)
}

// Refresh rereads the keys from the store without writing to it, so that
// this instance signs with and verifies the keys other instances created.
// It fails if the store holds no unretired key; the previous keys then stay
// in use.
func (k *Keyring) Refresh(ctx context.Context, now time.Time) error {
	return k.sync(ctx, now, syncRead)
}

// JWKS returns the JSON Web Key Set of every key valid for verification at
// the last successful Load, Rotate or Refresh, newest first. The document is
// computed when the keys are loaded; each call returns a fresh copy.
func (k *Keyring) JWKS() []byte {
	return bytes.Clone(k.keys.Load().jwks)
}

// JWKSETag returns a strong HTTP entity tag (quotes included) for the
// document JWKS returns.
func (k *Keyring) JWKSETag() string {
	return k.keys.Load().etag
}

type syncMode int

const (
	syncRead   syncMode = iota // read only
	syncEnsure                 // create a key when none is unretired or rotation is due
	syncRotate                 // always create a key
)

func (k *Keyring) sync(ctx context.Context, now time.Time, mode syncMode) error {
	if err := k.acquire(ctx); err != nil {
		return err
	}
	defer k.release()
	return k.syncLocked(ctx, now, mode)
}

func (k *Keyring) acquire(ctx context.Context) error {
	select {
	case k.syncSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *Keyring) release() { <-k.syncSem }

func (k *Keyring) syncLocked(ctx context.Context, now time.Time, mode syncMode) error {
	if err := k.checkOptions(); err != nil {
		return err
	}
	keys, err := k.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("read signing keys: %w", err)
	}
	force := mode == syncRotate
	for attempt := 0; force || mode != syncRead && k.needsKey(keys, now); attempt++ {
		if attempt == createAttempts {
			return errors.New("create signing key: no unretired key after concurrent creation")
		}
		if keys, err = k.createKey(ctx, now, force); err != nil {
			return err
		}
		force = false
	}
	ks, err := newKeySet(keys, k.verifyKeyAt(now))
	if err != nil {
		return err
	}
	if err := ks.open(keys, k.sealer, k.keys.Load().signer); err != nil {
		return err
	}
	k.keys.Store(ks)
	return nil
}

// verifyKeyAt returns the verification key for a stored key, and false if
// the key was retired too long before now to verify any unexpired token.
func (k *Keyring) verifyKeyAt(now time.Time) func(StoredKey) (verifyKey, bool) {
	return func(sk StoredKey) (verifyKey, bool) {
		v := verifyKey{public: bytes.Clone(sk.Public)}
		if sk.RetiredAt != nil {
			v.until = sk.RetiredAt.Add(k.opts.AccessTTL + retiredKeyLeeway)
			if !now.Before(v.until) {
				return verifyKey{}, false
			}
		}
		return v, true
	}
}

func (k *Keyring) checkOptions() error {
	var problems []string
	if k.store == nil {
		problems = append(problems, "nil key store")
	}
	if k.sealer == nil {
		problems = append(problems, "nil sealer")
	}
	if k.opts.Issuer == "" {
		problems = append(problems, "empty issuer")
	}
	if k.opts.Audience == "" {
		problems = append(problems, "empty audience")
	}
	if k.opts.AccessTTL < 0 {
		problems = append(problems, "negative access TTL")
	}
	if k.opts.Rotation < 0 {
		problems = append(problems, "negative rotation")
	}
	if len(problems) > 0 {
		return fmt.Errorf("token keyring options: %v", problems)
	}
	return nil
}

// needsKey reports whether no key is unretired or the newest one is due
// for rotation.
func (k *Keyring) needsKey(keys []StoredKey, now time.Time) bool {
	newest, ok := newestActive(keys)
	if !ok {
		return true
	}
	return k.opts.Rotation > 0 && !now.Before(newest.CreatedAt.Add(k.opts.Rotation))
}

// createKey inserts a new key, retires all others and returns the keys as
// they are in the store afterwards.
//
// Without force the key that survives is the newest unretired one in the
// store after the insert, not necessarily ours: instances that race agree on
// it as soon as they see each other's keys. With force (Rotate) our key
// survives.
func (k *Keyring) createKey(ctx context.Context, now time.Time, force bool) ([]StoredKey, error) {
	sk, err := k.newStoredKey(now)
	if err != nil {
		return nil, err
	}
	if err := k.store.InsertSigningKey(ctx, sk); err != nil {
		return nil, fmt.Errorf("insert signing key %s: %w", sk.ID, err)
	}
	keep := sk.ID
	if !force {
		keys, err := k.store.SigningKeys(ctx)
		if err != nil {
			return nil, fmt.Errorf("read signing keys: %w", err)
		}
		if newest, ok := newestActive(keys); ok {
			keep = newest.ID
		}
	}
	if err := k.store.RetireSigningKeys(ctx, keep, now); err != nil {
		return nil, fmt.Errorf("retire signing keys except %s: %w", keep, err)
	}
	k.opts.Logger.Info("signing key created", "event", "signing_key_created",
		"kid", sk.ID, "signing_kid", keep, "forced", force)
	keys, err := k.store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	return keys, nil
}

func (k *Keyring) newStoredKey(now time.Time) (StoredKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := io.ReadFull(k.opts.Rand, seed); err != nil {
		return StoredKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	id, err := randomString(k.opts.Rand, 12)
	if err != nil {
		return StoredKey{}, fmt.Errorf("generate key id: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	sealed, err := k.sealer.Seal(seed, keyAAD(id))
	if err != nil {
		return StoredKey{}, fmt.Errorf("seal signing key %s: %w", id, err)
	}
	return StoredKey{
		ID:        id,
		Public:    priv.Public().(ed25519.PublicKey),
		Sealed:    sealed,
		CreatedAt: now,
	}, nil
}

func keyAAD(id string) []byte { return []byte("signing-key:" + id) }

// randomString returns n random bytes from r, base64url-encoded.
func randomString(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newer orders keys by CreatedAt, then ID: it returns a positive number when
// a is newer than b.
func newer(a, b StoredKey) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func newestActive(keys []StoredKey) (StoredKey, bool) {
	var best StoredKey
	found := false
	for _, sk := range keys {
		if sk.RetiredAt == nil && (!found || newer(sk, best) > 0) {
			best, found = sk, true
		}
	}
	return best, found
}

// newKeySet builds the verification keys and JWKS from keys, keeping those
// for which accept returns true. open sets the signer.
func newKeySet(keys []StoredKey, accept func(StoredKey) (verifyKey, bool)) (*keySet, error) {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b StoredKey) int { return newer(b, a) })

	ks := &keySet{verify: make(map[string]verifyKey, len(sorted)), cache: newVerifiedCache()}
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, sk := range sorted {
		if sk.ID == "" || len(sk.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("signing key %q: malformed id or public key", sk.ID)
		}
		if _, dup := ks.verify[sk.ID]; dup {
			return nil, fmt.Errorf("signing key %q: duplicate id", sk.ID)
		}
		v, ok := accept(sk)
		if !ok {
			continue
		}
		ks.verify[sk.ID] = v
		doc.Keys = append(doc.Keys, jwk{
			Kty: "OKP",
			Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(sk.Public),
			Kid: sk.ID,
			Use: "sig",
			Alg: "EdDSA",
		})
	}
	jwks, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("marshal jwks: %w", err)
	}
	ks.jwks = jwks
	ks.etag = etagOf(jwks)
	return ks, nil
}

func etagOf(doc []byte) string {
	sum := sha256.Sum256(doc)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// open sets ks.signer to the newest unretired key, unsealing its private key
// unless prev already holds it.
func (ks *keySet) open(keys []StoredKey, sealer Sealer, prev *signingKey) error {
	sk, ok := newestActive(keys)
	if !ok {
		return errors.New("load signing keys: no unretired key in store")
	}
	if prev != nil && prev.id == sk.ID && bytes.Equal(prev.private.Public().(ed25519.PublicKey), sk.Public) {
		ks.signer = prev
		return nil
	}
	seed, err := sealer.Open(sk.Sealed, keyAAD(sk.ID))
	if err != nil {
		return fmt.Errorf("open signing key %s: %w", sk.ID, err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return fmt.Errorf("open signing key %s: got %d bytes, want %d", sk.ID, len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), sk.Public) {
		return fmt.Errorf("open signing key %s: private key does not match public key", sk.ID)
	}
	ks.signer = &signingKey{id: sk.ID, private: priv}
	return nil
}

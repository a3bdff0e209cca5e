package token

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

const (
	testIssuer   = "https://auth.example.test"
	testAudience = "twostep"
)

// start is the fixed instant tests begin at.
func start() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

// memStore is an in-memory KeyStore shared by the Keyrings of a test. It
// yields to the scheduler in every call so that racing Loads interleave.
type memStore struct {
	mu    sync.Mutex
	keys  []StoredKey
	reads int
	err   error // returned by every call when set
}

func (s *memStore) SigningKeys(ctx context.Context) ([]StoredKey, error) {
	runtime.Gosched()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	s.reads++
	out := make([]StoredKey, len(s.keys))
	for i, k := range s.keys {
		out[i] = copyKey(k)
	}
	return out, nil
}

func (s *memStore) InsertSigningKey(ctx context.Context, k StoredKey) error {
	runtime.Gosched()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if slices.ContainsFunc(s.keys, func(o StoredKey) bool { return o.ID == k.ID }) {
		return fmt.Errorf("insert key %s: duplicate id", k.ID)
	}
	s.keys = append(s.keys, copyKey(k))
	return nil
}

func (s *memStore) RetireSigningKeys(ctx context.Context, exceptID string, at time.Time) error {
	runtime.Gosched()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	for i := range s.keys {
		if s.keys[i].ID != exceptID && s.keys[i].RetiredAt == nil {
			s.keys[i].RetiredAt = &at
		}
	}
	return nil
}

func (s *memStore) snapshot() []StoredKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StoredKey, len(s.keys))
	for i, k := range s.keys {
		out[i] = copyKey(k)
	}
	return out
}

func (s *memStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func copyKey(k StoredKey) StoredKey {
	k.Public = bytes.Clone(k.Public)
	k.Sealed = bytes.Clone(k.Sealed)
	if k.RetiredAt != nil {
		at := *k.RetiredAt
		k.RetiredAt = &at
	}
	return k
}

// gcmSealer is a Sealer over AES-256-GCM with random nonces, keyed by a
// byte so that tests can make two that cannot open each other's output.
type gcmSealer struct{ aead cipher.AEAD }

func newSealer(t testing.TB, keyByte byte) *gcmSealer {
	t.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{keyByte}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		t.Fatal(err)
	}
	return &gcmSealer{aead: aead}
}

func (s *gcmSealer) Seal(plaintext, aad []byte) ([]byte, error) {
	return s.aead.Seal(nil, nil, plaintext, aad), nil
}

func (s *gcmSealer) Open(sealed, aad []byte) ([]byte, error) {
	return s.aead.Open(nil, nil, sealed, aad)
}

// brokenSealer seals like gcmSealer but cannot open anything.
type brokenSealer struct{ *gcmSealer }

func (brokenSealer) Open(sealed, aad []byte) ([]byte, error) {
	return nil, errors.New("sealer unavailable")
}

// detReader is a deterministic, concurrency-safe byte stream for tests that
// need reproducible keys and token IDs (the fuzz corpus).
type detReader struct {
	mu  sync.Mutex
	ctr uint64
	buf []byte
}

func (r *detReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.buf) < len(p) {
		sum := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("twostep token test"), r.ctr))
		r.ctr++
		r.buf = append(r.buf, sum[:]...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// newTestKeyring returns a Keyring over store with the test issuer and
// audience and a gcmSealer, unless opts sets them.
func newTestKeyring(t testing.TB, store KeyStore, opts Options) *Keyring {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = testIssuer
	}
	if opts.Audience == "" {
		opts.Audience = testAudience
	}
	return NewKeyring(store, newSealer(t, 1), opts)
}

// loadedKeyring returns a Keyring loaded at now over a fresh memStore.
func loadedKeyring(t testing.TB, now time.Time) (*Keyring, *memStore) {
	t.Helper()
	store := &memStore{}
	k := newTestKeyring(t, store, Options{})
	if err := k.Load(context.Background(), now); err != nil {
		t.Fatalf("Load() = %v, want nil", err)
	}
	return k, store
}

// Package password hashes and verifies passwords with argon2id, stored in
// the PHC string format, and holds the password policy. A Hasher bounds how
// many hashes run at once, since each one takes MemoryKiB of memory.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMalformed is returned, wrapped, by Verify for an encoded hash that is
// not an argon2id v=19 PHC string with parameters inside the bounds of
// Params.Validate(true).
var ErrMalformed = errors.New("malformed password hash")

// Bounds that hold for every Params, weak or not, and for every stored hash
// Verify accepts. Anything outside them is corrupt data or a denial of
// service waiting to happen.
const (
	maxMemoryKiB  = 4 << 20 // 4 GiB
	maxIterations = 100
	minSaltLen    = 8
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 64
	// maxEncodedLen is far above the longest hash the bounds allow (about
	// 230 bytes), and stops Verify from scanning huge input.
	maxEncodedLen = 512
)

// Params are argon2id cost parameters.
type Params struct {
	MemoryKiB   uint32 // memory per hash, in KiB
	Iterations  uint32 // passes over the memory
	Parallelism uint8  // lanes (threads) per hash
	SaltLen     uint32 // random salt, in bytes
	KeyLen      uint32 // derived hash, in bytes
}

// Default returns the parameters for new hashes: 19 MiB, 2 iterations,
// 1 lane (the OWASP minimum for argon2id), a 16-byte salt and a 32-byte hash.
func Default() Params {
	return Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

// Validate reports every way p is unfit, joined into one error. Unless
// allowWeak, p must be at least as strong as Default in memory, iterations
// and salt length; allowWeak exists for tests. Either way Parallelism must be
// at least 1, Iterations at most 100, MemoryKiB between 8×Parallelism and
// 4 GiB, SaltLen 8 to 64 and KeyLen 16 to 64.
func (p Params) Validate(allowWeak bool) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	minIter, minMem, minSalt := uint32(1), 8*uint32(max(p.Parallelism, 1)), uint32(minSaltLen)
	if !allowWeak {
		d := Default()
		minIter, minMem, minSalt = d.Iterations, max(minMem, d.MemoryKiB), d.SaltLen
	}
	if p.Parallelism < 1 {
		add("argon2 parallelism must be at least 1")
	}
	if p.Iterations < minIter || p.Iterations > maxIterations {
		add("argon2 iterations %d outside %d to %d", p.Iterations, minIter, maxIterations)
	}
	if p.MemoryKiB < minMem || p.MemoryKiB > maxMemoryKiB {
		add("argon2 memory %d KiB outside %d to %d KiB", p.MemoryKiB, minMem, maxMemoryKiB)
	}
	if p.SaltLen < minSalt || p.SaltLen > maxSaltLen {
		add("argon2 salt length %d outside %d to %d bytes", p.SaltLen, minSalt, maxSaltLen)
	}
	if p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		add("argon2 key length %d outside %d to %d bytes", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return errors.Join(errs...)
}

// Hasher hashes and verifies passwords with fixed Params. At most
// maxConcurrent argon2 computations run at once across all its methods;
// further calls wait their turn or until their ctx ends. It is safe for
// concurrent use.
type Hasher struct {
	params Params
	sem    chan struct{}
	dummy  string // encoded hash no password matches, for DummyVerify

	// key is argon2.IDKey; tests wrap it to watch the concurrency bound.
	key func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

// NewHasher returns a Hasher that makes new hashes with p and runs at most
// maxConcurrent hashes at once (runtime.GOMAXPROCS(0) if maxConcurrent <= 0).
// Peak memory is about maxConcurrent × p.MemoryKiB. It panics if
// p.Validate(true) fails: parameters come from validated configuration, and
// bad ones would only fail later inside argon2.
func NewHasher(p Params, maxConcurrent int) *Hasher {
	if err := p.Validate(true); err != nil {
		panic("password: NewHasher: " + err.Error())
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	// The dummy hash is random bytes, not a real hash: Verify against it
	// costs exactly one argon2 run with p, and no password can match it.
	salt, key := make([]byte, p.SaltLen), make([]byte, p.KeyLen)
	rand.Read(salt) // crypto/rand.Read never fails since Go 1.24
	rand.Read(key)
	return &Hasher{
		params: p,
		sem:    make(chan struct{}, maxConcurrent),
		dummy:  encode(p, salt, key),
		key:    argon2.IDKey,
	}
}

// Hash returns the PHC string for pw with a fresh random salt, e.g.
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded standard base64).
// It hashes pw exactly as given; callers check CheckPolicy first. The error
// is non-nil only if ctx ends before a hashing slot is free.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt)
	key, err := h.derive(ctx, pw, salt, h.params)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether pw matches encoded, a hash made by Hash with
// these or any earlier parameters: they are read from encoded. needsRehash
// is true when pw matched but encoded's parameters differ from the
// Hasher's, so the caller should store a new Hash(pw). The hash comparison
// is constant-time. The error wraps ErrMalformed for a bad encoded value
// (and then nothing is hashed), or is ctx's error if ctx ends before a
// hashing slot is free.
func (h *Hasher) Verify(ctx context.Context, pw, encoded string) (ok, needsRehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got, err := h.derive(ctx, pw, salt, p)
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p != h.params, nil
}

// DummyVerify does the work of a failed Verify with the Hasher's current
// parameters: call it when the account does not exist, so that an unknown
// account takes as long as a wrong password. The error is only ctx's.
func (h *Hasher) DummyVerify(ctx context.Context, pw string) error {
	_, _, err := h.Verify(ctx, pw, h.dummy)
	return err
}

// derive runs argon2id once a slot in the semaphore is free.
func (h *Hasher) derive(ctx context.Context, pw string, salt []byte, p Params) ([]byte, error) {
	// Checked first because select picks at random among ready cases.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("password: waiting to hash: %w", ctx.Err())
	}
	defer func() { <-h.sem }()
	return h.key([]byte(pw), salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLen), nil
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses exactly the form encode writes. It accepts no optional PHC
// fields, no other order and no non-canonical numbers, so decode then
// encode gives back the input.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	malformed := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("password: %s: %w", why, ErrMalformed)
	}
	if len(encoded) > maxEncodedLen {
		return malformed("too long")
	}
	for i := 0; i < len(encoded); i++ {
		// Also keeps out the CR and LF that base64 decoders skip.
		if c := encoded[i]; c <= ' ' || c > '~' {
			return malformed("unexpected character")
		}
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return malformed("want 5 $-separated fields")
	}
	if parts[1] != "argon2id" {
		return malformed("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return malformed("unsupported argon2 version")
	}
	m, t, par, ok := parseParams(parts[3])
	if !ok {
		return malformed("bad parameters")
	}
	b64 := base64.RawStdEncoding.Strict()
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return malformed("bad salt encoding")
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return malformed("bad hash encoding")
	}
	p = Params{MemoryKiB: m, Iterations: t, Parallelism: par, SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.Validate(true); err != nil {
		return malformed("parameters out of bounds")
	}
	return p, salt, key, nil
}

// parseParams reads "m=<memory>,t=<iterations>,p=<parallelism>".
func parseParams(s string) (m, t uint32, p uint8, ok bool) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return 0, 0, 0, false
	}
	var v [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		digits, found := strings.CutPrefix(fields[i], name)
		if !found {
			return 0, 0, 0, false
		}
		bits := 32
		if i == 2 {
			bits = 8
		}
		n, err := strconv.ParseUint(digits, 10, bits)
		if err != nil || strconv.FormatUint(n, 10) != digits {
			return 0, 0, 0, false
		}
		v[i] = n
	}
	return uint32(v[0]), uint32(v[1]), uint8(v[2]), true
}

package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/argon2"
)

// weak keeps tests fast; only TestDefaultParams and the reference vectors
// use real costs.
var weak = Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// keyFunc is the type of Hasher.key.
type keyFunc = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte

// countingKey wraps argon2.IDKey and counts calls.
func countingKey(calls *atomic.Int32) keyFunc {
	return func(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
		calls.Add(1)
		return argon2.IDKey(pw, salt, t, m, p, n)
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	want := Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	if diff := cmp.Diff(want, Default()); diff != "" {
		t.Errorf("Default() mismatch (-want +got):\n%s", diff)
	}
	if err := Default().Validate(false); err != nil {
		t.Errorf("Default().Validate(false) = %v, want nil", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	with := func(f func(*Params)) Params { p := Default(); f(&p); return p }
	tests := []struct {
		name      string
		p         Params
		allowWeak bool
		wantErr   bool
	}{
		{"default", Default(), false, false},
		{"stronger", Params{MemoryKiB: 65536, Iterations: 3, Parallelism: 4, SaltLen: 32, KeyLen: 64}, false, false},
		{"weak test params", weak, true, false},
		{"weak test params, strict", weak, false, true},
		{"memory below minimum", with(func(p *Params) { p.MemoryKiB = 19455 }), false, true},
		{"memory below minimum, weak", with(func(p *Params) { p.MemoryKiB = 19455 }), true, false},
		{"iterations 1", with(func(p *Params) { p.Iterations = 1 }), false, true},
		{"iterations 1, weak", with(func(p *Params) { p.Iterations = 1 }), true, false},
		{"iterations 0, weak", with(func(p *Params) { p.Iterations = 0 }), true, true},
		{"iterations 101, weak", with(func(p *Params) { p.Iterations = 101 }), true, true},
		{"iterations 100", with(func(p *Params) { p.Iterations = 100 }), false, false},
		{"parallelism 0, weak", with(func(p *Params) { p.Parallelism = 0 }), true, true},
		{"memory under 8 per lane, weak", Params{MemoryKiB: 31, Iterations: 1, Parallelism: 4, SaltLen: 16, KeyLen: 32}, true, true},
		{"memory 8 per lane, weak", Params{MemoryKiB: 32, Iterations: 1, Parallelism: 4, SaltLen: 16, KeyLen: 32}, true, false},
		{"memory 4 GiB", with(func(p *Params) { p.MemoryKiB = 4 << 20 }), false, false},
		{"memory over 4 GiB", with(func(p *Params) { p.MemoryKiB = 4<<20 + 1 }), false, true},
		{"salt 8, weak", with(func(p *Params) { p.SaltLen = 8 }), true, false},
		{"salt 8, strict", with(func(p *Params) { p.SaltLen = 8 }), false, true},
		{"salt 7, weak", with(func(p *Params) { p.SaltLen = 7 }), true, true},
		{"salt 65", with(func(p *Params) { p.SaltLen = 65 }), true, true},
		{"key 15", with(func(p *Params) { p.KeyLen = 15 }), true, true},
		{"key 16", with(func(p *Params) { p.KeyLen = 16 }), false, false},
		{"key 65", with(func(p *Params) { p.KeyLen = 65 }), true, true},
		{"zero", Params{}, true, true},
	}
	for _, tt := range tests {
		err := tt.p.Validate(tt.allowWeak)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: %+v.Validate(%v) = %v, want error %v", tt.name, tt.p, tt.allowWeak, err, tt.wantErr)
		}
	}
	// Every problem is reported at once.
	err := Params{}.Validate(false)
	for _, want := range []string{"parallelism", "iterations", "memory", "salt", "key length"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Params{}.Validate(false) = %v, want it to mention %q", err, want)
		}
	}
}

func TestNewHasher(t *testing.T) {
	t.Parallel()
	if got, want := cap(NewHasher(weak, 0).sem), runtime.GOMAXPROCS(0); got != want {
		t.Errorf("NewHasher(weak, 0) allows %d at once, want GOMAXPROCS %d", got, want)
	}
	if got := cap(NewHasher(weak, -1).sem); got != runtime.GOMAXPROCS(0) {
		t.Errorf("NewHasher(weak, -1) allows %d at once, want GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
	if got := cap(NewHasher(weak, 3).sem); got != 3 {
		t.Errorf("NewHasher(weak, 3) allows %d at once, want 3", got)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("NewHasher(Params{}, 1) did not panic, want panic")
		}
	}()
	NewHasher(Params{}, 1)
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHasher(weak, 2)
	for _, pw := range []string{"", "password", "correct horse battery staple", "pässwörd 🔑", strings.Repeat("x", MaxLength)} {
		encoded, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatalf("Hash(%q) = %v, want nil", pw, err)
		}
		if !phc.MatchString(encoded) {
			t.Errorf("Hash(%q) = %q, want match for %s", pw, encoded, phc)
		}
		if ok, rehash, err := h.Verify(ctx, pw, encoded); !ok || rehash || err != nil {
			t.Errorf("Verify(%q, Hash(%q)) = %v, %v, %v, want true, false, nil", pw, pw, ok, rehash, err)
		}
		other := pw + "x"
		if ok, rehash, err := h.Verify(ctx, other, encoded); ok || rehash || err != nil {
			t.Errorf("Verify(%q, Hash(%q)) = %v, %v, %v, want false, false, nil", other, pw, ok, rehash, err)
		}
		again, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		if again == encoded {
			t.Errorf("Hash(%q) twice = %q both times, want fresh salts", pw, encoded)
		}
	}
}

// TestVerifyReference checks hashes made by the reference C implementation
// (Debian's argon2 command, e.g.
// `echo -n 'hunter22' | argon2 saltsaltsaltsalt -id -t 3 -m 12 -p 4 -l 16 -e`).
func TestVerifyReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHasher(Default(), 2)
	const (
		v1 = "$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHQxMjM0NTY3OA$4KlJyBbEDXcoISiOzs6ivYpCydsHQ9k7s71f7NjbzhE"
		v2 = "$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$yxo0u725ht/u+ArqyyL37VGxPOyFMvsz2eBUq2J6aH8"
		v3 = "$argon2id$v=19$m=4096,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$sPwKYgvx3JuvxPXIOFhXxQ"
	)
	tests := []struct {
		pw, encoded     string
		wantOK, wantReh bool
	}{
		{"correct horse battery staple", v1, true, true}, // weaker than Default
		{"Correct horse battery staple", v1, false, false},
		{"pässwörd", v2, true, false}, // exactly Default
		{"passwörd", v2, false, false},
		{"hunter22", v3, true, true}, // other shape: p=4, 16-byte hash
		{"hunter2", v3, false, false},
	}
	for _, tt := range tests {
		ok, rehash, err := h.Verify(ctx, tt.pw, tt.encoded)
		if ok != tt.wantOK || rehash != tt.wantReh || err != nil {
			t.Errorf("Verify(%q, %q) = %v, %v, %v, want %v, %v, nil", tt.pw, tt.encoded, ok, rehash, err, tt.wantOK, tt.wantReh)
		}
		p, salt, key, err := decode(tt.encoded)
		if err != nil {
			t.Fatal(err)
		}
		if got := encode(p, salt, key); got != tt.encoded {
			t.Errorf("encode(decode(%q)) = %q, want the input", tt.encoded, got)
		}
	}
}

func TestVerifyNeedsRehash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := NewHasher(weak, 1)
	encoded, err := old.Hash(ctx, "password1")
	if err != nil {
		t.Fatal(err)
	}
	changes := []Params{
		{MemoryKiB: 128, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{MemoryKiB: 64, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{MemoryKiB: 64, Iterations: 1, Parallelism: 2, SaltLen: 16, KeyLen: 32},
		{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 32, KeyLen: 32},
		{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 64},
	}
	for _, p := range changes {
		ok, rehash, err := NewHasher(p, 1).Verify(ctx, "password1", encoded)
		if !ok || !rehash || err != nil {
			t.Errorf("Verify with params %+v of hash made with %+v = %v, %v, %v, want true, true, nil", p, weak, ok, rehash, err)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	const (
		salt16 = "c29tZXNhbHQxMjM0NTY3OA"
		key32  = "4KlJyBbEDXcoISiOzs6ivYpCydsHQ9k7s71f7NjbzhE"
	)
	valid := "$argon2id$v=19$m=64,t=1,p=1$" + salt16 + "$" + key32
	withParams := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt16 + "$" + key32 }
	withSalt := func(s string) string { return "$argon2id$v=19$m=64,t=1,p=1$" + s + "$" + key32 }
	withKey := func(k string) string { return "$argon2id$v=19$m=64,t=1,p=1$" + salt16 + "$" + k }
	tests := []string{
		"",
		"$",
		"plaintext-password",
		valid[1:],
		strings.Replace(valid, "argon2id", "argon2i", 1),
		strings.Replace(valid, "argon2id", "argon2d", 1),
		strings.Replace(valid, "argon2id", "ARGON2ID", 1),
		strings.Replace(valid, "v=19", "v=16", 1),
		strings.Replace(valid, "v=19", "v=019", 1),
		strings.Replace(valid, "$v=19", "", 1),
		valid + "$extra",
		valid + "$",
		valid + "\n",
		valid + " ",
		"\r\n" + valid,
		strings.Replace(valid, "4Kl", "4K\nl", 1), // base64 decoders skip newlines; we must not
		strings.Replace(valid, "4Kl", "4Ké", 1),
		withParams("m=0,t=1,p=1"),
		withParams("m=64,t=0,p=1"),
		withParams("m=64,t=1,p=0"),
		withParams("m=64,t=1,p=256"),
		withParams("m=64,t=101,p=1"),
		withParams("m=4194305,t=1,p=1"),    // over 4 GiB
		withParams("m=4294967296,t=1,p=1"), // overflows uint32
		withParams("m=18446744073709551616,t=1,p=1"),
		withParams("m=31,t=1,p=4"), // under 8 KiB per lane
		withParams("m=064,t=1,p=1"),
		withParams("m=+64,t=1,p=1"),
		withParams("m=-64,t=1,p=1"),
		withParams("m=,t=1,p=1"),
		withParams("m=6_4,t=1,p=1"),
		withParams("t=1,m=64,p=1"),
		withParams("m=64,t=1"),
		withParams("m=64,t=1,p=1,keyid=abc"),
		withParams("m=64,t=1,p=1,"),
		withParams("m=64;t=1;p=1"),
		withSalt(""),
		withSalt("c2FsdA"),                // 4 bytes
		withSalt(strings.Repeat("A", 87)), // 65 bytes
		withSalt(salt16 + "=="),
		withSalt("c29tZXNhbHQxMjM0NTY3OB"), // non-zero trailing bits
		withSalt("c29t!XNhbHQxMjM0NTY3OA"),
		withSalt("c29t-XNhbHQxMjM0NTY3OA"), // URL alphabet
		withKey(""),
		withKey("4KlJyBbEDXc"),           // 8 bytes
		withKey(strings.Repeat("A", 87)), // 65 bytes
		withKey(key32 + "="),
		"$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 10_000),
		strings.Repeat("$", 10_000),
	}
	for _, encoded := range tests {
		var calls atomic.Int32
		h := NewHasher(weak, 1)
		h.key = countingKey(&calls)
		ok, rehash, err := h.Verify(context.Background(), "password", encoded)
		if ok || rehash || !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%q) = %v, %v, %v, want false, false, ErrMalformed", encoded, ok, rehash, err)
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("Verify(%q) hashed %d times, want 0", encoded, n)
		}
	}
	if _, _, _, err := decode(withParams("m=4194304,t=100,p=255")); err != nil {
		t.Errorf("decode(largest allowed params) = %v, want nil", err)
	}
}

// TestConcurrencyBound holds every caller inside argon2 until the bound is
// reached, checks nobody else gets in, then lets them all finish.
func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	const bound, callers = 2, 20
	h := NewHasher(weak, bound)
	var inside, peak atomic.Int32
	release := make(chan struct{})
	h.key = func(pw, salt []byte, ti, m uint32, p uint8, n uint32) []byte {
		now := inside.Add(1)
		for old := peak.Load(); now > old && !peak.CompareAndSwap(old, now); old = peak.Load() {
		}
		<-release
		defer inside.Add(-1)
		return argon2.IDKey(pw, salt, ti, m, p, n)
	}
	encoded, err := NewHasher(weak, 1).Hash(context.Background(), "password")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = h.Hash(context.Background(), "password")
			case 1:
				_, _, err = h.Verify(context.Background(), "password", encoded)
			case 2:
				err = h.DummyVerify(context.Background(), "password")
			}
			errs <- err
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for inside.Load() < bound && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a caller to slip past a broken bound
	if got := inside.Load(); got != bound {
		t.Errorf("with %d callers waiting, %d were inside argon2, want %d", callers, got, bound)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("caller returned %v, want nil", err)
		}
	}
	if got := peak.Load(); got != bound {
		t.Errorf("peak callers inside argon2 = %d, want %d", got, bound)
	}
}

// TestContextWhileWaiting fills the only slot, then calls each method with
// a context that ends while it waits: it must return the context's error
// without hashing.
func TestContextWhileWaiting(t *testing.T) {
	t.Parallel()
	encoded, err := NewHasher(weak, 1).Hash(context.Background(), "password")
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		call func(context.Context, *Hasher) error
	}{
		{"Hash", func(ctx context.Context, h *Hasher) error { _, err := h.Hash(ctx, "password"); return err }},
		{"Verify", func(ctx context.Context, h *Hasher) error {
			_, _, err := h.Verify(ctx, "password", encoded)
			return err
		}},
		{"DummyVerify", func(ctx context.Context, h *Hasher) error { return h.DummyVerify(ctx, "password") }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			entered, release := make(chan struct{}), make(chan struct{})
			h := NewHasher(weak, 1)
			h.key = func(pw, salt []byte, ti, m uint32, p uint8, n uint32) []byte {
				if calls.Add(1) == 1 {
					close(entered)
					<-release
				}
				return argon2.IDKey(pw, salt, ti, m, p, n)
			}
			first := make(chan error)
			go func() { _, err := h.Hash(context.Background(), "holder"); first <- err }()
			<-entered

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := op.call(ctx, h); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s(ctx ending while waiting) = %v, want context.DeadlineExceeded", op.name, err)
			}
			canceled, cancel2 := context.WithCancel(context.Background())
			cancel2()
			if err := op.call(canceled, h); !errors.Is(err, context.Canceled) {
				t.Errorf("%s(canceled ctx) = %v, want context.Canceled", op.name, err)
			}
			close(release)
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%s with ended ctx hashed: %d argon2 calls, want 1 (the holder's)", op.name, n)
			}
			// A canceled ctx is refused even when a slot is free.
			if err := op.call(canceled, h); !errors.Is(err, context.Canceled) {
				t.Errorf("%s(canceled ctx, free slot) = %v, want context.Canceled", op.name, err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%s(canceled ctx, free slot) hashed: %d argon2 calls, want 1", op.name, n)
			}
		})
	}
}

// TestDummyVerify checks that DummyVerify does one argon2 run with exactly
// the parameters a real Verify of a current hash uses.
func TestDummyVerify(t *testing.T) {
	t.Parallel()
	type run struct {
		T, M    uint32
		P       uint8
		N       uint32
		SaltLen int
	}
	for _, p := range []Params{weak, {MemoryKiB: 128, Iterations: 2, Parallelism: 2, SaltLen: 32, KeyLen: 64}} {
		var runs []run
		h := NewHasher(p, 1)
		h.key = func(pw, salt []byte, ti, m uint32, par uint8, n uint32) []byte {
			runs = append(runs, run{ti, m, par, n, len(salt)})
			return argon2.IDKey(pw, salt, ti, m, par, n)
		}
		if err := h.DummyVerify(context.Background(), "password"); err != nil {
			t.Errorf("DummyVerify() = %v, want nil", err)
		}
		encoded, err := h.Hash(context.Background(), "password")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.Verify(context.Background(), "wrong", encoded); err != nil {
			t.Fatal(err)
		}
		if len(runs) != 3 {
			t.Fatalf("DummyVerify+Hash+Verify ran argon2 %d times, want 3", len(runs))
		}
		if diff := cmp.Diff(runs[2], runs[0]); diff != "" {
			t.Errorf("DummyVerify with %+v differs from a real Verify (-verify +dummy):\n%s", p, diff)
		}
		if dp, _, _, err := decode(h.dummy); err != nil || dp != p {
			t.Errorf("decode(dummy) = %+v, %v, want %+v, nil", dp, err, p)
		}
	}
}

// TestDefaultParams runs one real hash with the production parameters.
func TestDefaultParams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := NewHasher(Default(), 0)
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash() = %q, want default parameters in it", encoded)
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery staple", encoded); !ok || rehash || err != nil {
		t.Errorf("Verify(right password) = %v, %v, %v, want true, false, nil", ok, rehash, err)
	}
	if ok, _, err := h.Verify(ctx, "correct horse battery stapler", encoded); ok || err != nil {
		t.Errorf("Verify(wrong password) = %v, %v, want false, nil", ok, err)
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(Default(), 1)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

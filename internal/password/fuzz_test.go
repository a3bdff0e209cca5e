package password

import (
	"context"
	"errors"
	"testing"
)

// FuzzVerify feeds arbitrary encoded hashes to Verify. argon2 itself is
// replaced by a cheap stand-in, so that a fuzzed hash asking for 4 GiB costs
// nothing: the target is the parser. Verify must never panic, must fail
// only with ErrMalformed, and must accept only canonical strings.
func FuzzVerify(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQxMjM0NTY3OA$4KlJyBbEDXcoISiOzs6ivYpCydsHQ9k7s71f7NjbzhE", "password")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		h := NewHasher(weak, 1)
		var got Params
		h.key = func(_, salt []byte, ti, m uint32, p uint8, n uint32) []byte {
			got = Params{MemoryKiB: m, Iterations: ti, Parallelism: p, SaltLen: uint32(len(salt)), KeyLen: n}
			return make([]byte, n)
		}
		_, rehash, err := h.Verify(context.Background(), pw, encoded)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify(%q) = %v, want nil or ErrMalformed", encoded, err)
			}
			if rehash {
				t.Fatalf("Verify(%q) = needsRehash with error %v", encoded, err)
			}
			return
		}
		p, salt, key, err := decode(encoded)
		if err != nil {
			t.Fatalf("Verify(%q) accepted it but decode = %v", encoded, err)
		}
		if p != got {
			t.Errorf("Verify(%q) hashed with %+v, want %+v", encoded, got, p)
		}
		if err := p.Validate(true); err != nil {
			t.Errorf("Verify(%q) accepted params %+v: %v", encoded, p, err)
		}
		if again := encode(p, salt, key); again != encoded {
			t.Errorf("encode(decode(%q)) = %q, want the input", encoded, again)
		}
	})
}

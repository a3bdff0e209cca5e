package seal

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open: it must never panic, and every
// failure must be ErrOpen. The seeds in testdata/fuzz/FuzzOpen include valid
// values sealed under the two keys below.
func FuzzOpen(f *testing.F) {
	ring := mustNew(f, testKey("k1", 1), testKey("k2", 2))
	good, err := ring.Seal([]byte("seed"), []byte("row:1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte("row:1"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1, 2, 'k', '1'}, []byte("row:1"))
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		pt, err := ring.Open(sealed, aad)
		if err != nil {
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open(%x, %q) = %v, want ErrOpen", sealed, aad, err)
			}
			if pt != nil {
				t.Fatalf("Open(%x, %q) = %q with error %v, want nil plaintext", sealed, aad, pt, err)
			}
			return
		}
		// Opened, so it must be a real sealed value: resealing round-trips
		// and a different aad no longer opens it.
		wantReseal := !bytes.HasPrefix(sealed, header("k1"))
		if got := ring.NeedsReseal(sealed); got != wantReseal {
			t.Errorf("NeedsReseal(%x) = %v, want %v", sealed, got, wantReseal)
		}
		if _, err := ring.Open(sealed, append(bytes.Clone(aad), 'x')); !errors.Is(err, ErrOpen) {
			t.Errorf("Open(%x, %q+x) = %v, want ErrOpen", sealed, aad, err)
		}
		again, err := ring.Seal(pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ring.Open(again, aad); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("Open(Seal(%q)) = %q, %v, want %q, nil", pt, got, err, pt)
		}
	})
}

package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testKey(id string, fill byte) Key {
	return Key{ID: id, Secret: bytes.Repeat([]byte{fill}, KeySize)}
}

func mustNew(t testing.TB, primary Key, older ...Key) *Keyring {
	t.Helper()
	k, err := New(primary, older...)
	if err != nil {
		t.Fatalf("New(%q) = %v, want nil", primary.ID, err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	k := mustNew(t, testKey("k1", 1))
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"empty", nil, nil},
		{"short", []byte("JBSWY3DPEHPK3PXP"), []byte("totp_factor:1")},
		{"binary", []byte{0, 1, 2, 255}, []byte{0}},
		{"large", bytes.Repeat([]byte("x"), 1<<20), []byte("big")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := k.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatalf("Seal(%q) = %v, want nil", tt.name, err)
			}
			got, err := k.Open(sealed, tt.aad)
			if err != nil {
				t.Fatalf("Open(Seal(%q)) = %v, want nil", tt.name, err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open(Seal(%q)) = %q, want %q", tt.name, got, tt.plaintext)
			}
		})
	}
}

func TestSealFormat(t *testing.T) {
	t.Parallel()
	k := mustNew(t, testKey("primary-key_1", 1))
	pt := []byte("secret")
	a, err := k.Seal(pt, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := append([]byte{1, 13}, "primary-key_1"...)
	if !bytes.HasPrefix(a, wantHeader) {
		t.Errorf("Seal header = %q, want prefix %q", a[:min(len(a), len(wantHeader))], wantHeader)
	}
	if got, want := len(a), len(wantHeader)+12+len(pt)+16; got != want {
		t.Errorf("len(Seal(%q)) = %d, want %d", pt, got, want)
	}
	if bytes.Contains(a, pt) {
		t.Errorf("Seal(%q) = %x, contains the plaintext", pt, a)
	}
	b, err := k.Seal(pt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[len(wantHeader):len(wantHeader)+12], b[len(wantHeader):len(wantHeader)+12]) {
		t.Errorf("two Seal calls used nonce %x twice", a[len(wantHeader):len(wantHeader)+12])
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	k1, k2 := testKey("k1", 1), testKey("k2", 2)
	ring := mustNew(t, k1, k2)
	aad := []byte("totp_factor:7")
	good, err := ring.Seal([]byte("seed"), aad)
	if err != nil {
		t.Fatal(err)
	}
	other, err := mustNew(t, testKey("k9", 9)).Seal([]byte("seed"), aad)
	if err != nil {
		t.Fatal(err)
	}
	sameIDOtherSecret, err := mustNew(t, testKey("k1", 7)).Seal([]byte("seed"), aad)
	if err != nil {
		t.Fatal(err)
	}
	relabel := func(b []byte, id string) []byte { // same body, header of another known key
		return append(header(id), b[2+len("k1"):]...)
	}
	mutate := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name   string
		sealed []byte
		aad    []byte
	}{
		{"nil", nil, aad},
		{"one byte", []byte{1}, aad},
		{"wrong aad", good, []byte("totp_factor:8")},
		{"missing aad", good, nil},
		{"aad with extra byte", good, append(bytes.Clone(aad), 0)},
		{"unknown key id", other, aad},
		{"same id, other secret", sameIDOtherSecret, aad},
		{"relabelled to older key", relabel(good, "k2"), aad},
		{"version 0", mutate(func(b []byte) []byte { b[0] = 0; return b }), aad},
		{"version 2", mutate(func(b []byte) []byte { b[0] = 2; return b }), aad},
		{"id length 0", mutate(func(b []byte) []byte { b[1] = 0; return b }), aad},
		{"id length 255", mutate(func(b []byte) []byte { b[1] = 255; return b }), aad},
		{"id length past end", []byte{1, 5, 'k', '1'}, aad},
		{"invalid id byte", mutate(func(b []byte) []byte { b[2] = ' '; return b }), aad},
		{"header only", good[:4], aad},
		{"no tag", good[:4+12], aad},
		{"trailing byte", append(bytes.Clone(good), 0), aad},
		{"last byte flipped", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ring.Open(tt.sealed, tt.aad)
			if !errors.Is(err, ErrOpen) {
				t.Errorf("Open(%x, %q) = %q, %v, want ErrOpen", tt.sealed, tt.aad, got, err)
			}
		})
	}
}

// TestOpenRejectsEveryBitFlipAndTruncation tampers with each bit and cuts at
// each length: every change must be caught.
func TestOpenRejectsEveryBitFlipAndTruncation(t *testing.T) {
	t.Parallel()
	ring := mustNew(t, testKey("k1", 1))
	good, err := ring.Seal([]byte("JBSWY3DPEHPK3PXP"), []byte("row:1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range good {
		for bit := range 8 {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			if _, err := ring.Open(b, []byte("row:1")); !errors.Is(err, ErrOpen) {
				t.Errorf("Open(byte %d bit %d flipped) = %v, want ErrOpen", i, bit, err)
			}
		}
	}
	for n := range len(good) {
		if _, err := ring.Open(good[:n], []byte("row:1")); !errors.Is(err, ErrOpen) {
			t.Errorf("Open(first %d of %d bytes) = %v, want ErrOpen", n, len(good), err)
		}
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := testKey("k1", 1), testKey("k2", 2)
	old := mustNew(t, k1)
	rotated := mustNew(t, k2, k1)
	aad := []byte("row:3")

	sealedOld, err := old.Seal([]byte("seed"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if got := rotated.NeedsReseal(sealedOld); !got {
		t.Errorf("NeedsReseal(sealed under older k1) = %v, want true", got)
	}
	pt, err := rotated.Open(sealedOld, aad)
	if err != nil || string(pt) != "seed" {
		t.Fatalf("Open(sealed under older k1) = %q, %v, want %q, nil", pt, err, "seed")
	}
	resealed, err := rotated.Seal(pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if got := rotated.NeedsReseal(resealed); got {
		t.Errorf("NeedsReseal(resealed under primary k2) = %v, want false", got)
	}
	if _, err := old.Open(resealed, aad); !errors.Is(err, ErrOpen) {
		t.Errorf("Open(k2 value with keyring of k1 only) = %v, want ErrOpen", err)
	}
	if got := rotated.NeedsReseal([]byte{1, 0}); got {
		t.Errorf("NeedsReseal(malformed) = %v, want false", got)
	}
	if got := rotated.NeedsReseal(nil); got {
		t.Errorf("NeedsReseal(nil) = %v, want false", got)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		primary Key
		older   []Key
	}{
		{"empty id", testKey("", 1), nil},
		{"id too long", testKey(strings.Repeat("a", 33), 1), nil},
		{"id with space", testKey("k 1", 1), nil},
		{"id with colon", testKey("k:1", 1), nil},
		{"id with comma", testKey("k,1", 1), nil},
		{"non-ASCII id", testKey("clé", 1), nil},
		{"short secret", Key{ID: "k1", Secret: make([]byte, 16)}, nil},
		{"long secret", Key{ID: "k1", Secret: make([]byte, 33)}, nil},
		{"nil secret", Key{ID: "k1"}, nil},
		{"duplicate id", testKey("k1", 1), []Key{testKey("k2", 2), testKey("k1", 3)}},
		{"bad older key", testKey("k1", 1), []Key{{ID: "k2", Secret: []byte("short")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.primary, tt.older...); err == nil {
				t.Errorf("New(%q, %d older) = nil error, want error", tt.primary.ID, len(tt.older))
			}
		})
	}
	if _, err := New(testKey(strings.Repeat("a", 32), 1), testKey("A-Z_09", 2)); err != nil {
		t.Errorf("New(32-char id) = %v, want nil", err)
	}
}

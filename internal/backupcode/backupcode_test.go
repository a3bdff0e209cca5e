package backupcode

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

var format = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)

func TestGenerateKnown(t *testing.T) {
	t.Parallel()
	seq := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	tests := []struct {
		name string
		src  []byte
		n    int
		want []string
	}{
		{"zeros", make([]byte, 10), 1, []string{"0000-0000-0000-0000"}},
		{"ones", bytes.Repeat([]byte{0xff}, 10), 1, []string{"ZZZZ-ZZZZ-ZZZZ-ZZZZ"}},
		// Standard base32 of 00..09 is AAAQEAYEAUDAOCAJ; same indices in Crockford's alphabet.
		{"sequence", seq, 1, []string{"000G-40R4-0M30-E209"}},
		{"three", append(append(make([]byte, 10), bytes.Repeat([]byte{0xff}, 10)...), seq...), 3,
			[]string{"0000-0000-0000-0000", "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "000G-40R4-0M30-E209"}},
	}
	for _, tt := range tests {
		got, err := Generate(bytes.NewReader(tt.src), tt.n)
		if err != nil {
			t.Errorf("Generate(%s, %d) = %v, want nil", tt.name, tt.n, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Generate(%s, %d) mismatch (-want +got):\n%s", tt.name, tt.n, diff)
		}
	}
}

// TestGenerateRandom draws 10,000 codes: all well-formed, all distinct, and
// every symbol seen at every position (so all 80 bits are used).
func TestGenerateRandom(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	var symbols [Length]map[byte]bool
	for i := range symbols {
		symbols[i] = make(map[byte]bool)
	}
	for range 100 {
		codes, err := Generate(rand.Reader, MaxCount)
		if err != nil {
			t.Fatalf("Generate(rand, %d) = %v, want nil", MaxCount, err)
		}
		if len(codes) != MaxCount {
			t.Fatalf("Generate(rand, %d) returned %d codes", MaxCount, len(codes))
		}
		for _, c := range codes {
			if !format.MatchString(c) {
				t.Errorf("Generate() code %q does not match %s", c, format)
			}
			if seen[c] {
				t.Errorf("Generate() code %q repeated", c)
			}
			seen[c] = true
			norm, err := Normalize(c)
			if err != nil || norm != strings.ReplaceAll(c, "-", "") {
				t.Errorf("Normalize(%q) = %q, %v, want it without hyphens", c, norm, err)
			}
			for i := range Length {
				symbols[i][norm[i]] = true
			}
		}
	}
	for i, s := range symbols {
		if len(s) != len(Alphabet) {
			t.Errorf("position %d used %d symbols in 10000 codes, want %d", i, len(s), len(Alphabet))
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    func() *bytes.Reader
		n    int
	}{
		{"zero count", func() *bytes.Reader { return bytes.NewReader(make([]byte, 1000)) }, 0},
		{"negative count", func() *bytes.Reader { return bytes.NewReader(make([]byte, 1000)) }, -1},
		{"too many", func() *bytes.Reader { return bytes.NewReader(make([]byte, 2000)) }, MaxCount + 1},
		{"short read", func() *bytes.Reader { return bytes.NewReader(make([]byte, 19)) }, 2},
		{"repeating source", func() *bytes.Reader { return bytes.NewReader(make([]byte, 20)) }, 2},
	}
	for _, tt := range tests {
		if got, err := Generate(tt.r(), tt.n); err == nil {
			t.Errorf("Generate(%s, %d) = %q, nil, want error", tt.name, tt.n, got)
		}
	}
	if _, err := Generate(iotest.ErrReader(errors.New("boom")), 1); err == nil {
		t.Errorf("Generate(failing reader, 1) = nil error, want error")
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	const want = "ABCD0123EFGH4567"
	tests := []struct {
		in   string
		want string
	}{
		{"ABCD-0123-EFGH-4567", want},
		{"ABCD0123EFGH4567", want},
		{"abcd-0123-efgh-4567", want},
		{"aBcD-0123-eFgH-4567", want},
		{"ABCD 0123 EFGH 4567", want},
		{"  ABCD-0123-EFGH-4567  ", want},
		{"ABCD--0123---EFGH-4567-", want},
		{"A-B-C-D-0-1-2-3-E-F-G-H-4-5-6-7", want},
		{"ABCD\t0123\tEFGH\t4567", want},
		{"ABCD-O123-EFGH-4567", want}, // O is 0
		{"abcd-o123-efgh-4567", want}, // o is 0
		{"ABCD-0I23-EFGH-4567", want}, // I is 1
		{"ABCD-0L23-EFGH-4567", want}, // L is 1
		{"abcd-0i23-efgh-4567", want}, // i is 1
		{"abcd-0l23-efgh-4567", want}, // l is 1
		{"OOOO-IIII-LLLL-oooo", "0000111111110000"},
		{"ZZZZ-ZZZZ-ZZZZ-ZZZZ", "ZZZZZZZZZZZZZZZZ"},
		{strings.Repeat("-", 48) + "ABCD0123EFGH4567", want}, // 64 bytes
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeMalformed(t *testing.T) {
	t.Parallel()
	tests := []string{
		"",
		"   ",
		"----",
		"ABCD-0123-EFGH-456",   // 15
		"ABCD-0123-EFGH-45678", // 17
		"ABCD-0123-EFGH-456U",  // U is not in the alphabet
		"abcd-0123-efgh-456u",
		"ABCD_0123_EFGH_4567",
		"ABCD.0123.EFGH.4567",
		"ABCD-0123-EFGH-456!",
		"ABCD-0123-EFGH-4567\n",
		"ABCD-0123-EFGH-4567\x00",
		"ABCD-0123-EFGH-456é",
		"ABCD-0123-EFGH-456Ａ",    // fullwidth A
		"ABCD-0123-EFGH-456١",    // Arabic-Indic one
		"ABCD\u00a00123EFGH4567", // no-break space
		"ABCD-0123-EFGH-4567\xff",
		strings.Repeat("-", 49) + "ABCD0123EFGH4567", // 65 bytes
		strings.Repeat("A", 10_000),
	}
	for _, in := range tests {
		got, err := Normalize(in)
		if !errors.Is(err, ErrMalformed) || got != "" {
			t.Errorf("Normalize(%.40q) = %q, %v, want \"\", ErrMalformed", in, got, err)
			continue
		}
		if trimmed := strings.Trim(in, " -"); trimmed != "" && strings.Contains(err.Error(), trimmed) {
			t.Errorf("Normalize(%.40q) = %q, echoes the input", in, err)
		}
	}
}

func TestHasher(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	h, err := NewHasher(key)
	if err != nil {
		t.Fatalf("NewHasher(32 bytes) = %v, want nil", err)
	}
	// printf ABCD0123EFGH4567 | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef
	const want = "4ec70b0c827890874343c38600eae1b46ce8f2aef124279cb5acbfac1eb9044b"
	if got := hex.EncodeToString(h.Hash("ABCD0123EFGH4567")); got != want {
		t.Errorf("Hash(%q) = %s, want %s", "ABCD0123EFGH4567", got, want)
	}
	key[31] = 'F' // NewHasher copied the key: no effect on h
	if got := hex.EncodeToString(h.Hash("ABCD0123EFGH4567")); got != want {
		t.Errorf("Hash after caller changed its key slice = %s, want %s", got, want)
	}
	other, err := NewHasher(key)
	if err != nil {
		t.Fatal(err)
	}
	const wantOther = "56707e69844ba8a03573f7d3d801b142cd1569f384b49df3bed877865ba62d74"
	if got := hex.EncodeToString(other.Hash("ABCD0123EFGH4567")); got != wantOther {
		t.Errorf("Hash with another key = %s, want %s", got, wantOther)
	}
	if bytes.Equal(h.Hash("ABCD0123EFGH4567"), h.Hash("ABCD0123EFGH4568")) {
		t.Errorf("Hash of two codes is equal, want different")
	}
	// Every way of typing a code reaches the same hash.
	a, _ := Normalize("abcd-o123-efgh-4567")
	b, _ := Normalize("ABCD 0123 EFGH 4567")
	if !bytes.Equal(h.Hash(a), h.Hash(b)) {
		t.Errorf("Hash(Normalize(two spellings)) differ, want equal")
	}
	for _, n := range []int{0, 16, 31} {
		if _, err := NewHasher(make([]byte, n)); err == nil {
			t.Errorf("NewHasher(%d bytes) = nil error, want error", n)
		}
	}
	defer func() {
		if recover() == nil {
			t.Errorf("Hasher{}.Hash() did not panic, want panic")
		}
	}()
	Hasher{}.Hash(want)
}

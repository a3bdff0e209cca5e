// Package backupcode makes one-time recovery codes, 80 random bits written
// as 16 Crockford base32 characters (XXXX-XXXX-XXXX-XXXX), reads them back
// from what a user types, and hashes them with a server key for storage.
// Marking a code used is the store's job.
package backupcode

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
)

// Alphabet is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U.
const Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Length is the number of alphabet characters in a code (80 bits).
const Length = 16

// MaxCount is the most codes Generate makes in one call.
const MaxCount = 100

// maxInput bounds what Normalize reads: a code with a separator between
// every character is 31 bytes.
const maxInput = 64

// ErrMalformed is returned, wrapped, by Normalize for input that is not a
// backup code. Its message never contains the input.
var ErrMalformed = errors.New("malformed backup code")

// Generate returns n distinct codes of Length characters from r (normally
// crypto/rand.Reader), 10 bytes each, formatted XXXX-XXXX-XXXX-XXXX. It
// fails if n is not 1 to MaxCount, if r fails, or if r repeats itself
// enough to produce the same code twice (never, for a working random
// source).
func Generate(r io.Reader, n int) ([]string, error) {
	if n < 1 || n > MaxCount {
		return nil, fmt.Errorf("backupcode: count %d outside 1 to %d", n, MaxCount)
	}
	enc := base32.NewEncoding(Alphabet).WithPadding(base32.NoPadding)
	codes := make([]string, n)
	seen := make(map[string]bool, n)
	buf := make([]byte, Length*5/8)
	for i := range codes {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("backupcode: generate: %w", err)
		}
		c := enc.EncodeToString(buf)
		if seen[c] {
			return nil, errors.New("backupcode: generate: random source repeated a code")
		}
		seen[c] = true
		codes[i] = c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
	}
	return codes, nil
}

// Normalize turns what a user typed into the canonical 16-character code
// that Hasher.Hash takes. It ignores case, ASCII spaces, tabs and hyphens
// wherever they are, and reads the look-alikes O as 0 and I and L as 1.
// Any other character, U and non-ASCII included, a result that is not
// Length characters long, or input over 64 bytes gives an error wrapping
// ErrMalformed.
func Normalize(input string) (string, error) {
	if len(input) > maxInput {
		return "", fmt.Errorf("backupcode: too long: %w", ErrMalformed)
	}
	out := make([]byte, 0, Length)
	for i := 0; i < len(input); i++ {
		c := input[i]
		switch {
		case c == ' ' || c == '\t' || c == '-':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		if !inAlphabet(c) {
			return "", fmt.Errorf("backupcode: character outside the alphabet: %w", ErrMalformed)
		}
		out = append(out, c)
	}
	if len(out) != Length {
		return "", fmt.Errorf("backupcode: %d characters, want %d: %w", len(out), Length, ErrMalformed)
	}
	return string(out), nil
}

func inAlphabet(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U'
}

// Hasher makes the stored form of a code. It is safe for concurrent use.
type Hasher struct {
	key []byte
}

// MinKeySize is the shortest key NewHasher accepts, in bytes.
const MinKeySize = 32

// NewHasher returns a Hasher keyed with a copy of key, which must be at
// least MinKeySize bytes and stable: changing it makes every stored code
// unusable.
func NewHasher(key []byte) (Hasher, error) {
	if len(key) < MinKeySize {
		return Hasher{}, fmt.Errorf("backupcode: hash key is %d bytes, want at least %d", len(key), MinKeySize)
	}
	return Hasher{key: append([]byte(nil), key...)}, nil
}

// Hash returns HMAC-SHA-256(key, normalized), 32 bytes. normalized must
// come from Normalize, so every way of typing a code hashes alike. Being
// keyed, a leaked table of hashes cannot be searched offline without the
// key; being deterministic, a code is found by looking its hash up rather
// than by comparing against each stored code. It panics on a zero Hasher,
// which has no key.
func (h Hasher) Hash(normalized string) []byte {
	if h.key == nil {
		panic("backupcode: Hash on a zero Hasher; use NewHasher")
	}
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(normalized))
	return mac.Sum(nil)
}

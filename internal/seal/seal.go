// Package seal encrypts secrets at rest (TOTP seeds, signing keys) with
// AES-256-GCM. Each sealed value names the key that sealed it, so a Keyring
// can hold the current key and older ones while stored values are rotated.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// ErrOpen is returned, wrapped with the reason, by Open for every sealed
// value it cannot open: truncated or malformed input, an unknown version or
// key id, a wrong aad, or any tampering. Callers test it with errors.Is.
var ErrOpen = errors.New("cannot open sealed value")

// KeySize is the length in bytes of a Key's Secret (AES-256).
const KeySize = 32

// MaxIDLen is the longest key id, in bytes.
const MaxIDLen = 32

const (
	version1  = 1
	nonceSize = 12 // standard GCM nonce
	tagSize   = 16
)

// Key is one AES-256 key and the id under which values sealed with it are
// labelled. ID is 1 to MaxIDLen characters of [A-Za-z0-9_-]; it is stored in
// clear in every sealed value, so it must not be secret. Secret is KeySize
// bytes.
type Key struct {
	ID     string
	Secret []byte
}

// Keyring seals with its primary key and opens values sealed with any of
// its keys. It is safe for concurrent use.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// New returns a Keyring that seals with primary and opens values sealed by
// primary or any of older. It returns an error if a key id is invalid, a
// secret is not KeySize bytes, or two keys share an id. The secrets are not
// retained beyond the derived cipher state, so callers may zero them after.
func New(primary Key, older ...Key) (*Keyring, error) {
	k := &Keyring{primary: primary.ID, aeads: make(map[string]cipher.AEAD, 1+len(older))}
	for i, key := range append([]Key{primary}, older...) {
		if err := validID(key.ID); err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i+1, err)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("seal: key %q: secret is %d bytes, want %d", key.ID, len(key.Secret), KeySize)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("seal: duplicate key id %q", key.ID)
		}
		block, err := aes.NewCipher(key.Secret)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
	}
	return k, nil
}

// Seal encrypts plaintext under the primary key with a fresh random nonce
// and returns
//
//	0x01 | len(id) | id | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// aad is authenticated but not stored: Open must be given the same aad, so
// passing the owning row and purpose (e.g. "totp_factor:42") stops a sealed
// value copied to another row from opening there. The header (version and
// key id) is authenticated too. The error is non-nil only if the system
// random source fails.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := k.aeads[k.primary]
	hdr := header(k.primary)
	out := make([]byte, len(hdr), len(hdr)+nonceSize+len(plaintext)+tagSize)
	copy(out, hdr)
	nonce := out[len(hdr) : len(hdr)+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: read nonce: %w", err)
	}
	out = out[:len(hdr)+nonceSize]
	return aead.Seal(out, nonce, plaintext, additionalData(hdr, aad)), nil
}

// Open authenticates and decrypts a value made by Seal with the same aad,
// using the key named in its header. Every failure wraps ErrOpen; Open never
// panics, whatever sealed holds.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	id, body, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("seal: unknown key id %q: %w", id, ErrOpen)
	}
	if len(body) < nonceSize+tagSize {
		return nil, fmt.Errorf("seal: truncated: %w", ErrOpen)
	}
	hdr := sealed[:len(sealed)-len(body)]
	plaintext, err := aead.Open(nil, body[:nonceSize], body[nonceSize:], additionalData(hdr, aad))
	if err != nil {
		return nil, fmt.Errorf("seal: key %q: authentication failed: %w", id, ErrOpen)
	}
	return plaintext, nil
}

// NeedsReseal reports whether sealed is a well-formed value sealed under a
// key other than the primary one, so that the caller should Open it and Seal
// it again. It does not authenticate; a malformed value reports false, and
// Open on it reports the error.
func (k *Keyring) NeedsReseal(sealed []byte) bool {
	id, _, err := parse(sealed)
	return err == nil && id != k.primary
}

// parse splits a sealed value into its key id and the rest (nonce,
// ciphertext, tag), checking only the header.
func parse(sealed []byte) (id string, body []byte, err error) {
	if len(sealed) < 2 {
		return "", nil, fmt.Errorf("seal: truncated: %w", ErrOpen)
	}
	if sealed[0] != version1 {
		return "", nil, fmt.Errorf("seal: unknown format version %d: %w", sealed[0], ErrOpen)
	}
	n := int(sealed[1])
	if n == 0 || n > MaxIDLen || len(sealed) < 2+n {
		return "", nil, fmt.Errorf("seal: malformed key id: %w", ErrOpen)
	}
	id = string(sealed[2 : 2+n])
	if validID(id) != nil {
		return "", nil, fmt.Errorf("seal: malformed key id: %w", ErrOpen)
	}
	return id, sealed[2+n:], nil
}

func header(id string) []byte {
	return append([]byte{version1, byte(len(id))}, id...)
}

// additionalData binds the header and the caller's aad. The header is
// length-prefixed, so the concatenation is unambiguous.
func additionalData(hdr, aad []byte) []byte {
	return append(append(make([]byte, 0, len(hdr)+len(aad)), hdr...), aad...)
}

func validID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("key id must be 1 to %d characters", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return errors.New("key id may hold only A-Z, a-z, 0-9, '_' and '-'")
		}
	}
	return nil
}

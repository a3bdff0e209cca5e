package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultKeyID is the id given to a key written without one: a bare base64
// key in TWOSTEP_ENCRYPTION_KEY, or the key LoadOrCreateKeyFile creates.
const DefaultKeyID = "k1"

// GenerateKey reads KeySize bytes from r (normally crypto/rand.Reader) and
// returns them as a Key with the given id. It fails if id is invalid or r
// cannot supply the bytes.
func GenerateKey(r io.Reader, id string) (Key, error) {
	if err := validID(id); err != nil {
		return Key{}, fmt.Errorf("seal: generate key: %w", err)
	}
	secret := make([]byte, KeySize)
	if _, err := io.ReadFull(r, secret); err != nil {
		return Key{}, fmt.Errorf("seal: generate key: %w", err)
	}
	return Key{ID: id, Secret: secret}, nil
}

// ParseKeys parses the TWOSTEP_ENCRYPTION_KEY format. s is either one
// base64 key, given the id DefaultKeyID, or a comma-separated list
// "id:base64,id:base64" whose first key is the primary one. Each key is
// KeySize bytes in standard or URL-safe base64, padded or not. Spaces and
// newlines around entries are ignored. Errors name the entry by position or
// id but never include key material.
func ParseKeys(s string) ([]Key, error) {
	keys, err := parseKeys(s)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return keys, nil
}

func parseKeys(s string) ([]Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no encryption key given")
	}
	if !strings.ContainsAny(s, ":,") {
		secret, err := decodeSecret(s)
		if err != nil {
			return nil, fmt.Errorf("encryption key: %w", err)
		}
		return []Key{{ID: DefaultKeyID, Secret: secret}}, nil
	}
	var keys []Key
	seen := make(map[string]bool)
	for i, entry := range strings.Split(s, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			return nil, fmt.Errorf("encryption key %d: want id:base64", i+1)
		}
		id = strings.TrimSpace(id)
		// The id is not echoed: a misplaced secret could be sitting in it.
		if err := validID(id); err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("encryption key %d: duplicate id %q", i+1, id)
		}
		seen[id] = true
		secret, err := decodeSecret(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("encryption key %q: %w", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	return keys, nil
}

// FormatKeys writes keys in the list form ParseKeys reads, primary first,
// with standard padded base64.
func FormatKeys(keys ...Key) string {
	entries := make([]string, len(keys))
	for i, k := range keys {
		entries[i] = k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret)
	}
	return strings.Join(entries, ",")
}

// decodeSecret decodes one key. A 32-byte key has one encoding of each kind
// and no string is valid in two of them with different bytes, so trying
// them in turn is unambiguous. Decoder errors are dropped, not wrapped, so
// that no part of the input reaches a log.
func decodeSecret(b64 string) ([]byte, error) {
	if b64 == "" {
		return nil, errors.New("empty key")
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		secret, err := enc.Strict().DecodeString(b64)
		if err != nil {
			continue
		}
		if len(secret) != KeySize {
			return nil, fmt.Errorf("key is %d bytes, want %d", len(secret), KeySize)
		}
		return secret, nil
	}
	return nil, errors.New("key is not valid base64")
}

// LoadOrCreateKeyFile returns the keys in the file at path, which holds the
// ParseKeys format. If the file does not exist, it generates one key with
// id DefaultKeyID from r, writes it to path with mode 0600 and reports
// created. The file appears complete or not at all: it is written to a
// temporary file in the same directory, synced, then hard-linked into
// place, which fails rather than replaces if another process created path
// first; in that case the other process's keys are returned. An existing
// file that does not parse is an error and is never overwritten, since
// replacing it would make every value sealed with it unreadable. The
// directory must already exist.
func LoadOrCreateKeyFile(path string, r io.Reader) (keys []Key, created bool, err error) {
	keys, err = readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return keys, false, err
	}
	key, err := GenerateKey(r, DefaultKeyID)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("seal: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(FormatKeys(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("seal: write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			keys, err := readKeyFile(path)
			return keys, false, err
		}
		return nil, false, fmt.Errorf("seal: create key file: %w", err)
	}
	// Best effort: make the new directory entry durable. Some filesystems
	// refuse to sync a directory, and there is nothing better to do then.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return []Key{key}, true, nil
}

func readKeyFile(path string) ([]Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seal: read key file: %w", err)
	}
	keys, err := parseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("seal: key file %s: %w", path, err)
	}
	return keys, nil
}

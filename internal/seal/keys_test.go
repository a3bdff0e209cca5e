package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	a, b := seq(0xe0, KeySize), seq(0x10, KeySize) // a has bytes that differ between std and URL alphabets
	std := base64.StdEncoding.EncodeToString(a)
	tests := []struct {
		in   string
		want []Key
	}{
		{std, []Key{{"k1", a}}},
		{base64.RawStdEncoding.EncodeToString(a), []Key{{"k1", a}}},
		{base64.URLEncoding.EncodeToString(a), []Key{{"k1", a}}},
		{base64.RawURLEncoding.EncodeToString(a), []Key{{"k1", a}}},
		{"  " + std + "\n", []Key{{"k1", a}}},
		{"k2:" + std, []Key{{"k2", a}}},
		{"new:" + std + ",old:" + base64.RawURLEncoding.EncodeToString(b), []Key{{"new", a}, {"old", b}}},
		{" new : " + std + " ,\n old:" + base64.StdEncoding.EncodeToString(b) + "\n", []Key{{"new", a}, {"old", b}}},
	}
	for _, tt := range tests {
		got, err := ParseKeys(tt.in)
		if err != nil {
			t.Errorf("ParseKeys(%q) = %v, want nil", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseKeys(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseKeysErrors(t *testing.T) {
	t.Parallel()
	secret := base64.StdEncoding.EncodeToString(seq(0xe0, KeySize))
	short := base64.StdEncoding.EncodeToString(seq(0xe0, 16))
	long := base64.StdEncoding.EncodeToString(seq(0xe0, 33))
	tests := []struct {
		in       string
		wantText string // a fragment the message must hold
	}{
		{"", "no encryption key"},
		{"   \n", "no encryption key"},
		{short, "16 bytes, want 32"},
		{long, "33 bytes, want 32"},
		{"k1:" + short, "16 bytes, want 32"},
		{secret[:20] + "!" + secret[21:], "not valid base64"},
		{secret[:len(secret)-2] + "B=", "not valid base64"}, // non-zero padding bits
		{"k1:" + secret + ",k1:" + secret, `duplicate id "k1"`},
		{"k1:" + secret + ",", "want id:base64"},
		{"k1:" + secret + "," + secret, "want id:base64"},
		{":" + secret, "key id must be"},
		{"k 1:" + secret, "may hold only"},
		{strings.Repeat("k", 33) + ":" + secret, "key id must be"},
		{secret + ":k1", "key id must be"}, // secret and id swapped
		{"k1:", "empty key"},
	}
	for _, tt := range tests {
		_, err := ParseKeys(tt.in)
		if err == nil {
			t.Errorf("ParseKeys(%q) = nil error, want error", tt.in)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.wantText) {
			t.Errorf("ParseKeys(%q) = %q, want it to contain %q", tt.in, msg, tt.wantText)
		}
		for _, s := range []string{secret, secret[:8], short[:8], long[:8]} {
			if strings.Contains(msg, s) {
				t.Errorf("ParseKeys(%q) = %q, echoes key material %q", tt.in, msg, s)
			}
		}
	}
}

func TestFormatKeysRoundTrip(t *testing.T) {
	t.Parallel()
	keys := []Key{{"k2", seq(0xe0, KeySize)}, {"k1", seq(1, KeySize)}}
	got, err := ParseKeys(FormatKeys(keys...))
	if err != nil {
		t.Fatalf("ParseKeys(FormatKeys(...)) = %v, want nil", err)
	}
	if diff := cmp.Diff(keys, got); diff != "" {
		t.Errorf("ParseKeys(FormatKeys(...)) mismatch (-want +got):\n%s", diff)
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	src := seq(0, 40)
	got, err := GenerateKey(bytes.NewReader(src), "k7")
	if err != nil {
		t.Fatalf("GenerateKey(k7) = %v, want nil", err)
	}
	if diff := cmp.Diff(Key{ID: "k7", Secret: src[:KeySize]}, got); diff != "" {
		t.Errorf("GenerateKey(k7) mismatch (-want +got):\n%s", diff)
	}
	if _, err := GenerateKey(bytes.NewReader(src[:31]), "k1"); err == nil {
		t.Errorf("GenerateKey(31-byte reader) = nil error, want error")
	}
	if _, err := GenerateKey(iotest.ErrReader(errors.New("boom")), "k1"); err == nil {
		t.Errorf("GenerateKey(failing reader) = nil error, want error")
	}
	if _, err := GenerateKey(bytes.NewReader(src), "bad id"); err == nil {
		t.Errorf("GenerateKey(%q) = nil error, want error", "bad id")
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "twostep.key")

	keys, created, err := LoadOrCreateKeyFile(path, bytes.NewReader(seq(5, KeySize)))
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKeyFile(new) = %v, %v, want created, nil", created, err)
	}
	want := []Key{{DefaultKeyID, seq(5, KeySize)}}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("LoadOrCreateKeyFile(new) mismatch (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %v, want 0600", got)
	}
	if _, err := New(keys[0], keys[1:]...); err != nil {
		t.Errorf("New(created keys) = %v, want nil", err)
	}

	// A second call reads the file back and draws no randomness.
	again, created, err := LoadOrCreateKeyFile(path, iotest.ErrReader(errors.New("must not read")))
	if err != nil || created {
		t.Fatalf("LoadOrCreateKeyFile(existing) = %v, %v, want not created, nil", created, err)
	}
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("LoadOrCreateKeyFile(existing) mismatch (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file (temporary files left behind)", len(entries))
	}
}

func TestLoadOrCreateKeyFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.key")
	if err := os.WriteFile(corrupt, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.key")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		rand io.Reader
	}{
		{"corrupt file", corrupt, bytes.NewReader(seq(0, KeySize))},
		{"empty file", empty, bytes.NewReader(seq(0, KeySize))},
		{"missing directory", filepath.Join(dir, "nope", "twostep.key"), bytes.NewReader(seq(0, KeySize))},
		{"failing rand", filepath.Join(dir, "new.key"), iotest.ErrReader(errors.New("boom"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(tt.path)
			keys, created, err := LoadOrCreateKeyFile(tt.path, tt.rand)
			if err == nil {
				t.Errorf("LoadOrCreateKeyFile(%s) = %v, %v, nil, want error", tt.name, keys, created)
			}
			after, _ := os.ReadFile(tt.path)
			if !bytes.Equal(before, after) {
				t.Errorf("LoadOrCreateKeyFile(%s) changed the file from %q to %q", tt.name, before, after)
			}
		})
	}
}

// TestLoadOrCreateKeyFileRace starts many creators at once: exactly one
// creates the file and every caller ends up with its key.
func TestLoadOrCreateKeyFileRace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "twostep.key")
	const n = 16
	var (
		wg      sync.WaitGroup
		results [n][]Key
		created [n]bool
		errs    [n]error
	)
	for i := range n {
		wg.Go(func() {
			results[i], created[i], errs[i] = LoadOrCreateKeyFile(path, bytes.NewReader(bytes.Repeat([]byte{byte(i + 1)}, KeySize)))
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreateKeyFile(caller %d) = %v, want nil", i, errs[i])
		}
		if created[i] {
			creators++
		}
		if diff := cmp.Diff(results[0], results[i]); diff != "" {
			t.Errorf("caller %d got other keys than caller 0 (-0 +%d):\n%s", i, i, diff)
		}
	}
	if creators != 1 {
		t.Errorf("%d callers reported created, want 1", creators)
	}
	onDisk, _, err := LoadOrCreateKeyFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(results[0], onDisk); diff != "" {
		t.Errorf("key file differs from what callers got (-callers +file):\n%s", diff)
	}
}

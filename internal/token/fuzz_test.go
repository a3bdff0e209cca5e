package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const corpusDir = "testdata/fuzz/FuzzVerify"

// fuzzKeyring returns a Keyring whose key and token IDs come from a
// deterministic stream, so that the "valid" seed in the corpus verifies on
// every run, and the instant the corpus was made for.
func fuzzKeyring(t testing.TB) (*Keyring, time.Time) {
	t.Helper()
	now := start()
	k := newTestKeyring(t, &memStore{}, Options{Rand: &detReader{}})
	if err := k.Load(t.Context(), now); err != nil {
		t.Fatalf("Load() = %v, want nil", err)
	}
	return k, now
}

// FuzzVerify checks that Verify never panics and that it accepts only
// well-formed claims, failing otherwise with ErrInvalid.
func FuzzVerify(f *testing.F) {
	k, now := fuzzKeyring(f)
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := k.Verify(raw, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify(%q) = %v, want %v", raw, err, ErrInvalid)
			}
			return
		}
		if c.Subject == "" || c.SessionID == "" || c.ID == "" || !now.Before(c.ExpiresAt) {
			t.Fatalf("Verify(%q) = %+v, nil; want an error for these claims", raw, c)
		}
	})
}

// TestFuzzCorpus checks the seed corpus: files named valid* verify, all
// others fail with ErrInvalid. With TWOSTEP_UPDATE_FUZZ_CORPUS=1 it first
// rewrites the corpus.
func TestFuzzCorpus(t *testing.T) {
	k, now := fuzzKeyring(t)
	if os.Getenv("TWOSTEP_UPDATE_FUZZ_CORPUS") == "1" {
		writeCorpus(t, k, now)
	}
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 8 {
		t.Fatalf("%s holds %d seeds, want at least 8", corpusDir, len(entries))
	}
	for _, e := range entries {
		raw := readSeed(t, filepath.Join(corpusDir, e.Name()))
		_, err := k.Verify(raw, now)
		if strings.HasPrefix(e.Name(), "valid") {
			if err != nil {
				t.Errorf("%s: Verify(%q) = %v, want nil", e.Name(), raw, err)
			}
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Verify(%q) = %v, want %v", e.Name(), raw, err, ErrInvalid)
		}
	}
}

// readSeed reads a one-string seed in the "go test fuzz v1" format.
func readSeed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(strings.TrimSuffix(string(b), "\n"), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "string(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a one-string go test fuzz v1 file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

func writeCorpus(t *testing.T, k *Keyring, now time.Time) {
	t.Helper()
	signer := k.keys.Load().signer
	hdr := map[string]any{"typ": "at+jwt", "kid": signer.id}
	valid, err := k.Issue(Claims{Subject: "user-1", SessionID: "session-1", AMR: []string{"pwd", "otp"}, IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	h, p, sig := segments(t, valid)
	flipped := append([]byte(nil), sig...)
	flipped[0] ^= 0x80
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	enc := base64.RawURLEncoding.EncodeToString

	seeds := map[string]string{
		"valid":              valid,
		"tampered_signature": h + "." + p + "." + enc(flipped),
		"tampered_payload": h + "." + enc([]byte(`{"iss":"`+testIssuer+`","aud":"`+testAudience+
			`","sub":"admin","sid":"session-1","iat":`+strconv.FormatInt(now.Unix(), 10)+
			`,"exp":`+strconv.FormatInt(now.Add(time.Hour).Unix(), 10)+`,"jti":"x"}`)) + "." + enc(sig),
		"alg_none":         forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, goodClaims(now)),
		"hs256_public_key": forge(t, jwt.SigningMethodHS256, []byte(signer.private.Public().(ed25519.PublicKey)), hdr, goodClaims(now)),
		"rs256":            forge(t, jwt.SigningMethodRS256, rsaKey, hdr, goodClaims(now)),
		"other_key":        forge(t, jwt.SigningMethodEdDSA, otherKey, hdr, goodClaims(now)),
		"unknown_kid":      forge(t, jwt.SigningMethodEdDSA, signer.private, map[string]any{"typ": "at+jwt", "kid": "AAAAAAAAAAAAAAAA"}, goodClaims(now)),
		"expired":          forge(t, jwt.SigningMethodEdDSA, signer.private, hdr, goodClaims(now.Add(-time.Hour))),
		"truncated":        valid[:len(valid)/2],
		"huge":             h + "." + strings.Repeat("eyJzdWIiOiJ4In0", 1100) + "." + enc(sig),
		"empty":            "",
		"dots":             "..",
	}
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, raw := range seeds {
		data := "go test fuzz v1\nstring(" + strconv.Quote(raw) + ")\n"
		if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

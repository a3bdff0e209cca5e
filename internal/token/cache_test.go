package token

import (
	"testing"
)

// The cache must answer exactly as a full verification: a cached token is
// refused once it expires, and once its key is no longer valid.
func TestVerifyCacheHonoursExpiryAndKeys(t *testing.T) {
	t.Parallel()
	now := start()
	k, _ := loadedKeyring(t, now)
	raw, err := k.Issue(Claims{Subject: "u", SessionID: "s", IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(raw, now); err != nil {
		t.Fatalf("Verify = %v, want nil", err)
	}
	if _, ok := k.keys.Load().cache.get(raw, now, k.keys.Load()); !ok {
		t.Fatalf("token not cached after a successful Verify")
	}
	// A cached entry must not survive tampering: the key is the whole raw
	// string, so a changed signature is a miss and fails verification.
	i := len(raw) - 10 // inside the signature
	flip := byte('A')
	if raw[i] == 'A' {
		flip = 'B'
	}
	tampered := raw[:i] + string(flip) + raw[i+1:]
	if _, err := k.Verify(tampered, now); err == nil {
		t.Errorf("Verify(tampered) = nil, want error")
	}
	if _, err := k.Verify(raw, now.Add(DefaultAccessTTL)); err == nil {
		t.Errorf("Verify(cached, at exp) = nil, want error")
	}
}

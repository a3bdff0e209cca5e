package httpapi_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"net/http"
	"testing"
)

// TestSecretsAtRest reads every row the flows wrote and shows that what
// the contract says is stored hashed or encrypted is not there in the
// clear: passwords, refresh tokens, SMS codes (not even under a plain,
// unkeyed SHA-256), and the JWT signing key.
func TestSecretsAtRest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.newUser("ada@example.com", nil)
		// A rotated refresh token and the one it replaced.
		r := p.post("/authentication/renew", "", map[string]any{"refreshToken": u.refresh})
		mustStatus(t, "renew", r, http.StatusOK)
		secrets := map[string][]byte{
			"password":            []byte(u.pw),
			"first refresh token": []byte(u.refresh),
			"new refresh token":   []byte(r.Str(t, "refreshToken")),
			"access token":        []byte(r.Str(t, "accessToken")),
		}
		// An SMS enrolment code.
		m := p.mark()
		mustStatus(t, "enable sms", p.post(pathEnable, r.Str(t, "accessToken"), map[string]any{"method": "sms", "phone": adaPhone}), http.StatusOK)
		code := p.one("enrolment code", m, adaPhone, "sms", "enrolment")
		plain := sha256.Sum256([]byte(code))

		for _, table := range []string{"users", "sessions", "refresh_tokens", "sms_codes", "audit_events"} {
			for _, v := range rawBytes(p.rawRows(`SELECT * FROM ` + table)) {
				for what, secret := range secrets {
					if bytes.Contains(v, secret) {
						t.Errorf("%s holds the %s in the clear", table, what)
					}
				}
				if bytes.Contains(v, plain[:]) {
					t.Errorf("%s holds an unkeyed SHA-256 of the SMS code", table)
				}
			}
		}
		for _, row := range p.rawRows(`SELECT code_hash FROM sms_codes`) {
			if h, _ := row[0].([]byte); bytes.Contains(h, []byte(code)) {
				t.Errorf("sms_codes.code_hash holds the code")
			}
		}

		// The signing key is sealed: no 32 bytes of the stored blob are the
		// Ed25519 seed of the stored public key.
		rows := p.rawRows(`SELECT public_key, sealed_private FROM signing_keys`)
		if len(rows) == 0 {
			t.Fatal("no signing key stored")
		}
		for _, row := range rows {
			pub, _ := row[0].([]byte)
			sealed, _ := row[1].([]byte)
			for i := 0; i+ed25519.SeedSize <= len(sealed); i++ {
				k := ed25519.NewKeyFromSeed(sealed[i : i+ed25519.SeedSize])
				if bytes.Equal(k.Public().(ed25519.PublicKey), pub) {
					t.Fatalf("signing_keys.sealed_private holds the private key in the clear at offset %d", i)
				}
			}
		}
	})
}

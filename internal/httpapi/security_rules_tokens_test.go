package httpapi_test

import (
	"math"
	"net/http"
	"strings"
	"testing"
)

// rulesTokenBits is the most randomness an opaque token's text can carry: its
// length times the bits per character of the smallest usual alphabet
// (hex, base32, base64url) that holds all its characters.
func rulesTokenBits(tok string) float64 {
	for _, a := range []string{
		"0123456789abcdef",
		"0123456789ABCDEF",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
	} {
		if strings.Trim(tok, a) == "" {
			return float64(len(tok)) * math.Log2(float64(len(a)))
		}
	}
	return float64(len(tok)) * 8
}

// rulesCheckOpaque fails unless every token of toks can carry min bits, and
// no two share a prefix of a quarter of their length (a counter or a
// timestamp in front would).
func rulesCheckOpaque(t *testing.T, what string, toks []string, min float64) {
	t.Helper()
	for i, a := range toks {
		if bits := rulesTokenBits(a); bits < min {
			t.Errorf("%s %q carries at most %.0f bits, want at least %.0f", what, a, bits, min)
		}
		for _, b := range toks[:i] {
			n := len(a) / 4
			if a == b || (n > 0 && len(b) >= n && a[:n] == b[:n]) {
				t.Errorf("%s tokens %q and %q are alike", what, a, b)
			}
		}
	}
}

// TestSecurityRulesOpaqueTokenSizes: "refresh token: opaque, at least 256
// bits" (from every path that issues one: password login, renewal, 2FA
// login, step-up, recovery) and "challenge token: opaque, at least 128
// bits".
func TestSecurityRulesOpaqueTokenSizes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		var refresh, challenges []string

		pw := e.register("plain@example.com")
		for range 3 {
			m := e.login("plain@example.com", pw)
			refresh = append(refresh, m["refreshToken"].(string))
			r := e.renew(m["refreshToken"].(string))
			mustStatus(t, "renew", r, http.StatusOK)
			refresh = append(refresh, r.Str(t, "refreshToken"))
		}
		u := e.twoFaUser("tokens@example.com")
		for i := range 3 {
			tok := e.challenge(u)
			challenges = append(challenges, tok)
			e.nextStep()
			r := e.verify(tok, map[string]any{"code": e.code(u.secret)})
			mustStatus(t, "2FA login", r, http.StatusOK)
			refresh = append(refresh, r.Str(t, "refreshToken"))
			access := r.Str(t, "accessToken")
			e.nextStep()
			r = e.verify(access, map[string]any{"code": e.code(u.secret)})
			mustStatus(t, "step-up", r, http.StatusOK)
			refresh = append(refresh, r.Str(t, "refreshToken"))
			tok = e.challenge(u)
			challenges = append(challenges, tok)
			r = e.recoverWith(tok, u.backup[i])
			mustStatus(t, "recover", r, http.StatusOK)
			refresh = append(refresh, r.Str(t, "refreshToken"))
		}
		rulesCheckOpaque(t, "refresh", refresh, 256)
		rulesCheckOpaque(t, "challenge", challenges, 128)
	})
}

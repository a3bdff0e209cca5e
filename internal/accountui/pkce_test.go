package accountui_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// pkcePair is a code_verifier and its S256 code_challenge (RFC 7636).
func pkcePair(seed string) (verifier, challenge string) {
	verifier = strings.Repeat(seed, 64)[:64]
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func pkceQuery(challenge string) string {
	return "&code_challenge=" + challenge + "&code_challenge_method=S256"
}

// wantInvalidCode checks a 401 invalid_code answer.
func wantInvalidCode(t *testing.T, what string, status int, m map[string]any) {
	t.Helper()
	e, _ := m["error"].(map[string]any)
	if status != http.StatusUnauthorized || e["code"] != "invalid_code" {
		t.Errorf("%s = %d %v, want 401 invalid_code", what, status, m)
	}
}

// TestExchangeWithPKCE: a code made for a sign-in link with an S256
// challenge is exchanged only with its verifier; a missing or wrong
// verifier uses the code up.
func TestExchangeWithPKCE(t *testing.T) {
	e := newEnv(t)
	verifier, challenge := pkcePair("abc")
	other, _ := pkcePair("xyz")

	code := e.signInForCodeWith(e.browser(), "ada@example.com", pkceQuery(challenge))
	status, m := e.exchangeWith(map[string]string{"code": code, "codeVerifier": verifier})
	if status != http.StatusOK || m["accessToken"] == nil {
		t.Fatalf("exchange with the right verifier = %d %v, want 200 with tokens", status, m)
	}

	for _, tc := range []struct{ name, verifier string }{
		{"no verifier", ""},
		{"another verifier", other},
		{"the challenge as verifier", challenge + "AAAAAAAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := e.signInForCodeWith(e.browser(), strings.ReplaceAll(tc.name, " ", "")+"@example.com", pkceQuery(challenge))
			req := map[string]string{"code": code}
			if tc.verifier != "" {
				req["codeVerifier"] = tc.verifier
			}
			status, m := e.exchangeWith(req)
			wantInvalidCode(t, "exchange with "+tc.name, status, m)
			// Used up: the right verifier is too late now.
			status, m = e.exchangeWith(map[string]string{"code": code, "codeVerifier": verifier})
			wantInvalidCode(t, "exchange after a failed verifier", status, m)
		})
	}
}

// TestExchangeRefusesVerifierWithoutChallenge: a verifier for a code made
// without a challenge is what a link stripped of its challenge looks like.
func TestExchangeRefusesVerifierWithoutChallenge(t *testing.T) {
	e := newEnv(t)
	verifier, _ := pkcePair("abc")
	code := e.signInForCode(e.browser(), "ada@example.com")
	status, m := e.exchangeWith(map[string]string{"code": code, "codeVerifier": verifier})
	wantInvalidCode(t, "exchange with a verifier nobody asked for", status, m)
}

// TestExchangeMalformedVerifierChangesNothing: a verifier of the wrong
// form is bad input (400) and leaves the code usable.
func TestExchangeMalformedVerifierChangesNothing(t *testing.T) {
	e := newEnv(t)
	verifier, challenge := pkcePair("abc")
	code := e.signInForCodeWith(e.browser(), "ada@example.com", pkceQuery(challenge))
	for _, bad := range []string{"short", strings.Repeat("a", 129), strings.Repeat("a", 42) + "!", strings.Repeat("é", 30)} {
		status, m := e.exchangeWith(map[string]string{"code": code, "codeVerifier": bad})
		if status != http.StatusBadRequest {
			t.Errorf("exchange with verifier %.12q… = %d %v, want 400", bad, status, m)
		}
	}
	if status, m := e.exchangeWith(map[string]string{"code": code, "codeVerifier": verifier}); status != http.StatusOK {
		t.Errorf("exchange with the right verifier after bad ones = %d %v, want 200", status, m)
	}
}

// TestSignedInHandoffKeepsPKCE: a browser already signed in is sent back at
// once, with a code bound to the new link's challenge.
func TestSignedInHandoffKeepsPKCE(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.signInForCode(b, "ada@example.com")
	verifier, challenge := pkcePair("def")
	p := b.get("/login?return_to=" + url.QueryEscape(appURL) + pkceQuery(challenge))
	mustStatus(t, "GET /login signed in", p, http.StatusSeeOther)
	loc, err := url.Parse(p.Location())
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("GET /login signed in went to %q, want the app with a code", p.Location())
	}
	code := loc.Query().Get("code")
	status, m := e.exchangeWith(map[string]string{"code": code, "codeVerifier": verifier})
	if status != http.StatusOK {
		t.Fatalf("exchange with the verifier = %d %v, want 200", status, m)
	}

	// And without: refused.
	p = b.get("/login?return_to=" + url.QueryEscape(appURL) + pkceQuery(challenge))
	loc, _ = url.Parse(p.Location())
	status, m = e.exchange(loc.Query().Get("code"))
	wantInvalidCode(t, "exchange without the verifier", status, m)
}

// TestMalformedCodeChallengeRefused: a sign-in link whose PKCE parameters
// are wrong is refused like a bad return_to: signed out, the sign-in stays
// on twostep; signed in, 400 and no redirect.
func TestMalformedCodeChallengeRefused(t *testing.T) {
	_, challenge := pkcePair("abc")
	bad := []string{
		"&code_challenge=" + challenge,                                  // no method: plain by default
		"&code_challenge=" + challenge + "&code_challenge_method=plain", // plain is not supported
		"&code_challenge=" + challenge + "&code_challenge_method=s256",
		"&code_challenge=" + challenge[:42] + "&code_challenge_method=S256",
		"&code_challenge=" + challenge + "A&code_challenge_method=S256",
		"&code_challenge=" + strings.Repeat("%2B", 43) + "&code_challenge_method=S256",
		"&code_challenge_method=S256",
		"&code_challenge=&code_challenge_method=S256",
	}
	e := newEnv(t)
	pw := e.register("ada@example.com")
	for _, extra := range bad {
		t.Run(extra, func(t *testing.T) {
			e.wantLinkRefused(t, "ada@example.com", pw, "/login?return_to="+url.QueryEscape(appURL)+extra)
		})
	}
}

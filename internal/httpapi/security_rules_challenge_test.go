package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"
)

// TestSecurityRulesChallengeWrongCodesAcrossMethods: a challenge "dies …
// after 5 wrong codes", whatever mix of methods they came by: wrong
// authenticator codes at /twoFa/verify and wrong backup codes at
// /twoFa/recover add up on the one challenge.
func TestSecurityRulesChallengeWrongCodesAcrossMethods(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("mixed@example.com")
		tok := e.challenge(u)
		for i := 1; i <= 5; i++ {
			var r resp
			if i%2 == 1 {
				r = e.recoverWith(tok, "AAAA-AAAA-AAAA-AAAA")
			} else {
				r = e.verify(tok, map[string]any{"code": e.wrongCode(u.secret)})
			}
			wantErr(t, "wrong code "+strconv.Itoa(i), r, http.StatusUnauthorized, "invalid_code")
		}
		wantErr(t, "right authenticator code after 5 mixed wrong codes", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "challenge_expired")
		wantErr(t, "right backup code after 5 mixed wrong codes", e.recoverWith(tok, u.backup[0]), http.StatusUnauthorized, "challenge_expired")
	})
}

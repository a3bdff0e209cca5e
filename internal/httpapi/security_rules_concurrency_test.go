package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// These tests guard the limits of api.md under concurrent requests: a
// limit that holds for requests one after another must also hold when the
// requests race.

// rulesTally counts answers by "status code" (e.g. "401 invalid_code").
func rulesTally(t *testing.T, answers []resp) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, r := range answers {
		k := strconv.Itoa(r.Status)
		if r.Status != http.StatusOK {
			k += " " + r.ErrCode(t)
		}
		m[k]++
	}
	return m
}

// TestSecurityRulesChallengeWrongCodesConcurrent: "dies after 5 wrong
// codes" holds when 20 wrong codes race at one challenge: at most 5 are
// judged, the rest find the challenge dead.
func TestSecurityRulesChallengeWrongCodesConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("race1@example.com")
		tok := e.challenge(u)
		wrong := e.wrongCode(u.secret)
		got := rulesTally(t, atOnce(20, func(int) resp { return e.verify(tok, map[string]any{"code": wrong}) }))
		if got["401 invalid_code"] > 5 || got["401 invalid_code"]+got["401 challenge_expired"] != 20 {
			t.Fatalf("20 racing wrong codes on one challenge = %v, want at most 5 invalid_code, the rest challenge_expired", got)
		}
		wantErr(t, "right code on the challenge afterwards", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "challenge_expired")
	})
}

// TestSecurityRulesLockoutConcurrent: "after 10 wrong codes in a row the
// second factor is locked" holds when 24 wrong codes race across 6
// challenges: at most 9 answer invalid_code, and the account is locked
// afterwards even for the right code.
func TestSecurityRulesLockoutConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("race2@example.com")
		toks := make([]string, 6)
		for i := range toks {
			toks[i] = e.challenge(u)
		}
		wrong := e.wrongCode(u.secret)
		got := rulesTally(t, atOnce(24, func(i int) resp { return e.verify(toks[i%len(toks)], map[string]any{"code": wrong}) }))
		if got["401 invalid_code"] > 9 || got["429 rate_limited"] < 1 {
			t.Fatalf("24 racing wrong codes over 6 challenges = %v, want at most 9 invalid_code and a 429", got)
		}
		r := e.verify(e.challenge(u), map[string]any{"code": e.code(u.secret)})
		wantErr(t, "right code after the racing wrong codes", r, http.StatusTooManyRequests, "rate_limited")
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After = %q, want seconds", r.Header.Get("Retry-After"))
		}
	})
}

// TestSecurityRulesChallengeDiesAfterSuccessConcurrent: a challenge gives
// one set of tokens, even when a valid authenticator code and nine valid
// backup codes race at it.
func TestSecurityRulesChallengeDiesAfterSuccessConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("race3@example.com")
		tok := e.challenge(u)
		code := e.code(u.secret)
		answers := atOnce(10, func(i int) resp {
			if i == 0 {
				return e.verify(tok, map[string]any{"code": code})
			}
			return e.recoverWith(tok, u.backup[i])
		})
		got := rulesTally(t, answers)
		if got["200"] != 1 {
			t.Fatalf("one challenge, 10 racing valid codes = %v, want exactly one 200", got)
		}
		sids := 0
		for _, r := range answers {
			if r.Status == http.StatusOK && r.Str(t, "accessToken") != "" {
				sids++
			}
		}
		if sids != 1 {
			t.Fatalf("%d sessions from one challenge, want 1", sids)
		}
		if n := len(e.rawRows(`SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL`, u.id)); n > 2 {
			// the enrolling session and the one login
			t.Errorf("live sessions after the race = %d, want at most 2", n)
		}
	})
}

// TestSecurityRulesEnrolmentCodeOnceConcurrent: the code that confirms an
// enrolment is used up, even when 10 confirmations race: one turns 2FA on
// and only one set of 10 backup codes exists.
func TestSecurityRulesEnrolmentCodeOnceConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		pw := e.register("race4@example.com")
		access := e.login("race4@example.com", pw)["accessToken"].(string)
		id := jwtClaims(t, access)["sub"].(string)
		secret, _ := e.startEnrol(access, map[string]any{"method": "authenticator"})
		code := e.code(secret)
		got := rulesTally(t, atOnce(10, func(int) resp {
			return e.call(http.MethodPost, pathEnableVerify, access, map[string]any{"code": code})
		}))
		if got["200"] != 1 {
			t.Fatalf("10 racing enable/verify with one code = %v, want exactly one 200", got)
		}
		if n := len(e.rawRows(`SELECT hash FROM backup_codes WHERE user_id = ?`, id)); n != 10 {
			t.Errorf("backup_codes rows = %d, want 10 (one set)", n)
		}
		if n := len(e.rawRows(`SELECT id FROM factors WHERE user_id = ?`, id)); n != 1 {
			t.Errorf("factors rows = %d, want 1", n)
		}
		tok := e.challenge(&tfUser{email: "race4@example.com", pw: pw})
		wantErr(t, "login with the enrolment code", e.verify(tok, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")
	})
}

// TestSecurityRulesSudoCodeOnceConcurrent: a second-factor code given as
// the `code` of a sudo action is single use under concurrency: 10 sessions
// of one user, all out of sudo, race one code at PUT /twoFa/enable (a sudo
// action that revokes no session); one succeeds.
func TestSecurityRulesSudoCodeOnceConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("race5@example.com")
		sessions := make([]string, 10)
		for i := range sessions {
			sessions[i], _ = e.signIn(u)
		}
		e.clock.Advance(e.cfg.SudoTTL + time.Second)
		body := map[string]any{"method": "authenticator"}
		wantErr(t, "re-enrol outside sudo", e.call(http.MethodPut, pathEnable, sessions[0], body), http.StatusForbidden, "sudo_required")
		code := e.code(u.secret) // a step no one has used
		got := rulesTally(t, atOnce(len(sessions), func(i int) resp {
			return e.call(http.MethodPut, pathEnable, sessions[i], map[string]any{"method": "authenticator", "code": code})
		}))
		if got["200"] != 1 {
			t.Fatalf("10 sessions racing one code at a sudo action = %v, want exactly one 200", got)
		}
	})
}

// TestSecurityRulesSMSOneSendPerChallengeConcurrent: "at most one send per
// 30 s per challenge or phone" holds when 10 authorize calls race: one text
// goes out, the others answer 429 with Retry-After.
func TestSecurityRulesSMSOneSendPerChallengeConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.newUser("race6@example.com", nil)
		p.enrolSMS(u, adaPhone)
		p.clock.Advance(31 * time.Second)
		tok := p.challengeFor(u)
		m := p.mark()
		answers := atOnce(10, func(int) resp { return p.authorize(tok, "sms") })
		got := rulesTally(t, answers)
		if got["200"] != 1 || got["429 rate_limited"] != 9 {
			t.Fatalf("10 racing sms authorizes on one challenge = %v, want one 200 and nine 429", got)
		}
		for _, r := range answers {
			if r.Status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After: %s", r.Body)
			}
		}
		if n := p.mark() - m; n != 1 {
			t.Fatalf("%d texts sent by 10 racing authorizes, want 1", n)
		}
	})
}

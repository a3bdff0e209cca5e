package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/totp"
)

// TestTwoFaEnrolment enrols an authenticator the way an app does: it reads
// the secret back out of the decoded QR image and computes the codes.
func TestTwoFaEnrolment(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, withConfig(func(c *auth.Config) { c.Issuer = "Two Step Test" }))
		pw := e.register("alice@example.com")
		m := e.login("alice@example.com", pw)
		access := m["accessToken"].(string)

		st := e.twoFaStatus(access)
		if st["enabled"] != false || len(st["methods"].([]any)) != 0 {
			t.Fatalf("GET /twoFa before enrolment = %v, want disabled and no methods", st)
		}

		// PUT and POST both start an enrolment; the second replaces the first.
		r := e.call(http.MethodPut, "/authentication/twoFa/enable", access, map[string]any{"method": "authenticator"})
		mustStatus(t, "PUT /twoFa/enable", r, http.StatusOK)
		first := secretFromOTPAuth(t, decodeQRDataURI(t, r.Str(t, "qrCode")))
		secret, r := e.startEnrol(access, map[string]any{"method": "authenticator"})
		if bytes.Equal(first, secret) {
			t.Fatal("two enrolments gave the same secret")
		}
		if len(secret) != 20 {
			t.Errorf("secret is %d bytes, want 20", len(secret))
		}
		b32 := totp.Encode(secret)
		wantURL := "otpauth://totp/Two%20Step%20Test:alice@example.com?secret=" + b32 +
			"&issuer=Two%20Step%20Test&algorithm=SHA1&digits=6&period=30"
		got := r.JSON(t)
		if got["otpauthUrl"] != wantURL {
			t.Errorf("otpauthUrl = %q, want %q", got["otpauthUrl"], wantURL)
		}
		if got["secret"] != b32 || got["method"] != "authenticator" || got["result"] != got["qrCode"] {
			t.Errorf("enable answer = %s, want secret %s, method authenticator, result = qrCode", r.Body, b32)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("enable Cache-Control = %q, want no-store", cc)
		}

		// Pending: a password still gives tokens, GET /twoFa says off.
		if m := e.login("alice@example.com", pw); m["accessToken"] == nil || m["twoFaRequired"] != nil {
			t.Fatalf("login with a pending factor = %v, want tokens", m)
		}
		if st := e.twoFaStatus(access); st["enabled"] != false {
			t.Fatalf("GET /twoFa with a pending factor = %v, want enabled false", st)
		}

		// The replaced pending secret cannot confirm; a wrong code neither.
		wantErr(t, "enable/verify with the replaced secret", e.call(http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": e.code(first)}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "enable/verify with a wrong code", e.call(http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": e.wrongCode(secret)}), http.StatusUnauthorized, "invalid_code")

		code := e.code(secret)
		r = e.call(http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": code})
		mustStatus(t, "enable/verify", r, http.StatusOK)
		conf := decodeEnabled(t, r)
		if conf.Message != "2FA enabled" || conf.Method != "authenticator" || len(conf.BackupCodes) != 10 {
			t.Fatalf("enable/verify = %s, want 2FA enabled, authenticator, 10 backup codes", r.Body)
		}
		wantBackupCodes(t, "enable/verify", r, conf.BackupCodes)

		// Nothing is pending any more.
		wantErr(t, "enable/verify with nothing pending", e.call(http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": code}), http.StatusBadRequest, "invalid_request")

		// On: GET /twoFa shows the factor, never the secret.
		sr := e.call(http.MethodGet, "/authentication/twoFa", access, nil)
		mustStatus(t, "GET /twoFa", sr, http.StatusOK)
		st = sr.JSON(t)
		methods := st["methods"].([]any)
		if st["enabled"] != true || len(methods) != 1 || st["backupCodesRemaining"] != float64(10) || st["sudoUntil"] == nil {
			t.Fatalf("GET /twoFa after enrolment = %s, want enabled, one method, 10 codes, in sudo", sr.Body)
		}
		if mm := methods[0].(map[string]any); mm["method"] != "authenticator" || mm["label"] != "Authenticator" || mm["to"] != nil {
			t.Errorf("GET /twoFa method = %v, want authenticator labelled Authenticator", mm)
		}
		if bytes.Contains(sr.Body, []byte(b32)) || bytes.Contains(bytes.ToLower(sr.Body), []byte(strings.ToLower(b32))) {
			t.Errorf("GET /twoFa = %s, contains the secret", sr.Body)
		}

		// The secret is sealed at rest.
		rows := e.rawRows(`SELECT * FROM factors WHERE user_id = ?`, jwtClaims(t, access)["sub"])
		if len(rows) != 1 {
			t.Fatalf("factors rows = %d, want 1", len(rows))
		}
		for _, v := range rawBytes(rows) {
			if bytes.Contains(v, secret) || bytes.Contains(bytes.ToUpper(v), []byte(b32)) {
				t.Errorf("factors row holds the secret in clear: %q", v)
			}
		}

		// A password now gives a challenge, and the confirming code is spent.
		tok := e.challenge(&tfUser{email: "alice@example.com", pw: pw})
		wantErr(t, "verify with the code that confirmed enrolment", e.verify(tok, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")
		e.nextStep()
		mustStatus(t, "verify with the next code", e.verify(tok, map[string]any{"code": e.code(secret)}), http.StatusOK)
	})
}

// TestTwoFaReenrol: re-enrolling while 2FA is on needs sudo, and the old
// secret keeps working until the new one is confirmed.
func TestTwoFaReenrol(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("bob@example.com")
		access, _ := e.signIn(u)
		e.clock.Advance(e.cfg.SudoTTL + time.Second)
		if st := e.twoFaStatus(access); st["sudoUntil"] != nil {
			t.Fatalf("GET /twoFa after SudoTTL = %v, want sudoUntil null", st)
		}
		body := map[string]any{"method": "authenticator"}
		wantErr(t, "re-enrol outside sudo", e.call(http.MethodPost, "/authentication/twoFa/enable", access, body), http.StatusForbidden, "sudo_required")
		wantErr(t, "re-enrol with a wrong code", e.call(http.MethodPut, "/authentication/twoFa/enable", access, map[string]any{"method": "authenticator", "code": e.wrongCode(u.secret)}), http.StatusUnauthorized, "invalid_code")
		if n := len(e.rawRows(`SELECT id FROM factors WHERE user_id = ?`, u.id)); n != 1 {
			t.Fatalf("factors after refused re-enrolments = %d, want 1 (nothing pending)", n)
		}
		newSecret, _ := e.startEnrol(access, map[string]any{"method": "authenticator", "code": e.code(u.secret)})

		// Pending: the old secret still signs in, the new one does not.
		e.nextStep()
		tok := e.challenge(u)
		wantErr(t, "verify with the pending secret", e.verify(tok, map[string]any{"code": e.code(newSecret)}), http.StatusUnauthorized, "invalid_code")
		mustStatus(t, "verify with the old secret while re-enrolling", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusOK)

		e.nextStep()
		r := e.call(http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": e.code(newSecret)})
		mustStatus(t, "confirm the new secret", r, http.StatusOK)
		if _, ok := r.JSON(t)["backupCodes"]; ok {
			t.Errorf("re-enrol confirmation = %s, want no backupCodes (2FA was already on)", r.Body)
		}
		if st := e.twoFaStatus(access); len(st["methods"].([]any)) != 1 || st["backupCodesRemaining"] != float64(10) {
			t.Errorf("GET /twoFa after re-enrolment = %v, want one method (replaced) and the same 10 codes", st)
		}

		e.nextStep()
		tok = e.challenge(u)
		wantErr(t, "verify with the replaced secret", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "invalid_code")
		mustStatus(t, "verify with the new secret", e.verify(tok, map[string]any{"code": e.code(newSecret)}), http.StatusOK)
	})
}

func TestTwoFaLogin(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("carol@example.com")

		r := e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": u.email, "password": u.pw})
		mustStatus(t, "password login", r, http.StatusOK)
		var ch struct {
			Message        string   `json:"message"`
			TwoFaRequired  bool     `json:"twoFaRequired"`
			ChallengeToken string   `json:"challengeToken"`
			Methods        []string `json:"methods"`
			ExpiresIn      int      `json:"expiresIn"`
		}
		if err := json.Unmarshal(r.Body, &ch); err != nil {
			t.Fatal(err)
		}
		if !ch.TwoFaRequired || ch.Message != "2FA required" || ch.ExpiresIn != 300 || len(ch.ChallengeToken) < 22 {
			t.Fatalf("password login = %s, want the 2FA-required answer", r.Body)
		}
		if diff := cmp.Diff([]string{"authenticator", "backup"}, ch.Methods); diff != "" {
			t.Errorf("login methods (-want +got):\n%s", diff)
		}
		tok := ch.ChallengeToken

		for _, body := range []any{nil, map[string]any{}, map[string]any{"method": "authenticator"}} {
			r := e.call(http.MethodPost, "/authentication/twoFa/authorize", tok, body)
			mustStatus(t, "authorize", r, http.StatusOK)
			if m := r.JSON(t); m["method"] != "authenticator" || m["message"] != "Check your authenticator app for the code" {
				t.Errorf("authorize = %s, want the authenticator message", r.Body)
			}
		}

		code := e.code(u.secret)
		r = e.verify(tok, map[string]any{"code": code})
		mustStatus(t, "verify", r, http.StatusOK)
		m := r.JSON(t)
		access := m["accessToken"].(string)
		if m["tokenType"] != "Bearer" || m["refreshToken"] == "" || m["expiresIn"] != float64(900) {
			t.Errorf("verify = %s, want Tokens", r.Body)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("verify Cache-Control = %q, want no-store", cc)
		}
		if !e.sessionWorks(access) {
			t.Fatal("access token from /twoFa/verify refused")
		}
		if got := amr(t, access); !slices.Contains(got, "otp") || !slices.Contains(got, "pwd") {
			t.Errorf("amr = %q, want pwd and otp", got)
		}

		// The challenge died with its success, and the code is spent.
		wantErr(t, "verify on a used challenge", e.verify(tok, map[string]any{"code": code}), http.StatusUnauthorized, "challenge_expired")
		tok2 := e.challenge(u)
		wantErr(t, "the same code on a new challenge", e.verify(tok2, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")
		e.nextStep()
		wantErr(t, "a new code on a used challenge", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "challenge_expired")
		mustStatus(t, "the new code on the new challenge", e.verify(tok2, map[string]any{"code": e.code(u.secret)}), http.StatusOK)

		// Spaces inside the code are ignored.
		e.nextStep()
		c := e.code(u.secret)
		mustStatus(t, "verify with a spaced code", e.verify(e.challenge(u), map[string]any{"code": " " + c[:3] + " " + c[3:] + " "}), http.StatusOK)
		// An explicit method works like the default.
		e.nextStep()
		mustStatus(t, "verify with method authenticator", e.verify(e.challenge(u), map[string]any{"code": e.code(u.secret), "method": "authenticator"}), http.StatusOK)
	})
}

// TestTwoFaSkewWindow: one step either side, and never a step at or before
// the last accepted one.
func TestTwoFaSkewWindow(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("dave@example.com")
		now := e.clock.Now()
		at := func(d time.Duration) string { return totp.Code(u.secret, now.Add(d), totp.Options{}) }

		wantErr(t, "code two steps ahead", e.verify(e.challenge(u), map[string]any{"code": at(60 * time.Second)}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "code two steps behind", e.verify(e.challenge(u), map[string]any{"code": at(-60 * time.Second)}), http.StatusUnauthorized, "invalid_code")
		mustStatus(t, "code one step ahead", e.verify(e.challenge(u), map[string]any{"code": at(30 * time.Second)}), http.StatusOK)
		wantErr(t, "current code after a newer one was used", e.verify(e.challenge(u), map[string]any{"code": at(0)}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "previous code after a newer one was used", e.verify(e.challenge(u), map[string]any{"code": at(-30 * time.Second)}), http.StatusUnauthorized, "invalid_code")

		e.clock.Advance(60 * time.Second)
		mustStatus(t, "code one step behind", e.verify(e.challenge(u), map[string]any{"code": at(30 * time.Second)}), http.StatusUnauthorized)
		mustStatus(t, "code one step behind, unused", e.verify(e.challenge(u), map[string]any{"code": at(60 * time.Second)}), http.StatusOK)
	})
}

func TestTwoFaChallengeExpiry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("erin@example.com")

		tok := e.challenge(u)
		e.clock.Advance(5*time.Minute - time.Second)
		mustStatus(t, "verify just before the challenge expires", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusOK)

		e.nextStep()
		tok = e.challenge(u)
		e.clock.Advance(5 * time.Minute)
		wantErr(t, "verify after 5 minutes", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "challenge_expired")
		wantErr(t, "authorize after 5 minutes", e.call(http.MethodPost, "/authentication/twoFa/authorize", tok, nil), http.StatusUnauthorized, "challenge_expired")
		wantErr(t, "recover after 5 minutes", e.recoverWith(tok, u.backup[0]), http.StatusUnauthorized, "challenge_expired")
	})
}

// TestTwoFaTokenKinds: a challenge token works only on the three login
// endpoints, and nothing else works there in its place.
func TestTwoFaTokenKinds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("frank@example.com")
		tok := e.challenge(u)

		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/authentication/user"},
			{http.MethodGet, "/authentication/twoFa"},
			{http.MethodGet, "/authentication/twoFa/generate"},
			{http.MethodPost, "/authentication/twoFa/backup-codes"},
			{http.MethodPost, "/authentication/twoFa/enable"},
			{http.MethodPost, "/authentication/twoFa/disable"},
			{http.MethodPost, "/authentication/logout"},
		} {
			var body any
			if c.method == http.MethodPost {
				body = map[string]any{"method": "authenticator"}
			}
			wantErr(t, c.method+" "+c.path+" with a challenge token", e.call(c.method, c.path, tok, body), http.StatusUnauthorized, "unauthorized")
		}
		wantErr(t, "renew with a challenge token", e.renew(tok), http.StatusUnauthorized, "unauthorized")

		// Neither a refresh token, nor a made-up token, nor an access token
		// is a challenge token. (An access token asks /twoFa/authorize for
		// a step-up instead: nothing to send for an authenticator.)
		wantErr(t, "authorize with a refresh token", e.call(http.MethodPost, "/authentication/twoFa/authorize", u.refresh, nil), http.StatusUnauthorized, "unauthorized")
		if r := e.call(http.MethodPost, "/authentication/twoFa/authorize", u.access, nil); r.Status != http.StatusOK || r.JSON(t)["method"] != "authenticator" {
			t.Errorf("authorize with an access token = %d %s, want the step-up's authenticator answer", r.Status, r.Body)
		}
		wantErr(t, "verify with a refresh token", e.verify(u.refresh, map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "unauthorized")
		wantErr(t, "verify with a made-up token", e.verify(strings.Repeat("A", 43), map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "unauthorized")
		wantErr(t, "verify without a token", e.verify("", map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "unauthorized")
		wantErr(t, "verify with the user id in the body", e.verify("", map[string]any{"code": e.code(u.secret), "userId": u.id}), http.StatusUnauthorized, "unauthorized")

		// The challenge token is stored hashed.
		for _, v := range rawBytes(e.rawRows(`SELECT * FROM challenges`)) {
			if bytes.Contains(v, []byte(tok)) {
				t.Errorf("challenges row holds the challenge token: %q", v)
			}
		}

		// None of that used up the challenge or the code.
		mustStatus(t, "verify with the challenge token", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusOK)
	})
}

// TestTwoFaStepUp: /twoFa/verify with an access token renews sudo and
// rotates the same session's tokens.
func TestTwoFaStepUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("grace@example.com")
		access, refresh := e.signIn(u)
		e.clock.Advance(e.cfg.SudoTTL + time.Second)
		if st := e.twoFaStatus(access); st["sudoUntil"] != nil {
			t.Fatalf("sudoUntil after SudoTTL = %v, want null", st["sudoUntil"])
		}
		wantErr(t, "step-up with a wrong code", e.verify(access, map[string]any{"code": e.wrongCode(u.secret)}), http.StatusUnauthorized, "invalid_code")

		r := e.verify(access, map[string]any{"code": e.code(u.secret)})
		mustStatus(t, "step-up", r, http.StatusOK)
		m := r.JSON(t)
		access2, refresh2 := m["accessToken"].(string), m["refreshToken"].(string)
		if a, b := jwtClaims(t, access)["sid"], jwtClaims(t, access2)["sid"]; a != b || a == nil {
			t.Errorf("step-up sid = %v, want the same session %v", b, a)
		}
		if !slices.Contains(amr(t, access2), "otp") {
			t.Errorf("step-up amr = %q, want otp", amr(t, access2))
		}
		st := e.twoFaStatus(access2)
		until, err := time.Parse(time.RFC3339, st["sudoUntil"].(string))
		if want := e.clock.Now().Add(e.cfg.SudoTTL); err != nil || until.Sub(want).Abs() > time.Second {
			t.Errorf("sudoUntil after step-up = %v, want %v", st["sudoUntil"], want)
		}
		wantErr(t, "renew with the refresh token from before the step-up", e.renew(refresh), http.StatusUnauthorized, "unauthorized")
		mustStatus(t, "renew with the step-up refresh token", e.renew(refresh2), http.StatusOK)
		wantErr(t, "step-up with the same code again", e.verify(access2, map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "invalid_code")
	})
}

// TestTwoFaVerifyOnceConcurrently fires one valid code at 20 challenges at
// once: exactly one gets tokens.
func TestTwoFaVerifyOnceConcurrently(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("heidi@example.com")
		const n = 20
		toks := make([]string, n)
		for i := range toks {
			toks[i] = e.challenge(u)
		}
		code := e.code(u.secret)
		statuses := make([]int, n)
		for i, r := range atOnce(n, func(i int) resp { return e.verify(toks[i], map[string]any{"code": code}) }) {
			statuses[i] = r.Status
		}
		ok := 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK:
				ok++
			case http.StatusUnauthorized, http.StatusTooManyRequests:
			default:
				t.Errorf("concurrent verify = %d, want 200, 401 or 429", s)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent verifies with one code got tokens (%v), want exactly 1", ok, n, statuses)
		}
	})
}

// TestTwoFaChallengeDiesAfterFiveWrongCodes: the sixth try is refused even
// with the right code.
func TestTwoFaChallengeDiesAfterFiveWrongCodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("ivan@example.com")
		tok := e.challenge(u)
		for i := 1; i <= 5; i++ {
			wantErr(t, "wrong code "+strconv.Itoa(i), e.verify(tok, map[string]any{"code": e.wrongCode(u.secret)}), http.StatusUnauthorized, "invalid_code")
		}
		wantErr(t, "right code on a challenge with 5 wrong codes", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusUnauthorized, "challenge_expired")
		wantErr(t, "authorize on a dead challenge", e.call(http.MethodPost, "/authentication/twoFa/authorize", tok, nil), http.StatusUnauthorized, "challenge_expired")
		mustStatus(t, "right code on a new challenge", e.verify(e.challenge(u), map[string]any{"code": e.code(u.secret)}), http.StatusOK)
	})
}

// TestTwoFaLockout: 10 wrong codes in a row across challenges lock the
// second factor for 15 minutes; a correct password does not reset it.
func TestTwoFaLockout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("judy@example.com")
		wrong := func(tok string, n int) {
			t.Helper()
			wantErr(t, "wrong code "+strconv.Itoa(n), e.verify(tok, map[string]any{"code": e.wrongCode(u.secret)}), http.StatusUnauthorized, "invalid_code")
		}
		tok := e.challenge(u)
		for i := 1; i <= 5; i++ {
			wrong(tok, i)
		}
		// A correct password in between (a new challenge) resets nothing.
		tok = e.challenge(u)
		for i := 6; i <= 9; i++ {
			wrong(tok, i)
		}
		r := e.verify(tok, map[string]any{"code": e.wrongCode(u.secret)})
		wantErr(t, "10th wrong code", r, http.StatusTooManyRequests, "rate_limited")
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 899 || ra > 900 {
			t.Errorf("Retry-After = %q, want 900 seconds", r.Header.Get("Retry-After"))
		}

		wantErr(t, "right code while locked", e.verify(e.challenge(u), map[string]any{"code": e.code(u.secret)}), http.StatusTooManyRequests, "rate_limited")
		e.clock.Advance(14 * time.Minute)
		r = e.verify(e.challenge(u), map[string]any{"code": e.code(u.secret)})
		wantErr(t, "right code after 14 minutes", r, http.StatusTooManyRequests, "rate_limited")
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 59 || ra > 60 {
			t.Errorf("Retry-After after 14 minutes = %q, want 60", r.Header.Get("Retry-After"))
		}
		e.clock.Advance(time.Minute)
		mustStatus(t, "right code after 15 minutes", e.verify(e.challenge(u), map[string]any{"code": e.code(u.secret)}), http.StatusOK)

		// Success cleared the count: 9 more wrong codes are not a lock.
		e.nextStep()
		for i := 1; i <= 9; i++ {
			if i == 1 || i == 6 {
				tok = e.challenge(u)
			}
			wrong(tok, i)
		}
		mustStatus(t, "right code after 9 wrong ones", e.verify(e.challenge(u), map[string]any{"code": e.code(u.secret)}), http.StatusOK)
	})
}

// TestTwoFaMalformedCodes: codes of the wrong JSON type are bad requests
// that count nothing; strings that are not 6 ASCII digits are wrong codes
// that count once each.
func TestTwoFaMalformedCodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("ken@example.com")

		tok := e.challenge(u)
		for _, body := range []string{
			`{"code":123456}`, `{"code":["123456"]}`, `{"code":{"v":"123456"}}`, `{"code":true}`,
			`{"code":` + e.code(u.secret) + `}`, `{"code":"123456","method":7}`, `not json`, `[]`,
			`{"code":"123456"} {}`, `{"code":1e6}`, `{"code":-1}`,
		} {
			r := e.call(http.MethodPost, "/authentication/twoFa/verify", tok, body)
			wantErr(t, "verify "+body, r, http.StatusBadRequest, "invalid_request")
		}
		// Eleven bad requests spent neither the challenge's 5 tries nor the
		// account's 10.
		mustStatus(t, "verify after bad requests", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusOK)

		e.nextStep()
		odd := []string{
			"１２３４５６", "١٢٣٤٥٦", "1234567", strings.Repeat("1", 10<<10), "12345",
			"۱۲۳۴۵۶", "12a456", "12-456", "१२३४५६",
		}
		for i, c := range odd {
			if i%5 == 0 {
				tok = e.challenge(u)
			}
			wantErr(t, "verify "+c[:min(len(c), 20)], e.verify(tok, map[string]any{"code": c}), http.StatusUnauthorized, "invalid_code")
		}
		// Nine odd codes were nine attempts: the next wrong one is the 10th.
		wantErr(t, "10th wrong code", e.verify(tok, map[string]any{"code": e.wrongCode(u.secret)}), http.StatusTooManyRequests, "rate_limited")
	})
}

// TestTwoFaMethodNames: a missing or unknown method, or one the user does
// not have, is a 4xx that changes nothing.
func TestTwoFaMethodNames(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, _ := e.signup("leo@example.com")
		for _, body := range []any{map[string]any{}, map[string]any{"method": ""}, map[string]any{"method": "email"}, map[string]any{"method": "AUTHENTICATOR"}, `{"method":1}`, nil} {
			r := e.call(http.MethodPost, "/authentication/twoFa/enable", access, body)
			wantErr(t, "enable with a bad method", r, http.StatusBadRequest, "invalid_request")
		}
		if n := len(e.rawRows(`SELECT id FROM factors`)); n != 0 {
			t.Errorf("factors after refused enables = %d, want 0", n)
		}

		u := e.twoFaUser("mia@example.com")
		before := e.twoFaStatus(u.access)
		tok := e.challenge(u)
		for _, c := range []struct {
			path   string
			method string
			status int
			code   string
		}{
			{"/authentication/twoFa/verify", "pigeon", 400, "invalid_request"},
			{"/authentication/twoFa/verify", "backup", 400, "invalid_request"},
			{"/authentication/twoFa/verify", "sms", 400, "invalid_request"},
			{"/authentication/twoFa/verify", "call", 400, "invalid_request"},
			{"/authentication/twoFa/authorize", "sms", 400, "invalid_request"},
			{"/authentication/twoFa/authorize", "call", 400, "invalid_request"},
			{"/authentication/twoFa/authorize", "pigeon", 400, "invalid_request"},
		} {
			r := e.call(http.MethodPost, c.path, tok, map[string]any{"method": c.method, "code": e.code(u.secret)})
			wantErr(t, c.path+" method "+c.method, r, c.status, c.code)
		}
		for _, c := range []struct {
			path   string
			body   map[string]any
			status int
			code   string
		}{
			{"/authentication/twoFa/enable/verify", map[string]any{"method": "pigeon", "code": "123456"}, 400, "invalid_request"},
			{"/authentication/twoFa/enable/verify", map[string]any{"method": "sms", "code": "123456"}, 400, "invalid_request"},
			{"/authentication/twoFa/disable", map[string]any{"method": "pigeon"}, 400, "invalid_request"},
			{"/authentication/twoFa/disable", map[string]any{"method": "sms"}, 404, "not_found"},
		} {
			r := e.call(http.MethodPost, c.path, u.access, c.body)
			wantErr(t, c.path+" "+c.body["method"].(string), r, c.status, c.code)
		}
		if diff := cmp.Diff(before, e.twoFaStatus(u.access)); diff != "" {
			t.Errorf("GET /twoFa changed (-before +after):\n%s", diff)
		}
		// The challenge and the code still work.
		mustStatus(t, "verify after bad methods", e.verify(tok, map[string]any{"code": e.code(u.secret)}), http.StatusOK)
	})
}

// TestTwoFaSeveralAuthenticators: two labelled authenticators both work,
// and the login lists each method once.
func TestTwoFaSeveralAuthenticators(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		pw := e.register("nina@example.com")
		access := e.login("nina@example.com", pw)["accessToken"].(string)
		phone, _ := e.startEnrol(access, map[string]any{"method": "authenticator", "label": "Phone"})
		if codes := e.confirmEnrol(access, phone); len(codes) != 10 {
			t.Fatalf("first confirmation backupCodes = %d, want 10", len(codes))
		}
		e.nextStep()
		tablet, _ := e.startEnrol(access, map[string]any{"method": "authenticator", "label": "Tablet"})
		if codes := e.confirmEnrol(access, tablet); codes != nil {
			t.Errorf("second confirmation backupCodes = %q, want none", codes)
		}
		st := e.twoFaStatus(access)
		var labels []string
		for _, m := range st["methods"].([]any) {
			labels = append(labels, m.(map[string]any)["label"].(string))
		}
		slices.Sort(labels)
		if diff := cmp.Diff([]string{"Phone", "Tablet"}, labels); diff != "" || st["backupCodesRemaining"] != float64(10) {
			t.Errorf("GET /twoFa = %v, want labels Phone and Tablet and 10 codes (%s)", st, diff)
		}

		u := &tfUser{email: "nina@example.com", pw: pw, secret: phone}
		e.nextStep()
		r := e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": u.email, "password": pw})
		if diff := cmp.Diff([]any{"authenticator", "backup"}, r.JSON(t)["methods"]); diff != "" {
			t.Errorf("login methods (-want +got):\n%s", diff)
		}
		mustStatus(t, "verify with the Phone authenticator", e.verify(e.challenge(u), map[string]any{"code": e.code(phone)}), http.StatusOK)
		mustStatus(t, "verify with the Tablet authenticator", e.verify(e.challenge(u), map[string]any{"code": e.code(tablet)}), http.StatusOK)
		wantErr(t, "Tablet code again", e.verify(e.challenge(u), map[string]any{"code": e.code(tablet)}), http.StatusUnauthorized, "invalid_code")
	})
}

// TestTwoFaDisable: sudo or a fresh code; everything goes, other sessions
// are revoked, the password alone signs in again.
func TestTwoFaDisable(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("olga@example.com")
		a, ra := e.signIn(u)
		b, rb := e.signIn(u)
		e.clock.Advance(e.cfg.SudoTTL + time.Second)

		wantErr(t, "disable outside sudo", e.call(http.MethodPut, "/authentication/twoFa/disable", a, nil), http.StatusForbidden, "sudo_required")
		wantErr(t, "disable with a wrong code", e.call(http.MethodPost, "/authentication/twoFa/disable", a, map[string]any{"code": e.wrongCode(u.secret)}), http.StatusUnauthorized, "invalid_code")
		// Session b spends the current step; a may not reuse it.
		code := e.code(u.secret)
		r := e.verify(b, map[string]any{"code": code})
		mustStatus(t, "step-up of b", r, http.StatusOK)
		// b's step-up rotated its tokens.
		b, rb = r.Str(t, "accessToken"), r.Str(t, "refreshToken")
		wantErr(t, "disable with a used step", e.call(http.MethodPost, "/authentication/twoFa/disable", a, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")
		if st := e.twoFaStatus(a); st["enabled"] != true {
			t.Fatalf("GET /twoFa after refused disables = %v, want enabled", st)
		}

		e.nextStep()
		r = e.call(http.MethodPut, "/authentication/twoFa/disable", a, map[string]any{"code": e.code(u.secret)})
		mustStatus(t, "disable with a current code", r, http.StatusOK)
		if msg := r.Str(t, "message"); msg != "2FA disabled" {
			t.Errorf("disable message = %q, want 2FA disabled", msg)
		}
		if e.sessionWorks(b) {
			t.Error("other session still works after disable")
		}
		wantErr(t, "renew of the other session", e.renew(rb), http.StatusUnauthorized, "unauthorized")
		if !e.sessionWorks(a) {
			t.Error("acting session refused after disable")
		}
		mustStatus(t, "renew of the acting session", e.renew(ra), http.StatusOK)

		st := e.twoFaStatus(a)
		if st["enabled"] != false || len(st["methods"].([]any)) != 0 || st["backupCodesRemaining"] != float64(0) {
			t.Errorf("GET /twoFa after disable = %v, want off, no methods, no codes", st)
		}
		if n := len(e.rawRows(`SELECT hash FROM backup_codes WHERE user_id = ?`, u.id)); n != 0 {
			t.Errorf("backup_codes rows after disable = %d, want 0", n)
		}
		if n := len(e.rawRows(`SELECT id FROM factors WHERE user_id = ?`, u.id)); n != 0 {
			t.Errorf("factors rows after disable = %d, want 0", n)
		}
		if m := e.login(u.email, u.pw); m["accessToken"] == nil {
			t.Errorf("login after disable = %v, want tokens", m)
		}
		// Turning off what is off is fine (openapi.json) and changes nothing.
		if r := e.call(http.MethodPost, "/authentication/twoFa/disable", a, nil); r.Status != http.StatusOK || !e.sessionWorks(a) {
			t.Errorf("disable when off = %d %s, want 200", r.Status, r.Body)
		}
		wantErr(t, "disable a method when off", e.call(http.MethodPost, "/authentication/twoFa/disable", a, map[string]any{"method": "authenticator"}), http.StatusNotFound, "not_found")
		if !hasAudit(t, e, u.id, auth.EventTwoFaDisabled) {
			t.Error("no twofa.disabled audit event")
		}
	})
}

// TestTwoFaDisableOneMethod removes one method and keeps the other.
func TestTwoFaDisableOneMethod(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("pat@example.com")
		// An SMS factor, as the SMS issue will store it.
		now := e.clock.Now()
		if err := e.db.CreateFactor(context.Background(), auth.Factor{
			ID: "01900000-0000-7000-8000-000000000001", UserID: u.id, Method: auth.MethodSMS,
			Phone: "+14155552671", ConfirmedAt: &now, CreatedAt: now,
		}); err != nil {
			t.Fatal(err)
		}
		methods := func() any {
			r := e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": u.email, "password": u.pw})
			mustStatus(t, "login", r, http.StatusOK)
			return r.JSON(t)["methods"]
		}
		if diff := cmp.Diff([]any{"authenticator", "sms", "call", "backup"}, methods()); diff != "" {
			t.Errorf("login methods (-want +got):\n%s", diff)
		}
		// Without method, verify uses the default (the authenticator).
		a, _ := e.signIn(u)

		r := e.call(http.MethodPost, "/authentication/twoFa/disable", a, map[string]any{"method": "authenticator"})
		mustStatus(t, "disable authenticator", r, http.StatusOK)
		if msg := r.Str(t, "message"); msg != "authenticator removed" {
			t.Errorf("disable message = %q, want authenticator removed", msg)
		}
		st := e.twoFaStatus(a)
		ms := st["methods"].([]any)
		if st["enabled"] != true || len(ms) != 1 || ms[0].(map[string]any)["method"] != "sms" || st["backupCodesRemaining"] != float64(10) {
			t.Errorf("GET /twoFa after removing the authenticator = %v, want sms only and 10 codes", st)
		}
		if diff := cmp.Diff([]any{"sms", "call", "backup"}, methods()); diff != "" {
			t.Errorf("login methods (-want +got):\n%s", diff)
		}

		r = e.call(http.MethodPost, "/authentication/twoFa/disable", a, map[string]any{"method": "sms"})
		mustStatus(t, "disable sms", r, http.StatusOK)
		if msg := r.Str(t, "message"); msg != "2FA disabled" {
			t.Errorf("disable message = %q, want 2FA disabled", msg)
		}
		if st := e.twoFaStatus(a); st["enabled"] != false || st["backupCodesRemaining"] != float64(0) {
			t.Errorf("GET /twoFa after removing the last method = %v, want off", st)
		}
		if m := e.login(u.email, u.pw); m["accessToken"] == nil {
			t.Errorf("login after removing the last method = %v, want tokens", m)
		}
	})
}

// TestTwoFaEnableRevokesOtherSessions: turning 2FA on (and re-enrolling)
// signs out every other session, the acting one stays.
func TestTwoFaEnableRevokesOtherSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		pw := e.register("quinn@example.com")
		first := e.login("quinn@example.com", pw)
		second := e.login("quinn@example.com", pw)
		a, ra := first["accessToken"].(string), first["refreshToken"].(string)
		b, rb := second["accessToken"].(string), second["refreshToken"].(string)

		secret, _ := e.startEnrol(a, map[string]any{"method": "authenticator"})
		if !e.sessionWorks(b) {
			t.Fatal("starting an enrolment revoked the other session; only confirming should")
		}
		e.confirmEnrol(a, secret)
		checkRevoked(t, e, "enable", a, ra, b, rb)

		// Re-enrolling revokes too.
		u := &tfUser{email: "quinn@example.com", pw: pw, secret: secret}
		b, rb = e.signIn(u)
		a2, ra2 := e.signIn(u)
		newSecret, _ := e.startEnrol(a2, map[string]any{"method": "authenticator"})
		e.nextStep()
		e.confirmEnrol(a2, newSecret)
		checkRevoked(t, e, "re-enrol", a2, ra2, b, rb)
	})
}

// checkRevoked: after action on session a, session b's access and refresh
// tokens are refused and a's still work. It returns a's new refresh token
// (checking renewed it).
func checkRevoked(t *testing.T, e *env, action, a, ra, b, rb string) string {
	t.Helper()
	if e.sessionWorks(b) {
		t.Errorf("%s: the other session's access token still works", action)
	}
	wantErr(t, action+": renew of the other session", e.renew(rb), http.StatusUnauthorized, "unauthorized")
	if !e.sessionWorks(a) {
		t.Errorf("%s: the acting session's access token is refused", action)
	}
	r := e.renew(ra)
	mustStatus(t, action+": renew of the acting session", r, http.StatusOK)
	return r.Str(t, "refreshToken")
}

// TestTwoFaAudit: every 2FA event is recorded with the user, address and
// user agent, and no detail holds a code or the secret.
func TestTwoFaAudit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("audrey@example.com")
		var used []string
		a, _ := e.signIn(u)
		used = append(used, e.code(u.secret))
		b, _ := e.signIn(u)
		used = append(used, e.code(u.secret))

		tok := e.challenge(u)
		for i := range 10 {
			if i == 5 {
				tok = e.challenge(u)
			}
			c := e.wrongCode(u.secret)
			used = append(used, c)
			e.verify(tok, map[string]any{"code": c})
		}
		e.clock.Advance(e.cfg.LockoutDuration)
		r := e.recoverWith(e.challenge(u), u.backup[0])
		mustStatus(t, "recover", r, http.StatusOK)
		if e.sessionWorks(a) || e.sessionWorks(b) {
			t.Fatal("recover left the other sessions signed in")
		}
		c := r.Str(t, "accessToken")
		set := backupSet(t, e.call(http.MethodGet, "/authentication/twoFa/generate", c, nil))
		mustStatus(t, "disable", e.call(http.MethodPost, "/authentication/twoFa/disable", c, nil), http.StatusOK)

		evs, err := e.db.AuditEvents(context.Background(), u.id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{totp.Encode(u.secret), strings.ToLower(totp.Encode(u.secret))}
		for _, code := range append(append(slices.Clone(u.backup), set...), used...) {
			secrets = append(secrets, code, strings.ReplaceAll(code, "-", ""))
		}
		found := map[string]bool{}
		for _, ev := range evs {
			detail, _ := json.Marshal(ev.Detail)
			for _, s := range secrets {
				if strings.Contains(string(detail), s) {
					t.Errorf("audit %s detail %s holds a code or the secret (%s)", ev.Type, detail, s)
				}
			}
			if ev.UserID == u.id && ev.IP == testIP && ev.UserAgent == testUA {
				found[ev.Type] = true
			}
		}
		for _, typ := range []string{
			auth.EventTwoFaEnabled, auth.EventVerifySucceeded, auth.EventVerifyFailed, auth.EventTwoFaLocked,
			auth.EventTwoFaDisabled, auth.EventBackupGenerated, auth.EventBackupUsed, auth.EventSessionRevoked,
		} {
			if !found[typ] {
				t.Errorf("no %s audit event with user %s, ip %s and user agent %s", typ, u.id, testIP, testUA)
			}
		}
	})
}

// hasAudit reports whether the user has an audit event of type typ.
func hasAudit(t *testing.T, e *env, userID, typ string) bool {
	t.Helper()
	evs, err := e.db.AuditEvents(context.Background(), userID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

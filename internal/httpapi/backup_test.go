package httpapi_test

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// backupSet decodes a generate answer and checks its shape: the same 10
// distinct, well-formed codes under codes and backupCodes.
func backupSet(t *testing.T, r resp) []string {
	t.Helper()
	var out struct {
		Codes       []string `json:"codes"`
		BackupCodes []string `json:"backupCodes"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Codes) != 10 || !slices.Equal(out.Codes, out.BackupCodes) {
		t.Fatalf("backup codes answer = %s, want the same 10 codes under codes and backupCodes", r.Body)
	}
	wantBackupCodes(t, "backup codes", r, out.Codes)
	return out.Codes
}

// enabledJSON is the answer to POST /twoFa/enable/verify.
type enabledJSON struct {
	Message     string   `json:"message"`
	Method      string   `json:"method"`
	BackupCodes []string `json:"backupCodes"`
}

// decodeEnabled decodes r, an answer to POST /twoFa/enable/verify.
func decodeEnabled(t *testing.T, r resp) enabledJSON {
	t.Helper()
	var conf enabledJSON
	if err := json.Unmarshal(r.Body, &conf); err != nil {
		t.Fatal(err)
	}
	return conf
}

// wantBackupCodes checks that codes, taken from the answer r to what, are
// distinct and well formed, and that r is not to be stored.
func wantBackupCodes(t *testing.T, what string, r resp, codes []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range codes {
		if !backupCodeFormat.MatchString(c) || seen[c] {
			t.Errorf("backup code %q: want distinct XXXX-XXXX-XXXX-XXXX codes", c)
		}
		seen[c] = true
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s Cache-Control = %q, want no-store", what, cc)
	}
}

// TestRecover logs in with a backup code, once per code.
func TestRecover(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("rita@example.com")

		r := e.recoverWith(e.challenge(u), u.backup[0])
		mustStatus(t, "recover", r, http.StatusOK)
		m := r.JSON(t)
		if m["message"] != "You have 9 back up codes left" || m["remaining"] != float64(9) || m["tokenType"] != "Bearer" {
			t.Fatalf("recover = %s, want tokens, 9 left", r.Body)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("recover Cache-Control = %q, want no-store", cc)
		}
		access := m["accessToken"].(string)
		if !e.sessionWorks(access) {
			t.Fatal("access token from /twoFa/recover refused")
		}
		if got := amr(t, access); !slices.Contains(got, "pwd") || len(got) < 2 {
			t.Errorf("recover amr = %q, want pwd and a second factor", got)
		}
		if n := e.remaining(access); n != 9 {
			t.Errorf("backupCodesRemaining = %d, want 9", n)
		}

		wantErr(t, "the same backup code again", e.recoverWith(e.challenge(u), u.backup[0]), http.StatusUnauthorized, "invalid_code")
		tok := e.challenge(u)
		r = e.recoverWith(tok, u.backup[1])
		mustStatus(t, "recover", r, http.StatusOK)
		// That recover revoked the first session.
		access = r.Str(t, "accessToken")
		wantErr(t, "recover on a used challenge", e.recoverWith(tok, u.backup[2]), http.StatusUnauthorized, "challenge_expired")
		wantErr(t, "a backup code on /twoFa/verify", e.verify(e.challenge(u), map[string]any{"code": u.backup[2]}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "a TOTP code on /twoFa/recover", e.recoverWith(e.challenge(u), e.code(u.secret)), http.StatusUnauthorized, "invalid_code")
		for _, body := range []string{`{"code":1234}`, `{"code":["` + u.backup[2] + `"]}`, `{"code":null,"x":{}}x`, `{}`} {
			r := e.call(http.MethodPost, "/authentication/twoFa/recover", e.challenge(u), body)
			if r.Status != http.StatusBadRequest && !(body == `{}` && r.Status == http.StatusUnauthorized) {
				t.Errorf("recover %s = %d %s, want 400", body, r.Status, r.Body)
			}
		}
		if n := e.remaining(access); n != 8 {
			t.Errorf("backupCodesRemaining = %d, want 8", n)
		}
	})
}

// TestRecoverInputForms: case, spaces and hyphens do not matter, and
// Crockford's look-alikes are read as digits.
func TestRecoverInputForms(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("sam@example.com")
		codes := u.backup
		// A set with a 0 or a 1 in it, for the look-alikes (almost every set).
		for try := 0; !hasLookAlikes(codes); try++ {
			if try == 20 {
				t.Fatal("20 sets without a 0 or a 1")
			}
			codes = backupSet(t, e.call(http.MethodGet, "/authentication/twoFa/generate", u.access, nil))
		}
		i := slices.IndexFunc(codes, func(c string) bool { return strings.ContainsAny(c, "01") })
		lookAlike := strings.NewReplacer("0", "o", "1", "l").Replace(codes[i])
		if j := strings.Index(codes[i], "1"); j >= 0 {
			lookAlike = lookAlike[:j] + "I" + lookAlike[j+1:]
		}
		rest := slices.Delete(slices.Clone(codes), i, i+1)
		forms := []string{
			lookAlike,
			strings.ToLower(rest[0]),
			strings.ReplaceAll(rest[1], "-", ""),
			" " + strings.ReplaceAll(rest[2], "-", " ") + " ",
			strings.Join(strings.Split(strings.ReplaceAll(strings.ToLower(rest[3]), "-", ""), ""), "-"),
		}
		for n, f := range forms {
			r := e.recoverWith(e.challenge(u), f)
			mustStatus(t, "recover with "+strconv.Quote(f), r, http.StatusOK)
			if got, want := r.JSON(t)["remaining"], float64(9-n); got != want {
				t.Errorf("remaining after %q = %v, want %v", f, got, want)
			}
		}
	})
}

func hasLookAlikes(codes []string) bool {
	return slices.ContainsFunc(codes, func(c string) bool { return strings.ContainsAny(c, "01") })
}

// TestBackupCodesGenerate: both endpoints answer a new set, the previous set
// stops working at once, and both need sudo.
func TestBackupCodesGenerate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("tom@example.com")
		access, _ := e.signIn(u)

		set1 := backupSet(t, e.call(http.MethodGet, "/authentication/twoFa/generate", access, nil))
		if slices.ContainsFunc(set1, func(c string) bool { return slices.Contains(u.backup, c) }) {
			t.Fatal("generate answered a code of the enrolment set")
		}
		wantErr(t, "a code of the set before generate", e.recoverWith(e.challenge(u), u.backup[3]), http.StatusUnauthorized, "invalid_code")
		if n := e.remaining(access); n != 10 {
			t.Errorf("backupCodesRemaining after generate = %d, want 10", n)
		}

		set2 := backupSet(t, e.call(http.MethodPost, "/authentication/twoFa/backup-codes", access, nil))
		wantErr(t, "a code of the GET set after POST", e.recoverWith(e.challenge(u), set1[0]), http.StatusUnauthorized, "invalid_code")
		r := e.recoverWith(e.challenge(u), set2[0])
		mustStatus(t, "a code of the POST set", r, http.StatusOK)
		access = r.Str(t, "accessToken")

		// Outside sudo: refused; a current code in the body proves it.
		e.clock.Advance(e.cfg.SudoTTL + time.Second)
		wantErr(t, "generate outside sudo", e.call(http.MethodGet, "/authentication/twoFa/generate", access, nil), http.StatusForbidden, "sudo_required")
		wantErr(t, "backup-codes outside sudo", e.call(http.MethodPost, "/authentication/twoFa/backup-codes", access, nil), http.StatusForbidden, "sudo_required")
		wantErr(t, "backup-codes with a wrong code", e.call(http.MethodPost, "/authentication/twoFa/backup-codes", access, map[string]any{"code": e.wrongCode(u.secret)}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "backup-codes with a code as a number", e.call(http.MethodPost, "/authentication/twoFa/backup-codes", access, `{"code":123456}`), http.StatusBadRequest, "invalid_request")
		if n := e.remaining(access); n != 9 {
			t.Errorf("backupCodesRemaining after refused regenerations = %d, want 9", n)
		}
		set3 := backupSet(t, e.call(http.MethodPost, "/authentication/twoFa/backup-codes", access, map[string]any{"code": e.code(u.secret)}))
		wantErr(t, "a code of the previous set", e.recoverWith(e.challenge(u), set2[1]), http.StatusUnauthorized, "invalid_code")

		// A backup code proves sudo too.
		e.clock.Advance(e.cfg.SudoTTL + time.Second)
		access, _ = e.signIn(u)
		e.clock.Advance(e.cfg.SudoTTL + time.Second)
		backupSet(t, e.call(http.MethodPost, "/authentication/twoFa/backup-codes", access, map[string]any{"code": set3[0]}))

		// Without 2FA there is nothing to generate.
		other, _ := e.signup("tina@example.com")
		wantErr(t, "generate without 2FA", e.call(http.MethodGet, "/authentication/twoFa/generate", other, nil), http.StatusConflict, "conflict")
	})
}

// TestBackupCodesStoredKeyed: the table holds keyed hashes, not the codes
// nor their plain hashes.
func TestBackupCodesStoredKeyed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("uma@example.com")
		rows := e.rawRows(`SELECT * FROM backup_codes WHERE user_id = ?`, u.id)
		if len(rows) != 10 {
			t.Fatalf("backup_codes rows = %d, want 10", len(rows))
		}
		values := rawBytes(rows)
		for _, c := range u.backup {
			norm := strings.ReplaceAll(c, "-", "")
			plain := sha256.Sum256([]byte(norm))
			for _, v := range values {
				if strings.Contains(strings.ToUpper(string(v)), norm) || strings.Contains(string(v), c) || strings.Contains(string(v), string(plain[:])) {
					t.Errorf("backup_codes row holds code %s or its unkeyed hash: %q", c, v)
				}
			}
		}
		st := e.twoFaStatus(u.access)
		if b, _ := json.Marshal(st); slices.ContainsFunc(u.backup, func(c string) bool { return strings.Contains(string(b), c) }) {
			t.Errorf("GET /twoFa = %s, shows a backup code", b)
		}
	})
}

// TestRecoverOnceConcurrently fires one backup code at 20 challenges at
// once: exactly one logs in, and one code is gone.
func TestRecoverOnceConcurrently(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("vera@example.com")
		if n := e.remaining(u.access); n != 10 {
			t.Fatalf("backupCodesRemaining before = %d, want 10", n)
		}
		const n = 20
		toks := make([]string, n)
		for i := range toks {
			toks[i] = e.challenge(u)
		}
		answers := atOnce(n, func(i int) resp { return e.recoverWith(toks[i], u.backup[0]) })
		var winner resp
		ok := 0
		for _, r := range answers {
			switch r.Status {
			case http.StatusOK:
				ok++
				winner = r
			case http.StatusUnauthorized, http.StatusTooManyRequests:
			default:
				t.Errorf("concurrent recover = %d %s, want 200, 401 or 429", r.Status, r.Body)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent recovers with one code succeeded, want exactly 1", ok, n)
		}
		if got := winner.JSON(t)["remaining"]; got != float64(9) {
			t.Errorf("remaining = %v, want 9", got)
		}
		if got := e.remaining(winner.Str(t, "accessToken")); got != 9 {
			t.Errorf("backupCodesRemaining after = %d, want 9", got)
		}
	})
}

// TestBackupCodesWarning: GET /twoFa warns at 3 or fewer codes left.
func TestBackupCodesWarning(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("wes@example.com")
		var access string
		for i := range 7 {
			r := e.recoverWith(e.challenge(u), u.backup[i])
			mustStatus(t, "recover", r, http.StatusOK)
			access = r.Str(t, "accessToken")
			st := e.twoFaStatus(access)
			left := 10 - (i + 1)
			warning, _ := st["warning"].(string)
			if st["backupCodesRemaining"] != float64(left) || (left <= 3) != (warning != "") {
				t.Errorf("GET /twoFa with %d codes left = %v, want a warning only at 3 or fewer", left, st)
			}
			if left == 3 && !strings.Contains(warning, "3") {
				t.Errorf("warning = %q, want it to say 3 codes are left", warning)
			}
			if want := "You have " + strconv.Itoa(left) + " back up codes left"; r.Str(t, "message") != want {
				t.Errorf("recover message = %q, want %q", r.Str(t, "message"), want)
			}
		}
	})
}

// TestBackupCodesBadInput: wrong, malformed, used and other users' codes
// count toward the same per-challenge and per-account limits as wrong TOTP
// codes.
func TestBackupCodesBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("xena@example.com")
		other := e.twoFaUser("yuri@example.com")
		mustStatus(t, "recover", e.recoverWith(e.challenge(u), u.backup[0]), http.StatusOK)

		bad := []string{
			"ABCD-EFGH",           // too short
			"UUUU-UUUU-UUUU-UUUU", // U is not in the alphabet
			u.backup[0],           // used
			other.backup[0],       // another user's
			"0000-0000-0000-0000", // well formed, wrong
			"ÀBCD-EFGH-JKMN-PQRS", // not ASCII
			strings.Repeat("A", 10<<10),
			u.backup[1] + "0", // too long
		}
		// Per challenge: 5 wrong codes kill it, even for a good sixth.
		tok := e.challenge(u)
		for _, c := range bad[:5] {
			wantErr(t, "recover with "+c[:min(len(c), 20)], e.recoverWith(tok, c), http.StatusUnauthorized, "invalid_code")
		}
		wantErr(t, "good code on a challenge with 5 wrong ones", e.recoverWith(tok, u.backup[1]), http.StatusUnauthorized, "challenge_expired")

		// Per account: backup and TOTP failures add up to 10.
		tok = e.challenge(u)
		for _, c := range bad[5:] {
			wantErr(t, "recover with "+c[:min(len(c), 20)], e.recoverWith(tok, c), http.StatusUnauthorized, "invalid_code")
		}
		wantErr(t, "9th wrong code (TOTP)", e.verify(tok, map[string]any{"code": e.wrongCode(u.secret)}), http.StatusUnauthorized, "invalid_code")
		r := e.recoverWith(tok, "1111-2222-3333-4444")
		wantErr(t, "10th wrong code", r, http.StatusTooManyRequests, "rate_limited")
		if r.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		wantErr(t, "good backup code while locked", e.recoverWith(e.challenge(u), u.backup[1]), http.StatusTooManyRequests, "rate_limited")

		// Nothing was used up: still 9 codes, and the lock is per account.
		mustStatus(t, "the other user's code for the other user", e.recoverWith(e.challenge(other), other.backup[0]), http.StatusOK)
		e.clock.Advance(e.cfg.LockoutDuration)
		r = e.recoverWith(e.challenge(u), u.backup[1])
		mustStatus(t, "good backup code after the lock", r, http.StatusOK)
		if got := r.JSON(t)["remaining"]; got != float64(8) {
			t.Errorf("remaining = %v, want 8", got)
		}
	})
}

// TestRecoverStepUp: /twoFa/recover with an access token renews sudo for
// the same session.
func TestRecoverStepUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("zoe@example.com")
		access, refresh := e.signIn(u)
		e.clock.Advance(e.cfg.SudoTTL + time.Second)
		wantErr(t, "generate outside sudo", e.call(http.MethodGet, "/authentication/twoFa/generate", access, nil), http.StatusForbidden, "sudo_required")
		r := e.recoverWith(access, u.backup[0])
		mustStatus(t, "recover with an access token", r, http.StatusOK)
		m := r.JSON(t)
		access2 := m["accessToken"].(string)
		if m["remaining"] != float64(9) || jwtClaims(t, access2)["sid"] != jwtClaims(t, access)["sid"] {
			t.Errorf("recover step-up = %s, want 9 left and the same session", r.Body)
		}
		wantErr(t, "renew with the refresh token from before", e.renew(refresh), http.StatusUnauthorized, "unauthorized")
		mustStatus(t, "renew with the new refresh token", e.renew(m["refreshToken"].(string)), http.StatusOK)
		backupSet(t, e.call(http.MethodGet, "/authentication/twoFa/generate", access2, nil))
	})
}

// TestFactorChangesRevokeOtherSessions: regenerating backup codes and
// recovering with one revoke the user's other sessions; the acting session
// keeps working.
func TestFactorChangesRevokeOtherSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("abe@example.com")

		a, ra := e.signIn(u)
		b, rb := e.signIn(u)
		backupSet(t, e.call(http.MethodPost, "/authentication/twoFa/backup-codes", a, nil))
		ra = checkRevoked(t, e, "backup-codes", a, ra, b, rb)

		b, rb = e.signIn(u)
		set := backupSet(t, e.call(http.MethodGet, "/authentication/twoFa/generate", a, nil))
		ra = checkRevoked(t, e, "generate", a, ra, b, rb)

		// Recover with a challenge: the new session stays, a goes.
		r := e.recoverWith(e.challenge(u), set[0])
		mustStatus(t, "recover", r, http.StatusOK)
		c, rc := r.Str(t, "accessToken"), r.Str(t, "refreshToken")
		checkRevoked(t, e, "recover", c, rc, a, ra)

		// Recover with an access token: the acting session stays.
		d, rd := e.signIn(u)
		r = e.recoverWith(c, set[1])
		mustStatus(t, "recover step-up", r, http.StatusOK)
		checkRevoked(t, e, "recover step-up", r.Str(t, "accessToken"), r.Str(t, "refreshToken"), d, rd)

		if diff := cmp.Diff(8, e.remaining(r.Str(t, "accessToken"))); diff != "" {
			t.Errorf("backupCodesRemaining (-want +got):\n%s", diff)
		}
	})
}

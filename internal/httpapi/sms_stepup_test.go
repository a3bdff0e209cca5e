package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/auth"
)

const (
	pathBackupCodes = "/authentication/twoFa/backup-codes"
	pathDisable     = "/authentication/twoFa/disable"
)

// renewUser exchanges u's refresh token: fresh tokens for the same session.
func (p *phoneEnv) renewUser(u *phoneUser) {
	p.t.Helper()
	r := p.renew(u.refresh)
	u.access = mustTokens(p.t, "renew "+u.email, r)
	u.refresh = r.Str(p.t, "refreshToken")
}

// leaveSudo moves the clock past the sudo time and renews the users'
// tokens, so their sessions are signed in but out of sudo mode.
func (p *phoneEnv) leaveSudo(users ...*phoneUser) {
	p.t.Helper()
	p.clock.Advance(p.cfg.SudoTTL + time.Second)
	for _, u := range users {
		p.renewUser(u)
		if st := p.twoFaStatus(u.access); st["sudoUntil"] != nil {
			p.t.Fatalf("GET /twoFa of %s after the sudo time = %v, want no sudoUntil", u.email, st)
		}
	}
}

// smsOnlyUser registers email with SMS codes to phone as the only second
// factor; its session is out of sudo mode.
func (p *phoneEnv) smsOnlyUser(email, phone string) *phoneUser {
	p.t.Helper()
	u := p.newUser(email, nil)
	p.enrolSMS(u, phone)
	p.leaveSudo(u)
	return u
}

// sendSudo asks for a step-up code for u's session by method and returns
// it.
func (p *phoneEnv) sendSudo(u *phoneUser, method, phone string) string {
	p.t.Helper()
	return p.sendCode(u.access, method, phone, auth.PurposeSudo)
}

// sudoAudit lists, for u's audit events of typ whose purpose is sudo, the
// detail field key.
func (p *phoneEnv) sudoAudit(u *phoneUser, typ, key string) []string {
	p.t.Helper()
	evs, err := p.db.AuditEvents(context.Background(), u.id, 1000)
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Type == typ && ev.Detail["purpose"] == auth.PurposeSudo {
			out = append(out, fmt.Sprint(ev.Detail[key]))
		}
	}
	slices.Sort(out)
	return out
}

// TestSMSStepUp: a user whose only second factor is SMS asks, signed in,
// for a code by text or call and steps up to sudo mode with it.
func TestSMSStepUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.smsOnlyUser("ada@example.com", adaPhone)
		sid := jwtClaims(t, u.access)["sid"]
		wantErr(t, "new backup codes out of sudo", p.post(pathBackupCodes, u.access, nil), http.StatusForbidden, "sudo_required")

		code := p.sendSudo(u, "sms", adaPhone)
		up := p.verify(u.access, map[string]any{"code": code, "method": "sms"})
		access := mustTokens(t, "step-up with the texted code", up)
		if got := jwtClaims(t, access)["sid"]; got != sid {
			t.Errorf("step-up sid = %v, want the same session %v", got, sid)
		}
		if a := amr(t, access); !slices.Contains(a, "sms") || !slices.Contains(a, "pwd") {
			t.Errorf("step-up amr = %v, want pwd and sms", a)
		}
		st := p.twoFaStatus(access)
		until, err := time.Parse(time.RFC3339, fmt.Sprint(st["sudoUntil"]))
		if want := p.clock.Now().Add(p.cfg.SudoTTL); err != nil || until.Sub(want).Abs() > time.Second {
			t.Errorf("sudoUntil after the step-up = %v, want %v", st["sudoUntil"], want)
		}
		wantErr(t, "step-up with the same code again", p.verify(access, map[string]any{"code": code, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		r := p.post(pathBackupCodes, access, nil)
		mustStatus(t, "new backup codes in sudo, without a code", r, http.StatusOK)
		if codes, _ := r.JSON(t)["backupCodes"].([]any); len(codes) != 10 {
			t.Errorf("backup-codes = %s, want 10 codes", r.Body)
		}

		// A code by voice call, verified without a method: SMS is the
		// user's only method.
		u.access, u.refresh = access, up.Str(t, "refreshToken")
		p.leaveSudo(u)
		code = p.sendSudo(u, "call", adaPhone)
		mustTokens(t, "step-up with the called code, no method", p.verify(u.access, map[string]any{"code": code}))

		if diff := cmp.Diff([]string{"call", "sms"}, p.sudoAudit(u, auth.EventChallengeSent, "channel")); diff != "" {
			t.Errorf("twofa.challenge.sent events for sudo (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{adaPhoneMasked, adaPhoneMasked}, p.sudoAudit(u, auth.EventChallengeSent, "to")); diff != "" {
			t.Errorf("twofa.challenge.sent events for sudo (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"sms", "sms"}, p.sudoAudit(u, auth.EventVerifySucceeded, "method")); diff != "" {
			t.Errorf("twofa.verify.succeeded events for sudo (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{fmt.Sprint(sid), fmt.Sprint(sid)}, p.sudoAudit(u, auth.EventVerifySucceeded, "session_id")); diff != "" {
			t.Errorf("twofa.verify.succeeded events for sudo (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"sms"}, p.sudoAudit(u, auth.EventVerifyFailed, "method")); diff != "" {
			t.Errorf("twofa.verify.failed events for sudo (-want +got):\n%s", diff)
		}
	})
}

// TestSMSSudoCodeField: out of sudo mode, a live step-up code is accepted
// as the code of a sudo action (requireSudo), once.
func TestSMSSudoCodeField(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.smsOnlyUser("ada@example.com", adaPhone)

		code := p.sendSudo(u, "call", adaPhone)
		wantErr(t, "new backup codes with a wrong code", p.post(pathBackupCodes, u.access, map[string]any{"code": otherCode(code, 1)}), http.StatusUnauthorized, "invalid_code")
		r := p.post(pathBackupCodes, u.access, map[string]any{"code": code})
		mustStatus(t, "new backup codes with the called code", r, http.StatusOK)
		if codes, _ := r.JSON(t)["backupCodes"].([]any); len(codes) != 10 {
			t.Errorf("backup-codes = %s, want 10 codes", r.Body)
		}
		if st := p.twoFaStatus(u.access); st["sudoUntil"] == nil {
			t.Errorf("GET /twoFa after a sudo action with a code = %v, want sudo renewed", st)
		}
		wantErr(t, "step-up with the code the sudo action used", p.verify(u.access, map[string]any{"code": code, "method": "call"}), http.StatusUnauthorized, "invalid_code")

		// Out of sudo again, a fresh code turns 2FA off.
		p.leaveSudo(u)
		code = p.sendSudo(u, "sms", adaPhone)
		mustStatus(t, "disable with a fresh step-up code", p.post(pathDisable, u.access, map[string]any{"code": code}), http.StatusOK)
		if st := p.twoFaStatus(u.access); st["enabled"] != false {
			t.Errorf("GET /twoFa after disable = %v, want 2FA off", st)
		}
		if diff := cmp.Diff([]string{"sms", "sms"}, p.sudoAudit(u, auth.EventVerifySucceeded, "method")); diff != "" {
			t.Errorf("twofa.verify.succeeded events for sudo (-want +got):\n%s", diff)
		}
		// The failures name the method asked for: the code field's guess,
		// sms, and call on /twoFa/verify.
		if diff := cmp.Diff([]string{"call", "sms"}, p.sudoAudit(u, auth.EventVerifyFailed, "method")); diff != "" {
			t.Errorf("twofa.verify.failed events for sudo (-want +got):\n%s", diff)
		}
	})
}

// TestSMSSudoCodeBinding: a step-up code belongs to the session that asked
// for it and to sudo: it finishes no login and serves no other session,
// and a login code does not step up.
func TestSMSSudoCodeBinding(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		a := p.newUser("ada@example.com", nil)
		p.enrolSMS(a, adaPhone)

		// Session b signs in with a login code, which session a cannot
		// step up with.
		p.clock.Advance(31 * time.Second)
		c1 := p.challengeFor(a)
		loginCode := p.sendLogin(c1, "sms", adaPhone)
		wantErr(t, "step-up with a login code", p.verify(a.access, map[string]any{"code": loginCode, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		r := p.verify(c1, map[string]any{"code": loginCode, "method": "sms"})
		b := &phoneUser{email: a.email, pw: a.pw, id: a.id, access: mustTokens(t, "login with its code", r), refresh: r.Str(t, "refreshToken")}
		p.leaveSudo(a, b)

		// A live login code is no sudo code, on /twoFa/verify or as a sudo
		// action's code.
		c2 := p.challengeFor(a)
		loginCode = p.sendLogin(c2, "sms", adaPhone)
		wantErr(t, "new backup codes with a login code", p.post(pathBackupCodes, a.access, map[string]any{"code": loginCode}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "step-up with a live login code", p.verify(a.access, map[string]any{"code": loginCode, "method": "sms"}), http.StatusUnauthorized, "invalid_code")

		// Session a's step-up code serves neither session b nor a login.
		p.clock.Advance(31 * time.Second)
		sudoCode := p.sendSudo(a, "sms", adaPhone)
		wantErr(t, "session b steps up with a's code", p.verify(b.access, map[string]any{"code": sudoCode, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "session b's sudo action with a's code", p.post(pathBackupCodes, b.access, map[string]any{"code": sudoCode}), http.StatusUnauthorized, "invalid_code")
		if sudoCode != loginCode {
			wantErr(t, "login with a step-up code", p.verify(c2, map[string]any{"code": sudoCode, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		}

		// Each code still does what it was sent for.
		mustTokens(t, "login with its code", p.verify(c2, map[string]any{"code": loginCode, "method": "sms"}))
		mustTokens(t, "session a steps up with its code", p.verify(a.access, map[string]any{"code": sudoCode, "method": "sms"}))
		wantErr(t, "session b's sudo action, still out of sudo", p.post(pathBackupCodes, b.access, nil), http.StatusForbidden, "sudo_required")
	})
}

// TestSMSSudoCodesCountTowardLockout: wrong step-up codes, on
// /twoFa/verify or as a sudo action's code, count toward the account's
// lockout; the 10th in a row locks the second factor.
func TestSMSSudoCodesCountTowardLockout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.smsOnlyUser("ada@example.com", adaPhone)
		code := p.sendSudo(u, "sms", adaPhone)
		for i := 1; i <= 5; i++ {
			wantErr(t, fmt.Sprintf("wrong step-up code %d", i), p.verify(u.access, map[string]any{"code": otherCode(code, i), "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		}
		// Five wrong tries killed the code: the right one is the 6th guess.
		wantErr(t, "the right code after 5 wrong ones", p.verify(u.access, map[string]any{"code": code, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		for i := 7; i <= 9; i++ {
			wantErr(t, fmt.Sprintf("wrong sudo code %d", i), p.post(pathBackupCodes, u.access, map[string]any{"code": otherCode(code, i)}), http.StatusUnauthorized, "invalid_code")
		}
		r := p.verify(u.access, map[string]any{"code": otherCode(code, 10), "method": "sms"})
		wantErr(t, "the 10th wrong code", r, http.StatusTooManyRequests, "rate_limited")
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 899 || ra > 900 {
			t.Errorf("Retry-After = %q, want 900 seconds", r.Header.Get("Retry-After"))
		}
		if !hasAudit(t, p.env, u.id, auth.EventTwoFaLocked) {
			t.Error("no twofa.locked audit event")
		}

		// Once the dead code has expired a send starts afresh, but the lock
		// holds for a right code too, until it ends.
		p.clock.Advance(5 * time.Minute)
		code = p.sendSudo(u, "sms", adaPhone)
		wantErr(t, "the right code while locked", p.verify(u.access, map[string]any{"code": code, "method": "sms"}), http.StatusTooManyRequests, "rate_limited")
		p.clock.Advance(10 * time.Minute)
		p.renewUser(u)
		code = p.sendSudo(u, "sms", adaPhone)
		mustTokens(t, "a step-up after the lock", p.verify(u.access, map[string]any{"code": code, "method": "sms"}))
	})
}

// TestSMSStepUpBadInput: asking for a step-up code by a method the account
// lacks, by an unknown method, without a live access token or from an
// enrolment-only session is a 4xx and sends nothing.
func TestSMSStepUpBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		ada := p.smsOnlyUser("ada@example.com", adaPhone)
		bo := p.newUser("bo@example.com", nil)
		cy := p.twoFaUser("cy@example.com") // an authenticator only

		// An enrolment-only session with an SMS enrolment under way.
		if _, err := p.svc.Register(context.Background(), auth.RegisterInput{Email: "root@example.com", Password: "correct horse battery", Roles: []string{auth.RoleAdmin}}, auth.RequestMeta{}); err != nil {
			t.Fatal(err)
		}
		r := p.post("/authentication/local", "", map[string]any{"email": "root@example.com", "password": "correct horse battery"})
		mustStatus(t, "admin login", r, http.StatusOK)
		if r.JSON(t)["twoFaEnrollmentRequired"] != true {
			t.Fatalf("admin login = %s, want enrolment-only tokens", r.Body)
		}
		root := r.Str(t, "accessToken")
		mustStatus(t, "admin starts an SMS enrolment", p.post(pathEnable, root, map[string]any{"method": "sms", "phone": "+14155552672"}), http.StatusOK)

		m := p.mark()
		codes := p.countRows("sms_codes")
		for _, c := range []struct {
			who, token, method string
			status             int
			code               string
		}{
			{"sms-only", ada.access, "pigeon", http.StatusBadRequest, "invalid_request"},
			{"sms-only", ada.access, "backup", http.StatusBadRequest, "invalid_request"},
			{"sms-only", ada.access, "authenticator", http.StatusBadRequest, "invalid_request"},
			{"no 2FA", bo.access, "sms", http.StatusBadRequest, "invalid_request"},
			{"no 2FA", bo.access, "call", http.StatusBadRequest, "invalid_request"},
			{"no 2FA", bo.access, "", http.StatusBadRequest, "invalid_request"},
			{"authenticator-only", cy.access, "sms", http.StatusBadRequest, "invalid_request"},
			{"authenticator-only", cy.access, "call", http.StatusBadRequest, "invalid_request"},
			{"enrolment-only", root, "sms", http.StatusForbidden, "enrollment_required"},
			{"enrolment-only", root, "", http.StatusForbidden, "enrollment_required"},
			{"no token", "", "sms", http.StatusUnauthorized, "unauthorized"},
			{"refresh token", ada.refresh, "sms", http.StatusUnauthorized, "unauthorized"},
		} {
			wantErr(t, fmt.Sprintf("authorize %q, %s", c.method, c.who), p.authorize(c.token, c.method), c.status, c.code)
		}
		p.none("refused step-ups", m)
		if n := p.countRows("sms_codes"); n != codes {
			t.Errorf("sms_codes after refused step-ups = %d, want %d", n, codes)
		}

		// With an authenticator there is nothing to send, as for a login.
		for _, body := range []any{nil, map[string]any{"method": "authenticator"}} {
			r := p.post(pathAuthorize, cy.access, body)
			mustStatus(t, "authorize authenticator with an access token", r, http.StatusOK)
			if diff := cmp.Diff(map[string]any{"method": "authenticator", "message": "Check your authenticator app for the code"}, r.JSON(t)); diff != "" {
				t.Errorf("authorize authenticator with an access token (-want +got):\n%s", diff)
			}
		}
		p.none("authorize authenticator", m)
		// The refusals charged no cooldown: ada's code goes out at once.
		p.sendSudo(ada, "sms", adaPhone)
	})
}

// TestSMSStepUpWithAuthenticatorToo: for a user with both, a six-digit
// code given to a sudo action is an authenticator code; a texted step-up
// code is verified on /twoFa/verify with method sms.
func TestSMSStepUpWithAuthenticatorToo(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		tf := p.twoFaUser("lee@example.com")
		u := &phoneUser{email: tf.email, pw: tf.pw, id: tf.id, access: tf.access, refresh: tf.refresh}
		p.enrolSMS(u, adaPhone)
		p.leaveSudo(u)

		r := p.post(pathAuthorize, u.access, nil)
		mustStatus(t, "authorize without a method", r, http.StatusOK)
		if got := r.JSON(t)["method"]; got != "authenticator" {
			t.Errorf("authorize without a method = %s, want the authenticator (the older factor)", r.Body)
		}
		code := p.sendSudo(u, "sms", adaPhone)
		if code != p.code(tf.secret) {
			wantErr(t, "a sudo action with the texted code", p.post(pathBackupCodes, u.access, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")
		}
		access := mustTokens(t, "step-up with the texted code, method sms", p.verify(u.access, map[string]any{"code": code, "method": "sms"}))
		if a := amr(t, access); !slices.Contains(a, "sms") {
			t.Errorf("step-up amr = %v, want sms", a)
		}
		mustStatus(t, "new backup codes in sudo", p.post(pathBackupCodes, access, nil), http.StatusOK)
	})
}

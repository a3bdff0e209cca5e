package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/sms"
)

// rulesAuditCount counts the user's audit events of type typ.
func rulesAuditCount(t *testing.T, e *env, userID, typ string) int {
	t.Helper()
	evs, err := e.db.AuditEvents(context.Background(), userID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// TestSecurityRulesRemoveOneMethodRevokesOtherSessions: "Enabling 2FA,
// disabling it … revoke the user's other sessions" also when 2FA is
// already on and a second factor is added; and "PUT or POST
// /twoFa/disable … optional method (remove one factor only) … the user's
// other sessions are revoked", and disabling writes an audit event: removing
// one of two factors, with 2FA staying on, signs out every other session of
// the user (access and refresh tokens) and keeps the acting one.
func TestSecurityRulesRemoveOneMethodRevokesOtherSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		e := p.env
		u := e.twoFaUser("two-methods@example.com")

		// Add SMS codes as a second factor, through the API (in sudo):
		// enabling a factor also signs out the other sessions.
		other, otherRefresh := e.signIn(u)
		m := p.mark()
		mustStatus(t, "enable sms", p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": adaPhone}), http.StatusOK)
		code := p.one("enable sms", m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)
		mustStatus(t, "confirm sms", p.post(pathEnableVerify, u.access, map[string]any{"code": code, "method": "sms"}), http.StatusOK)
		checkRevoked(t, e, "add a second factor", u.access, u.refresh, other, otherRefresh)

		a, ra := e.signIn(u)
		b, rb := e.signIn(u)
		before := rulesAuditCount(t, e, u.id, auth.EventTwoFaDisabled)

		r := e.call(http.MethodPost, "/authentication/twoFa/disable", a, map[string]any{"method": "authenticator"})
		mustStatus(t, "remove the authenticator", r, http.StatusOK)
		if st := e.twoFaStatus(a); st["enabled"] != true {
			t.Fatalf("GET /twoFa after removing one of two factors = %v, want 2FA still on", st)
		}
		checkRevoked(t, e, "remove one method", a, ra, b, rb)
		if after := rulesAuditCount(t, e, u.id, auth.EventTwoFaDisabled); after != before+1 {
			t.Errorf("twofa.disabled events: %d before, %d after removing a method, want one more", before, after)
		}
	})
}

// TestSecurityRulesBackupCodeAsSudoCodeOnce: "Backup codes … each works
// once" also when one is the `code` of a sudo action (which the OpenAPI
// document allows): once spent there, it opens no other sudo action and no
// login, and one fewer code remains.
func TestSecurityRulesBackupCodeAsSudoCodeOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		u := e.twoFaUser("sudo-backup@example.com")
		a, _ := e.signIn(u)
		b, _ := e.signIn(u)
		e.clock.Advance(e.cfg.SudoTTL + time.Second)
		body := func(code string) map[string]any { return map[string]any{"method": "authenticator", "code": code} }

		mustStatus(t, "re-enrol out of sudo with a backup code", e.call(http.MethodPut, pathEnable, a, body(u.backup[0])), http.StatusOK)
		wantErr(t, "the same backup code on another session's sudo action", e.call(http.MethodPut, pathEnable, b, body(u.backup[0])), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "the same backup code at /twoFa/recover", e.recoverWith(e.challenge(u), u.backup[0]), http.StatusUnauthorized, "invalid_code")
		if n := e.remaining(a); n != 9 {
			t.Errorf("backupCodesRemaining after a backup code was spent on sudo = %d, want 9", n)
		}
	})
}

// TestSecurityRulesRenewDoesNotExtendPasswordSudo: "For a user with no
// second factor, sudo means the session's password login is at most that
// old." Renewing the tokens is not a password login: 9 minutes after the
// login a renewal, 2 minutes later the renewed token is out of sudo and may
// not replace the verified phone.
func TestSecurityRulesRenewDoesNotExtendPasswordSudo(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.newUser("renew-sudo@example.com", nil)
		m := p.mark()
		mustStatus(t, "set a phone", p.call(http.MethodPut, pathPhone, u.access, map[string]any{"phone": adaPhone}), http.StatusOK)
		code := p.one("set a phone", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneVerification)
		mustStatus(t, "verify the phone", p.post(pathPhoneVerify, u.access, map[string]any{"code": code}), http.StatusOK)

		p.clock.Advance(p.cfg.SudoTTL - time.Minute)
		r := p.env.renew(u.refresh)
		mustStatus(t, "renew", r, http.StatusOK)
		access := r.Str(t, "accessToken")
		p.clock.Advance(2 * time.Minute)
		if st := p.twoFaStatus(access); st["sudoUntil"] != nil {
			t.Errorf("GET /twoFa %v after the password login = %v, want sudoUntil null", p.cfg.SudoTTL+time.Minute, st["sudoUntil"])
		}
		m = p.mark()
		wantErr(t, "replace the verified phone with a renewed token", p.call(http.MethodPut, pathPhone, access, map[string]any{"phone": "+14155552672"}), http.StatusForbidden, "sudo_required")
		p.none("a refused phone change", m)
	})
}

package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/apispec"
	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/httpapi"
	"github.com/twostep-auth/twostep/internal/password"
)

// adminUser is an administrator made the way `twostep admin create` makes
// one, who went through enrolment on first sign-in.
type adminUser struct {
	id, email, pw string
	secret        []byte
	// access is the token of the session that enrolled (it passed a second
	// factor).
	access string
}

// newAdmin creates an admin, signs in (enrolment-only under the default
// policy), enrols an authenticator and moves to the next TOTP step.
func (e *env) newAdmin(email string) *adminUser {
	e.t.Helper()
	pw := "correct horse battery"
	u, err := e.svc.Register(context.Background(), auth.RegisterInput{Email: email, Password: pw, Roles: []string{auth.RoleAdmin}}, auth.RequestMeta{UserAgent: "twostep-cli"})
	if err != nil {
		e.t.Fatalf("Register(admin %s) = %v", email, err)
	}
	m := e.login(email, pw)
	if m["twoFaEnrollmentRequired"] != true {
		e.t.Fatalf("first login of admin %s = %v, want twoFaEnrollmentRequired", email, m)
	}
	a := &adminUser{id: u.ID, email: email, pw: pw, access: m["accessToken"].(string)}
	a.secret = e.enableAuthenticator(a.access)
	e.nextStep()
	return a
}

// adminSignIn signs the admin in with password and a fresh code.
func (e *env) adminSignIn(a *adminUser) string {
	e.t.Helper()
	access, _ := e.signIn(&tfUser{email: a.email, pw: a.pw, secret: a.secret})
	return access
}

// putSettings sends PUT /admin/settings.
func (e *env) putSettings(token string, body any) resp {
	e.t.Helper()
	return e.call(http.MethodPut, "/admin/settings", token, body)
}

// mustPutSettings changes the settings and returns the answer.
func (e *env) mustPutSettings(token string, body any) map[string]any {
	e.t.Helper()
	r := e.putSettings(token, body)
	mustStatus(e.t, fmt.Sprintf("PUT /admin/settings %v", body), r, http.StatusOK)
	return r.JSON(e.t)
}

// twoFaSettings returns the twoFa object of a settings answer.
func twoFaSettings(m map[string]any) map[string]any {
	tf, _ := m["twoFa"].(map[string]any)
	return tf
}

// auditList reads one page of GET /admin/audit.
func (e *env) auditList(token, query string) (events []map[string]any, next string) {
	e.t.Helper()
	r := e.call(http.MethodGet, "/admin/audit?"+query, token, nil)
	mustStatus(e.t, "GET /admin/audit?"+query, r, http.StatusOK)
	var out struct {
		Events     []map[string]any `json:"events"`
		NextCursor *string          `json:"nextCursor"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	if out.NextCursor != nil {
		next = *out.NextCursor
	}
	return out.Events, next
}

func eventTypes(events []map[string]any) []string {
	var out []string
	for _, ev := range events {
		out = append(out, ev["type"].(string))
	}
	return out
}

func TestAdminPolicyEnrolment(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		ctx := context.Background()
		pw := "correct horse battery"
		if _, err := e.svc.Register(ctx, auth.RegisterInput{Email: "root@example.com", Password: pw, Roles: []string{auth.RoleAdmin}}, auth.RequestMeta{}); err != nil {
			t.Fatal(err)
		}

		// First sign-in: tokens that may only enrol.
		r := e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": "root@example.com", "password": pw})
		mustStatus(t, "first admin login", r, http.StatusOK)
		m := r.JSON(t)
		if m["twoFaEnrollmentRequired"] != true || m["accessToken"] == nil || m["user"] == nil {
			t.Fatalf("first admin login = %s, want enrolment-only tokens with user", r.Body)
		}
		access, refresh := m["accessToken"].(string), m["refreshToken"].(string)
		for _, rq := range []struct{ method, path string }{
			{http.MethodGet, "/authentication/user"},
			{http.MethodGet, "/admin/settings"},
			{http.MethodGet, "/admin/users"},
			{http.MethodGet, "/admin/audit"},
			{http.MethodGet, "/authentication/twoFa/generate"},
		} {
			wantErr(t, "enrolment-only "+rq.path, e.call(rq.method, rq.path, access, nil), http.StatusForbidden, "enrollment_required")
		}
		wantErr(t, "renew an enrolment-only session", e.renew(refresh), http.StatusForbidden, "enrollment_required")
		mustStatus(t, "GET /twoFa enrolment-only", e.call(http.MethodGet, "/authentication/twoFa", access, nil), http.StatusOK)

		// Enrolment lifts the restriction on the same session, which has
		// passed a second factor, so it may administer at once.
		secret, _ := e.startEnrol(access, map[string]any{"method": "authenticator"})
		codes := e.confirmEnrol(access, secret)
		if len(codes) != 10 {
			t.Fatalf("enable/verify backupCodes = %v, want 10", codes)
		}
		mustStatus(t, "GET /authentication/user after enrolment", e.call(http.MethodGet, "/authentication/user", access, nil), http.StatusOK)
		mustStatus(t, "GET /admin/settings after enrolment", e.call(http.MethodGet, "/admin/settings", access, nil), http.StatusOK)

		// Next sign-in: password, then the second factor.
		e.nextStep()
		tok := e.challenge(&tfUser{email: "root@example.com", pw: pw})
		r = e.verify(tok, map[string]any{"code": e.code(secret)})
		mustStatus(t, "2FA login of the admin", r, http.StatusOK)
		if _, ok := r.JSON(t)["twoFaEnrollmentRequired"]; ok {
			t.Errorf("2FA login of the admin = %s, want no twoFaEnrollmentRequired", r.Body)
		}
		mustStatus(t, "GET /admin/users after 2FA login", e.call(http.MethodGet, "/admin/users", r.Str(t, "accessToken"), nil), http.StatusOK)

		// The audit shows the enrolment-only session.
		events, _ := e.auditList(r.Str(t, "accessToken"), "type=login.succeeded&limit=1000")
		found := false
		for _, ev := range events {
			d, _ := ev["detail"].(map[string]any)
			found = found || d["enrollment_only"] == true
		}
		if !found {
			t.Errorf("login.succeeded events = %v, want one with enrollment_only", events)
		}
	})
}

func TestAdminNeedsSecondFactor(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		root := e.newAdmin("root@example.com")

		// With 2FA not required for admins, an admin without it signs in
		// with a password only and may administer.
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{}}})
		pw := "correct horse battery"
		if _, err := e.svc.Register(context.Background(), auth.RegisterInput{Email: "second@example.com", Password: pw, Roles: []string{auth.RoleAdmin}}, auth.RequestMeta{}); err != nil {
			t.Fatal(err)
		}
		m := e.login("second@example.com", pw)
		if _, ok := m["twoFaEnrollmentRequired"]; ok {
			t.Fatalf("admin login with 2FA not required = %v, want plain tokens", m)
		}
		second := m["accessToken"].(string)
		mustStatus(t, "admin without 2FA, not required", e.call(http.MethodGet, "/admin/settings", second, nil), http.StatusOK)

		// Once it is required again, that session (no second factor) is
		// refused at once, though it still works elsewhere.
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{"admin"}}})
		wantErr(t, "admin session without a second factor", e.call(http.MethodGet, "/admin/settings", second, nil), http.StatusForbidden, "forbidden")
		mustStatus(t, "GET /authentication/user", e.call(http.MethodGet, "/authentication/user", second, nil), http.StatusOK)
		if m := e.login("second@example.com", pw); m["twoFaEnrollmentRequired"] != true {
			t.Errorf("admin login with 2FA required = %v, want enrolment-only tokens", m)
		}

		// Requiring 2FA for every user applies the same policy to them.
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{"user", "admin"}}})
		pw = e.register("ada@example.com")
		m = e.login("ada@example.com", pw)
		if m["twoFaEnrollmentRequired"] != true {
			t.Fatalf("user login with 2FA required for users = %v, want enrolment-only tokens", m)
		}
		wantErr(t, "enrolment-only user", e.call(http.MethodGet, "/authentication/user", m["accessToken"].(string), nil), http.StatusForbidden, "enrollment_required")
		mustStatus(t, "enrolment-only logout", e.call(http.MethodPost, "/authentication/logout", m["accessToken"].(string), nil), http.StatusOK)
	})
}

func TestAdminRefusesOthersAlike(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		root := e.newAdmin("root@example.com")
		victim := e.twoFaUser("victim@example.com")
		userAccess, _ := e.signup("mallory@example.com")
		challenge := e.loginChallenge("carol@example.com")

		// An admin session that never passed a second factor.
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{}}})
		pw := "correct horse battery"
		if _, err := e.svc.Register(context.Background(), auth.RegisterInput{Email: "weak@example.com", Password: pw, Roles: []string{auth.RoleAdmin}}, auth.RequestMeta{}); err != nil {
			t.Fatal(err)
		}
		weakAdmin := e.login("weak@example.com", pw)["accessToken"].(string)
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{"admin"}}})
		before := e.snapshot()
		settingsBefore := e.call(http.MethodGet, "/admin/settings", root.access, nil).Body

		var requests []request
		for _, id := range []string{victim.id, "0191f4d2-7c3a-7b7e-9a55-2b1f0c9d8e11", "x"} {
			requests = append(requests,
				request{method: http.MethodGet, path: "/admin/users/" + id},
				request{method: http.MethodPost, path: "/admin/users/" + id + "/twoFa/reset"},
				request{method: http.MethodPost, path: "/admin/users/" + id + "/sessions/revoke"},
				request{method: http.MethodPost, path: "/admin/users/" + id + "/disable"},
				request{method: http.MethodPost, path: "/admin/users/" + id + "/enable"},
				request{method: http.MethodGet, path: "/admin/audit?userId=" + id},
				request{method: http.MethodGet, path: "/admin/audit?format=csv&userId=" + id},
			)
		}
		requests = append(requests,
			request{method: http.MethodGet, path: "/admin/settings"},
			request{method: http.MethodPut, path: "/admin/settings", body: map[string]any{"twoFa": map[string]any{"enabled": false}}},
			request{method: http.MethodGet, path: "/admin/users"},
			request{method: http.MethodGet, path: "/admin/users?query=victim"},
			request{method: http.MethodGet, path: "/admin/users?limit=nonsense"},
			request{method: http.MethodGet, path: "/admin/audit"},
		)
		for _, who := range []struct{ name, token string }{{"user", userAccess}, {"admin without a second factor", weakAdmin}} {
			var first []byte
			for _, rq := range requests {
				rq.token = who.token
				r := e.do(rq)
				wantErr(t, who.name+" "+rq.method+" "+rq.path, r, http.StatusForbidden, "forbidden")
				if first == nil {
					first = r.Body
				} else if !bytes.Equal(r.Body, first) {
					t.Errorf("%s %s %s = %s, want the same answer as every other refusal, %s", who.name, rq.method, rq.path, r.Body, first)
				}
			}
		}
		for _, tok := range []string{"", challenge, "not.a.jwt"} {
			for _, rq := range requests {
				rq.token = tok
				wantErr(t, "no access token "+rq.method+" "+rq.path, e.do(rq), http.StatusUnauthorized, "unauthorized")
			}
		}

		// Nothing changed.
		if after := e.snapshot(); !equalCounts(before, after) {
			t.Errorf("refused requests changed stored rows: before %v, after %v", before, after)
		}
		if now := e.call(http.MethodGet, "/admin/settings", root.access, nil).Body; !bytes.Equal(now, settingsBefore) {
			t.Errorf("settings after refused requests = %s, want %s", now, settingsBefore)
		}
		if !e.sessionWorks(victim.access) {
			t.Errorf("the victim's session was revoked by refused requests")
		}
	})
}

func TestAdminSettings(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		root := e.newAdmin("root@example.com")

		r := e.call(http.MethodGet, "/admin/settings", root.access, nil)
		mustStatus(t, "GET /admin/settings", r, http.StatusOK)
		want := `{"twoFa":{"enabled":true,"methods":{"authenticator":true,"sms":true,"call":true},"backupCodes":{"enabled":true},"requiredForRoles":["admin"],"sudoMinutes":10}}`
		if got := strings.TrimSpace(string(r.Body)); got != want {
			t.Errorf("GET /admin/settings = %s, want the defaults %s", got, want)
		}

		// A merge: fields left out keep their value.
		m := e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"sudoMinutes": 20, "methods": map[string]any{"call": false}}})
		tf := twoFaSettings(m)
		methods := tf["methods"].(map[string]any)
		if tf["sudoMinutes"] != 20.0 || methods["call"] != false || methods["sms"] != true || tf["enabled"] != true || m["strandedUsers"] != 0.0 {
			t.Errorf("PUT sudoMinutes and call = %v, want a merge with strandedUsers 0", m)
		}
		if got := twoFaSettings(e.call(http.MethodGet, "/admin/settings", root.access, nil).JSON(t)); got["sudoMinutes"] != 20.0 {
			t.Errorf("GET after PUT = %v, want sudoMinutes 20", got)
		}
		// Nothing to change: answered, not audited.
		e.mustPutSettings(root.access, map[string]any{})
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"sudoMinutes": 20}})
		events, _ := e.auditList(root.access, "type=settings.changed")
		if len(events) != 1 {
			t.Fatalf("settings.changed events = %v, want 1", events)
		}
		ev := events[0]
		detail, _ := ev["detail"].(map[string]any)
		before, _ := detail["before"].(map[string]any)
		after, _ := detail["after"].(map[string]any)
		if ev["actorId"] != root.id || ev["userId"] != nil || twoFaSettings(before)["sudoMinutes"] != 10.0 || twoFaSettings(after)["sudoMinutes"] != 20.0 {
			t.Errorf("settings.changed = %v, want actorId %s and sudoMinutes 10 before, 20 after", ev, root.id)
		}

		// Validation: 400 and nothing stored.
		for _, body := range []any{
			map[string]any{"twoFa": map[string]any{"sudoMinutes": 0}},
			map[string]any{"twoFa": map[string]any{"sudoMinutes": 1441}},
			map[string]any{"twoFa": map[string]any{"sudoMinutes": 2.5}},
			map[string]any{"twoFa": map[string]any{"sudoMinutes": "10"}},
			map[string]any{"twoFa": map[string]any{"enabled": "yes"}},
			map[string]any{"twoFa": map[string]any{"methods": map[string]any{"sms": 1}}},
			map[string]any{"twoFa": map[string]any{"methods": true}},
			map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{"root"}}},
			map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{"admin", "admin"}}},
			map[string]any{"twoFa": map[string]any{"requiredForRoles": "admin"}},
			map[string]any{"twoFa": []any{}},
			// Every method off while 2FA is on (nobody required).
			map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{}, "methods": map[string]any{"authenticator": false, "sms": false, "call": false}}},
			"not json",
			"[]",
		} {
			wantErr(t, fmt.Sprintf("PUT %v", body), e.putSettings(root.access, body), http.StatusBadRequest, "invalid_request")
		}

		// Lock-out guard: 409 for settings that would leave admins unable
		// to enrol while they must.
		for _, body := range []any{
			map[string]any{"twoFa": map[string]any{"enabled": false}},
			map[string]any{"twoFa": map[string]any{"methods": map[string]any{"authenticator": false, "sms": false, "call": false}}},
			// Voice calls alone cannot enrol a phone: enrolment is by text.
			map[string]any{"twoFa": map[string]any{"methods": map[string]any{"authenticator": false, "sms": false}}},
			map[string]any{"twoFa": map[string]any{"enabled": false, "requiredForRoles": []string{"user"}}},
		} {
			wantErr(t, fmt.Sprintf("PUT %v", body), e.putSettings(root.access, body), http.StatusConflict, "conflict")
		}
		if got := twoFaSettings(e.call(http.MethodGet, "/admin/settings", root.access, nil).JSON(t)); got["enabled"] != true || got["sudoMinutes"] != 20.0 {
			t.Errorf("settings after refused changes = %v, want them unchanged", got)
		}
		// Turning 2FA off is fine once nobody is required to have it.
		m = e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"enabled": false, "requiredForRoles": []string{}}})
		if tf := twoFaSettings(m); tf["enabled"] != false || m["strandedUsers"] != 1.0 {
			t.Errorf("PUT enabled false = %v, want 2FA off and the admin's factor counted as stranded", m)
		}
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"enabled": true, "requiredForRoles": []string{"admin"}}})

		// sudoMinutes applies at once.
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"sudoMinutes": 1}})
		u := e.twoFaUser("ada@example.com")
		access, _ := e.signIn(u)
		st := e.twoFaStatus(access)
		if want := e.clock.Now().Add(time.Minute).UTC().Format(time.RFC3339); st["sudoUntil"] != want {
			t.Errorf("sudoUntil with sudoMinutes 1 = %v, want %s", st["sudoUntil"], want)
		}
	})
}

func TestAdminStrandedUsers(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		root := e.newAdmin("root@example.com")
		ada := e.twoFaUser("ada@example.com") // authenticator only
		carol := e.twoFaUser("carol@example.com")
		// carol also has a phone factor (stored directly: SMS enrolment is
		// not what this test is about).
		now := e.clock.Now()
		if err := e.db.CreateFactor(context.Background(), auth.Factor{ID: "carol-sms", UserID: carol.id, Method: auth.MethodSMS, Phone: "+14155552671", CreatedAt: now, ConfirmedAt: &now}); err != nil {
			t.Fatal(err)
		}
		plain, _ := e.signup("bob@example.com")

		m := e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{}, "methods": map[string]any{"authenticator": false}}})
		if m["strandedUsers"] != 2.0 {
			t.Errorf("authenticator off: strandedUsers = %v, want 2 (ada and root, not carol)", m["strandedUsers"])
		}

		// A stranded user still signs in with the method that is off.
		e.nextStep()
		tok := e.challenge(ada)
		r := e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": ada.email, "password": ada.pw})
		if got := r.JSON(t)["methods"]; !slices.Contains(toAny(got), "authenticator") {
			t.Errorf("stranded user's methods = %v, want authenticator kept", got)
		}
		mustStatus(t, "stranded user verifies", e.verify(tok, map[string]any{"code": e.code(ada.secret), "method": "authenticator"}), http.StatusOK)

		// A user with another method is not offered the one that is off,
		// and may not use it.
		r = e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": carol.email, "password": carol.pw})
		mustStatus(t, "carol login", r, http.StatusOK)
		if got := toAny(r.JSON(t)["methods"]); slices.Contains(got, "authenticator") || !slices.Contains(got, "sms") {
			t.Errorf("carol's methods = %v, want sms and not authenticator", got)
		}
		wantErr(t, "verify with a method turned off", e.verify(r.Str(t, "challengeToken"), map[string]any{"code": e.code(carol.secret), "method": "authenticator"}), http.StatusForbidden, "forbidden")

		// Nobody may enrol it.
		wantErr(t, "enrol a method turned off", e.call(http.MethodPost, "/authentication/twoFa/enable", plain, map[string]any{"method": "authenticator"}), http.StatusForbidden, "forbidden")

		// Backup codes off: not offered to carol, refused to her, and none
		// generated.
		m = e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"backupCodes": map[string]any{"enabled": false}}})
		r = e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": carol.email, "password": carol.pw})
		if got := toAny(r.JSON(t)["methods"]); slices.Contains(got, "backup") {
			t.Errorf("carol's methods with backup codes off = %v, want no backup", got)
		}
		wantErr(t, "recover with backup codes off", e.recoverWith(r.Str(t, "challengeToken"), carol.backup[0]), http.StatusForbidden, "forbidden")
		wantErr(t, "generate with backup codes off", e.call(http.MethodGet, "/authentication/twoFa/generate", carol.access, nil), http.StatusForbidden, "forbidden")

		// Back on: nobody stranded.
		m = e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"methods": map[string]any{"authenticator": true}, "backupCodes": map[string]any{"enabled": true}}})
		if m["strandedUsers"] != 0.0 {
			t.Errorf("authenticator on: strandedUsers = %v, want 0", m["strandedUsers"])
		}
		_, r = e.startEnrol(plain, map[string]any{"method": "authenticator"})
		mustStatus(t, "enrol once authenticator is back on", r, http.StatusOK)
	})
}

func toAny(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// secondInstance is another server over the same database, as when
// several twostep processes share it.
func (e *env) secondInstance() *env {
	e.t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	svc, err := auth.NewService(auth.Deps{
		Store: e.db, Passwords: password.NewHasher(testParams, 4), Tokens: e.tokens, Sealer: e.sealer,
		BackupKey: key, Now: e.clock.Now,
	}, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	h := httpapi.NewServer(slog.New(slog.DiscardHandler), httpapi.Options{MaxBodyBytes: 64 << 10, OpenAPI: apispec.Document()}, svc, e.tokens, httpapi.NewMetrics())
	c := *e
	c.svc, c.h = svc, h
	return &c
}

func TestAdminSettingsReachOtherInstances(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		other := e.secondInstance()
		root := e.newAdmin("root@example.com")
		sudo := func(in *env) any {
			t.Helper()
			r := in.call(http.MethodGet, "/admin/settings", root.access, nil)
			mustStatus(t, "GET /admin/settings", r, http.StatusOK)
			return twoFaSettings(r.JSON(t))["sudoMinutes"]
		}
		if got := sudo(other); got != 10.0 {
			t.Fatalf("other instance sudoMinutes = %v, want 10", got)
		}
		e.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"sudoMinutes": 30}})
		if got := sudo(e); got != 30.0 {
			t.Errorf("changing instance sudoMinutes = %v, want 30 at once", got)
		}
		// The other instance keeps its copy for up to the reload interval
		// (5 s), then reads the change.
		e.clock.Advance(time.Second)
		if got := sudo(other); got != 10.0 {
			t.Errorf("other instance 1 s later: sudoMinutes = %v, want its cached 10", got)
		}
		e.clock.Advance(5 * time.Second)
		if got := sudo(other); got != 30.0 {
			t.Errorf("other instance after the reload interval: sudoMinutes = %v, want 30", got)
		}
		// A change made on the other instance comes back the same way, and
		// a change there is based on the stored settings, not a stale copy.
		other.mustPutSettings(root.access, map[string]any{"twoFa": map[string]any{"methods": map[string]any{"call": false}}})
		e.clock.Advance(6 * time.Second)
		tf := twoFaSettings(e.call(http.MethodGet, "/admin/settings", root.access, nil).JSON(t))
		if tf["sudoMinutes"] != 30.0 || tf["methods"].(map[string]any)["call"] != false {
			t.Errorf("settings after a change on each instance = %v, want sudoMinutes 30 and call off", tf)
		}
	})
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		root := e.newAdmin("root@example.com")
		ada := e.twoFaUser("ada@example.com")
		all := map[string]bool{root.id: true, ada.id: true}
		for i := range 11 {
			r := e.call(http.MethodPost, "/authentication/local/new", "", map[string]any{
				"email": fmt.Sprintf("user%02d@example.org", i), "password": "correct horse battery", "username": fmt.Sprintf("member%02d", i),
			})
			mustStatus(t, "register", r, http.StatusCreated)
			all[r.JSON(t)["user"].(map[string]any)["id"].(string)] = true
		}
		if err := e.db.SetUserPhone(context.Background(), ada.id, "+14155552671", true, e.clock.Now()); err != nil {
			t.Fatal(err)
		}

		// Every page, without a repeat or a gap (everyone was created at
		// the same instant, so the id orders them).
		walk := func(query string, limit int) []string {
			t.Helper()
			var ids []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatal("paging does not end")
				}
				path := fmt.Sprintf("/admin/users?query=%s&limit=%d&cursor=%s", url.QueryEscape(query), limit, url.QueryEscape(cursor))
				r := e.call(http.MethodGet, path, root.access, nil)
				mustStatus(t, path, r, http.StatusOK)
				var page struct {
					Users []struct {
						ID       string `json:"id"`
						Disabled *bool  `json:"disabled"`
					} `json:"users"`
					NextCursor *string `json:"nextCursor"`
				}
				if err := json.Unmarshal(r.Body, &page); err != nil {
					t.Fatal(err)
				}
				if len(page.Users) > limit {
					t.Fatalf("%s: %d users, want at most %d", path, len(page.Users), limit)
				}
				for _, u := range page.Users {
					if u.Disabled == nil {
						t.Errorf("%s: user without disabled", path)
					}
					ids = append(ids, u.ID)
				}
				if page.NextCursor == nil {
					return ids
				}
				cursor = *page.NextCursor
			}
		}
		got := walk("", 5)
		seen := map[string]bool{}
		for _, id := range got {
			if seen[id] {
				t.Errorf("user %s listed twice", id)
			}
			seen[id] = true
		}
		if diff := cmp.Diff(all, seen); diff != "" {
			t.Errorf("users over every page (-want +got):\n%s", diff)
		}
		if one := walk("", 100); !slices.Equal(one, got) {
			t.Errorf("one page = %v, want the same order as five at a time %v", one, got)
		}
		if n := len(walk("EXAMPLE.ORG", 4)); n != 11 {
			t.Errorf("query EXAMPLE.ORG walked %d users, want 11", n)
		}
		for _, q := range []string{"ADA@", "ada", "+1415555", "+1 (415) 555-2671", "555-2671"} {
			if ids := walk(q, 50); !slices.Equal(ids, []string{ada.id}) {
				t.Errorf("query %q = %v, want ada", q, ids)
			}
		}
		if ids := walk("member03", 50); len(ids) != 1 {
			t.Errorf("query member03 = %v, want one user", ids)
		}
		if ids := walk("nobody-matches", 50); len(ids) != 0 {
			t.Errorf("query nobody-matches = %v, want none", ids)
		}
		if ids := walk("%", 50); len(ids) != 0 {
			t.Errorf("query %% = %v, want none (a literal percent sign)", ids)
		}

		auditCursor := func() string {
			_, next := e.auditList(root.access, "limit=1")
			return next
		}()
		for _, q := range []string{"limit=0", "limit=101", "limit=-1", "limit=ten", "cursor=garbage!", "cursor=" + url.QueryEscape(auditCursor), "query=" + strings.Repeat("a", 257)} {
			wantErr(t, "GET /admin/users?"+q, e.call(http.MethodGet, "/admin/users?"+q, root.access, nil), http.StatusBadRequest, "invalid_request")
		}

		// One user.
		r := e.call(http.MethodGet, "/admin/users/"+ada.id, root.access, nil)
		mustStatus(t, "GET /admin/users/{ada}", r, http.StatusOK)
		var detail struct {
			User struct {
				Email    string `json:"email"`
				Phone    string `json:"phone"`
				Disabled bool   `json:"disabled"`
			} `json:"user"`
			TwoFa struct {
				Enabled   bool             `json:"enabled"`
				Methods   []map[string]any `json:"methods"`
				Remaining int              `json:"backupCodesRemaining"`
				SudoUntil *string          `json:"sudoUntil"`
			} `json:"twoFa"`
		}
		if err := json.Unmarshal(r.Body, &detail); err != nil {
			t.Fatal(err)
		}
		if detail.User.Email != "ada@example.com" || detail.User.Phone != "+14155552671" || detail.User.Disabled ||
			!detail.TwoFa.Enabled || len(detail.TwoFa.Methods) != 1 || detail.TwoFa.Remaining != 10 || detail.TwoFa.SudoUntil != nil {
			t.Errorf("GET /admin/users/{ada} = %s, want ada with one authenticator, 10 codes and sudoUntil null", r.Body)
		}
		for _, id := range []string{"0191f4d2-7c3a-7b7e-9a55-2b1f0c9d8e11", "x", strings.Repeat("a", 100)} {
			wantErr(t, "GET /admin/users/"+id, e.call(http.MethodGet, "/admin/users/"+id, root.access, nil), http.StatusNotFound, "not_found")
		}
	})
}

func TestAdminUserActions(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		root := e.newAdmin("root@example.com")
		unknown := "0191f4d2-7c3a-7b7e-9a55-2b1f0c9d8e11"
		action := func(path string, status int) map[string]any {
			t.Helper()
			r := e.call(http.MethodPost, path, root.access, nil)
			mustStatus(t, "POST "+path, r, status)
			return r.JSON(t)
		}
		lastEvent := func(typ, userID string) map[string]any {
			t.Helper()
			events, _ := e.auditList(root.access, "type="+typ+"&userId="+userID)
			if len(events) == 0 {
				t.Fatalf("no %s event for %s", typ, userID)
			}
			return events[0]
		}

		// Reset 2FA.
		ada := e.twoFaUser("ada@example.com")
		m := action("/admin/users/"+ada.id+"/twoFa/reset", http.StatusOK)
		if m["message"] != "2FA reset" || m["sessionsRevoked"] != 1.0 {
			t.Errorf("reset = %v, want 2FA reset and 1 session revoked", m)
		}
		if e.sessionWorks(ada.access) {
			t.Errorf("ada's session works after a 2FA reset")
		}
		if ev := lastEvent(auth.EventAdminTwoFaReset, ada.id); ev["actorId"] != root.id {
			t.Errorf("admin.twofa.reset = %v, want actorId %s", ev, root.id)
		}
		if m := e.login(ada.email, ada.pw); m["accessToken"] == nil {
			t.Errorf("login after a 2FA reset = %v, want tokens without a second factor", m)
		}
		r := e.call(http.MethodGet, "/admin/users/"+ada.id, root.access, nil)
		if tf := r.JSON(t)["twoFa"].(map[string]any); tf["enabled"] != false || tf["backupCodesRemaining"] != 0.0 {
			t.Errorf("ada after reset = %s, want 2FA off and no backup codes", r.Body)
		}
		action("/admin/users/"+ada.id+"/twoFa/reset", http.StatusOK) // idempotent
		wantErr(t, "reset unknown", e.call(http.MethodPost, "/admin/users/"+unknown+"/twoFa/reset", root.access, nil), http.StatusNotFound, "not_found")

		// Revoke sessions.
		bob1, _ := e.signup("bob@example.com")
		bob2, bobRefresh := e.signupAgain("bob@example.com")
		m = action("/admin/users/"+userID(t, bob1)+"/sessions/revoke", http.StatusOK)
		if m["sessionsRevoked"] != 2.0 || e.sessionWorks(bob1) || e.sessionWorks(bob2) {
			t.Errorf("revoke bob = %v, want 2 revoked and neither session working", m)
		}
		wantErr(t, "renew after revoke", e.renew(bobRefresh), http.StatusUnauthorized, "unauthorized")
		if ev := lastEvent(auth.EventSessionRevoked, userID(t, bob1)); ev["actorId"] != root.id {
			t.Errorf("session.revoked = %v, want actorId %s", ev, root.id)
		}
		wantErr(t, "revoke unknown", e.call(http.MethodPost, "/admin/users/"+unknown+"/sessions/revoke", root.access, nil), http.StatusNotFound, "not_found")
		// On oneself: the session acting is kept.
		other := e.adminSignIn(root)
		m = action("/admin/users/"+root.id+"/sessions/revoke", http.StatusOK)
		if m["sessionsRevoked"] != 1.0 || e.sessionWorks(other) || !e.sessionWorks(root.access) {
			t.Errorf("revoke own sessions = %v, want the other session revoked and this one kept", m)
		}

		// Disable and enable.
		carolAccess, carolRefresh := e.signup("carol@example.com")
		carol := userID(t, carolAccess)
		m = action("/admin/users/"+carol+"/disable", http.StatusOK)
		if m["message"] != "Account disabled" || m["sessionsRevoked"] != 1.0 || e.sessionWorks(carolAccess) {
			t.Errorf("disable carol = %v, want her session revoked", m)
		}
		wantErr(t, "disabled login", e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": "carol@example.com", "password": "correct horse battery"}), http.StatusForbidden, "forbidden")
		wantErr(t, "disabled renew", e.renew(carolRefresh), http.StatusUnauthorized, "unauthorized")
		if r := e.call(http.MethodGet, "/admin/users/"+carol, root.access, nil); r.JSON(t)["user"].(map[string]any)["disabled"] != true {
			t.Errorf("GET carol = %s, want disabled", r.Body)
		}
		if ev := lastEvent(auth.EventAdminUserDisabled, carol); ev["actorId"] != root.id {
			t.Errorf("admin.user.disabled = %v, want actorId %s", ev, root.id)
		}
		action("/admin/users/"+carol+"/disable", http.StatusOK) // idempotent
		m = action("/admin/users/"+carol+"/enable", http.StatusOK)
		if m["message"] != "Account enabled" {
			t.Errorf("enable = %v", m)
		}
		e.login("carol@example.com", "correct horse battery")
		if ev := lastEvent(auth.EventAdminUserEnabled, carol); ev["actorId"] != root.id {
			t.Errorf("admin.user.enabled = %v, want actorId %s", ev, root.id)
		}
		wantErr(t, "disable oneself", e.call(http.MethodPost, "/admin/users/"+root.id+"/disable", root.access, nil), http.StatusConflict, "conflict")
		if !e.sessionWorks(root.access) {
			t.Errorf("refused self-disable revoked the admin's session")
		}
		for _, p := range []string{"/disable", "/enable"} {
			wantErr(t, p+" unknown", e.call(http.MethodPost, "/admin/users/"+unknown+p, root.access, nil), http.StatusNotFound, "not_found")
		}
	})
}

// userID is the subject of an access token.
func userID(t *testing.T, access string) string {
	t.Helper()
	return jwtClaims(t, access)["sub"].(string)
}

func TestAdminAudit(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		root := e.newAdmin("root@example.com")
		ada := e.twoFaUser("ada@example.com")
		start := e.clock.Now()
		e.clock.Advance(time.Minute)
		for range 2 {
			r := e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": ada.email, "password": "wrong password!"})
			mustStatus(t, "wrong password", r, http.StatusUnauthorized)
		}
		e.nextStep()
		tok := e.challenge(ada)
		wantErr(t, "wrong code", e.verify(tok, map[string]any{"code": e.wrongCode(ada.secret)}), http.StatusUnauthorized, "invalid_code")
		mid := e.clock.Now()
		e.clock.Advance(time.Minute)
		e.call(http.MethodPost, "/admin/users/"+ada.id+"/sessions/revoke", root.access, nil)

		// Failed attempts are there, with who and where.
		events, next := e.auditList(root.access, "userId="+ada.id+"&type=login.failed")
		if len(events) != 2 || next != "" {
			t.Fatalf("login.failed of ada = %v (next %q), want 2 on one page", events, next)
		}
		if ev := events[0]; ev["ip"] != testIP || ev["userAgent"] != testUA || ev["actorId"] != nil || ev["detail"].(map[string]any)["reason"] != "password" {
			t.Errorf("login.failed = %v, want ip, user agent and reason", ev)
		}
		if events, _ := e.auditList(root.access, "userId="+ada.id+"&type=twofa.verify.failed"); len(events) != 1 {
			t.Errorf("twofa.verify.failed of ada = %v, want 1", events)
		}
		// Newest first, and time filters.
		all, _ := e.auditList(root.access, "limit=1000")
		for i := 1; i < len(all); i++ {
			if all[i-1]["time"].(string) < all[i]["time"].(string) {
				t.Errorf("events out of order: %v before %v", all[i-1]["time"], all[i]["time"])
			}
		}
		since, _ := e.auditList(root.access, "since="+url.QueryEscape(start.Format(time.RFC3339))+"&until="+url.QueryEscape(mid.Format(time.RFC3339)))
		if got := eventTypes(since); !slices.Contains(got, "login.failed") || slices.Contains(got, "session.revoked") || slices.Contains(got, "admin.user.created") || slices.Contains(got, "user.registered") {
			t.Errorf("events between start and mid = %v, want the failures and not what came before or after", got)
		}
		byActor, _ := e.auditList(root.access, "actorId="+root.id)
		if got := eventTypes(byActor); !slices.Equal(got, []string{"session.revoked"}) {
			t.Errorf("events by the admin = %v, want [session.revoked]", got)
		}

		// Paging three at a time gives the same events as one page.
		var paged []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 50 {
				t.Fatal("audit paging does not end")
			}
			page, next := e.auditList(root.access, "limit=3&cursor="+url.QueryEscape(cursor))
			for _, ev := range page {
				paged = append(paged, ev["id"].(string))
			}
			if next == "" {
				break
			}
			cursor = next
		}
		var want []string
		for _, ev := range all {
			want = append(want, ev["id"].(string))
		}
		if diff := cmp.Diff(want, paged); diff != "" {
			t.Errorf("events three at a time (-one page +paged):\n%s", diff)
		}

		usersCursor := func() string {
			r := e.call(http.MethodGet, "/admin/users?limit=1", root.access, nil)
			c, _ := r.JSON(t)["nextCursor"].(string)
			return c
		}()
		for _, q := range []string{"since=yesterday", "until=2026-13-01T00:00:00Z", "limit=0", "limit=1001", "limit=x", "format=xml", "cursor=%25%25", "cursor=" + url.QueryEscape(usersCursor), "userId=" + strings.Repeat("a", 65)} {
			wantErr(t, "GET /admin/audit?"+q, e.call(http.MethodGet, "/admin/audit?"+q, root.access, nil), http.StatusBadRequest, "invalid_request")
		}
	})
}

func TestAdminAuditCSV(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, withConfig(func(c *auth.Config) { c.LoginFreeFailures = 10 }))
		root := e.newAdmin("root@example.com")
		pw := e.register("ada@example.com")
		agents := []string{`=HYPERLINK("http://evil.example","x")`, "+1+1", "-2+3", "@SUM(A1:A2)", "\tcmd", "\rcmd", `Mozilla/5.0 (X11, "quoted")`}
		for _, ua := range agents {
			r := e.do(request{method: http.MethodPost, path: "/authentication/local", body: map[string]any{"email": "ada@example.com", "password": pw + "x"}, header: http.Header{"User-Agent": {ua}}})
			mustStatus(t, "wrong password", r, http.StatusUnauthorized)
		}
		ada := userID(t, e.login("ada@example.com", pw)["accessToken"].(string))

		exportCSV := func(query string) [][]string {
			t.Helper()
			r := e.call(http.MethodGet, "/admin/audit?format=csv&"+query, root.access, nil)
			mustStatus(t, "CSV export "+query, r, http.StatusOK)
			if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Errorf("Content-Type = %q, want text/csv; charset=utf-8", ct)
			}
			if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
				t.Errorf("Content-Disposition = %q, want an attachment", cd)
			}
			rows, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
			if err != nil {
				t.Fatalf("export is not CSV: %v\n%s", err, r.Body)
			}
			if want := []string{"id", "time", "type", "userId", "actorId", "ip", "userAgent", "detail"}; len(rows) == 0 || !slices.Equal(rows[0], want) {
				t.Fatalf("header row = %v, want %v", rows[0], want)
			}
			return rows[1:]
		}

		rows := exportCSV("userId=" + ada + "&type=login.failed")
		if len(rows) != len(agents) {
			t.Fatalf("exported %d rows, want %d", len(rows), len(agents))
		}
		// Newest first: the last agent is the first row.
		for i, row := range rows {
			ua := agents[len(agents)-1-i]
			want := ua
			if strings.ContainsAny(ua[:1], "=+-@\t\r") {
				// encoding/csv writing CRLF line ends drops a lone CR.
				want = "'" + strings.ReplaceAll(ua, "\r", "")
			}
			if row[6] != want {
				t.Errorf("userAgent cell = %q, want %q", row[6], want)
			}
			var detail map[string]any
			if err := json.Unmarshal([]byte(row[7]), &detail); err != nil || detail["reason"] != "password" {
				t.Errorf("detail cell = %q, want JSON with the reason", row[7])
			}
			if row[2] != "login.failed" || row[3] != ada || row[4] != "" || row[5] != testIP {
				t.Errorf("row = %q, want login.failed of ada from %s", row, testIP)
			}
		}
		// The same filter as JSON lists the same events.
		events, _ := e.auditList(root.access, "userId="+ada+"&type=login.failed")
		for i, ev := range events {
			if rows[i][0] != ev["id"] || rows[i][1] != ev["time"] {
				t.Errorf("row %d = %q, want event %v", i, rows[i], ev)
			}
		}

		// More events than one batch: every one, once, and the export is
		// itself audited.
		base := e.clock.Now()
		err := e.db.WithTx(context.Background(), func(tx auth.Tx) error {
			for i := range 1005 {
				ev := auth.AuditEvent{ID: fmt.Sprintf("bulk-%04d", i), Time: base.Add(time.Duration(i%7) * time.Millisecond), Type: "test.bulk"}
				if err := tx.AppendAudit(context.Background(), ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		rows = exportCSV("type=test.bulk")
		seen := map[string]bool{}
		for _, row := range rows {
			if seen[row[0]] {
				t.Errorf("event %s exported twice", row[0])
			}
			seen[row[0]] = true
		}
		if len(seen) != 1005 {
			t.Errorf("exported %d bulk events, want 1005", len(seen))
		}
		if exports, _ := e.auditList(root.access, "type=admin.audit.exported"); len(exports) != 2 || exports[0]["actorId"] != root.id {
			t.Errorf("admin.audit.exported events = %v, want 2 by the admin", exports)
		}
	})
}

// TestAdminSettingsConcurrentChanges has several admins change different
// fields at once: each change is based on the stored settings, so none is
// lost.
func TestAdminSettingsConcurrentChanges(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		root := e.newAdmin("root@example.com")
		changes := []map[string]any{
			{"sudoMinutes": 42},
			{"methods": map[string]any{"call": false}},
			{"backupCodes": map[string]any{"enabled": false}},
			{"requiredForRoles": []string{"admin", "user"}},
		}
		var wg sync.WaitGroup
		for _, ch := range changes {
			wg.Go(func() {
				r := e.putSettings(root.access, map[string]any{"twoFa": ch})
				if r.Status != http.StatusOK {
					t.Errorf("PUT %v = %d %s, want 200", ch, r.Status, r.Body)
				}
			})
		}
		wg.Wait()
		tf := twoFaSettings(e.call(http.MethodGet, "/admin/settings", root.access, nil).JSON(t))
		want := map[string]any{
			"enabled": true, "sudoMinutes": 42.0,
			"methods":          map[string]any{"authenticator": true, "sms": true, "call": false},
			"backupCodes":      map[string]any{"enabled": false},
			"requiredForRoles": []any{"admin", "user"},
		}
		if diff := cmp.Diff(want, tf); diff != "" {
			t.Errorf("settings after concurrent changes (-want +got):\n%s", diff)
		}
		if events, _ := e.auditList(root.access, "type=settings.changed"); len(events) != len(changes) {
			t.Errorf("settings.changed events = %d, want %d", len(events), len(changes))
		}
	})
}

package adminui_test

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
	"github.com/twostep-auth/twostep/internal/totp"
	"github.com/twostep-auth/twostep/internal/webui/webuitest"
)

// forEachEngine runs fn as a parallel subtest on every engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, engine)
		})
	}
}

func checkSecurityHeaders(t *testing.T, what string, r resp) {
	t.Helper()
	webuitest.CheckSecurityHeaders(t, what, r.Header)
	if strings.Contains(r.Body, "<script") || strings.Contains(r.Body, " style=") || strings.Contains(r.Body, "<style") {
		t.Errorf("%s: page has inline script or style:\n%s", what, r.Body)
	}
}

// TestEveryPageRenders signs an administrator in with a TOTP code and
// opens every page of the panel.
func TestEveryPageRenders(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, true)
		bob := e.register("bob@example.com", auth.RoleUser)
		e.enrolTOTP("bob@example.com")
		c, _ := e.admin("ada@example.com")

		for _, path := range []string{"/admin", "/admin/", "/admin/ui/"} {
			mustRedirect(t, "GET "+path, c.get(path), "/admin/ui/users")
		}
		pages := map[string][]string{
			"/admin/ui/users":                                             {"bob@example.com", "ada@example.com", "Sign out"},
			"/admin/ui/users?query=bob":                                   {"bob@example.com"},
			"/admin/ui/users/" + bob.ID:                                   {"bob@example.com", "Authenticator app", "Reset two-step verification"},
			"/admin/ui/users/" + bob.ID + "/reset-2fa":                    {"Reset two-step verification?", `name="confirm" value="yes"`},
			"/admin/ui/users/" + bob.ID + "/revoke-sessions":              {"Sign out everywhere?"},
			"/admin/ui/users/" + bob.ID + "/disable":                      {"Disable account?"},
			"/admin/ui/users/" + bob.ID + "/enable":                       {"Enable account?"},
			"/admin/ui/settings":                                          {"Authenticator app", `name="sudo_minutes" value="10"`},
			"/admin/ui/audit":                                             {"login.succeeded", "twofa.verify.succeeded", "Export CSV"},
			"/admin/ui/audit?type=login.succeeded&user=ada%40example.com": {"login.succeeded"},
		}
		for path, texts := range pages {
			r := c.get(path)
			mustStatus(t, "GET "+path, r, http.StatusOK)
			checkSecurityHeaders(t, "GET "+path, r)
			mustContain(t, "GET "+path, r, texts...)
			if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("GET %s: Content-Type = %q", path, ct)
			}
		}
		// The users list shows nothing of ada's when filtered to bob.
		if r := c.get("/admin/ui/users?query=bob"); strings.Contains(r.Body, "ada@example.com</a>") {
			t.Errorf("search for bob lists ada:\n%s", r.Body)
		}
		mustStatus(t, "unknown user", c.get("/admin/ui/users/no-such-id"), http.StatusNotFound)
		mustStatus(t, "unknown action", c.get("/admin/ui/users/"+bob.ID+"/explode"), http.StatusNotFound)
		mustStatus(t, "unknown page", c.get("/admin/ui/nope"), http.StatusNotFound)
		mustStatus(t, "bad event type", c.get("/admin/ui/audit?type=nope"), http.StatusBadRequest)
		mustStatus(t, "unknown user filter", c.get("/admin/ui/audit?user=nobody%40example.com"), http.StatusBadRequest)
		mustStatus(t, "bad time", c.get("/admin/ui/audit?since=yesterday"), http.StatusBadRequest)
		mustStatus(t, "bad cursor", c.get("/admin/ui/users?cursor=garbage"), http.StatusBadRequest)

		css := c.get(strings.Split(strings.Split(c.get("/admin/ui/users").Body, `rel="stylesheet" href="`)[1], `"`)[0])
		mustStatus(t, "style sheet", css, http.StatusOK)
		if ct := css.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
			t.Errorf("style sheet Content-Type = %q, want text/css", ct)
		}
		if cc := css.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("versioned style sheet Cache-Control = %q, want immutable", cc)
		}
		checkSecurityHeaders(t, "style sheet", resp{Header: css.Header})
	})
}

// TestSignedOutPages: the sign-in pages render with the security headers;
// panel pages send a signed-out browser to sign in.
func TestSignedOutPages(t *testing.T) {
	e := newEnv(t, "sqlite", true)
	c := e.client()
	r := c.get("/admin/ui/login")
	mustStatus(t, "login page", r, http.StatusOK)
	checkSecurityHeaders(t, "login page", r)
	mustContain(t, "login page", r, `autocomplete="current-password"`)
	for _, path := range []string{"/admin/ui/users", "/admin/ui/settings", "/admin/ui/audit", "/admin/ui/audit/export.csv", "/admin/ui/users/x"} {
		r := c.get(path)
		mustRedirect(t, "signed out GET "+path, r, "/admin/ui/login")
		checkSecurityHeaders(t, "signed out GET "+path, r)
	}
	mustRedirect(t, "verify without a password step", c.get("/admin/ui/login/verify"), "/admin/ui/login?lost=1")
	mustRedirect(t, "enrol without a sign-in", c.get("/admin/ui/enrol"), "/admin/ui/login")
	// A cookie the server did not seal is no sign-in.
	c.jar["__Host-twostep-admin"] = &http.Cookie{Name: "__Host-twostep-admin", Value: "eyJhIjoiZm9yZ2VkIn0"}
	mustRedirect(t, "forged cookie", c.get("/admin/ui/users"), "/admin/ui/login")
	// The JSON API keeps its /admin paths.
	api := c.get("/admin/settings")
	if api.Status != http.StatusUnauthorized || !strings.Contains(api.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /admin/settings = %d %s, want the API's JSON 401", api.Status, api.Header.Get("Content-Type"))
	}
}

// TestCrossOriginRefused: a state-changing request from another site is
// refused before it does anything.
func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t, "sqlite", true)
	e.register("ada@example.com", auth.RoleAdmin)
	c := e.client()
	for name, h := range map[string]http.Header{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}},
		"Sec-Fetch-Site same-site":  {"Sec-Fetch-Site": {"same-site"}, "Origin": {"https://evil.admin.example.com"}},
		"Origin only":               {"Sec-Fetch-Site": nil, "Origin": {"https://evil.example"}},
	} {
		r := c.do(http.MethodPost, "/admin/ui/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}}, h)
		mustStatus(t, "cross-origin login ("+name+")", r, http.StatusForbidden)
		checkSecurityHeaders(t, "cross-origin refusal", r)
		if len(c.jar) != 0 {
			t.Fatalf("cross-origin login (%s) set cookies %v", name, c.jar)
		}
	}

	// Signed in, a cross-origin settings change and user action are
	// refused too, and change nothing.
	c, _ = e.admin("root@example.com")
	bob := e.register("bob@example.com")
	evil := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}
	r := c.do(http.MethodPost, "/admin/ui/settings", url.Values{"sudo_minutes": {"99"}}, evil)
	mustStatus(t, "cross-origin settings", r, http.StatusForbidden)
	r = c.do(http.MethodPost, "/admin/ui/users/"+bob.ID+"/disable", url.Values{"confirm": {"yes"}}, evil)
	mustStatus(t, "cross-origin disable", r, http.StatusForbidden)
	r = c.do(http.MethodPost, "/admin/ui/logout", url.Values{}, evil)
	mustStatus(t, "cross-origin logout", r, http.StatusForbidden)
	mustContain(t, "settings after refusal", c.get("/admin/ui/settings"), `name="sudo_minutes" value="10"`)
	mustContain(t, "bob after refusal", c.get("/admin/ui/users/"+bob.ID), "Disable account")
}

// TestCookieFlags: the sign-in cookie is HttpOnly, SameSite=Strict and
// __Host- Secure, except for plain HTTP on localhost; it holds no token in
// the clear.
func TestCookieFlags(t *testing.T) {
	e := newEnv(t, "sqlite", true)
	e.register("ada@example.com", auth.RoleAdmin)
	secret := e.enrolTOTP("ada@example.com")

	cases := []struct {
		name       string
		host, peer string
		https      bool
		header     http.Header
		wantName   string
		wantSecure bool
	}{
		{"https", "admin.example.com", "192.0.2.1:1234", true, nil, "__Host-twostep-admin", true},
		{"plain http, public name", "admin.example.com", "192.0.2.1:1234", false, nil, "__Host-twostep-admin", true},
		{"localhost", "localhost:3000", "127.0.0.1:5555", false, nil, "twostep-admin", false},
		{"loopback ip", "127.0.0.1:3000", "[::1]:5555", false, nil, "twostep-admin", false},
		{"through a proxy", "127.0.0.1:3000", "127.0.0.1:5555", false, http.Header{"X-Forwarded-Proto": {"https"}}, "__Host-twostep-admin", true},
	}
	for _, tc := range cases {
		c := e.client()
		c.host, c.remote, c.https = tc.host, tc.peer, tc.https
		for k, v := range tc.header {
			c.header[k] = v
		}
		r := c.post("/admin/ui/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}})
		mustRedirect(t, tc.name+": password", r, "/admin/ui/login/verify")
		raw := r.Header.Get("Set-Cookie")
		cookies := (&http.Response{Header: r.Header}).Cookies()
		if len(cookies) != 1 {
			t.Fatalf("%s: Set-Cookie %q, want one cookie", tc.name, r.Header.Values("Set-Cookie"))
		}
		ck := cookies[0]
		if ck.Name != tc.wantName || ck.Secure != tc.wantSecure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
			t.Errorf("%s: cookie %q = name %s secure %v httponly %v samesite %v path %q; want %s secure %v httponly, Strict, /",
				tc.name, raw, ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite, ck.Path, tc.wantName, tc.wantSecure)
		}
		r = c.post("/admin/ui/login/verify", url.Values{"code": {e.code(secret)}})
		mustRedirect(t, tc.name+": code", r, "/admin/ui/users")
		e.clock.Advance(30 * time.Second)
		ck = c.jar[tc.wantName]
		if ck == nil {
			t.Fatalf("%s: no cookie after sign-in", tc.name)
		}
		// The value is sealed: no JWT (three base64 parts, "eyJ…") in it.
		if strings.Contains(ck.Value, "eyJ") || strings.Count(ck.Value, ".") >= 2 {
			t.Errorf("%s: cookie value looks like it holds a token in the clear: %q", tc.name, ck.Value)
		}
		mustStatus(t, tc.name+": users", c.get("/admin/ui/users"), http.StatusOK)
		// Sign out clears it.
		r = c.post("/admin/ui/logout", nil)
		mustRedirect(t, tc.name+": logout", r, "/admin/ui/login?signed_out=1")
		if len(c.jar) != 0 {
			t.Errorf("%s: cookies left after sign-out: %v", tc.name, c.jar)
		}
	}
}

// TestNonAdminRefused: a user without the admin role who signs in, with or
// without a second factor, sees only a refusal and is signed out.
func TestNonAdminRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, true)
		e.register("ada@example.com", auth.RoleAdmin)
		e.register("carol@example.com", auth.RoleUser)
		e.register("dave@example.com", auth.RoleUser)
		daveSecret := e.enrolTOTP("dave@example.com")

		for name, secret := range map[string][]byte{"carol@example.com": nil, "dave@example.com": daveSecret} {
			c := e.client()
			r := c.signIn(name, secret)
			mustStatus(t, name+" signs in", r, http.StatusForbidden)
			mustContain(t, name+" refusal", r, "Not an administrator", name)
			for _, other := range []string{"ada@example.com", "carol@example.com", "dave@example.com"} {
				if other != name && strings.Contains(r.Body, other) {
					t.Errorf("%s refusal names %s:\n%s", name, other, r.Body)
				}
			}
			if len(c.jar) != 0 {
				t.Errorf("%s keeps cookies after refusal: %v", name, c.jar)
			}
			mustRedirect(t, name+" then opens users", c.get("/admin/ui/users"), "/admin/ui/login")
		}
		// The refused sessions were revoked: only the ones made by
		// enrolTOTP for dave remain, and the panel's were logged out.
		ev, err := e.svc.AuditEvents(t.Context(), adminPrincipal(t, e), auth.AuditQuery{Type: auth.EventSessionRevoked})
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Events) < 2 {
			t.Errorf("session.revoked events = %d, want the two refused sign-ins", len(ev.Events))
		}
	})
}

// adminPrincipal signs in a fresh administrator through the service, for
// checks the panel does not show.
func adminPrincipal(t *testing.T, e *env) auth.Principal {
	t.Helper()
	email := "checker" + strings.ReplaceAll(e.clock.Now().Format("150405.000000"), ".", "") + "@example.com"
	e.register(email, auth.RoleAdmin)
	secret := e.enrolTOTP(email)
	res, err := e.svc.Login(t.Context(), auth.LoginInput{Login: email, Password: testPassword}, auth.RequestMeta{})
	if err != nil || res.Challenge == nil {
		t.Fatalf("Login(%s) = %+v, %v", email, res, err)
	}
	tok, err := e.svc.VerifyChallenge(t.Context(), res.Challenge.Token, auth.MethodAuthenticator, e.code(secret), auth.RequestMeta{})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	p, err := e.svc.Authenticate(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEnrolment: an administrator without a second factor is walked
// through setting one up, then gets backup codes and the panel.
func TestEnrolment(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, true)
		e.register("ada@example.com", auth.RoleAdmin)
		c := e.client()
		mustRedirect(t, "password", c.signIn("ada@example.com", nil), "/admin/ui/enrol")
		mustRedirect(t, "users before enrolling", c.get("/admin/ui/users"), "/admin/ui/enrol")
		r := c.get("/admin/ui/enrol")
		mustStatus(t, "enrol intro", r, http.StatusOK)
		mustContain(t, "enrol intro", r, "Set up an authenticator app")
		mustRedirect(t, "start", c.post("/admin/ui/enrol", nil), "/admin/ui/enrol")
		r = c.get("/admin/ui/enrol")
		mustStatus(t, "QR page", r, http.StatusOK)
		checkSecurityHeaders(t, "QR page", r)
		mustContain(t, "QR page", r, `src="data:image/png;base64,`)
		m := secretPattern.FindStringSubmatch(r.Body)
		if m == nil {
			t.Fatalf("QR page shows no secret:\n%s", r.Body)
		}
		secret, err := totp.Decode(strings.ReplaceAll(m[1], " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		r = c.post("/admin/ui/enrol/confirm", url.Values{"code": {"000000"}})
		mustStatus(t, "wrong code", r, http.StatusUnauthorized)
		mustContain(t, "wrong code", r, "not right", m[1]) // the same secret again
		r = c.post("/admin/ui/enrol/confirm", url.Values{"code": {e.code(secret)}})
		mustStatus(t, "right code", r, http.StatusOK)
		mustContain(t, "backup codes", r, "Save your backup codes")
		if n := strings.Count(r.Body, "<li><code>"); n != 10 {
			t.Errorf("backup codes page lists %d codes, want 10", n)
		}
		mustStatus(t, "users after enrolling", c.get("/admin/ui/users"), http.StatusOK)
		mustRedirect(t, "enrol page after enrolling", c.get("/admin/ui/enrol"), "/admin/ui/users")
	})
}

// TestSecondFactorErrors: a wrong code is refused and can be retried; a
// backup code works; SMS codes can be asked for.
func TestSecondFactorErrors(t *testing.T) {
	e := newEnv(t, "sqlite", true)
	e.register("ada@example.com", auth.RoleAdmin)
	secret := e.enrolTOTP("ada@example.com")
	c := e.client()
	mustRedirect(t, "password", c.post("/admin/ui/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}}), "/admin/ui/login/verify")
	r := c.post("/admin/ui/login/verify", url.Values{"code": {"123456"}})
	if r.Status != http.StatusUnauthorized {
		// 123456 might be the right code once in a million runs.
		t.Skipf("wrong code answered %d", r.Status)
	}
	mustContain(t, "wrong code", r, "not right")
	mustRedirect(t, "right code", c.post("/admin/ui/login/verify", url.Values{"code": {e.code(secret)}}), "/admin/ui/users")

	r = c.post("/admin/ui/login", url.Values{"email": {"ada@example.com"}, "password": {"wrong password"}})
	mustStatus(t, "wrong password", r, http.StatusUnauthorized)
	mustContain(t, "wrong password", r, "not right", `value="ada@example.com"`)
}

// TestSettings: saving shows the stranded-users count; invalid and
// lock-out settings are refused with the form kept.
func TestSettings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, true)
		checker := adminPrincipal(t, e)
		c, _ := e.admin("ada@example.com")
		e.register("bob@example.com")
		e.enrolTOTP("bob@example.com")
		form := url.Values{
			"enabled": {"on"}, "sms": {"on"}, "call": {"on"}, "backup_codes": {"on"},
			"required_admin": {"on"}, "sudo_minutes": {"15"},
		}
		r := c.post("/admin/ui/settings", form)
		mustRedirect(t, "save", r, "/admin/ui/settings")
		r = c.get("/admin/ui/settings")
		mustContain(t, "after save", r, "Settings saved. 3 users have only a method that is now turned off", `name="sudo_minutes" value="15"`)
		if strings.Contains(r.Body, `name="authenticator" checked`) {
			t.Errorf("authenticator still ticked after turning it off")
		}
		// The message shows once.
		if r := c.get("/admin/ui/settings"); strings.Contains(r.Body, "Settings saved") {
			t.Errorf("flash shown twice")
		}
		st, err := e.svc.Settings(t.Context(), checker)
		if err != nil {
			t.Fatal(err)
		}
		if st.Authenticator || st.SudoMinutes != 15 || !st.SMS {
			t.Errorf("settings after save = %+v", st)
		}

		form.Set("sudo_minutes", "0")
		r = c.post("/admin/ui/settings", form)
		mustStatus(t, "sudo 0", r, http.StatusUnprocessableEntity)
		mustContain(t, "sudo 0", r, "must be 1 to 1440", `value="0"`)
		form.Set("sudo_minutes", "ten")
		mustStatus(t, "sudo ten", c.post("/admin/ui/settings", form), http.StatusUnprocessableEntity)

		r = c.post("/admin/ui/settings", url.Values{"required_admin": {"on"}, "sudo_minutes": {"10"}})
		mustStatus(t, "2FA off while required", r, http.StatusConflict)
		mustContain(t, "2FA off while required", r, "lock out")

		form = url.Values{"enabled": {"on"}, "authenticator": {"on"}, "sms": {"on"}, "call": {"on"}, "backup_codes": {"on"}, "required_admin": {"on"}, "sudo_minutes": {"10"}}
		mustRedirect(t, "save back", c.post("/admin/ui/settings", form), "/admin/ui/settings")
		mustContain(t, "after save back", c.get("/admin/ui/settings"), "No user is left with only a method that is turned off")
		mustContain(t, "audit", c.get("/admin/ui/audit?type=settings.changed"), "sudoMinutes: 10 → 15", "methods.authenticator: off → on")
	})
}

// TestUserActions: reset 2FA, sign out everywhere, disable and enable,
// each only after the confirmation step, each audited with the admin as
// actor.
func TestUserActions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, true)
		checker := adminPrincipal(t, e)
		c, _ := e.admin("ada@example.com")
		bob := e.register("bob@example.com")
		e.enrolTOTP("bob@example.com")
		base := "/admin/ui/users/" + bob.ID

		// A POST that did not come from the confirmation page only shows it.
		mustRedirect(t, "unconfirmed reset", c.post(base+"/reset-2fa", nil), base+"/reset-2fa")
		_, st, err := e.svc.AdminUser(t.Context(), checker, bob.ID)
		if err != nil || !st.Enabled {
			t.Fatalf("bob's 2FA after an unconfirmed reset = %+v, %v; want on", st, err)
		}

		mustRedirect(t, "reset", c.post(base+"/reset-2fa", url.Values{"confirm": {"yes"}}), base)
		r := c.get(base)
		mustContain(t, "after reset", r, "Two-step verification reset for bob@example.com; 1 session ended.", "No second factor is set up.")
		mustRedirect(t, "revoke", c.post(base+"/revoke-sessions", url.Values{"confirm": {"yes"}}), base)
		mustContain(t, "after revoke", c.get(base), "bob@example.com is signed out everywhere; no session was active.")
		mustRedirect(t, "disable", c.post(base+"/disable", url.Values{"confirm": {"yes"}}), base)
		mustContain(t, "after disable", c.get(base), "bob@example.com is disabled", "Enable account")
		mustContain(t, "list after disable", c.get("/admin/ui/users?query=bob"), "Disabled")
		mustRedirect(t, "enable", c.post(base+"/enable", url.Values{"confirm": {"yes"}}), base)
		mustContain(t, "after enable", c.get(base), "bob@example.com is enabled again.")

		// An administrator cannot disable themself.
		self := c.get("/admin/ui/users?query=ada")
		id := strings.Split(strings.Split(self.Body, `href="/admin/ui/users/`)[1], `"`)[0]
		mustRedirect(t, "disable self", c.post("/admin/ui/users/"+id+"/disable", url.Values{"confirm": {"yes"}}), "/admin/ui/users/"+id)
		mustContain(t, "after disable self", c.get("/admin/ui/users/"+id), "You cannot disable your own account.")

		r = c.get("/admin/ui/audit?user=bob%40example.com")
		mustContain(t, "bob's audit", r, "admin.twofa.reset", "session.revoked", "admin.user.disabled", "admin.user.enabled", "ada@example.com")
	})
}

// TestAuditExport: the CSV has the API's columns, every filtered event and
// is itself audited.
func TestAuditExport(t *testing.T) {
	e := newEnv(t, "sqlite", true)
	c, _ := e.admin("ada@example.com")
	e.register("=cmd@example.com")
	r := c.get("/admin/ui/audit/export.csv?type=user.registered")
	mustStatus(t, "export", r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") {
		t.Errorf("Content-Disposition = %q", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != "id,time,type,userId,actorId,ip,userAgent,detail" {
		t.Fatalf("export rows = %q, want a header and two registrations", rows)
	}
	mustContain(t, "audit after export", c.get("/admin/ui/audit?type=admin.audit.exported"), "admin.audit.exported", "type: user.registered")
}

// TestRefresh: when the access token expires the panel exchanges the
// refresh token, once, even for requests that race with the same cookie.
func TestRefresh(t *testing.T) {
	e := newEnv(t, "sqlite", true)
	c, _ := e.admin("ada@example.com")
	e.clock.Advance(16 * time.Minute)
	old := map[string]*http.Cookie{}
	for k, v := range c.jar {
		old[k] = v
	}
	var wg sync.WaitGroup
	results := make([]resp, 4)
	for i := range results {
		wg.Go(func() {
			cc := e.client()
			for k, v := range old {
				cc.jar[k] = v
			}
			results[i] = cc.get("/admin/ui/users")
		})
	}
	wg.Wait()
	for i, r := range results {
		mustStatus(t, "concurrent request "+string(rune('1'+i)), r, http.StatusOK)
		if r.Header.Get("Set-Cookie") == "" {
			t.Errorf("request %d after a refresh wrote no cookie", i+1)
		}
	}
	// The session is still live: no reuse was detected.
	mustStatus(t, "users after the refresh", c.get("/admin/ui/users"), http.StatusOK)
	mustStatus(t, "and again", c.get("/admin/ui/users"), http.StatusOK)

	// Past the panel's session life, it is over.
	e.clock.Advance(13 * time.Hour)
	mustRedirect(t, "after 13 hours", c.get("/admin/ui/users"), "/admin/ui/login")
}

package accountui_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/totp"
	"github.com/twostep-auth/twostep/internal/webui/webuitest"
)

// signInForCode signs a fresh account in through /login?return_to=appURL
// and returns the one-time code the browser is sent back with.
func (e *env) signInForCode(b *browser, email string) string {
	e.t.Helper()
	return e.signInForCodeWith(b, email, "")
}

// signInForCodeWith is signInForCode with extra query parameters (extra
// starts with &) on the sign-in link.
func (e *env) signInForCodeWith(b *browser, email, extra string) string {
	e.t.Helper()
	pw := e.register(email)
	p := b.get("/login?return_to=" + url.QueryEscape(appURL) + extra)
	mustStatus(e.t, "GET /login", p, http.StatusOK)
	mustContain(e.t, "GET /login", p, "app.example.com")
	p = b.signIn(email, pw)
	mustStatus(e.t, "POST /login", p, http.StatusSeeOther)
	if p.Location() != "/login/continue" {
		e.t.Fatalf("POST /login went to %q, want /login/continue", p.Location())
	}
	p = b.get("/login/continue")
	mustStatus(e.t, "GET /login/continue", p, http.StatusOK)
	target, err := url.Parse(continueTarget(e.t, p))
	if err != nil {
		e.t.Fatal(err)
	}
	if got := target.Scheme + "://" + target.Host + target.Path; got != appURL {
		e.t.Fatalf("continue target = %q, want %q", target, appURL)
	}
	code := target.Query().Get("code")
	if len(code) < 40 {
		e.t.Fatalf("continue target %q has no one-time code", target)
	}
	return code
}

// exchange posts a code to the JSON exchange endpoint.
func (e *env) exchange(code string) (int, map[string]any) {
	return e.exchangeWith(map[string]string{"code": code})
}

// exchangeWith posts body to the JSON exchange endpoint.
func (e *env) exchangeWith(req map[string]string) (int, map[string]any) {
	body, _ := json.Marshal(req)
	res, err := http.Post(e.srv.URL+"/authentication/exchange", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Errorf("POST /authentication/exchange: %v", err)
		return 0, nil
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func TestSignInReturnsToAppWithOneTimeCode(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	code := e.signInForCode(b, "ada@example.com")

	status, m := e.exchange(code)
	if status != http.StatusOK {
		t.Fatalf("exchange = %d %v, want 200", status, m)
	}
	access, _ := m["accessToken"].(string)
	p, err := e.svc.Authenticate(context.Background(), access)
	if err != nil {
		t.Fatalf("Authenticate(exchanged access token) = %v", err)
	}
	if p.User.Email != "ada@example.com" {
		t.Errorf("exchanged token is for %q, want ada@example.com", p.User.Email)
	}
	if u, _ := m["user"].(map[string]any); u["email"] != "ada@example.com" {
		t.Errorf("exchange user = %v, want ada@example.com", m["user"])
	}
	if status, m := e.exchange(code); status != http.StatusUnauthorized || m["error"].(map[string]any)["code"] != "invalid_code" {
		t.Errorf("second exchange = %d %v, want 401 invalid_code", status, m)
	}

	// Signed in already: the next /login?return_to= goes straight back.
	pg := b.get("/login?return_to=" + url.QueryEscape(appURL+"/next?state=xyz"))
	mustStatus(t, "GET /login signed in", pg, http.StatusSeeOther)
	loc, err := url.Parse(pg.Location())
	if err != nil || loc.Host != "app.example.com" || loc.Query().Get("state") != "xyz" || loc.Query().Get("code") == "" {
		t.Fatalf("GET /login signed in went to %q, want the app with state and code", pg.Location())
	}
}

func TestExchangeIsSingleUseUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	code := e.signInForCode(e.browser(), "ada@example.com")
	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i], _ = e.exchange(code)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Errorf("exchange answered %d, want 200 or 401", s)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent exchanges of one code succeeded, want exactly 1 (%v)", ok, n, statuses)
	}
}

func TestExchangeRefusesExpiredAndUnknownCodes(t *testing.T) {
	e := newEnv(t)
	code := e.signInForCode(e.browser(), "ada@example.com")
	e.clock.Advance(auth.HandoffTTL + time.Second)
	if status, _ := e.exchange(code); status != http.StatusUnauthorized {
		t.Errorf("exchange after %s = %d, want 401", auth.HandoffTTL, status)
	}
	for _, c := range []string{"nope", strings.Repeat("x", 300)} {
		if status, _ := e.exchange(c); status != http.StatusUnauthorized {
			t.Errorf("exchange(%.10q…) = %d, want 401", c, status)
		}
	}
	res, err := http.Post(e.srv.URL+"/authentication/exchange", "application/json", strings.NewReader(`{"code":7}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("exchange with a number = %d, want 400", res.StatusCode)
	}
}

func TestExchangeRefusesCodeOfSignedOutBrowser(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	code := e.signInForCode(b, "ada@example.com")
	b.post("/logout", nil, nil)
	if status, _ := e.exchange(code); status != http.StatusUnauthorized {
		t.Errorf("exchange after the browser signed out = %d, want 401", status)
	}
}

// wantLinkRefused checks that a sign-in link is refused: signed out, the
// page says so and the sign-in stays on twostep; signed in, the same link
// answers 400 and goes nowhere.
func (e *env) wantLinkRefused(t *testing.T, email, pw, link string) {
	t.Helper()
	b := e.browser()
	b.t = t
	p := b.get(link)
	mustStatus(t, "GET /login", p, http.StatusOK)
	mustContain(t, "GET /login", p, "does not allow")
	p = b.signIn(email, pw)
	if p.Location() != "/account/security" {
		t.Fatalf("sign-in through %q went to %q, want /account/security", link, p.Location())
	}
	p = b.get(link)
	mustStatus(t, "GET /login signed in", p, http.StatusBadRequest)
	if p.Location() != "" {
		t.Fatalf("GET /login signed in redirected to %q", p.Location())
	}
}

func TestOpenRedirectsRefused(t *testing.T) {
	bad := []string{
		"//evil.example/x",
		"https://evil.example/auth/callback",
		"javascript:alert(1)",
		"JavaScript://app.example.com/%0aalert(1)",
		"data:text/html,hi",
		`https:\\evil.example`,
		`https://app.example.com\@evil.example/auth/callback`,
		"https://app.example.com@evil.example/auth/callback",
		"https://user:pw@app.example.com/auth/callback",
		"https://app.example.com:8443/auth/callback",
		"http://app.example.com/auth/callback",
		"https://app.example.com.evil.example/auth/callback",
		"https://app.example.com/other",
		"https://app.example.com/auth/callbackx",
		"https://app.example.com/auth/callback/../../admin",
		"https://app.example.com/auth/callback/%2e%2e/admin",
		"https://app.example.com/auth/callback%2f..%2fadmin",
		"https://app.example.com/auth/callback?code=planted",
		"https://app.example.com/auth/callback#frag",
		"https://app.example.com/auth/callback\t",
		" https://app.example.com/auth/callback",
		"/auth/callback",
		"app.example.com/auth/callback",
		"https:app.example.com/auth/callback",
		"https:/app.example.com/auth/callback",
		"http://localhost:5174/",
	}
	e := newEnv(t)
	pw := e.register("ada@example.com")
	for _, raw := range bad {
		t.Run(raw, func(t *testing.T) {
			e.wantLinkRefused(t, "ada@example.com", pw, "/login?return_to="+url.QueryEscape(raw))
		})
	}
	good := []string{appURL, appURL + "/deeper?state=1", "https://APP.example.com:443/auth/callback", "http://localhost:5173/anything"}
	for _, raw := range good {
		b := e.browser()
		b.get("/login?return_to=" + url.QueryEscape(raw))
		p := b.signIn("ada@example.com", pw)
		if p.Location() != "/login/continue" {
			t.Errorf("sign-in with allowed return_to %q went to %q, want /login/continue", raw, p.Location())
		}
	}
}

func TestCrossOriginPostsRefused(t *testing.T) {
	e := newEnv(t)
	pw := e.register("ada@example.com")
	b := e.browser()
	for _, h := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Origin": {"https://evil.example"}},
	} {
		p := b.post("/login", url.Values{"login": {"ada@example.com"}, "password": {pw}}, h)
		mustStatus(t, "cross-origin POST /login", p, http.StatusForbidden)
		mustContain(t, "cross-origin POST /login", p, "came from another site")
	}
	p := b.signIn("ada@example.com", pw)
	mustStatus(t, "same-origin POST /login", p, http.StatusSeeOther)
	p = b.post("/account/security/sessions/revoke", nil, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	mustStatus(t, "cross-origin POST sign out others", p, http.StatusForbidden)
	p = b.post("/logout", nil, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {e.srv.URL}})
	mustStatus(t, "same-origin POST /logout", p, http.StatusSeeOther)
}

func TestSecurityHeadersOnEveryPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/login", "/signup", "/login/phone", "/account/security", "/account/nope", "/account/static/style.css", "/account/static/app.js"} {
		p := b.get(path)
		webuitest.CheckSecurityHeaders(t, "GET "+path, p.Header)
	}
	p := b.get("/login")
	if strings.Contains(p.Body, "<script>") || strings.Contains(p.Body, " style=") || strings.Contains(p.Body, "onclick") {
		t.Errorf("GET /login has inline script or style:\n%s", p.Body)
	}
	if p := b.get("/account/static/"); p.Status != http.StatusNotFound {
		t.Errorf("GET /account/static/ = %d, want 404 (no listing)", p.Status)
	}
}

func TestCookieFlags(t *testing.T) {
	e := newEnv(t)
	pw := e.register("ada@example.com")
	signIn := func(host, remote string, tls bool) *http.Cookie {
		t.Helper()
		form := url.Values{"login": {"ada@example.com"}, "password": {pw}}
		req := httptest.NewRequest(http.MethodPost, "http://"+host+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = remote
		if tls {
			req = httptest.NewRequest(http.MethodPost, "https://"+host+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = remote
		}
		rec := httptest.NewRecorder()
		e.srv.Config.Handler.ServeHTTP(rec, req)
		cookies := rec.Result().Cookies()
		if rec.Code != http.StatusSeeOther || len(cookies) != 1 {
			t.Fatalf("POST /login on %s = %d with %d cookies, want 303 and one cookie", host, rec.Code, len(cookies))
		}
		return cookies[0]
	}
	for _, tt := range []struct {
		host, remote string
		tls          bool
		name         string
		secure       bool
	}{
		{"auth.example.com", "203.0.113.9:4000", true, "__Host-twostep-account", true},
		{"auth.example.com", "203.0.113.9:4000", false, "__Host-twostep-account", true},
		{"localhost:3000", "203.0.113.9:4000", false, "__Host-twostep-account", true},
		{"127.0.0.1:3000", "127.0.0.1:4000", false, "twostep-account", false},
		{"localhost:3000", "[::1]:4000", false, "twostep-account", false},
	} {
		c := signIn(tt.host, tt.remote, tt.tls)
		if c.Name != tt.name || c.Secure != tt.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie on %s from %s = %+v, want %s, Secure %v, HttpOnly, SameSite=Lax, Path=/ and no Domain", tt.host, tt.remote, c, tt.name, tt.secure)
		}
	}
	// The cookie is sealed: neither the session id nor a token shows.
	b := e.browser()
	b.signIn("ada@example.com", pw)
	u, _ := url.Parse(e.srv.URL)
	cookies := b.client.Jar.Cookies(u)
	if len(cookies) != 1 {
		t.Fatalf("jar holds %d cookies, want 1", len(cookies))
	}
	events, err := e.svc.RecentEvents(context.Background(), mustPrincipal(t, e, b), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if id, _ := ev.Detail["session_id"].(string); id != "" && strings.Contains(cookies[0].Value, id) {
			t.Errorf("cookie %q shows the session id %q", cookies[0].Value, id)
		}
	}
	if strings.Count(cookies[0].Value, ".") >= 2 || strings.Contains(cookies[0].Value, "eyJ") {
		t.Errorf("cookie %q looks like it holds a JWT", cookies[0].Value)
	}
}

// mustPrincipal signs in through the service as the browser's user would,
// for reading their data.
func mustPrincipal(t *testing.T, e *env, b *browser) auth.Principal {
	t.Helper()
	res, err := e.svc.Login(context.Background(), auth.LoginInput{Login: "ada@example.com", Password: "correct horse battery"}, auth.RequestMeta{})
	if err != nil || res.Tokens == nil {
		t.Fatalf("Login = %+v, %v", res, err)
	}
	p, err := e.svc.Authenticate(context.Background(), res.Tokens.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	secretPattern = regexp.MustCompile(`data-secret="([A-Z2-7]+)"`)
	sealedPattern = regexp.MustCompile(`name="enrolment" value="([^"]+)"`)
	codePattern   = regexp.MustCompile(`<code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code>`)
)

// enableAuthenticator turns on an authenticator through the pages and
// returns its secret and the backup codes shown.
func (e *env) enableAuthenticator(b *browser) ([]byte, []string) {
	e.t.Helper()
	p := b.post("/account/security/authenticator", url.Values{"label": {"Phone"}}, nil)
	mustStatus(e.t, "start authenticator", p, http.StatusOK)
	mustContain(e.t, "start authenticator", p, `src="data:image/png;base64,`, `autocomplete="one-time-code"`, `inputmode="numeric"`)
	m := secretPattern.FindStringSubmatch(p.Body)
	if m == nil {
		e.t.Fatalf("enrolment page shows no secret:\n%s", p.Body)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1])
	if err != nil {
		e.t.Fatal(err)
	}
	sealed := sealedPattern.FindStringSubmatch(p.Body)[1]
	code := totp.Code(secret, e.clock.Now(), totp.Options{})
	p = b.post("/account/security/authenticator/confirm", url.Values{"code": {code}, "enrolment": {sealed}}, nil)
	mustStatus(e.t, "confirm authenticator", p, http.StatusOK)
	var codes []string
	for _, c := range codePattern.FindAllStringSubmatch(p.Body, -1) {
		codes = append(codes, c[1])
	}
	if len(codes) != 10 {
		e.t.Fatalf("backup codes page shows %d codes, want 10:\n%s", len(codes), p.Body)
	}
	mustContain(e.t, "backup codes", p, `download="twostep-test-backup-codes.txt"`, `href="data:text/plain;charset=utf-8,`)
	return secret, codes
}

func TestSecondStepMessages(t *testing.T) {
	e := newEnv(t)
	pw := e.register("ada@example.com")
	b := e.browser()
	b.signIn("ada@example.com", pw)
	secret, codes := e.enableAuthenticator(b)
	b.post("/logout", nil, nil)

	p := b.signIn("ada@example.com", pw)
	if p.Location() != "/login/verify" {
		t.Fatalf("password with 2FA went to %q, want /login/verify", p.Location())
	}
	p = b.get("/login/verify")
	mustContain(t, "second step", p, "Code from your authenticator app", `autocomplete="one-time-code"`, "Use a backup code")

	p = b.post("/login/verify", url.Values{"method": {"authenticator"}, "code": {"000000"}}, nil)
	mustStatus(t, "wrong code", p, http.StatusUnauthorized)
	mustContain(t, "wrong code", p, "That code is not right", `aria-invalid="true"`)

	// The challenge dies after 5 wrong codes: start again.
	for range 4 {
		p = b.post("/login/verify", url.Values{"method": {"authenticator"}, "code": {"000000"}}, nil)
	}
	p = b.post("/login/verify", url.Values{"method": {"authenticator"}, "code": {"000000"}}, nil)
	if p.Location() != "/login" {
		t.Fatalf("sixth code went to %q, want /login", p.Location())
	}
	mustContain(t, "challenge out of attempts", b.get("/login"), "Too many wrong codes for this sign-in")

	// Expiry.
	b.signIn("ada@example.com", pw)
	e.clock.Advance(e.cfg.ChallengeTTL + time.Second)
	p = b.post("/login/verify", url.Values{"method": {"authenticator"}, "code": {totp.Code(secret, e.clock.Now(), totp.Options{})}}, nil)
	if p.Location() != "/login" {
		t.Fatalf("code after expiry went to %q, want /login", p.Location())
	}
	mustContain(t, "expired challenge", b.get("/login"), "expired after 5 minutes")

	// Lockout: 10 wrong codes in a row across challenges.
	for range 2 {
		b.signIn("ada@example.com", pw)
		for range 5 {
			p = b.post("/login/verify", url.Values{"method": {"authenticator"}, "code": {"000000"}}, nil)
		}
	}
	b.signIn("ada@example.com", pw)
	p = b.post("/login/verify", url.Values{"method": {"backup"}, "code": {codes[0]}}, nil)
	mustStatus(t, "locked", p, http.StatusTooManyRequests)
	mustContain(t, "locked", p, "locked for 15 minutes")

	e.clock.Advance(16 * time.Minute)
	b.signIn("ada@example.com", pw)
	p = b.post("/login/verify", url.Values{"method": {"backup"}, "code": {strings.ToLower(codes[0])}}, nil)
	if p.Location() != "/account/security" {
		t.Fatalf("backup code went to %q, want /account/security", p.Location())
	}
	p = b.get("/account/security")
	mustContain(t, "after backup code", p, "You used a backup code: 9 backup codes left", "<strong>9</strong> unused backup codes")
}

func TestSMSSecondStep(t *testing.T) {
	e := newEnv(t)
	pw := e.register("ada@example.com")
	b := e.browser()
	b.signIn("ada@example.com", pw)
	p := b.post("/account/security/sms", url.Values{"phone": {"+1 (415) 555-2671"}, "label": {"Text message"}}, nil)
	mustStatus(t, "add sms", p, http.StatusOK)
	mustContain(t, "add sms", p, "+1******2671", `autocomplete="one-time-code"`, `inputmode="numeric"`)
	msg, ok := e.sms.Last("+14155552671")
	if !ok {
		t.Fatal("no enrolment text sent")
	}
	p = b.post("/account/security/sms/confirm", url.Values{"code": {msg.Code}}, nil)
	mustStatus(t, "confirm sms", p, http.StatusOK)
	mustContain(t, "confirm sms", p, "Save your backup codes")
	b.post("/logout", nil, nil)

	// The first method is SMS: the code goes out with the password step.
	e.clock.Advance(31 * time.Second)
	p = b.signIn("ada@example.com", pw)
	if p.Location() != "/login/verify" {
		t.Fatalf("password went to %q, want /login/verify", p.Location())
	}
	p = b.get("/login/verify")
	mustContain(t, "sms step", p, "We sent a code to <strong>+1******2671</strong> by text message", "Send again", "Call me instead", `data-resend-in="30"`)
	first, _ := e.sms.Last("+14155552671")

	// Send again honours the cooldown.
	p = b.post("/login/send", url.Values{"method": {"sms"}}, nil)
	mustStatus(t, "send again at once", p, http.StatusTooManyRequests)
	mustContain(t, "send again at once", p, "You can ask for another in 30 seconds")

	e.clock.Advance(31 * time.Second)
	p = b.post("/login/send", url.Values{"method": {"call"}}, nil)
	if p.Location() != "/login/verify?method=call" {
		t.Fatalf("call me instead went to %q", p.Location())
	}
	call, _ := e.sms.Last("+14155552671")
	if call.Channel != "call" || call.Code == first.Code {
		t.Fatalf("call me instead sent %+v, want a new code by call", call)
	}
	mustContain(t, "after call", b.get("/login/verify?method=call"), "by a phone call")
	p = b.post("/login/verify", url.Values{"method": {"call"}, "code": {call.Code}}, nil)
	if p.Location() != "/account/security" {
		t.Fatalf("call code went to %q, want /account/security", p.Location())
	}
}

func TestSudoPrompt(t *testing.T) {
	e := newEnv(t)
	pw := e.register("ada@example.com")
	b := e.browser()
	b.signIn("ada@example.com", pw)
	secret, _ := e.enableAuthenticator(b)
	e.clock.Advance(11 * time.Minute)

	p := b.post("/account/security/disable", nil, nil)
	mustStatus(t, "disable without sudo", p, http.StatusForbidden)
	mustContain(t, "sudo prompt", p, "Confirm it is you", "turn off two-step verification", `action="/account/security/disable"`)

	p = b.post("/account/security/disable", url.Values{"sudo_code": {"123456"}}, nil)
	mustStatus(t, "wrong sudo code", p, http.StatusUnauthorized)

	code := totp.Code(secret, e.clock.Now(), totp.Options{})
	p = b.post("/account/security/disable", url.Values{"sudo_code": {code}}, nil)
	if p.Location() != "/account/security" {
		t.Fatalf("disable with a sudo code went to %q (%d)\n%s", p.Location(), p.Status, p.Body)
	}
	p = b.get("/account/security")
	mustContain(t, "after disable", p, "Two-step verification is off", "badge-off")
}

func TestEnrolmentRequiredSessionOnlyEnrols(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Register(context.Background(), auth.RegisterInput{Email: "root@example.com", Password: "correct horse battery", Roles: []string{auth.RoleAdmin}}, auth.RequestMeta{}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.get("/login?return_to=" + url.QueryEscape(appURL))
	p := b.signIn("root@example.com", "correct horse battery")
	if p.Location() != "/account/security" {
		t.Fatalf("enrolment-only sign-in went to %q, want /account/security", p.Location())
	}
	mustContain(t, "enrolment page", b.get("/account/security"), "must use two-step verification")
	if p := b.get("/login/continue"); p.Location() != "/account/security" {
		t.Fatalf("/login/continue before enrolment went to %q, want /account/security", p.Location())
	}
	if p := b.post("/account/security/sessions/revoke", nil, nil); p.Location() != "/account/security" {
		t.Fatalf("sign out others before enrolment went to %q, want /account/security", p.Location())
	}
	_, _ = e.enableAuthenticator(b)
	p = b.get("/login/continue")
	mustStatus(t, "continue after enrolment", p, http.StatusOK)
	if target := continueTarget(t, p); !strings.HasPrefix(target, appURL+"?code=") {
		t.Fatalf("continue target %q, want the app with a code", target)
	}
}

func TestSignupAndPhoneSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.post("/signup", url.Values{"email": {"not-an-email"}, "password": {"short"}}, nil)
	mustStatus(t, "bad sign-up", p, http.StatusBadRequest)
	mustContain(t, "bad sign-up", p, "Email is not a valid email address", `aria-invalid="true"`)

	p = b.post("/signup", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}}, nil)
	if p.Location() != "/account/security" {
		t.Fatalf("sign-up went to %q, want /account/security", p.Location())
	}
	mustContain(t, "after sign-up", b.get("/account/security"), "Your account is ready", "ada@example.com", "Account created")
	b.post("/logout", nil, nil)
	p = b.post("/signup", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}}, nil)
	mustStatus(t, "taken sign-up", p, http.StatusConflict)

	// Phone sign-up, then phone sign-in.
	b2 := e.browser()
	p = b2.post("/signup/phone", url.Values{"username": {"grace"}, "phone": {"+44 20 7946 0123"}}, nil)
	if p.Location() != "/login/phone/verify" {
		t.Fatalf("phone sign-up went to %q (%d)\n%s", p.Location(), p.Status, p.Body)
	}
	msg, _ := e.sms.Last("+442079460123")
	p = b2.post("/login/phone/verify", url.Values{"code": {msg.Code}}, nil)
	if p.Location() != "/account/security" {
		t.Fatalf("phone code went to %q, want /account/security", p.Location())
	}
	b2.post("/logout", nil, nil)
	e.clock.Advance(31 * time.Second)
	p = b2.post("/login/phone", url.Values{"phone": {"+442079460123"}}, nil)
	if p.Location() != "/login/phone/verify" {
		t.Fatalf("phone sign-in went to %q", p.Location())
	}
	p = b2.post("/login/phone/verify", url.Values{"code": {"000000"}}, nil)
	mustStatus(t, "wrong phone code", p, http.StatusUnauthorized)
	msg, _ = e.sms.Last("+442079460123")
	p = b2.post("/login/phone/verify", url.Values{"code": {msg.Code}}, nil)
	if p.Location() != "/account/security" {
		t.Fatalf("phone sign-in code went to %q", p.Location())
	}
	mustContain(t, "phone user", b2.get("/account/security"), "grace")
}

func TestSignOutOtherSessionsAndRename(t *testing.T) {
	e := newEnv(t)
	pw := e.register("ada@example.com")
	b1, b2 := e.browser(), e.browser()
	b1.signIn("ada@example.com", pw)
	b2.signIn("ada@example.com", pw)
	p := b1.post("/account/security/sessions/revoke", nil, nil)
	if p.Location() != "/account/security" {
		t.Fatalf("sign out others went to %q", p.Location())
	}
	mustContain(t, "after sign out others", b1.get("/account/security"), "Signed out 1 other session")
	if p := b2.get("/account/security"); p.Location() != "/login" {
		t.Fatalf("the other browser's security page went to %q, want /login", p.Location())
	}

	e.enableAuthenticator(b1)
	p = b1.get("/account/security")
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(p.Body)[1]
	b1.post("/account/security/methods/rename", url.Values{"id": {id}, "label": {"Work phone"}}, nil)
	mustContain(t, "after rename", b1.get("/account/security"), "Work phone", "The method was renamed")
	p = b1.post("/account/security/methods/rename", url.Values{"id": {"someone-elses"}, "label": {"x"}}, nil)
	mustContain(t, "rename unknown", b1.follow(p), "That no longer exists")
}

// TestPhoneSignupSendAgain: the code page of a phone sign-up can ask for a
// new code for the same sign-up, after the resend cooldown; too early it
// says so on the code page and sends nothing.
func TestPhoneSignupSendAgain(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	const phone = "+442079460123"
	p := b.post("/signup/phone", url.Values{"username": {"grace"}, "phone": {"+44 20 7946 0123"}}, nil)
	if p.Location() != "/login/phone/verify" {
		t.Fatalf("phone sign-up went to %q (%d)\n%s", p.Location(), p.Status, p.Body)
	}
	page := b.get("/login/phone/verify")
	mustContain(t, "code page", page, `action="/signup/phone"`, `name="username" value="grace"`, "Send again")
	first, _ := e.sms.Last(phone)

	p = b.post("/signup/phone", url.Values{"username": {"grace"}, "phone": {phone}}, nil)
	mustStatus(t, "send again at once", p, http.StatusTooManyRequests)
	mustContain(t, "send again at once", p, "Enter the code", "before asking for another code")
	if n := e.sms.Count(phone); n != 1 {
		t.Fatalf("%d texts after an early send-again, want 1", n)
	}

	e.clock.Advance(31 * time.Second)
	p = b.post("/signup/phone", url.Values{"username": {"grace"}, "phone": {phone}}, nil)
	if p.Location() != "/login/phone/verify" {
		t.Fatalf("send again went to %q (%d)\n%s", p.Location(), p.Status, p.Body)
	}
	if n := e.sms.Count(phone); n != 2 {
		t.Fatalf("%d texts after send-again, want 2", n)
	}
	second, _ := e.sms.Last(phone)
	if second.Code == first.Code {
		t.Skip("the two random codes happen to be equal")
	}
	p = b.post("/login/phone/verify", url.Values{"code": {second.Code}}, nil)
	if p.Location() != "/account/security" {
		t.Fatalf("the new code went to %q, want /account/security", p.Location())
	}
	mustContain(t, "new account", b.get("/account/security"), "grace")
}

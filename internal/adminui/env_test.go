package adminui_test

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/adminui"
	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/httpapi"
	"github.com/twostep-auth/twostep/internal/password"
	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/sms/smstest"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
	"github.com/twostep-auth/twostep/internal/token"
	"github.com/twostep-auth/twostep/internal/totp"
)

// clock is a settable time source shared by the service, the panel and the
// test. It runs with real time from its start, offset by what Advance adds,
// so that screenshots show a believable date.
type clock struct {
	mu     sync.Mutex
	base   time.Time
	start  time.Time
	offset time.Duration
	frozen bool
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.base.Add(c.offset)
	}
	return c.base.Add(time.Since(c.start) + c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// env is the whole server (API and panel) over a real database.
type env struct {
	t     *testing.T
	db    *sqlstore.DB
	svc   *auth.Service
	h     http.Handler
	clock *clock
	sms   *smstest.Recorder
}

// testParams are cheap argon2id settings.
var testParams = password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// newEnv builds an env on engine. A frozen clock starts at a fixed
// instant; otherwise it follows real time.
func newEnv(t *testing.T, engine string, frozen bool) *env {
	t.Helper()
	ctx := t.Context()
	db := sqltest.Open(t, engine)
	key, err := seal.GenerateKey(rand.Reader, "k1")
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{base: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), start: time.Now(), frozen: frozen}
	if !frozen {
		clk.base = time.Now().UTC()
	}
	logger := slog.New(slog.DiscardHandler)
	cfg := auth.Config{
		Issuer: "twostep", AccessTTL: 15 * time.Minute, RefreshTTL: 720 * time.Hour,
		ChallengeTTL: 5 * time.Minute, SudoTTL: 10 * time.Minute, ChallengeMaxAttempts: 5,
		LockoutThreshold: 10, LockoutDuration: 15 * time.Minute,
		LoginFreeFailures: 5, LoginMaxFailures: 100, LoginMaxDelay: 15 * time.Minute,
		SMS: auth.SMSConfig{
			CodeTTL: 5 * time.Minute, ResendCooldown: 30 * time.Second, HourlyLimit: 5, MaxAttempts: 5,
			Template: "Your {issuer} code is {code}", Host: "twostep.example", CallEnabled: true,
		},
	}
	tokens := token.NewKeyring(db, sealer, token.Options{Issuer: "twostep", Audience: "twostep", AccessTTL: cfg.AccessTTL, Logger: logger})
	if err := tokens.Load(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	backupKey := make([]byte, 32)
	_, _ = rand.Read(backupKey)
	smsKey := make([]byte, 32)
	_, _ = rand.Read(smsKey)
	recorder := &smstest.Recorder{}
	svc, err := auth.NewService(auth.Deps{
		Store: db, Passwords: password.NewHasher(testParams, 4), Tokens: tokens, Sealer: sealer,
		BackupKey: backupKey, SMSKey: smsKey, SMS: recorder, Logger: logger, Now: clk.Now,
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cookieKey := make([]byte, 32)
	_, _ = rand.Read(cookieKey)
	ui, err := adminui.New(logger, svc, cookieKey, adminui.Options{Meta: httpapi.RequestMeta, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.NewServer(logger, httpapi.Options{MaxBodyBytes: 64 << 10, Ready: db.Ping, AdminUI: ui}, svc, tokens, httpapi.NewMetrics())
	return &env{t: t, db: db, svc: svc, h: h, clock: clk, sms: recorder}
}

const testPassword = "correct horse battery"

// register creates an account with roles.
func (e *env) register(email string, roles ...string) auth.User {
	e.t.Helper()
	u, err := e.svc.Register(e.t.Context(), auth.RegisterInput{Email: email, Password: testPassword, Roles: roles}, auth.RequestMeta{IP: "203.0.113.9", UserAgent: "seed"})
	if err != nil {
		e.t.Fatalf("Register(%q) = %v", email, err)
	}
	return u
}

// enrolTOTP gives email an authenticator and returns its secret. The
// clock moves on a step, so the next code is a new one.
func (e *env) enrolTOTP(email string) []byte {
	e.t.Helper()
	ctx := e.t.Context()
	meta := auth.RequestMeta{IP: "203.0.113.9", UserAgent: "seed"}
	res, err := e.svc.Login(ctx, auth.LoginInput{Login: email, Password: testPassword}, meta)
	if err != nil || res.Tokens == nil {
		e.t.Fatalf("Login(%q) = %+v, %v; want tokens", email, res, err)
	}
	p, err := e.svc.Authenticate(ctx, res.Tokens.AccessToken)
	if err != nil {
		e.t.Fatal(err)
	}
	enr, err := e.svc.EnableAuthenticator(ctx, p, "Phone", "", meta)
	if err != nil {
		e.t.Fatal(err)
	}
	secret, err := totp.Decode(enr.Secret)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.ConfirmEnrollment(ctx, p, auth.MethodAuthenticator, e.code(secret), meta); err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(30 * time.Second)
	return secret
}

// code is the authenticator code for secret now.
func (e *env) code(secret []byte) string { return totp.Code(secret, e.clock.Now(), totp.Options{}) }

// resp is a recorded answer.
type resp struct {
	Status int
	Header http.Header
	Body   string
}

func (r resp) Location() string { return r.Header.Get("Location") }

// client is a browser talking to env: it keeps cookies and sends what a
// same-origin browser sends.
type client struct {
	e      *env
	host   string // Host header; default admin.example.com
	remote string // peer address; default 192.0.2.1:1234
	https  bool
	jar    map[string]*http.Cookie
	// header is added to every request.
	header http.Header
}

func (e *env) client() *client {
	return &client{e: e, host: "admin.example.com", remote: "192.0.2.1:1234", https: true, jar: map[string]*http.Cookie{}, header: http.Header{}}
}

func (c *client) do(method, path string, form url.Values, header http.Header) resp {
	c.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	scheme := "http"
	if c.https {
		scheme = "https"
	}
	req := httptest.NewRequest(method, scheme+"://"+c.host+path, body)
	req.RemoteAddr = c.remote
	if !c.https {
		req.TLS = nil
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "adminui-test/1.0")
	if method == http.MethodPost {
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", scheme+"://"+c.host)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	for _, ck := range c.jar {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	c.e.h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.jar, ck.Name)
		} else {
			c.jar[ck.Name] = ck
		}
	}
	out := resp{Status: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
	if out.Status >= 500 {
		c.e.t.Errorf("%s %s = %d, want no 5xx; body:\n%s", method, path, out.Status, out.Body)
	}
	return out
}

func (c *client) get(path string) resp {
	c.e.t.Helper()
	return c.do(http.MethodGet, path, nil, nil)
}

func (c *client) post(path string, form url.Values) resp {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return c.do(http.MethodPost, path, form, nil)
}

// mustStatus fails the test unless r has status want.
func mustStatus(t testing.TB, what string, r resp, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s = %d, want %d; body:\n%s", what, r.Status, want, r.Body)
	}
}

// mustRedirect fails the test unless r is a 303 to a location starting
// with want.
func mustRedirect(t testing.TB, what string, r resp, want string) {
	t.Helper()
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location(), want) {
		t.Fatalf("%s = %d to %q, want 303 to %s; body:\n%s", what, r.Status, r.Location(), want, r.Body)
	}
}

// mustContain fails the test unless the body holds every text.
func mustContain(t testing.TB, what string, r resp, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(r.Body, s) {
			t.Fatalf("%s: body does not contain %q:\n%s", what, s, r.Body)
		}
	}
}

// signIn signs c in as email with password and, when secret is not nil, an
// authenticator code; it returns the last answer (a redirect into the
// panel, or a refusal).
func (c *client) signIn(email string, secret []byte) resp {
	c.e.t.Helper()
	r := c.post("/admin/ui/login", url.Values{"email": {email}, "password": {testPassword}})
	if secret == nil {
		return r
	}
	mustRedirect(c.e.t, "password step of "+email, r, "/admin/ui/login/verify")
	mustStatus(c.e.t, "verify page", c.get("/admin/ui/login/verify"), http.StatusOK)
	return c.post("/admin/ui/login/verify", url.Values{"code": {c.e.code(secret)}})
}

// admin makes an administrator with an authenticator and a client signed
// in as them.
func (e *env) admin(email string) (*client, []byte) {
	e.t.Helper()
	e.register(email, auth.RoleAdmin)
	secret := e.enrolTOTP(email)
	c := e.client()
	mustRedirect(e.t, "sign in "+email, c.signIn(email, secret), "/admin/ui/users")
	return c, secret
}

var secretPattern = regexp.MustCompile(`<code>([A-Z2-7 ]{20,})</code>`)

package accountui_test

import (
	"context"
	"crypto/rand"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/accountui"
	"github.com/twostep-auth/twostep/internal/apispec"
	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/httpapi"
	"github.com/twostep-auth/twostep/internal/password"
	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/sms/smstest"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
	"github.com/twostep-auth/twostep/internal/token"
)

// clock is real time plus an offset the test may advance, shared by the
// service, the pages and the test (a real browser computes nothing from
// it; the test computes TOTP codes from it).
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// appURL is the application the tests' return_to allow-list names.
const appURL = "https://app.example.com/auth/callback"

// env is a twostep server over a real SQLite database, with the hosted
// pages mounted in the real router and a recording SMS provider.
type env struct {
	t     *testing.T
	svc   *auth.Service
	srv   *httptest.Server
	clock *clock
	sms   *smstest.Recorder
	cfg   auth.Config
}

// envSettings are what options change.
type envSettings struct {
	cfg     auth.Config
	returns []string
}

type envOption func(*envSettings)

// withReturnURL allows one more return_to URL.
func withReturnURL(u string) envOption {
	return func(s *envSettings) { s.returns = append(s.returns, u) }
}

func newEnv(t *testing.T, options ...envOption) *env {
	t.Helper()
	st := envSettings{returns: []string{appURL, "http://localhost:5173/"}}
	st.cfg = auth.Config{
		Issuer: "twostep-test", AccessTTL: 15 * time.Minute, RefreshTTL: 720 * time.Hour,
		ChallengeTTL: 5 * time.Minute, SudoTTL: 10 * time.Minute, ChallengeMaxAttempts: 5,
		LockoutThreshold: 10, LockoutDuration: 15 * time.Minute,
		LoginFreeFailures: 5, LoginMaxFailures: 100, LoginMaxDelay: 15 * time.Minute,
		SMS: auth.SMSConfig{
			CodeTTL: 5 * time.Minute, ResendCooldown: 30 * time.Second, HourlyLimit: 5, MaxAttempts: 5,
			Template: "Your {issuer} code is {code}", Host: "twostep.example", CallEnabled: true,
		},
	}
	for _, o := range options {
		o(&st)
	}
	cfg := st.cfg
	ctx := context.Background()
	db := sqltest.Open(t, "sqlite")
	key, err := seal.GenerateKey(rand.Reader, "k1")
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	logger := slog.New(slog.DiscardHandler)
	tokens := token.NewKeyring(db, sealer, token.Options{Issuer: "twostep-test", Audience: "twostep-test", AccessTTL: cfg.AccessTTL, Logger: logger})
	if err := tokens.Load(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	recorder := &smstest.Recorder{}
	svc, err := auth.NewService(auth.Deps{
		Store: db, Passwords: password.NewHasher(password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 4),
		Tokens: tokens, Sealer: sealer, BackupKey: randomKey(t), SMSKey: randomKey(t), SMS: recorder, Logger: logger, Now: clk.Now,
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ui, err := accountui.New(logger, svc, randomKey(t), accountui.Options{
		Meta: httpapi.RequestMeta, AllowedReturnURLs: st.returns, Name: "twostep-test", Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.NewServer(logger, httpapi.Options{
		MaxBodyBytes: 64 << 10, OpenAPI: apispec.Document(), Ready: db.Ping, AccountUI: ui,
	}, svc, tokens, httpapi.NewMetrics())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, svc: svc, srv: srv, clock: clk, sms: recorder, cfg: cfg}
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// register makes an account through the service and returns its password.
func (e *env) register(email string) string {
	e.t.Helper()
	pw := "correct horse battery"
	if _, err := e.svc.Register(context.Background(), auth.RegisterInput{Email: email, Password: pw}, auth.RequestMeta{}); err != nil {
		e.t.Fatalf("Register(%q) = %v", email, err)
	}
	return pw
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each one.
type browser struct {
	t      *testing.T
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{t: e.t, e: e, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is a recorded answer.
type page struct {
	Status int
	Header http.Header
	Body   string
}

// Location is the redirect target, relative to the server.
func (p page) Location() string { return p.Header.Get("Location") }

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{Status: res.StatusCode, Header: res.Header, Body: string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form; header adds request headers (may be nil).
func (b *browser) post(path string, form url.Values, header http.Header) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range header {
		req.Header[k] = vs
	}
	return b.do(req)
}

// follow GETs redirects from p until a page answers.
func (b *browser) follow(p page) page {
	b.t.Helper()
	for i := 0; p.Status == http.StatusSeeOther || p.Status == http.StatusFound; i++ {
		if i > 10 {
			b.t.Fatal("too many redirects")
		}
		loc := p.Location()
		if !strings.HasPrefix(loc, "/") {
			b.t.Fatalf("redirect to %q leaves the server", loc)
		}
		p = b.get(loc)
	}
	return p
}

// signIn submits the password form.
func (b *browser) signIn(login, pw string) page {
	b.t.Helper()
	return b.post("/login", url.Values{"login": {login}, "password": {pw}}, nil)
}

var refreshTarget = regexp.MustCompile(`<meta http-equiv="refresh" content="0; url=([^"]+)">`)

// continueTarget returns the URL a /login/continue page sends the browser
// to.
func continueTarget(t *testing.T, p page) string {
	t.Helper()
	m := refreshTarget.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("continue page has no refresh target:\n%s", p.Body)
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

// mustStatus fails the test unless p has status want.
func mustStatus(t *testing.T, what string, p page, want int) {
	t.Helper()
	if p.Status != want {
		t.Fatalf("%s = %d (Location %q), want %d\n%s", what, p.Status, p.Location(), want, p.Body)
	}
}

// mustContain fails the test unless p's body contains every s.
func mustContain(t *testing.T, what string, p page, s ...string) {
	t.Helper()
	text := html.UnescapeString(p.Body)
	for _, x := range s {
		if !strings.Contains(p.Body, x) && !strings.Contains(text, x) {
			t.Fatalf("%s: page does not contain %q:\n%s", what, x, p.Body)
		}
	}
}

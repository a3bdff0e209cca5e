package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/apispec"
	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/httpapi"
	"github.com/twostep-auth/twostep/internal/password"
	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
	"github.com/twostep-auth/twostep/internal/token"
)

// clock is a settable time source shared by the service and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one server over a real database, driven through the real router.
type env struct {
	t      *testing.T
	engine string
	db     *sqlstore.DB
	sealer *seal.Keyring
	svc    *auth.Service
	tokens *token.Keyring
	h      http.Handler
	clock  *clock
	cfg    auth.Config
	spec   *apispec.Validator
	// remoteAddr is the peer address of requests (default 192.0.2.1:1234).
	remoteAddr string
}

type envOption func(*envSettings)

type envSettings struct {
	cfg     auth.Config
	opts    httpapi.Options
	params  password.Params
	logTo   io.Writer
	startAt time.Time
}

func withConfig(f func(*auth.Config)) envOption { return func(s *envSettings) { f(&s.cfg) } }
func withOptions(f func(*httpapi.Options)) envOption {
	return func(s *envSettings) { f(&s.opts) }
}
func withPasswordParams(p password.Params) envOption { return func(s *envSettings) { s.params = p } }

// testParams are cheap argon2id settings for tests that are not about the
// hash's cost.
var testParams = password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

var specOnce = sync.OnceValues(apispec.NewValidator)

func newEnv(t *testing.T, engine string, options ...envOption) *env {
	t.Helper()
	st := envSettings{
		cfg: auth.Config{
			Issuer: "twostep-test", AccessTTL: 15 * time.Minute, RefreshTTL: 720 * time.Hour,
			ChallengeTTL: 5 * time.Minute, SudoTTL: 10 * time.Minute, ChallengeMaxAttempts: 5,
			LockoutThreshold: 10, LockoutDuration: 15 * time.Minute,
			LoginFreeFailures: 5, LoginMaxFailures: 100, LoginMaxDelay: 15 * time.Minute, LoginIPLimit: 0,
		},
		opts:    httpapi.Options{MaxBodyBytes: 64 << 10},
		params:  testParams,
		startAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
	}
	for _, o := range options {
		o(&st)
	}
	ctx := context.Background()
	db := sqltest.Open(t, engine)
	key, err := seal.GenerateKey(rand.Reader, "k1")
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: st.startAt}
	logger := slog.New(slog.DiscardHandler)
	tokens := token.NewKeyring(db, sealer, token.Options{Issuer: "twostep-test", Audience: "twostep-test", AccessTTL: st.cfg.AccessTTL, Logger: logger})
	if err := tokens.Load(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	backupKey := make([]byte, 32)
	_, _ = rand.Read(backupKey)
	svc, err := auth.NewService(auth.Deps{
		Store: db, Passwords: password.NewHasher(st.params, 4), Tokens: tokens, Sealer: sealer,
		BackupKey: backupKey, Logger: logger, Now: clk.Now,
	}, st.cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.opts.OpenAPI = apispec.Document()
	if st.opts.Ready == nil {
		st.opts.Ready = db.Ping
	}
	h := httpapi.NewServer(logger, st.opts, svc, tokens, httpapi.NewMetrics())
	spec, err := specOnce()
	if err != nil {
		t.Fatalf("apispec.NewValidator() = %v", err)
	}
	return &env{t: t, engine: engine, db: db, sealer: sealer, svc: svc, tokens: tokens, h: h, clock: clk, cfg: st.cfg, spec: spec, remoteAddr: "192.0.2.1:1234"}
}

// forEachEngine runs fn as a parallel subtest on every engine the machine
// offers (SQLite always; PostgreSQL when configured).
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	t.Helper()
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, engine)
		})
	}
}

// resp is a recorded answer.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r resp) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// Str returns a top-level string field.
func (r resp) Str(t *testing.T, key string) string {
	t.Helper()
	s, _ := r.JSON(t)[key].(string)
	return s
}

// ErrCode returns error.code of an error answer.
func (r resp) ErrCode(t *testing.T) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

type request struct {
	method, path, token string
	body                any // string and []byte are sent raw; anything else as JSON
	header              http.Header
}

// do sends a request through the real handler and checks the answer
// against the OpenAPI document.
func (e *env) do(r request) resp {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(r.method, r.path, body)
	req.RemoteAddr = e.remoteAddr
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	out := resp{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if out.Status >= 500 {
		e.t.Errorf("%s %s = %d %s, want no 5xx", r.method, r.path, out.Status, out.Body)
	}
	if err := e.spec.ValidateResponse(r.method, r.path, out.Status, out.Header, out.Body); err != nil {
		e.t.Errorf("%s %s answer does not match openapi.json: %v\nbody: %s", r.method, r.path, err, out.Body)
	}
	return out
}

func (e *env) post(path, token string, body any) resp {
	e.t.Helper()
	return e.do(request{method: http.MethodPost, path: path, token: token, body: body})
}

func (e *env) get(path, token string) resp {
	e.t.Helper()
	return e.do(request{method: http.MethodGet, path: path, token: token})
}

// mustStatus fails the test unless r has status want.
func mustStatus(t *testing.T, what string, r resp, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s = %d %s, want %d", what, r.Status, r.Body, want)
	}
}

// register creates an account and returns its password.
func (e *env) register(email string) string {
	e.t.Helper()
	pw := "correct horse battery"
	r := e.post("/authentication/local/new", "", map[string]any{"email": email, "password": pw})
	mustStatus(e.t, "register "+email, r, http.StatusCreated)
	return pw
}

// login signs in and returns the answer's JSON.
func (e *env) login(email, pw string) map[string]any {
	e.t.Helper()
	r := e.post("/authentication/local", "", map[string]any{"email": email, "password": pw})
	mustStatus(e.t, "login "+email, r, http.StatusOK)
	return r.JSON(e.t)
}

// signup registers and logs in, returning access and refresh tokens.
func (e *env) signup(email string) (access, refresh string) {
	e.t.Helper()
	pw := e.register(email)
	m := e.login(email, pw)
	return m["accessToken"].(string), m["refreshToken"].(string)
}

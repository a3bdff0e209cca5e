package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/twostep-auth/twostep/internal/sms/smstest"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
	"github.com/twostep-auth/twostep/internal/token"
	"github.com/twostep-auth/twostep/internal/totp"
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
	t      *testing.T // nil in an env shared by fuzz iterations: see withT
	engine string
	db     *sqlstore.DB
	sealer *seal.Keyring
	svc    *auth.Service
	tokens *token.Keyring
	h      http.Handler
	clock  *clock
	cfg    auth.Config
	spec   *apispec.Validator
	// sms records every text and call the service sends.
	sms *smstest.Recorder
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

// withLogs sends the service's and the server's logs to w, as JSON lines
// at debug level; w must be safe for concurrent writes.
func withLogs(w io.Writer) envOption { return func(s *envSettings) { s.logTo = w } }

// testParams are cheap argon2id settings for tests that are not about the
// hash's cost.
var testParams = password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

var specOnce = sync.OnceValues(apispec.NewValidator)

// newEnv builds an env on engine. t is the test's *testing.T, or a
// *testing.F whose iterations take the env with withT.
func newEnv(t testing.TB, engine string, options ...envOption) *env {
	t.Helper()
	st := envSettings{
		cfg: auth.Config{
			Issuer: "twostep-test", AccessTTL: 15 * time.Minute, RefreshTTL: 720 * time.Hour,
			ChallengeTTL: 5 * time.Minute, SudoTTL: 10 * time.Minute, ChallengeMaxAttempts: 5,
			LockoutThreshold: 10, LockoutDuration: 15 * time.Minute,
			LoginFreeFailures: 5, LoginMaxFailures: 100, LoginMaxDelay: 15 * time.Minute, LoginIPLimit: 0,
			SMS: auth.SMSConfig{
				CodeTTL: 5 * time.Minute, ResendCooldown: 30 * time.Second, HourlyLimit: 5, MaxAttempts: 5,
				Template: "Your {issuer} code is {code}", Host: "twostep.example", CallEnabled: true,
			},
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
	if st.logTo != nil {
		logger = slog.New(slog.NewJSONHandler(st.logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tokens := token.NewKeyring(db, sealer, token.Options{Issuer: "twostep-test", Audience: "twostep-test", AccessTTL: st.cfg.AccessTTL, Logger: logger})
	if err := tokens.Load(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	backupKey := make([]byte, 32)
	_, _ = rand.Read(backupKey)
	smsKey := make([]byte, 32)
	_, _ = rand.Read(smsKey)
	recorder := &smstest.Recorder{}
	metrics := httpapi.NewMetrics()
	svc, err := auth.NewService(auth.Deps{
		Store: db, Passwords: password.NewHasher(st.params, 4), Tokens: tokens, Sealer: sealer,
		BackupKey: backupKey, SMSKey: smsKey, SMS: recorder, SMSMetrics: metrics, Logger: logger, Now: clk.Now,
	}, st.cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.opts.OpenAPI = apispec.Document()
	if st.opts.Ready == nil {
		st.opts.Ready = db.Ping
	}
	h := httpapi.NewServer(logger, st.opts, svc, tokens, metrics)
	spec, err := specOnce()
	if err != nil {
		t.Fatalf("apispec.NewValidator() = %v", err)
	}
	tt, _ := t.(*testing.T)
	return &env{t: tt, engine: engine, db: db, sealer: sealer, svc: svc, tokens: tokens, h: h, clock: clk, cfg: st.cfg, spec: spec, sms: recorder, remoteAddr: "192.0.2.1:1234"}
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
func (r resp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// Str returns a top-level string field.
func (r resp) Str(t testing.TB, key string) string {
	t.Helper()
	s, _ := r.JSON(t)[key].(string)
	return s
}

// ErrCode returns error.code of an error answer.
func (r resp) ErrCode(t testing.TB) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

type request struct {
	method, path, token string
	body                any // string and []byte are sent raw; anything else as JSON
	header              http.Header
	remoteAddr          string // default env.remoteAddr
	allow5xx            bool   // a 5xx is what the test expects (/readyz)
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
	if r.remoteAddr != "" {
		req.RemoteAddr = r.remoteAddr
	}
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
	if out.Status >= 500 && !r.allow5xx {
		e.t.Errorf("%s %s = %d %s, want no 5xx", r.method, r.path, out.Status, out.Body)
	}
	err := e.spec.ValidateResponse(r.method, r.path, out.Status, out.Header, out.Body)
	if errors.Is(err, apispec.ErrUnknownPath) || errors.Is(err, apispec.ErrUnknownMethod) {
		// Not in the document: the only fitting answers are the JSON 404
		// and 405 of the contract's error shape.
		err = checkFallback(r, out, err)
	}
	if err != nil {
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
// atOnce makes n calls of fn, released together, and returns their answers
// in call order.
func atOnce(n int, fn func(i int) resp) []resp {
	out := make([]resp, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

func mustStatus(t testing.TB, what string, r resp, want int) {
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

// errorShape is the contract's error body.
type errorShape struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkFallback accepts an answer to a method and path the document does not
// list only if it is the JSON 404 (unknown path) or 405 (known path, other
// method, with Allow) in the contract's error shape.
func checkFallback(r request, out resp, specErr error) error {
	want := http.StatusNotFound
	if errors.Is(specErr, apispec.ErrUnknownMethod) {
		want = http.StatusMethodNotAllowed
	}
	if out.Status != want {
		return fmt.Errorf("%w; answered %d, want %d", specErr, out.Status, want)
	}
	if ct := out.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("%s %s: Content-Type %q, want application/json", r.method, r.path, ct)
	}
	var eb errorShape
	if err := json.Unmarshal(out.Body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		return fmt.Errorf("%s %s: body %q is not a JSON error (%v)", r.method, r.path, out.Body, err)
	}
	if want == http.StatusMethodNotAllowed && out.Header.Get("Allow") == "" {
		return fmt.Errorf("%s %s: 405 without an Allow header", r.method, r.path)
	}
	return nil
}

// countRows returns the number of rows in table.
func (e *env) countRows(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.SQL().QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// storedTables are the tables a bad request must leave as they were.
var storedTables = []string{"users", "sessions", "refresh_tokens", "challenges", "factors", "backup_codes"}

// snapshot counts the rows of every table in storedTables.
func (e *env) snapshot() map[string]int {
	e.t.Helper()
	m := make(map[string]int, len(storedTables))
	for _, table := range storedTables {
		m[table] = e.countRows(table)
	}
	return m
}

// mustErr fails the test unless r is an error answer with status and code.
func mustErr(t testing.TB, what string, r resp, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s = %d %s, want %d %s", what, r.Status, r.Body, status, code)
	}
	var eb errorShape
	if err := json.Unmarshal(r.Body, &eb); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", what, r.Body, err)
	}
	if eb.Error.Code != code {
		t.Fatalf("%s = %d %s, want error code %q", what, r.Status, r.Body, code)
	}
}

// enableAuthenticator enrols and confirms an authenticator for the holder of
// access through the API and returns its secret.
func (e *env) enableAuthenticator(access string) []byte {
	e.t.Helper()
	r := e.post("/authentication/twoFa/enable", access, map[string]any{"method": "authenticator"})
	mustStatus(e.t, "enable authenticator", r, http.StatusOK)
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(r.Str(e.t, "secret")))
	if err != nil {
		e.t.Fatalf("enable authenticator: secret %q: %v", r.Str(e.t, "secret"), err)
	}
	code := totp.Code(secret, e.clock.Now(), totp.Options{})
	r = e.post("/authentication/twoFa/enable/verify", access, map[string]any{"code": code})
	mustStatus(e.t, "confirm authenticator", r, http.StatusOK)
	return secret
}

// loginChallenge registers email with an authenticator and returns the
// challenge token a password login then answers.
func (e *env) loginChallenge(email string) string {
	e.t.Helper()
	pw := e.register(email)
	m := e.login(email, pw)
	e.enableAuthenticator(m["accessToken"].(string))
	r := e.post("/authentication/local", "", map[string]any{"email": email, "password": pw})
	mustStatus(e.t, "login with 2FA", r, http.StatusOK)
	m = r.JSON(e.t)
	tok, _ := m["challengeToken"].(string)
	if m["twoFaRequired"] != true || tok == "" {
		e.t.Fatalf("login with 2FA = %s, want twoFaRequired and a challengeToken", r.Body)
	}
	return tok
}

// withT returns a copy of e that reports to t (for an env built once with
// a *testing.F and used by every fuzz iteration).
func (e *env) withT(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// environ is a fake getenv over vars, with cheap password hashing and JSON
// logs unless vars says otherwise.
func environ(vars map[string]string) func(string) string {
	all := map[string]string{
		"TWOSTEP_LOG_FORMAT":        "json",
		"TWOSTEP_ARGON2_MEMORY_KIB": "64",
		"TWOSTEP_ARGON2_ITERATIONS": "1",
		"TWOSTEP_ARGON2_ALLOW_WEAK": "true",
	}
	for k, v := range vars {
		all[k] = v
	}
	return func(k string) string { return all[k] }
}

// databaseVars returns a fresh database on engine and the variables that
// point twostep at it (with an encryption key on PostgreSQL).
func databaseVars(t *testing.T, engine string) map[string]string {
	t.Helper()
	vars := map[string]string{"TWOSTEP_DATABASE_URL": sqltest.URL(t, engine)}
	if engine == sqlstore.EnginePostgres {
		vars["TWOSTEP_ENCRYPTION_KEY"] = newEncryptionKey(t)
	}
	return vars
}

func newEncryptionKey(t *testing.T) string {
	t.Helper()
	k, err := seal.GenerateKey(rand.Reader, "k1")
	if err != nil {
		t.Fatal(err)
	}
	return seal.FormatKeys(k)
}

// server is a running "twostep serve".
type server struct {
	url    string
	stderr *syncBuffer
	stop   func() error // cancels ctx and returns what run returned
}

// startServe runs "twostep serve -addr 127.0.0.1:0" and waits until it
// answers /healthz.
func startServe(t *testing.T, getenv func(string) string) *server {
	t.Helper()
	return launchServe(t, getenv).wait(t)
}

// launching is a "twostep serve" started by launchServe that may not listen
// yet.
type launching struct {
	ctx    context.Context
	stderr *syncBuffer
	errc   chan error
	stop   func() error
}

// launchServe starts "twostep serve -addr 127.0.0.1:0" and returns at once,
// so that several servers can start side by side; wait for each with wait.
func launchServe(t *testing.T, getenv func(string) string) *launching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"twostep", "serve", "-addr", "127.0.0.1:0"}, getenv, strings.NewReader(""), io.Discard, stderr)
	}()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(20 * time.Second):
				runErr = errors.New("serve did not return within 20s of ctx ending")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &launching{ctx: ctx, stderr: stderr, errc: errc, stop: stop}
}

// wait waits until the server logs its address and answers /healthz.
func (l *launching) wait(t *testing.T) *server {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var url string
	for url == "" {
		select {
		case err := <-l.errc:
			t.Fatalf("serve ended before listening: %v\nstderr:\n%s", err, l.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"twostep listening\" log line within 20s; stderr:\n%s", l.stderr.String())
		}
		url = listenAddr(t, l.stderr.String())
		if url == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s/healthz did not answer 200 within 20s (last error %v)", url, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &server{url: url, stderr: l.stderr, stop: l.stop}
}

// listenAddr finds the address in the JSON "twostep listening" log line.
func listenAddr(t *testing.T, logs string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			if strings.Contains(sc.Text(), "twostep listening") {
				t.Fatalf("the listening log line is not JSON: %s", sc.Text())
			}
			continue
		}
		if line.Msg == "twostep listening" {
			if !strings.HasPrefix(line.Addr, "http://127.0.0.1:") {
				t.Fatalf("listening addr = %q, want http://127.0.0.1:port", line.Addr)
			}
			return line.Addr
		}
	}
	return ""
}

// call sends a JSON request and decodes the JSON answer.
func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	r, err := tryCall(http.DefaultClient, method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return r.status, r.body
}

// answer is a decoded JSON answer.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// tryCall is call for any goroutine: it reports what went wrong instead of
// failing the test.
func tryCall(client *http.Client, method, url, token string, body any) (answer, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return answer{}, fmt.Errorf("%s %s = %d %q, want JSON", method, url, resp.StatusCode, raw)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: m}, nil
}

func mustCall(t *testing.T, want int, method, url, token string, body any) map[string]any {
	t.Helper()
	status, m := call(t, method, url, token, body)
	if status != want {
		t.Fatalf("%s %s = %d %v, want %d", method, url, status, m, want)
	}
	return m
}

const testPassword = "correct horse battery"

func TestServeEndToEnd(t *testing.T) {
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			vars := databaseVars(t, engine)
			if engine == sqlstore.EnginePostgres {
				if err := run(t.Context(), []string{"twostep", "migrate"}, environ(vars), nil, io.Discard, io.Discard); err != nil {
					t.Fatalf("migrate = %v", err)
				}
			}
			getenv := environ(vars)
			srv := startServe(t, getenv)
			base := srv.url + "/authentication"

			created := mustCall(t, http.StatusCreated, http.MethodPost, base+"/local/new", "", map[string]any{"email": "ada@example.com", "password": testPassword})
			if u, _ := created["user"].(map[string]any); u["email"] != "ada@example.com" {
				t.Fatalf("register = %v", created)
			}
			login := mustCall(t, http.StatusOK, http.MethodPost, base+"/local", "", map[string]any{"email": "ada@example.com", "password": testPassword})
			access, _ := login["accessToken"].(string)
			refresh, _ := login["refreshToken"].(string)
			user := mustCall(t, http.StatusOK, http.MethodGet, base+"/user", access, nil)
			if u, _ := user["user"].(map[string]any); u["email"] != "ada@example.com" || !slices.Equal(toStrings(u["roles"]), []string{"user"}) {
				t.Fatalf("user = %v", user)
			}
			renewed := mustCall(t, http.StatusOK, http.MethodPost, base+"/renew", "", map[string]any{"refreshToken": refresh})
			kept := renewed["accessToken"].(string)
			other := mustCall(t, http.StatusOK, http.MethodPost, base+"/local", "", map[string]any{"email": "ada@example.com", "password": testPassword})
			mustCall(t, http.StatusOK, http.MethodPost, base+"/logout", other["accessToken"].(string), nil)
			mustCall(t, http.StatusUnauthorized, http.MethodGet, base+"/user", other["accessToken"].(string), nil)

			if err := srv.stop(); err != nil {
				t.Fatalf("serve after ctx ended = %v, want nil (graceful shutdown)", err)
			}
			if _, err := http.Get(srv.url + "/healthz"); err == nil {
				t.Errorf("the server still answers after shutdown")
			}
			logs := srv.stderr.String()
			for _, secret := range []string{testPassword, access, refresh, kept, renewed["refreshToken"].(string)} {
				if strings.Contains(logs, secret) {
					t.Errorf("the logs contain a password or token")
				}
			}
			if engine == sqlstore.EngineSQLite {
				if !strings.Contains(logs, "encryption key") {
					t.Errorf("no log line about the encryption key made on first start:\n%s", logs)
				}
				dir := filepath.Dir(strings.TrimPrefix(vars["TWOSTEP_DATABASE_URL"], "sqlite://"))
				if keys, _ := filepath.Glob(filepath.Join(dir, "*.key")); len(keys) != 1 {
					t.Errorf("key files beside the database = %v, want one", keys)
				}
			}

			// A restart keeps the signing key (in the database, sealed with
			// the key file or TWOSTEP_ENCRYPTION_KEY): tokens stay valid.
			srv = startServe(t, getenv)
			mustCall(t, http.StatusOK, http.MethodGet, srv.url+"/authentication/user", kept, nil)
			if strings.Contains(srv.stderr.String(), "created an encryption key") {
				t.Errorf("the restart made a new encryption key")
			}
			if err := srv.stop(); err != nil {
				t.Fatalf("second serve after ctx ended = %v, want nil", err)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestServeReportsEveryBadVariable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	getenv := environ(map[string]string{
		"TWOSTEP_DATABASE_URL":     "sqlite://" + filepath.Join(dir, "twostep.db"),
		"TWOSTEP_ACCESS_TOKEN_TTL": "banana",
		"TWOSTEP_LOG_FORMAT":       "xml",
		"TWOSTEP_MAX_BODY_BYTES":   "lots",
	})
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"twostep", "serve", "-addr", "127.0.0.1:0"}, getenv, nil, &stdout, &stderr)
	if err == nil {
		t.Fatal("serve with bad variables = nil, want an error")
	}
	for _, name := range []string{"TWOSTEP_ACCESS_TOKEN_TTL", "TWOSTEP_LOG_FORMAT", "TWOSTEP_MAX_BODY_BYTES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("serve error %q does not name %s", err, name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "twostep.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve with a bad configuration created the database (stat: %v)", err)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"twostep", "version"}, environ(nil), nil, &stdout, io.Discard); err != nil {
		t.Fatalf("version = %v", err)
	}
	if got := stdout.String(); got != "twostep "+version+"\n" {
		t.Errorf("version printed %q, want %q", got, "twostep "+version+"\n")
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-h"},
		{"serve", "-h"},
		{"migrate", "-h"},
		{"admin", "-h"},
		{"admin", "create", "-h"},
	} {
		var stdout, stderr bytes.Buffer
		// No database variable: help must not touch a database.
		err := run(t.Context(), append([]string{"twostep"}, args...), environ(map[string]string{"TWOSTEP_DATABASE_URL": "postgres://nowhere.invalid/x"}), nil, &stdout, &stderr)
		if err != nil {
			t.Errorf("twostep %v = %v, want nil", args, err)
		}
		out := stdout.String() + stderr.String()
		if !strings.Contains(out, "Usage") {
			t.Errorf("twostep %v printed %q, want a usage text", args, out)
		}
		if args[0] == "serve" && !strings.Contains(out, "TWOSTEP_DATABASE_URL") {
			t.Errorf("twostep serve -h does not list the environment variables:\n%s", out)
		}
	}
	for _, args := range [][]string{{}, {"nonsense"}, {"admin"}, {"admin", "nonsense"}, {"serve", "-nonsense"}} {
		if err := run(t.Context(), append([]string{"twostep"}, args...), environ(nil), nil, io.Discard, io.Discard); err == nil {
			t.Errorf("twostep %v = nil, want an error", args)
		}
	}
}

func TestAdminCreate(t *testing.T) {
	t.Parallel()
	getenv := environ(databaseVars(t, sqlstore.EngineSQLite))
	admin := func(args ...string) (string, error) {
		var stdout bytes.Buffer
		err := run(t.Context(), append([]string{"twostep", "admin"}, args...), getenv, nil, &stdout, io.Discard)
		return stdout.String(), err
	}
	out, err := admin("create", "--email", "Root@Example.com", "--password", testPassword)
	if err != nil {
		t.Fatalf("admin create = %v", err)
	}
	if !strings.Contains(out, "root@example.com") {
		t.Errorf("admin create printed %q, want the account", out)
	}
	if _, err := admin("create", "--email", "root@example.com", "--password", testPassword); err == nil {
		t.Errorf("admin create of an existing email = nil, want an error")
	}
	if _, err := admin("create", "--email", "short@example.com", "--password", "short"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("admin create with a 5-byte password = %v, want an error about the password", err)
	}
	if _, err := admin("create", "--email", "nopw@example.com"); err == nil {
		t.Errorf("admin create without --password = nil, want an error")
	}

	srv := startServe(t, getenv)
	login := mustCall(t, http.StatusOK, http.MethodPost, srv.url+"/authentication/local", "", map[string]any{"email": "root@example.com", "password": testPassword})
	u, _ := login["user"].(map[string]any)
	if !slices.Equal(toStrings(u["roles"]), []string{"admin"}) {
		t.Errorf("login of the admin = %v, want user.roles [admin]", login)
	}
	mustCall(t, http.StatusUnauthorized, http.MethodPost, srv.url+"/authentication/local", "", map[string]any{"email": "short@example.com", "password": "short"})
}

func TestPostgresNeedsMigrate(t *testing.T) {
	t.Parallel()
	url := sqltest.URL(t, sqlstore.EnginePostgres)
	key := newEncryptionKey(t)
	getenv := environ(map[string]string{"TWOSTEP_DATABASE_URL": url, "TWOSTEP_ENCRYPTION_KEY": key})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"twostep", "serve", "-addr", "127.0.0.1:0"}, getenv, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "twostep migrate") {
		t.Fatalf("serve on an empty PostgreSQL database = %v, want an error that says to run \"twostep migrate\"", err)
	}
	if err := run(ctx, []string{"twostep", "serve", "-addr", "127.0.0.1:0"}, environ(map[string]string{"TWOSTEP_DATABASE_URL": url}), nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "TWOSTEP_ENCRYPTION_KEY") {
		t.Errorf("serve on PostgreSQL without TWOSTEP_ENCRYPTION_KEY = %v, want an error naming it", err)
	}

	var stdout bytes.Buffer
	if err := run(ctx, []string{"twostep", "migrate"}, getenv, nil, &stdout, io.Discard); err != nil {
		t.Fatalf("migrate = %v", err)
	}
	if !strings.Contains(stdout.String(), "applied") {
		t.Errorf("migrate printed %q, want the applied migrations", stdout.String())
	}
	stdout.Reset()
	if err := run(ctx, []string{"twostep", "migrate"}, getenv, nil, &stdout, io.Discard); err != nil {
		t.Fatalf("migrate again = %v", err)
	}
	if !strings.Contains(stdout.String(), "up to date") {
		t.Errorf("migrate again printed %q, want that the schema is up to date", stdout.String())
	}
	srv := startServe(t, getenv)
	mustCall(t, http.StatusCreated, http.MethodPost, srv.url+"/authentication/local/new", "", map[string]any{"email": "ada@example.com", "password": testPassword})
	if err := srv.stop(); err != nil {
		t.Fatalf("serve after migrate, at shutdown = %v", err)
	}
}

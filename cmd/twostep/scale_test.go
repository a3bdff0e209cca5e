package main

// Scale-out tests: several "twostep serve" instances in one test process
// over one PostgreSQL database and one Redis key space, as behind a load
// balancer, and what happens when Redis or PostgreSQL goes away and comes
// back. They need TWOSTEP_TEST_POSTGRES_URL and TWOSTEP_TEST_REDIS_URL (and
// redis-server on PATH for the outage test); without them they are skipped,
// or failed under TWOSTEP_TEST_REQUIRE_ALL=1.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twostep-auth/twostep/internal/sms/smstest"
	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
	"github.com/twostep-auth/twostep/internal/totp"
)

// redisURLEnv names the shared Redis of the test suite.
const redisURLEnv = "TWOSTEP_TEST_REDIS_URL"

// scaleHTTP bounds every request: a server that hangs on a store that went
// away must fail the test, not stall it.
var scaleHTTP = &http.Client{Timeout: 15 * time.Second}

// skipOrFail skips the test, or fails it under TWOSTEP_TEST_REQUIRE_ALL=1.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(sqltest.RequireAllEnv) == "1" {
		t.Fatalf(format+" and "+sqltest.RequireAllEnv+"=1", args...)
	}
	t.Skipf(format, args...)
}

// testRedisURL returns TWOSTEP_TEST_REDIS_URL after checking that it
// answers.
func testRedisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(redisURLEnv)
	if u == "" {
		skipOrFail(t, "%s is not set", redisURLEnv)
	}
	client := redisClient(t, u)
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("ping %s: %v", redisURLEnv, err)
	}
	return u
}

// redisClient is a client of the test's own, closed when the test ends.
func redisClient(t *testing.T, rawURL string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("parse redis url: %v", err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	return client
}

// redisPrefix returns a TWOSTEP_REDIS_PREFIX of the test's own, so that
// parallel tests sharing one Redis never see each other's counters, and
// deletes its keys when the test ends.
func redisPrefix(t *testing.T, rawURL string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	prefix := "twostep-test:" + hex.EncodeToString(b) + ":"
	client := redisClient(t, rawURL)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var keys []string
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
	})
	return prefix
}

// cluster is a set of twostep instances over one PostgreSQL database and
// one Redis key space, with a fake SMS provider that reads every code.
type cluster struct {
	t      *testing.T
	getenv func(string) string
	vars   map[string]string
	sms    *smstest.Server
	nodes  []*server
}

// clusterVars returns the variables of a fresh, migrated PostgreSQL
// database, the given Redis under a prefix of the test's own, and a fake SMS
// provider; extra overrides them.
func clusterVars(t *testing.T, redisURL string, smsSrv *smstest.Server, extra map[string]string) map[string]string {
	t.Helper()
	vars := databaseVars(t, sqlstore.EnginePostgres)
	maps.Copy(vars, map[string]string{
		"TWOSTEP_REDIS_URL":          redisURL,
		"TWOSTEP_REDIS_PREFIX":       redisPrefix(t, redisURL),
		"TWOSTEP_DATABASE_MAX_CONNS": "5", // parallel tests share PostgreSQL's 100 connections
		"TWOSTEP_SMS_PROVIDER":       "webhook",
		"TWOSTEP_WEBHOOK_URL":        smsSrv.URL + smstest.WebhookPath,
		"TWOSTEP_WEBHOOK_SECRET":     smstest.WebhookSecret,
		"TWOSTEP_ACCESS_LOG":         "false",
	})
	maps.Copy(vars, extra)
	if err := run(t.Context(), []string{"twostep", "migrate"}, environ(vars), nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("migrate = %v", err)
	}
	return vars
}

// newCluster starts n instances side by side (so that they also race to
// create the signing and HMAC keys of a fresh database).
func newCluster(t *testing.T, n int, redisURL string, extra map[string]string) *cluster {
	t.Helper()
	smsSrv := smstest.NewServer()
	t.Cleanup(smsSrv.Close)
	vars := clusterVars(t, redisURL, smsSrv, extra)
	c := &cluster{t: t, getenv: environ(vars), vars: vars, sms: smsSrv}
	var pending []*launching
	for range n {
		pending = append(pending, launchServe(t, c.getenv))
	}
	for _, p := range pending {
		c.nodes = append(c.nodes, p.wait(t))
	}
	return c
}

// do sends a request to a node and fails the test on a transport error.
func (c *cluster) do(node *server, method, path, token string, body any) answer {
	c.t.Helper()
	return doAt(c.t, node.url, method, path, token, body)
}

func doAt(t *testing.T, base, method, path, token string, body any) answer {
	t.Helper()
	r, err := tryCall(scaleHTTP, method, base+path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// must is do that also checks the status.
func (c *cluster) must(node *server, want int, method, path, token string, body any) map[string]any {
	c.t.Helper()
	r := c.do(node, method, path, token, body)
	if r.status != want {
		c.t.Fatalf("%s %s%s = %d %v, want %d", method, node.url, path, r.status, r.body, want)
	}
	return r.body
}

// errorCode returns the error code of a JSON error answer.
func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// smsCode waits for the nth text to phone and returns its code.
func (c *cluster) smsCode(phone string, n int) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
	defer cancel()
	m, err := c.sms.Wait(ctx, phone, n)
	if err != nil {
		c.t.Fatalf("text %d to %s: %v", n, phone, err)
	}
	if m.Code == "" {
		c.t.Fatalf("text %d to %s carries no code: %q", n, phone, m.Body)
	}
	return m.Code
}

// register creates an account with an email and testPassword through node.
func (c *cluster) register(node *server, email string) {
	c.t.Helper()
	c.must(node, http.StatusCreated, http.MethodPost, "/authentication/local/new", "", map[string]any{"email": email, "password": testPassword})
}

// login signs in with testPassword through node.
func (c *cluster) login(node *server, email string) map[string]any {
	c.t.Helper()
	return c.must(node, http.StatusOK, http.MethodPost, "/authentication/local", "", map[string]any{"email": email, "password": testPassword})
}

// authenticator is a user's authenticator app: it never offers a time step
// twice, as the server refuses any step not later than the last it took.
type authenticator struct {
	secret []byte
	last   int64
}

// next returns the code of the earliest step the server still takes: the
// current one, or the one after the last used (the server allows one step of
// skew each way). It waits when even that is too far ahead.
func (a *authenticator) next() string {
	for {
		now := totp.Step(time.Now(), totp.DefaultPeriod)
		step := max(a.last+1, now)
		if step <= now+1 {
			a.last = step
			return totp.HOTP(a.secret, uint64(step), totp.DefaultDigits, totp.SHA1)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wrong returns a code that matches no step near now.
func (a *authenticator) wrong() string {
	now := totp.Step(time.Now(), totp.DefaultPeriod)
	var near []string
	for s := now - 3; s <= now+3; s++ {
		near = append(near, totp.HOTP(a.secret, uint64(s), totp.DefaultDigits, totp.SHA1))
	}
	for i := 0; ; i++ {
		code := fmt.Sprintf("%06d", i)
		if !slices.Contains(near, code) {
			return code
		}
	}
}

// enrolAuthenticator adds an authenticator to the account of access
// through node and confirms it.
func (c *cluster) enrolAuthenticator(node *server, access string) *authenticator {
	c.t.Helper()
	m := c.must(node, http.StatusOK, http.MethodPost, "/authentication/twoFa/enable", access, map[string]any{"method": "authenticator"})
	secret, err := totp.Decode(m["secret"].(string))
	if err != nil {
		c.t.Fatalf("decode secret: %v", err)
	}
	a := &authenticator{secret: secret}
	c.must(node, http.StatusOK, http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": a.next(), "method": "authenticator"})
	return a
}

// challenge signs in with the password through node and returns the
// second-factor challenge token.
func (c *cluster) challenge(node *server, email string) string {
	c.t.Helper()
	m := c.login(node, email)
	tok, _ := m["challengeToken"].(string)
	if m["twoFaRequired"] != true || tok == "" {
		c.t.Fatalf("login of %s through %s = %v, want a 2FA challenge", email, node.url, m)
	}
	return tok
}

// TestScaleSMSAcrossInstances: a code texted through A is verified through
// B, and the send cooldown of a phone holds across instances.
func TestScaleSMSAcrossInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, testRedisURL(t), nil)
	a, b := c.nodes[0], c.nodes[1]

	// Enrol a phone as second factor: the code sent through A confirms it
	// through B.
	const phone = "+14155550101"
	c.register(a, "sms@example.com")
	access := c.login(a, "sms@example.com")["accessToken"].(string)
	c.must(a, http.StatusOK, http.MethodPost, "/authentication/twoFa/enable", access, map[string]any{"method": "sms", "phone": phone})
	code := c.smsCode(phone, 1)
	// The phone was texted moments ago through A: B knows.
	r := c.do(b, http.MethodPost, "/authentication/twoFa/enable", access, map[string]any{"method": "sms", "phone": phone})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Errorf("second send to %s through B within the cooldown = %d %v (Retry-After %q), want 429 with Retry-After", phone, r.status, r.body, r.header.Get("Retry-After"))
	}
	enabled := c.must(b, http.StatusOK, http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": code, "method": "sms"})
	if enabled["method"] != "sms" {
		t.Errorf("enable/verify through B = %v, want method sms", enabled)
	}
	// Used up: A refuses the same code again.
	if r := c.do(a, http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": code, "method": "sms"}); r.status == http.StatusOK {
		t.Errorf("the enrolment code replayed through A = 200 %v, want a refusal", r.body)
	}

	// Phone sign-up: the code sent through A signs in through B.
	const phone2 = "+14155550102"
	c.must(a, http.StatusAccepted, http.MethodPost, "/authentication/phone/new", "", map[string]any{"username": "bob", "phone": phone2})
	tokens := c.must(b, http.StatusOK, http.MethodPost, "/authentication/phone/verify", "", map[string]any{"phone": phone2, "code": c.smsCode(phone2, 1)})
	user := c.must(a, http.StatusOK, http.MethodGet, "/authentication/user", tokens["accessToken"].(string), nil)
	if u, _ := user["user"].(map[string]any); u["phone"] != phone2 || u["phoneVerified"] != true {
		t.Errorf("user after phone sign-up through A and B = %v, want phone %s verified", user, phone2)
	}
}

// TestScaleOneTOTPCodeOneLogin fires one TOTP code at A and B at once over
// many challenges: exactly one login.
func TestScaleOneTOTPCodeOneLogin(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, testRedisURL(t), nil)
	a := c.nodes[0]
	c.register(a, "race@example.com")
	auth := c.enrolAuthenticator(a, c.login(a, "race@example.com")["accessToken"].(string))

	const perNode = 10
	type shot struct {
		node      *server
		challenge string
	}
	var shots []shot
	for i := range 2 * perNode {
		node := c.nodes[i%2]
		shots = append(shots, shot{node, c.challenge(node, "race@example.com")})
	}
	code := auth.next()
	start := make(chan struct{})
	results := make([]answer, len(shots))
	errs := make([]error, len(shots))
	var wg sync.WaitGroup
	for i, s := range shots {
		wg.Go(func() {
			<-start
			results[i], errs[i] = tryCall(scaleHTTP, http.MethodPost, s.node.url+"/authentication/twoFa/verify", s.challenge, map[string]any{"code": code, "method": "authenticator"})
		})
	}
	close(start)
	wg.Wait()

	logins := 0
	statuses := map[int]int{}
	for i, r := range results {
		statuses[r.status]++
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		switch r.status {
		case http.StatusOK:
			logins++
			if r.body["accessToken"] == nil {
				t.Errorf("verify %d = 200 %v, want tokens", i, r.body)
			}
		case http.StatusUnauthorized, http.StatusTooManyRequests:
		default:
			t.Errorf("verify %d through %s = %d %v, want 200, 401 or 429", i, shots[i].node.url, r.status, r.body)
		}
	}
	if logins != 1 {
		t.Errorf("one TOTP code sent %d times at once through A and B gave %d logins, want exactly 1", len(shots), logins)
	}
	t.Logf("answers by status: %v", statuses)
}

// TestScaleLockoutAcrossInstances: wrong codes through A and B add up to one
// lockout.
func TestScaleLockoutAcrossInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, testRedisURL(t), nil)
	a, b := c.nodes[0], c.nodes[1]
	const email = "lock@example.com"
	c.register(a, email)
	auth := c.enrolAuthenticator(a, c.login(a, email)["accessToken"].(string))

	wrong := func(node *server, challenge string) answer {
		t.Helper()
		return c.do(node, http.MethodPost, "/authentication/twoFa/verify", challenge, map[string]any{"code": auth.wrong(), "method": "authenticator"})
	}
	// 5 wrong through A use up the first challenge.
	ch1 := c.challenge(a, email)
	for i := 1; i <= 5; i++ {
		if r := wrong(a, ch1); r.status != http.StatusUnauthorized || errorCode(r.body) != "invalid_code" {
			t.Fatalf("wrong code %d through A = %d %v, want 401 invalid_code", i, r.status, r.body)
		}
	}
	// 4 wrong through B on a second challenge.
	ch2 := c.challenge(b, email)
	for i := 6; i <= 9; i++ {
		if r := wrong(b, ch2); r.status != http.StatusUnauthorized || errorCode(r.body) != "invalid_code" {
			t.Fatalf("wrong code %d through B = %d %v, want 401 invalid_code", i, r.status, r.body)
		}
	}
	// The 10th, through A, locks.
	r := wrong(a, ch2)
	if r.status != http.StatusTooManyRequests || errorCode(r.body) != "rate_limited" {
		t.Fatalf("wrong code 10 (5 through A, 4 through B, this one through A) = %d %v, want 429 rate_limited", r.status, r.body)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 60 {
		t.Errorf("lockout Retry-After = %q, want the lock's remaining seconds (about 15 min)", r.header.Get("Retry-After"))
	}
	// B refuses the right code on a fresh challenge too.
	ch3 := c.challenge(b, email)
	r = c.do(b, http.MethodPost, "/authentication/twoFa/verify", ch3, map[string]any{"code": auth.next(), "method": "authenticator"})
	if r.status != http.StatusTooManyRequests {
		t.Errorf("right code through B while locked = %d %v, want 429", r.status, r.body)
	}
}

// TestScaleRevokedSessionEverywhere: a session revoked on A is refused on B
// at once.
func TestScaleRevokedSessionEverywhere(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, testRedisURL(t), nil)
	a, b := c.nodes[0], c.nodes[1]
	c.register(a, "rev@example.com")
	tokens := c.login(a, "rev@example.com")
	access, refresh := tokens["accessToken"].(string), tokens["refreshToken"].(string)
	c.must(b, http.StatusOK, http.MethodGet, "/authentication/user", access, nil)

	c.must(a, http.StatusOK, http.MethodPost, "/authentication/logout", access, nil)
	if r := c.do(b, http.MethodGet, "/authentication/user", access, nil); r.status != http.StatusUnauthorized {
		t.Errorf("GET /authentication/user through B right after logout through A = %d %v, want 401", r.status, r.body)
	}
	if r := c.do(b, http.MethodPost, "/authentication/renew", "", map[string]any{"refreshToken": refresh}); r.status != http.StatusUnauthorized {
		t.Errorf("renew through B after logout through A = %d %v, want 401", r.status, r.body)
	}
}

// TestScaleSettingsReachEveryInstance: settings changed on A apply on B
// within the reload interval (5 s).
func TestScaleSettingsReachEveryInstance(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, testRedisURL(t), nil)
	a, b := c.nodes[0], c.nodes[1]

	const admin = "root@example.com"
	if err := run(t.Context(), []string{"twostep", "admin", "create", "--email", admin, "--password", testPassword}, c.getenv, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("admin create = %v", err)
	}
	first := c.login(a, admin)
	if first["twoFaEnrollmentRequired"] != true {
		t.Fatalf("first login of the admin = %v, want twoFaEnrollmentRequired", first)
	}
	adminAccess := first["accessToken"].(string)
	c.enrolAuthenticator(a, adminAccess)

	c.register(a, "plain@example.com")
	enrolRequired := func(node *server) bool {
		t.Helper()
		return c.login(node, "plain@example.com")["twoFaEnrollmentRequired"] == true
	}
	// B reads the settings now, so that what follows tests its reload.
	if enrolRequired(b) || enrolRequired(a) {
		t.Fatal("a plain user must enrol before any settings change")
	}

	c.must(a, http.StatusOK, http.MethodPut, "/admin/settings", adminAccess, map[string]any{"twoFa": map[string]any{"requiredForRoles": []string{"admin", "user"}}})
	changed := time.Now()
	if !enrolRequired(a) {
		t.Errorf("A does not apply its own settings change at once")
	}
	for !enrolRequired(b) {
		if time.Since(changed) > 7*time.Second {
			t.Fatalf("B still ignores the settings changed on A %v later", time.Since(changed).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("B applied the settings changed on A after %v", time.Since(changed).Round(time.Millisecond))
	got := c.must(b, http.StatusOK, http.MethodGet, "/admin/settings", adminAccess, nil)
	if tf, _ := got["twoFa"].(map[string]any); !slices.Equal(toStrings(tf["requiredForRoles"]), []string{"admin", "user"}) {
		t.Errorf("GET /admin/settings through B = %v, want requiredForRoles [admin user]", got)
	}
}

// redisProc is a redis-server of the test's own.
type redisProc struct {
	t       *testing.T
	args    []string
	url     string
	client  *redis.Client
	mu      sync.Mutex
	cmd     *exec.Cmd
	stopped chan struct{}
}

// startRedis runs redis-server on a free port; with persist, every write
// is in its append-only file before Redis answers, so a killed Redis comes
// back with it.
func startRedis(t *testing.T, persist bool) *redisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		skipOrFail(t, "redis-server is not on PATH")
	}
	port := freePort(t)
	args := []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(), "--save", ""}
	if persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	r := &redisProc{t: t, args: args, url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	r.client = redisClient(t, r.url)
	r.start()
	t.Cleanup(r.kill)
	return r
}

// start runs the server and waits until it answers.
func (r *redisProc) start() {
	r.t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(r.args[0], r.args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	stopped := make(chan struct{})
	go func() { cmd.Wait(); close(stopped) }()
	r.mu.Lock()
	r.cmd, r.stopped = cmd, stopped
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := r.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-stopped:
			r.t.Fatalf("redis-server %v ended: %s", r.args[1:], out.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server does not answer after 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server at once (SIGKILL: no chance to save anything).
func (r *redisProc) kill() {
	r.mu.Lock()
	cmd, stopped := r.cmd, r.stopped
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-stopped
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitReady polls /readyz until it answers want.
func waitReady(t *testing.T, node *server, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := doAt(t, node.url, http.MethodGet, "/readyz", "", nil)
		if r.status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s/readyz = %d %v after %v, want %d", node.url, r.status, r.body, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestScaleRedisOutage stops Redis in the middle of a run: logins fail
// closed with 503 (never let through past a limit), /readyz fails, and both
// instances recover by themselves when Redis is back. With an append-only
// file Redis comes back with the counts; without persistence they are gone.
func TestScaleRedisOutage(t *testing.T) {
	t.Parallel()
	if os.Getenv(sqltest.PostgresURLEnv) == "" {
		skipOrFail(t, "%s is not set", sqltest.PostgresURLEnv)
	}
	for _, persist := range []bool{false, true} {
		name := "no-persistence"
		if persist {
			name = "appendfsync-always"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rp := startRedis(t, persist)
			c := newCluster(t, 2, rp.url, nil)
			a, b := c.nodes[0], c.nodes[1]
			const email = "outage@example.com"
			c.register(a, email)
			access := c.login(a, email)["accessToken"].(string)
			// A second account with an authenticator, half-way through
			// signing in when Redis goes away.
			const email2 = "outage2@example.com"
			c.register(b, email2)
			app := c.enrolAuthenticator(b, c.login(b, email2)["accessToken"].(string))
			challenge := c.challenge(a, email2)

			login := func(node *server, pw string) answer {
				t.Helper()
				return c.do(node, http.MethodPost, "/authentication/local", "", map[string]any{"email": email, "password": pw})
			}
			for i := range 3 {
				if r := login(c.nodes[i%2], "wrong password"); r.status != http.StatusUnauthorized {
					t.Fatalf("wrong login %d = %d %v, want 401", i+1, r.status, r.body)
				}
			}

			rp.kill()
			// Well past the 5 free failures and with the right password
			// too: nothing is let through while the counts cannot be read.
			for i := range 12 {
				node, pw := c.nodes[i%2], "wrong password"
				if i%3 == 2 {
					pw = testPassword
				}
				if r := login(node, pw); r.status != http.StatusServiceUnavailable || errorCode(r.body) != "unavailable" {
					t.Fatalf("login %d through %s with Redis down = %d %v, want 503 unavailable", i+1, node.url, r.status, r.body)
				}
			}
			for _, node := range c.nodes {
				waitReady(t, node, http.StatusServiceUnavailable, 5*time.Second)
			}
			// The right second-factor code is refused too: the lockout
			// count cannot be read.
			code := app.next()
			for _, node := range c.nodes {
				r := c.do(node, http.MethodPost, "/authentication/twoFa/verify", challenge, map[string]any{"code": code, "method": "authenticator"})
				if r.status != http.StatusServiceUnavailable || errorCode(r.body) != "unavailable" {
					t.Fatalf("right TOTP code through %s with Redis down = %d %v, want 503 unavailable", node.url, r.status, r.body)
				}
			}
			// What needs no counter goes on: sessions live in PostgreSQL.
			c.must(b, http.StatusOK, http.MethodGet, "/authentication/user", access, nil)

			rp.start()
			for _, node := range c.nodes {
				waitReady(t, node, http.StatusOK, 10*time.Second)
			}
			if persist {
				// 3 failures before the outage were kept: 2 more reach the
				// 5 free ones, and the 6th attempt waits.
				for i := 4; i <= 5; i++ {
					if r := login(c.nodes[i%2], "wrong password"); r.status != http.StatusUnauthorized {
						t.Fatalf("wrong login %d after Redis came back = %d %v, want 401", i, r.status, r.body)
					}
				}
				for _, node := range c.nodes {
					if r := login(node, testPassword); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
						t.Fatalf("login after 5 failures (3 before the outage) through %s = %d %v, want 429 with Retry-After", node.url, r.status, r.body)
					}
				}
				time.Sleep(1100 * time.Millisecond) // the first delay is 1 s
			} else {
				// Without persistence Redis forgot the 3 failures (and
				// every other count): production Redis keeps an append-only
				// file.
				keys, err := rp.client.Keys(t.Context(), c.vars["TWOSTEP_REDIS_PREFIX"]+"*").Result()
				t.Logf("keys under the prefix after a restart without persistence: %q (err %v)", keys, err)
			}
			for _, node := range c.nodes {
				if r := login(node, testPassword); r.status != http.StatusOK {
					t.Fatalf("login through %s after Redis came back = %d %v, want 200", node.url, r.status, r.body)
				}
			}
			// The challenge begun before the outage was not used up by it.
			c.must(b, http.StatusOK, http.MethodPost, "/authentication/twoFa/verify", challenge, map[string]any{"code": code, "method": "authenticator"})
		})
	}
}

// tcpProxy forwards connections to target; close cuts every connection and
// stops listening, open listens on the same address again.
type tcpProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, addr: "127.0.0.1:0", conns: make(map[net.Conn]struct{})}
	p.open(t)
	t.Cleanup(func() { p.close(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) open(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", p.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("proxy listen on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(in) })
		}
	})
}

func (p *tcpProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *tcpProxy) forward(in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !p.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(out, in) })
	wg.Go(func() { pipe(in, out) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

// close stops listening and cuts every connection, as a database that went
// away would.
func (p *tcpProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// TestScalePostgresOutage reaches PostgreSQL through a proxy that the test
// cuts: requests answer 503 and /readyz fails; when the proxy listens again
// the instance recovers by itself.
func TestScalePostgresOutage(t *testing.T) {
	t.Parallel()
	redisURL := testRedisURL(t)
	smsSrv := smstest.NewServer()
	t.Cleanup(smsSrv.Close)
	vars := clusterVars(t, redisURL, smsSrv, nil)
	dbURL, err := url.Parse(vars["TWOSTEP_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	target := dbURL.Host
	if dbURL.Port() == "" {
		target = net.JoinHostPort(dbURL.Hostname(), "5432")
	}
	proxy := newProxy(t, target)
	dbURL.Host = proxy.addr
	vars["TWOSTEP_DATABASE_URL"] = dbURL.String()
	c := &cluster{t: t, getenv: environ(vars), vars: vars, sms: smsSrv}
	node := startServe(t, c.getenv)

	const email = "pg@example.com"
	c.register(node, email)
	access := c.login(node, email)["accessToken"].(string)
	c.must(node, http.StatusOK, http.MethodGet, "/authentication/user", access, nil)

	proxy.close()
	for _, req := range []struct {
		method, path, token string
		body                any
	}{
		{http.MethodGet, "/authentication/user", access, nil},
		{http.MethodPost, "/authentication/local", "", map[string]any{"email": email, "password": testPassword}},
		{http.MethodPost, "/authentication/local", "", map[string]any{"email": email, "password": "wrong password"}},
		{http.MethodPost, "/authentication/local/new", "", map[string]any{"email": "new@example.com", "password": testPassword}},
	} {
		r := c.do(node, req.method, req.path, req.token, req.body)
		if r.status != http.StatusServiceUnavailable || errorCode(r.body) != "unavailable" {
			t.Errorf("%s %s with PostgreSQL gone = %d %v, want 503 unavailable", req.method, req.path, r.status, r.body)
		}
	}
	waitReady(t, node, http.StatusServiceUnavailable, 5*time.Second)

	proxy.open(t)
	waitReady(t, node, http.StatusOK, 10*time.Second)
	c.must(node, http.StatusOK, http.MethodGet, "/authentication/user", access, nil)
	c.login(node, email)
	c.register(node, "after@example.com")
}

var appliedRE = regexp.MustCompile(`applied migrations \[([0-9 ]*)\]`)

// TestScaleConcurrentMigrate runs "twostep migrate" twice at once on fresh
// databases: both succeed and every migration is applied exactly once.
func TestScaleConcurrentMigrate(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		vars := databaseVars(t, sqlstore.EnginePostgres)
		getenv := environ(vars)
		const runs = 2
		outs := make([]bytes.Buffer, runs)
		errs := make([]error, runs)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range runs {
			wg.Go(func() {
				<-start
				errs[i] = run(t.Context(), []string{"twostep", "migrate"}, getenv, nil, &outs[i], io.Discard)
			})
		}
		close(start)
		wg.Wait()

		var applied []int
		for i := range runs {
			if errs[i] != nil {
				t.Fatalf("round %d: migrate %d of %d at once = %v", round, i+1, runs, errs[i])
			}
			out := outs[i].String()
			if m := appliedRE.FindStringSubmatch(out); m != nil {
				for _, f := range strings.Fields(m[1]) {
					v, _ := strconv.Atoi(f)
					applied = append(applied, v)
				}
			} else if !strings.Contains(out, "up to date") {
				t.Fatalf("round %d: migrate printed %q", round, out)
			}
		}

		db, err := sqlstore.Open(t.Context(), vars["TWOSTEP_DATABASE_URL"], sqlstore.Options{MaxOpenConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.SQL().QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		var stored []int
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, v)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			t.Fatal(err)
		}
		if err := db.CheckSchema(t.Context()); err != nil {
			t.Errorf("round %d: schema after two migrates at once: %v", round, err)
		}
		db.Close()
		slices.Sort(applied)
		if len(stored) == 0 || !slices.Equal(applied, stored) || len(slices.Compact(slices.Clone(stored))) != len(stored) {
			t.Errorf("round %d: the two migrates reported applying %v; schema_migrations holds %v; want each version applied once", round, applied, stored)
		}
	}
}

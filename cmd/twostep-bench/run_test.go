package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// runReport runs the harness with args and decodes its -json output.
func runReport(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	err := run(t.Context(), append([]string{"twostep-bench", "-json"}, args...), os.Getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("run -json printed no JSON document: %v\n%s", err, stdout.String())
	}
	return rep, stderr.String()
}

// ops returns the report's operations by name.
func opsOf(t *testing.T, rep map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	list, _ := rep["operations"].([]any)
	for _, o := range list {
		m := o.(map[string]any)
		out[m["op"].(string)] = m
	}
	return out
}

func TestRunAgainstURLs(t *testing.T) {
	fake := newFakeServer(time.Second)
	// Two targets: requests round-robin across them (one fake behind both, since they share
	// state as instances sharing a database would).
	a, b := httptest.NewServer(fake.handler()), httptest.NewServer(fake.handler())
	defer a.Close()
	defer b.Close()

	rep, text := runReport(t, "-url", a.URL+","+b.URL, "-c", "4", "-d", "300ms", "-warmup", "100ms",
		"-users", "8", "-totp-users", "12",
		"-ops", "register,login,renew,get-user,jwks,totp-verify,login-totp,recover")

	t.Log("\n" + text)
	ops := opsOf(t, rep)
	for _, name := range knownOps {
		if isSMS(name) {
			continue // needs -server: TestRunSMSLogin
		}
		o := ops[name]
		if o == nil {
			t.Errorf("report has no %s", name)
			continue
		}
		if s, _ := o["skipped"].(string); s != "" {
			t.Errorf("%s skipped: %s", name, s)
			continue
		}
		if n := o["requests"].(float64); n < 1 {
			t.Errorf("%s: %v requests, want some", name, n)
		}
		// The fake refuses every replayed code, reused token and unknown account: an error here
		// is a harness bug.
		if e := o["errors"].(float64); e != 0 {
			t.Errorf("%s: %v errors %v, want none", name, e, o["errors_by_status"])
		}
	}
	// 12 users, a 1-second step: at most 12 TOTP verifications per step, so the pool runs out.
	if s, _ := ops["totp-verify"]["stopped_early"].(string); !strings.Contains(s, "pool ran out") {
		t.Errorf("totp-verify stopped_early = %q, want the pool to run out", s)
	}
	if n := ops["totp-verify"]["requests"].(float64); n > 24 {
		t.Errorf("totp-verify made %v requests, more than 12 users × 2 steps", n)
	}
	if got := fake.refusals(); len(got) > 0 {
		t.Errorf("the fake server refused requests: %v", got)
	}
	bounds, _ := rep["hash_bounds"].([]any)
	if len(bounds) != 3 { // register, login, login-totp
		t.Errorf("hash_bounds has %d entries, want 3: %v", len(bounds), bounds)
	}
	for _, want := range []string{"operation", "requests", "p99", "totp-verify", "password-hash bound", "% of bound"} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q:\n%s", want, text)
		}
	}
}

func TestRunStartsServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rep, text := runReport(t, "-server", exe, "-env", fakeServerEnv+"=1", "-c", "2", "-d", "200ms", "-warmup", "0",
		"-users", "4", "-totp-users", "6", "-ops", "login,jwks,totp-verify")

	t.Log("\n" + text)
	ops := opsOf(t, rep)
	for _, name := range []string{"login", "jwks", "totp-verify"} {
		if o := ops[name]; o == nil || o["requests"].(float64) < 1 || o["errors"].(float64) != 0 {
			t.Errorf("%s: %v, want requests and no errors", name, o)
		}
	}
	if ops["login"]["phase"] != "main" || ops["totp-verify"]["phase"] != "2fa" {
		t.Errorf("phases: login %v, totp-verify %v, want main and 2fa", ops["login"]["phase"], ops["totp-verify"]["phase"])
	}
	servers, _ := rep["servers"].([]any)
	if len(servers) != 2 {
		t.Fatalf("report lists %d servers, want one per phase: %v", len(servers), servers)
	}
	for _, s := range servers {
		if kib := s.(map[string]any)["peak_rss_kib"].(float64); kib <= 0 {
			t.Errorf("server %v: no peak RSS", s)
		}
	}
	for _, want := range []string{"TWOSTEP_LOGIN_IP_LIMIT=0", "per-IP login ceiling is off", "cheap password hashing", "server peak RSS"} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q:\n%s", want, text)
		}
	}
}

func TestRunStartsSeveralServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The fake keeps no state in the database, so only a stateless operation makes sense across
	// independent fakes; the point is starting, round-robin and stopping several instances.
	rep, text := runReport(t, "-server", exe, "-env", fakeServerEnv+"=1", "-servers", "2",
		"-db", "postgres://bench:secret@127.0.0.1:1/none", "-c", "4", "-d", "200ms", "-warmup", "0", "-ops", "jwks")
	if o := opsOf(t, rep)["jwks"]; o == nil || o["requests"].(float64) < 1 || o["errors"].(float64) != 0 {
		t.Errorf("jwks: %v, want requests and no errors", o)
	}
	servers, _ := rep["servers"].([]any)
	if len(servers) != 2 || servers[0].(map[string]any)["addr"] == servers[1].(map[string]any)["addr"] {
		t.Errorf("servers = %v, want two on different addresses", servers)
	}
	for _, want := range []string{"without -redis", "postgres://bench:xxxxx@127.0.0.1:1/none"} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "secret") {
		t.Errorf("report shows the database password:\n%s", text)
	}
}

func TestRunSMSLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The fake server refuses a text to a phone within its cooldown (429) and a wrong or reused
	// code (401): any error is a harness bug. Each text takes 20ms and the fake serves one
	// request at a time, so 16 phones resting 50ms+100ms are plenty for 2 clients for a second.
	rep, text := runReport(t, "-server", exe, "-env", fakeServerEnv+"=1", "-env", fakeSMSDelayEnv+"=20ms",
		"-env", "TWOSTEP_SMS_RESEND_COOLDOWN=50ms", "-c", "2", "-d", "1s", "-warmup", "200ms",
		"-sms-users", "16", "-ops", "jwks,sms-login")
	t.Log("\n" + text)
	ops := opsOf(t, rep)
	o := ops["sms-login"]
	if o == nil {
		t.Fatalf("report has no sms-login")
	}
	if s, _ := o["skipped"].(string); s != "" {
		t.Fatalf("sms-login skipped: %s", s)
	}
	// Each phone comes back after its cooldown, so more logins than phones
	// means phones were reused (how many more depends on the machine's load).
	if n := o["requests"].(float64); n <= 16 {
		t.Errorf("sms-login: %v logins, want more than the 16 phones (phones reused)", n)
	}
	if e := o["errors"].(float64); e != 0 {
		t.Errorf("sms-login: %v errors %v, want none", e, o["errors_by_status"])
	}
	if s, _ := o["stopped_early"].(string); s != "" {
		t.Errorf("sms-login stopped early: %s", s)
	}
	if o["phase"] != "sms" || ops["jwks"]["phase"] != "main" {
		t.Errorf("phases: sms-login %v, jwks %v, want sms and main", o["phase"], ops["jwks"]["phase"])
	}
	for _, name := range []string{"sms-login", "jwks"} {
		if _, ok := ops[name]["server_cpu_per_ok_ms"].(float64); !ok {
			t.Errorf("%s: no server_cpu_per_ok_ms in %v", name, ops[name])
		}
	}
	for _, want := range []string{"server CPU per sms-login:", "server CPU per jwks:", "TWOSTEP_SMS_PROVIDER=twilio",
		"TWOSTEP_TWILIO_BASE_URL=http://127.0.0.1:", "TWOSTEP_SMS_RESEND_COOLDOWN=50ms", "TWOSTEP_SMS_HOURLY_LIMIT=1000000",
		"16 users enrolled with SMS"} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q", want)
		}
	}

	// Too few phones for the rate: the operation stops early and says so, still without errors.
	rep, text = runReport(t, "-server", exe, "-env", fakeServerEnv+"=1", "-c", "4", "-d", "2s", "-warmup", "0",
		"-sms-users", "6", "-ops", "sms-login")
	o = opsOf(t, rep)["sms-login"]
	if s, _ := o["stopped_early"].(string); !strings.Contains(s, "raise -sms-users") {
		t.Errorf("sms-login with 6 users: stopped_early = %q, want the pool to run out\n%s", s, text)
	}
	if n, e := o["requests"].(float64), o["errors"].(float64); n < 1 || n > 6 || e != 0 {
		t.Errorf("sms-login with 6 users and a 1s cooldown: %v logins, %v errors, want 1 to 6 and none", n, e)
	}
}

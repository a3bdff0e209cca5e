package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseVmHWM(t *testing.T) {
	status := "Name:\ttwostep\nVmPeak:\t 1300000 kB\nVmHWM:\t   183456 kB\nVmRSS:\t  120000 kB\n"
	got, err := parseVmHWM([]byte(status))
	if err != nil || got != 183456 {
		t.Errorf("parseVmHWM = %d, %v, want 183456, nil", got, err)
	}
	if _, err := parseVmHWM([]byte("Name:\tx\n")); err == nil {
		t.Errorf("parseVmHWM without a VmHWM line: no error")
	}
}

func TestServerEnv(t *testing.T) {
	cfg := config{redis: "redis://127.0.0.1:6379", env: []string{"TWOSTEP_LOGIN_IP_LIMIT=50", "TWOSTEP_ARGON2_MEMORY_KIB=128"}}
	phases := planPhases([]string{"jwks", "totp-verify", "login"})
	if len(phases) != 2 || !cmp.Equal(phases[0].ops, []string{"jwks", "login"}) || !cmp.Equal(phases[1].ops, []string{"totp-verify"}) {
		t.Fatalf("planPhases = %+v, want the plain operations first, then the 2FA ones", phases)
	}
	env := serverEnv(cfg, "/tmp/d", phases[1].env)
	lookup := envLookup(env, func(k string) string {
		if k == "HOME" {
			return "/root"
		}
		return ""
	})
	for k, want := range map[string]string{
		"TWOSTEP_DATABASE_URL":      "sqlite:///tmp/d/bench.db",
		"TWOSTEP_LOG_FORMAT":        "json",
		"TWOSTEP_ACCESS_LOG":        "false",
		"TWOSTEP_LOGIN_IP_LIMIT":    "50", // -env wins
		"TWOSTEP_REDIS_URL":         "redis://127.0.0.1:6379",
		"TWOSTEP_ARGON2_ALLOW_WEAK": "true",
		"TWOSTEP_ARGON2_MEMORY_KIB": "128", // -env wins over the cheap setting
		"TWOSTEP_ARGON2_ITERATIONS": "1",
		"HOME":                      "/root", // the harness's own environment underneath
	} {
		if got := lookup(k); got != want {
			t.Errorf("server env %s = %q, want %q", k, got, want)
		}
	}
	notes := strings.Join(phaseNotes(phases[1], lookup, cfg, true), "\n")
	for _, want := range []string{"TWOSTEP_LOGIN_IP_LIMIT=\"50\"", "cheap password hashing", "TWOSTEP_ARGON2_MEMORY_KIB=128"} {
		if !strings.Contains(notes, want) {
			t.Errorf("phase notes lack %q:\n%s", want, notes)
		}
	}

	p, err := argon2Params(lookup)
	if err != nil || p.MemoryKiB != 128 || p.Iterations != 1 {
		t.Errorf("argon2Params = %+v, %v, want 128 KiB and 1 iteration", p, err)
	}
	if _, err := argon2Params(envLookup([]string{"TWOSTEP_ARGON2_ITERATIONS=lots"}, lookup)); err == nil {
		t.Errorf("argon2Params with a bad number: no error")
	}
}

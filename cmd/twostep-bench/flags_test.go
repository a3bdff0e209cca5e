package main

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFlags(t *testing.T) {
	defaults := config{
		servers: 1, users: 256, totpUsers: 4000, smsUsers: 400, clients: 32,
		duration: 10 * time.Second, warmup: time.Second,
		ops: []string{"register", "login", "renew", "get-user", "jwks"},
	}
	with := func(f func(*config)) config {
		c := defaults
		f(&c)
		return c
	}
	tests := []struct {
		args    []string
		want    config
		wantErr string // substring; "" for success
	}{
		{
			args: []string{"-url", "http://127.0.0.1:3000"},
			want: with(func(c *config) { c.urls = []string{"http://127.0.0.1:3000"} }),
		},
		{
			args: []string{"-url", "http://a:1/, http://b:2", "-c", "8", "-d", "2s", "-warmup", "0", "-ops", "jwks, login", "-json"},
			want: with(func(c *config) {
				c.urls = []string{"http://a:1", "http://b:2"}
				c.clients, c.duration, c.warmup = 8, 2*time.Second, 0
				c.ops, c.json = []string{"jwks", "login"}, true
			}),
		},
		{
			args: []string{"-server", "/bin/twostep", "-env", "A=1", "-env", "TWOSTEP_X=a=b", "-users", "10", "-totp-users", "50", "-keep",
				"-ops", "totp-verify,login-totp,recover"},
			want: with(func(c *config) {
				c.server, c.env, c.users, c.totpUsers, c.keep = "/bin/twostep", []string{"A=1", "TWOSTEP_X=a=b"}, 10, 50, true
				c.ops = []string{"totp-verify", "login-totp", "recover"}
			}),
		},
		{
			args: []string{"-server", "/bin/twostep", "-sms-users", "40", "-ops", "sms-login,login"},
			want: with(func(c *config) {
				c.server, c.smsUsers, c.ops = "/bin/twostep", 40, []string{"sms-login", "login"}
			}),
		},
		{
			args: []string{"-server", "/bin/twostep", "-servers", "3", "-db", "postgres://u@127.0.0.1/bench", "-redis", "redis://127.0.0.1:6379"},
			want: with(func(c *config) {
				c.server, c.servers, c.db, c.redis = "/bin/twostep", 3, "postgres://u@127.0.0.1/bench", "redis://127.0.0.1:6379"
			}),
		},
		{args: nil, wantErr: "give -url or -server"},
		{args: []string{"-url", "http://x", "-server", "/bin/twostep"}, wantErr: "not both"},
		{args: []string{"-url", "127.0.0.1:3000"}, wantErr: "want http://"},
		{args: []string{"-url", "http://x", "-db", "sqlite://x.db"}, wantErr: "need -server"},
		{args: []string{"-server", "/bin/twostep", "-servers", "2"}, wantErr: "postgres"},
		{args: []string{"-server", "/bin/twostep", "-servers", "2", "-db", "sqlite:///tmp/x.db"}, wantErr: "postgres"},
		{args: []string{"-server", "/bin/twostep", "-env", "NOEQUALS"}, wantErr: "want K=V"},
		{args: []string{"-url", "http://x", "-ops", "login,frobnicate"}, wantErr: `unknown operation "frobnicate"`},
		{args: []string{"-url", "http://x", "-ops", "login,login"}, wantErr: "given twice"},
		{args: []string{"-url", "http://x", "-ops", ","}, wantErr: "-ops is empty"},
		{args: []string{"-url", "http://x", "-c", "0"}, wantErr: "-c 0"},
		{args: []string{"-url", "http://x", "-d", "0s"}, wantErr: "-d 0s"},
		{args: []string{"-url", "http://x", "-users", "0"}, wantErr: "-users 0"},
		{args: []string{"-server", "/bin/twostep", "-sms-users", "0"}, wantErr: "-sms-users 0: want 1 to"},
		{args: []string{"-url", "http://x", "-ops", "login,sms-login"}, wantErr: "sms-login needs -server"},
		{args: []string{"-url", "http://x", "extra"}, wantErr: "unexpected arguments"},
		{args: []string{"-url", "http://x", "-d", "soon"}, wantErr: "invalid value"},
	}
	for _, tt := range tests {
		var out strings.Builder
		got, err := parseFlags(tt.args, &out)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFlags(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseFlags(%q) error = %v, want none", tt.args, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{})); diff != "" {
			t.Errorf("parseFlags(%q) mismatch (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestParseFlagsReportsEveryProblem(t *testing.T) {
	_, err := parseFlags([]string{"-c", "0", "-users", "-1", "-ops", "nope"}, new(strings.Builder))
	for _, want := range []string{"give -url or -server", "-c 0", "-users -1", `unknown operation "nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseFlags error = %v, want it to mention %q", err, want)
		}
	}
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := parseFlags([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-h) error = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Example:", "twostep-bench -server", "-totp-users", "totp-verify", "-sms-users", "sms-login"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	// run treats -h as success.
	if err := run(t.Context(), []string{"twostep-bench", "-h"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Errorf("run(-h) = %v, want nil", err)
	}
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Operation names accepted by -ops.
const (
	opRegister   = "register"
	opLogin      = "login"
	opRenew      = "renew"
	opGetUser    = "get-user"
	opJWKS       = "jwks"
	opTOTPVerify = "totp-verify"
	opLoginTOTP  = "login-totp"
	opRecover    = "recover"
	opSMSLogin   = "sms-login"
)

// knownOps lists every operation in the order the usage text shows them. Read only.
var knownOps = []string{opRegister, opLogin, opRenew, opGetUser, opJWKS, opTOTPVerify, opLoginTOTP, opRecover, opSMSLogin}

// isTwoFA reports whether op needs enrolled second factors (and so the 2FA endpoints).
func isTwoFA(op string) bool {
	return op == opTOTPVerify || op == opLoginTOTP || op == opRecover
}

// isSMS reports whether op needs servers that text through the harness's fake Twilio.
func isSMS(op string) bool { return op == opSMSLogin }

// config is the parsed command line.
type config struct {
	urls      []string      // -url: base URLs of running instances
	server    string        // -server: path of a twostep binary to start
	servers   int           // -servers: how many instances to start
	db        string        // -db: TWOSTEP_DATABASE_URL for started instances
	redis     string        // -redis: TWOSTEP_REDIS_URL for started instances
	env       []string      // -env K=V, in order given
	users     int           // -users
	totpUsers int           // -totp-users
	smsUsers  int           // -sms-users
	clients   int           // -c
	duration  time.Duration // -d, per operation
	warmup    time.Duration // -warmup, per operation
	ops       []string      // -ops
	json      bool          // -json
	keep      bool          // -keep
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

const usageText = `twostep-bench measures a twostep server: throughput and latency of its hot endpoints.

Usage:
  twostep-bench -url URL[,URL...] [flags]     benchmark running instance(s)
  twostep-bench -server PATH [flags]           start PATH serve on a free 127.0.0.1 port, benchmark it, stop it

Example:
  go build -o /tmp/twostep ./cmd/twostep && go build -o /tmp/twostep-bench ./cmd/twostep-bench
  /tmp/twostep-bench -server /tmp/twostep -c 32 -d 10s
  /tmp/twostep-bench -server /tmp/twostep -ops totp-verify,login-totp,recover -totp-users 2000
  /tmp/twostep-bench -server /tmp/twostep -ops sms-login -sms-users 400 -d 5s
  /tmp/twostep-bench -server /tmp/twostep -servers 2 -db postgres://bench@127.0.0.1:5432/bench -redis redis://127.0.0.1:6379/0 \
      -env TWOSTEP_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)   # PostgreSQL needs a key shared by the instances
  /tmp/twostep-bench -url http://127.0.0.1:3000 -ops jwks,get-user -json > results.json

Operations (-ops, run one after another, each for -warmup then -d):
  register     POST /authentication/local/new, a new email each time
  login        POST /authentication/local, the -users users round-robin (password hash bound printed too)
  renew        POST /authentication/renew, each client follows its own refresh-token chain
  get-user     GET /authentication/user with an access token
  jwks         GET /.well-known/jwks.json
  totp-verify  POST /authentication/twoFa/verify with a challenge token and a TOTP code
  login-totp   password step and TOTP step together, timed as one operation
  recover      POST /authentication/twoFa/recover with a challenge token and a backup code
  sms-login    password step, POST /authentication/twoFa/authorize {"method":"sms"}, the code read
               from the harness's fake Twilio, POST /authentication/twoFa/verify: timed as one
               operation (-server only)
The three TOTP operations enrol -totp-users users first; each user's TOTP code is used at most once
per time step, so those operations stop early (and say so) when the pool runs out. sms-login
enrols -sms-users users, each with a phone of its own, and texts each phone at most once per
resend cooldown (1s on the servers it starts), so it too stops early when the pool is too small.

The harness reads each started server's CPU time (utime+stime, /proc/PID/stat) around every timed
operation and prints the server CPU per successful operation.

Started servers get TWOSTEP_LOG_FORMAT=json, TWOSTEP_ACCESS_LOG=false and TWOSTEP_LOGIN_IP_LIMIT=0
(every client is 127.0.0.1), and, for the 2FA operations only, cheap argon2id settings so that
enrolment is quick. sms-login runs on servers of its own that also get the twilio provider pointed
at an in-process fake Twilio (internal/sms/smstest), a 1s resend cooldown and very high SMS send
limits. -env overrides any of these. With -json the table goes to stderr and a JSON
document to stdout.

Flags:
`

// parseFlags parses args (without the program name). It returns flag.ErrHelp after printing usage to
// out when -h is given, and a descriptive error for any invalid combination.
func parseFlags(args []string, out io.Writer) (config, error) {
	var (
		cfg  config
		urls string
		ops  string
		env  listFlag
	)
	fs := flag.NewFlagSet("twostep-bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&urls, "url", "", "base URL(s) of running instance(s), comma-separated; requests round-robin across them")
	fs.StringVar(&cfg.server, "server", "", "path of a twostep binary to start (instead of -url)")
	fs.IntVar(&cfg.servers, "servers", 1, "with -server: number of instances to start (more than 1 needs a postgres -db)")
	fs.StringVar(&cfg.db, "db", "", "with -server: TWOSTEP_DATABASE_URL (default sqlite in a fresh temp dir)")
	fs.StringVar(&cfg.redis, "redis", "", "with -server: TWOSTEP_REDIS_URL shared by the instances")
	fs.Var(&env, "env", "with -server: extra `K=V` environment for the server (repeatable); also read for the argon2 params of the hash bound")
	fs.IntVar(&cfg.users, "users", 256, "users created through the API before timing (login, renew, get-user)")
	fs.IntVar(&cfg.totpUsers, "totp-users", 4000, "users enrolled with an authenticator for the 2FA operations")
	fs.IntVar(&cfg.smsUsers, "sms-users", 400, "users enrolled with SMS, each with its own phone, for sms-login")
	fs.IntVar(&cfg.clients, "c", 32, "concurrent clients")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "timed duration per operation")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "untimed warm-up per operation")
	fs.StringVar(&ops, "ops", "register,login,renew,get-user,jwks", "comma-separated operations: "+strings.Join(knownOps, ","))
	fs.BoolVar(&cfg.json, "json", false, "also print machine-readable results (JSON on stdout, table on stderr)")
	fs.BoolVar(&cfg.keep, "keep", false, "with -server: keep the temp dir (database, server logs)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg.urls = splitList(urls)
	for i, u := range cfg.urls {
		cfg.urls[i] = strings.TrimRight(u, "/")
	}
	cfg.ops = splitList(ops)
	cfg.env = env
	return cfg, cfg.validate()
}

// validate reports every problem of cfg at once.
func (cfg config) validate() error {
	var errs []error
	switch {
	case len(cfg.urls) == 0 && cfg.server == "":
		errs = append(errs, errors.New("give -url or -server"))
	case len(cfg.urls) > 0 && cfg.server != "":
		errs = append(errs, errors.New("give -url or -server, not both"))
	}
	for _, u := range cfg.urls {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("-url %q: want http:// or https://", u))
		}
	}
	if cfg.server == "" && (cfg.servers != 1 || cfg.db != "" || cfg.redis != "" || cfg.keep) {
		errs = append(errs, errors.New("-servers, -db, -redis and -keep need -server"))
	}
	if cfg.servers < 1 {
		errs = append(errs, fmt.Errorf("-servers %d: want at least 1", cfg.servers))
	}
	if cfg.servers > 1 && !strings.HasPrefix(cfg.db, "postgres://") && !strings.HasPrefix(cfg.db, "postgresql://") {
		errs = append(errs, errors.New("-servers above 1 share one database: give a postgres:// -db"))
	}
	for _, kv := range cfg.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("-env %q: want K=V", kv))
		}
	}
	if cfg.users < 1 {
		errs = append(errs, fmt.Errorf("-users %d: want at least 1", cfg.users))
	}
	if cfg.totpUsers < 1 {
		errs = append(errs, fmt.Errorf("-totp-users %d: want at least 1", cfg.totpUsers))
	}
	if cfg.smsUsers < 1 || cfg.smsUsers > maxSMSUsers {
		errs = append(errs, fmt.Errorf("-sms-users %d: want 1 to %d", cfg.smsUsers, maxSMSUsers))
	}
	if cfg.clients < 1 {
		errs = append(errs, fmt.Errorf("-c %d: want at least 1", cfg.clients))
	}
	if cfg.duration <= 0 {
		errs = append(errs, fmt.Errorf("-d %v: want a positive duration", cfg.duration))
	}
	if cfg.warmup < 0 {
		errs = append(errs, fmt.Errorf("-warmup %v: want zero or more", cfg.warmup))
	}
	if len(cfg.ops) == 0 {
		errs = append(errs, errors.New("-ops is empty"))
	}
	if cfg.server == "" && slices.ContainsFunc(cfg.ops, isSMS) {
		errs = append(errs, errors.New("-ops sms-login needs -server: the servers must text through the harness's fake Twilio, "+
			"whose address is known only once the harness runs"))
	}
	seen := map[string]bool{}
	for _, op := range cfg.ops {
		switch {
		case !slices.Contains(knownOps, op):
			errs = append(errs, fmt.Errorf("-ops: unknown operation %q (known: %s)", op, strings.Join(knownOps, ",")))
		case seen[op]:
			errs = append(errs, fmt.Errorf("-ops: %q given twice", op))
		}
		seen[op] = true
	}
	return errors.Join(errs...)
}

// splitList splits a comma-separated list, dropping empty items and spaces.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Command twostep-bench measures a twostep server: the throughput and latency of its hot
// endpoints, each driven by concurrent keep-alive clients for a fixed time, against running
// instances (-url) or against instances it starts and stops itself (-server). Run it with -h.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twostep-auth/twostep/internal/sms/smstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "twostep-bench:", err)
		stop()
		os.Exit(1)
	}
}

// phase is a group of operations that run against the same started servers.
type phase struct {
	name string
	ops  []string
	env  []string // server environment of this phase, on top of the fixed settings
	// fakeSMS: the harness runs a fake Twilio for this phase, and the servers text through it
	// (smsServerEnv is added to env once the fake's address is known).
	fakeSMS bool
}

// cheapHashEnv is the argon2id setting of the 2FA phases: their set-up logs every enrolled user
// in once or more.
var cheapHashEnv = []string{
	"TWOSTEP_ARGON2_ALLOW_WEAK=true",
	"TWOSTEP_ARGON2_MEMORY_KIB=64",
	"TWOSTEP_ARGON2_ITERATIONS=1",
}

// planPhases splits ops into the plain ones (on servers with production hashing), the TOTP
// ones (on servers with cheap hashing) and the SMS ones (cheap hashing, and the twilio provider
// pointed at the harness's fake), keeping their order within each.
func planPhases(ops []string) []phase {
	plain := phase{name: "main"}
	twoFA := phase{name: "2fa", env: cheapHashEnv}
	sms := phase{name: "sms", env: cheapHashEnv, fakeSMS: true}
	for _, op := range ops {
		switch {
		case isSMS(op):
			sms.ops = append(sms.ops, op)
		case isTwoFA(op):
			twoFA.ops = append(twoFA.ops, op)
		default:
			plain.ops = append(plain.ops, op)
		}
	}
	var out []phase
	for _, p := range []phase{plain, twoFA, sms} {
		if len(p.ops) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// run is the whole program: args are os.Args, getenv is os.Getenv. The report goes to stdout
// (with -json: JSON to stdout, the report to stderr); progress is logged to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	runID, err := newRunID()
	if err != nil {
		return err
	}
	rep := &report{
		RunID: runID, Started: time.Now(), Cores: runtime.NumCPU(), Clients: cfg.clients,
		Duration: cfg.duration, Warmup: cfg.warmup,
	}
	hc := newHTTPClient(cfg.clients)
	defer hc.CloseIdleConnections()
	newBench := func(targets []string) *bench {
		b := &bench{logger: logger, api: &api{hc: hc, bases: targets}, cfg: cfg, runID: runID}
		for i := range cfg.clients {
			b.workers = append(b.workers, &worker{id: i, rec: newRecorder()})
		}
		return b
	}

	// envOf gives, per phase, the environment the servers hashed passwords with.
	var envOf map[string]func(string) string
	if cfg.server == "" {
		envOf = runAgainstURLs(ctx, cfg, newBench, rep)
	} else if envOf, err = runWithServers(ctx, logger, cfg, getenv, newBench, rep); err != nil {
		return err
	}

	if ctx.Err() == nil {
		rep.Bounds = measureBounds(ctx, logger, rep.Ops, envOf)
	}
	text, data := stdout, io.Writer(nil)
	if cfg.json {
		text, data = stderr, stdout
	}
	if err := rep.writeText(text); err != nil {
		return err
	}
	if data != nil {
		if err := rep.writeJSON(data); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return nil
}

// runAgainstURLs runs every operation against the -url targets. It returns the environment
// that stands for the servers' own: -env only, since theirs is unknown here.
func runAgainstURLs(ctx context.Context, cfg config, newBench func(targets []string) *bench, rep *report) map[string]func(string) string {
	rep.Targets = cfg.urls
	rep.Notes = append(rep.Notes, "every client connects from this host: a per-IP login limit on the server (TWOSTEP_LOGIN_IP_LIMIT) applies to them all")
	b := newBench(cfg.urls)
	for _, op := range cfg.ops {
		if ctx.Err() != nil {
			break
		}
		rep.Ops = append(rep.Ops, b.runOp(ctx, "", op))
	}
	if b.poolNote != "" {
		rep.Notes = append(rep.Notes, b.poolNote)
	}
	return map[string]func(string) string{"": envLookup(cfg.env, func(string) string { return "" })}
}

// runWithServers runs the operations phase by phase, each against servers started for it, in a
// temp dir that is removed at the end unless -keep is given or something failed. It returns
// each phase's server environment.
func runWithServers(ctx context.Context, logger *slog.Logger, cfg config, getenv func(string) string,
	newBench func(targets []string) *bench, rep *report) (envOf map[string]func(string) string, err error) {
	dir, err := os.MkdirTemp("", "twostep-bench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		// A server that died on its own leaves the reason in its log: keep it.
		died := slices.ContainsFunc(rep.Servers, func(in *instance) bool { return in.ExitedEarly != "" })
		if cfg.keep || err != nil || died {
			logger.Info("kept the temp dir", "dir", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	kept := "removed at the end; -keep keeps them"
	if cfg.keep {
		kept = "kept"
	}
	rep.Targets = append(rep.Targets, fmt.Sprintf("%d × %s serve, started by the harness; database and logs in %s (%s)",
		cfg.servers, cfg.server, dir, kept))
	envOf = map[string]func(string) string{}
	for i, ph := range planPhases(cfg.ops) {
		if ctx.Err() != nil {
			break
		}
		var fake *smstest.Server
		if ph.fakeSMS {
			fake = smstest.NewServer()
			logger.Info("started the fake Twilio", "phase", ph.name, "url", fake.URL)
			ph.env = append(slices.Clip(ph.env), smsServerEnv(fake.URL)...)
		}
		env := serverEnv(cfg, dir, ph.env)
		lookup := envLookup(env, getenv)
		envOf[ph.name] = lookup
		rep.Notes = append(rep.Notes, phaseNotes(ph, lookup, cfg, i == 0)...)
		err := runPhase(ctx, logger, cfg, ph, env, lookup, fake, dir, newBench, rep)
		if fake != nil {
			fake.Close() // after runPhase stopped the servers
		}
		if err != nil {
			return nil, err
		}
	}
	return envOf, nil
}

// runPhase starts the servers of ph, runs its operations against them, reads the servers' peak
// memory and stops them. Results go into rep. lookup reads the servers' environment; fake, if
// not nil, is the fake Twilio they text through.
func runPhase(ctx context.Context, logger *slog.Logger, cfg config, ph phase, env []string, lookup func(string) string,
	fake *smstest.Server, dir string, newBench func(targets []string) *bench, rep *report) error {
	ins, err := startServers(ctx, logger, cfg.server, cfg.servers, env, dir, ph.name)
	if err != nil {
		return err
	}
	rep.Servers = append(rep.Servers, ins...)
	defer func() {
		for _, in := range ins {
			in.readPeak()
		}
		stopServers(logger, ins)
	}()
	targets := make([]string, len(ins))
	for i, in := range ins {
		targets[i] = in.url()
	}
	b := newBench(targets)
	defer b.api.hc.CloseIdleConnections() // the next phase's servers are new ones
	b.serverCPU = instancesCPU(ins)
	if fake != nil {
		b.inbox = fake
		if b.smsCooldown, err = serverCooldown(lookup); err != nil {
			return err
		}
	}
	for _, op := range ph.ops {
		if ctx.Err() != nil {
			break
		}
		rep.Ops = append(rep.Ops, b.runOp(ctx, ph.name, op))
	}
	for _, n := range []string{b.poolNote, b.smsPoolNote} {
		if n != "" {
			rep.Notes = append(rep.Notes, n)
		}
	}
	return nil
}

// measureBounds computes the password-hash bound of every timed operation that hashes a
// password per request, with the argon2id parameters of the servers it ran on.
func measureBounds(ctx context.Context, logger *slog.Logger, ops []opResult, envOf map[string]func(string) string) []opBound {
	var out []opBound
	measured := map[string]hashBound{}
	for _, o := range ops {
		if hashesPerRequest(o.Op) == 0 || o.Skipped != "" || o.Requests == 0 {
			continue
		}
		ob := opBound{Op: o.Op, Phase: o.Phase}
		if o.Elapsed > 0 {
			ob.OKPerS = float64(o.Requests-o.Errors) / o.Elapsed.Seconds()
		}
		hb, ok := measured[o.Phase]
		if !ok {
			logger.Info("measuring the password-hash time", "phase", o.Phase)
			var err error
			if hb, err = newHashBound(ctx, envOf[o.Phase]); err != nil {
				ob.Err = err.Error()
				out = append(out, ob)
				continue
			}
			measured[o.Phase] = hb
		}
		ob.Bound = hb
		ob.Percent = 100 * ob.OKPerS / hb.PerSec
		out = append(out, ob)
	}
	return out
}

// phaseNotes says how the servers of ph were set up where that bears on the numbers. The
// notes common to every phase are given only with first.
func phaseNotes(ph phase, lookup func(string) string, cfg config, first bool) []string {
	var notes []string
	if first {
		if v := lookup("TWOSTEP_LOGIN_IP_LIMIT"); v == "0" {
			notes = append(notes, "TWOSTEP_LOGIN_IP_LIMIT=0: the per-IP login ceiling is off, since every client is 127.0.0.1")
		} else {
			notes = append(notes, fmt.Sprintf("TWOSTEP_LOGIN_IP_LIMIT=%q: every client is 127.0.0.1, so that per-IP ceiling applies to them all", v))
		}
		notes = append(notes, "database "+redactURL(lookup("TWOSTEP_DATABASE_URL")))
		if cfg.servers > 1 && cfg.redis == "" {
			notes = append(notes, "several servers without -redis: limits and one-time state are per instance unless the database holds them")
		}
		if len(cfg.env) > 0 {
			keys := make([]string, len(cfg.env))
			for i, kv := range cfg.env {
				keys[i], _, _ = strings.Cut(kv, "=")
			}
			slices.Sort(keys)
			notes = append(notes, "-env set "+strings.Join(slices.Compact(keys), ", "))
		}
	}
	cheap := fmt.Sprintf("cheap password hashing, to make enrolment quick "+
		"(TWOSTEP_ARGON2_ALLOW_WEAK=%s, TWOSTEP_ARGON2_MEMORY_KIB=%s, TWOSTEP_ARGON2_ITERATIONS=%s)",
		lookup("TWOSTEP_ARGON2_ALLOW_WEAK"), lookup("TWOSTEP_ARGON2_MEMORY_KIB"), lookup("TWOSTEP_ARGON2_ITERATIONS"))
	switch {
	case ph.fakeSMS:
		limits := make([]string, len(smsLimitVars))
		for i, k := range smsLimitVars {
			limits[i] = k + "=" + lookup(k)
		}
		notes = append(notes, fmt.Sprintf("sms-login ran on servers started anew with %s: its timed password step costs far less than in production", cheap),
			fmt.Sprintf("those servers text through the twilio provider pointed at a fake Twilio inside this harness (internal/sms/smstest, "+
				"speaking Messages.json; its own CPU is the harness's, not the servers'): TWOSTEP_SMS_PROVIDER=%s, TWOSTEP_TWILIO_ACCOUNT_SID=%s, "+
				"TWOSTEP_TWILIO_AUTH_TOKEN=(the fake's), TWOSTEP_TWILIO_FROM=%s, TWOSTEP_TWILIO_BASE_URL=%s",
				lookup("TWOSTEP_SMS_PROVIDER"), lookup("TWOSTEP_TWILIO_ACCOUNT_SID"),
				lookup("TWOSTEP_TWILIO_FROM"), lookup("TWOSTEP_TWILIO_BASE_URL")),
			fmt.Sprintf("SMS limits on those servers: TWOSTEP_SMS_RESEND_COOLDOWN=%s (each phone texted at most once per cooldown), "+
				"and every send ceiling set high: %s (a server ignores a variable it does not define)",
				lookup("TWOSTEP_SMS_RESEND_COOLDOWN"), strings.Join(limits, ", ")))
	case len(ph.env) > 0:
		notes = append(notes, fmt.Sprintf("the 2FA operations ran on servers started anew with %s: "+
			"their timed password steps (login-totp) cost far less than in production", cheap))
	}
	return notes
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// newRunID returns a short random name for this run; it keeps the run's accounts apart from
// those of earlier runs against the same database.
func newRunID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twostep-auth/twostep/internal/totp"
)

// benchPassword is the password of every account the harness makes. It is long and mixed so that
// any reasonable password policy accepts it.
const benchPassword = "Bench-twostep-Passw0rd-4217"

// worker is one concurrent client. Only its own goroutine touches it while an operation runs.
type worker struct {
	id  int
	n   int          // requests made in the current measurement
	buf bytes.Buffer // answer body of the last request
	rec *recorder
	err error // first transport error seen, for the report
}

// stepFunc makes one timed operation for w and returns its outcome and latency. more is false
// when the operation's pool has run out and no request was made; the client then stops.
type stepFunc func(ctx context.Context, w *worker) (status int, latency time.Duration, more bool)

// prepared is an operation whose untimed set-up is done.
type prepared struct {
	step stepFunc
	// pooled operations draw on pre-made, single-use material: they are not warmed up (their
	// set-up traffic warmed the connections) and they may stop early.
	pooled bool
	// beforeTiming, if set, runs after warm-up and just before timing starts.
	beforeTiming func(ctx context.Context) error
	// exhausted explains an early stop.
	exhausted string
	notes     []string
	// after, if set, runs when timing is over.
	after func()
}

// bench holds what the operations of one phase share: the targets, and the accounts made for
// them (made on first need, then reused by later operations).
type bench struct {
	logger  *slog.Logger
	api     *api
	cfg     config
	runID   string
	workers []*worker

	regSeq atomic.Int64 // numbers the register operation's emails

	users    []credentials // plain accounts for login, renew and get-user
	pool     *userPool     // enrolled accounts for the 2FA operations
	poolErr  error         // why the pool could not be made; not tried again
	poolNote string        // how the pool was made

	// For sms-login: where the servers' texts arrive, the servers' resend cooldown, and the
	// users enrolled with SMS.
	inbox       inbox
	smsCooldown time.Duration
	smsPool     *smsPool
	smsPoolErr  error
	smsPoolNote string

	// serverCPU, if set, returns the CPU time the servers have used so far.
	serverCPU func() (time.Duration, error)
}

// timedDo sends one request and measures it.
func (b *bench) timedDo(ctx context.Context, w *worker, method, url string, body []byte, bearer string) (int, time.Duration) {
	start := time.Now()
	status, err := b.api.do(ctx, method, url, body, bearer, &w.buf)
	lat := time.Since(start)
	if err != nil && w.err == nil && ctx.Err() == nil {
		w.err = err
	}
	return status, lat
}

// tokensMarker is in every Tokens answer.
const tokensMarker = `"accessToken"`

// wantTokens turns a 2xx answer without tokens in w's buffer into statusBadBody.
func wantTokens(status int, w *worker) int {
	if isOK(status) && !bytes.Contains(w.buf.Bytes(), []byte(tokensMarker)) {
		return statusBadBody
	}
	return status
}

// postCode sends {"code": code} to path with bearer and wants tokens back.
func (b *bench) postCode(ctx context.Context, w *worker, path, code, bearer string) (int, time.Duration) {
	body := []byte(`{"code":"` + code + `"}`)
	status, lat := b.timedDo(ctx, w, http.MethodPost, b.api.base(w.id, w.n)+path, body, bearer)
	return wantTokens(status, w), lat
}

// prepare does the untimed set-up of op.
func (b *bench) prepare(ctx context.Context, op string) (*prepared, error) {
	switch op {
	case opRegister:
		return b.prepareRegister(), nil
	case opLogin:
		return b.prepareLogin(ctx)
	case opRenew:
		return b.prepareRenew(ctx)
	case opGetUser:
		return b.prepareGetUser(ctx)
	case opJWKS:
		return b.prepareJWKS(), nil
	case opTOTPVerify:
		return b.prepareTOTPVerify(ctx)
	case opLoginTOTP:
		return b.prepareLoginTOTP(ctx)
	case opRecover:
		return b.prepareRecover(ctx)
	case opSMSLogin:
		return b.prepareSMSLogin(ctx)
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

// prepareRegister: POST /authentication/local/new with a new email each time.
func (b *bench) prepareRegister() *prepared {
	prefix := `{"email":"bench-` + b.runID + `-`
	suffix := `@example.com","password":"` + benchPassword + `"}`
	return &prepared{step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
		n := b.regSeq.Add(1)
		body := make([]byte, 0, len(prefix)+len(suffix)+12)
		body = append(strconv.AppendInt(append(body, prefix...), n, 10), suffix...)
		status, lat := b.timedDo(ctx, w, http.MethodPost, b.api.base(w.id, w.n)+pathRegister, body, "")
		return status, lat, true
	}}
}

// prepareLogin: POST /authentication/local as the -users accounts in turn; wants tokens.
func (b *bench) prepareLogin(ctx context.Context) (*prepared, error) {
	if err := b.ensureUsers(ctx); err != nil {
		return nil, err
	}
	bodies := make([][]byte, len(b.users))
	for i, c := range b.users {
		bodies[i], _ = json.Marshal(c)
	}
	stride := len(b.workers)
	return &prepared{step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
		body := bodies[(w.id+w.n*stride)%len(bodies)]
		status, lat := b.timedDo(ctx, w, http.MethodPost, b.api.base(w.id, w.n)+pathLogin, body, "")
		return wantTokens(status, w), lat, true
	}}, nil
}

// prepareRenew: POST /authentication/renew, each client along its own refresh-token chain.
func (b *bench) prepareRenew(ctx context.Context) (*prepared, error) {
	if err := b.ensureUsers(ctx); err != nil {
		return nil, err
	}
	// One session per client, each followed along its own refresh-token chain.
	refresh := make([]string, len(b.workers))
	login := func(ctx context.Context, w *worker) error {
		t, err := b.api.login(ctx, w.id, b.users[w.id%len(b.users)])
		refresh[w.id] = t.RefreshToken
		return err
	}
	if err := b.forEachWorker(ctx, login); err != nil {
		return nil, err
	}
	relogins := new(atomic.Int64)
	p := &prepared{step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
		body := []byte(`{"refreshToken":"` + refresh[w.id] + `"}`)
		status, lat := b.timedDo(ctx, w, http.MethodPost, b.api.base(w.id, w.n)+pathRenew, body, "")
		if isOK(status) {
			var t tokens
			if json.Unmarshal(w.buf.Bytes(), &t) == nil && t.RefreshToken != "" {
				refresh[w.id] = t.RefreshToken
				return status, lat, true
			}
			status = statusBadBody
		}
		// The chain is broken (a failed renew may even have revoked the session): start a new
		// one, untimed, so that one error does not turn every later request into one.
		if ctx.Err() == nil && login(ctx, w) == nil {
			relogins.Add(1)
		}
		return status, lat, true
	}}
	p.after = func() {
		if n := relogins.Load(); n > 0 {
			p.notes = append(p.notes, fmt.Sprintf("%d broken refresh chains restarted by an untimed login", n))
		}
	}
	return p, nil
}

// prepareGetUser: GET /authentication/user with an access token per client.
func (b *bench) prepareGetUser(ctx context.Context) (*prepared, error) {
	if err := b.ensureUsers(ctx); err != nil {
		return nil, err
	}
	access := make([]string, len(b.workers))
	err := b.forEachWorker(ctx, func(ctx context.Context, w *worker) error {
		t, err := b.api.login(ctx, w.id, b.users[w.id%len(b.users)])
		access[w.id] = t.AccessToken
		return err
	})
	if err != nil {
		return nil, err
	}
	return &prepared{step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
		status, lat := b.timedDo(ctx, w, http.MethodGet, b.api.base(w.id, w.n)+pathUser, nil, access[w.id])
		return status, lat, true
	}}, nil
}

// prepareJWKS: GET /.well-known/jwks.json.
func (b *bench) prepareJWKS() *prepared {
	return &prepared{step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
		status, lat := b.timedDo(ctx, w, http.MethodGet, b.api.base(w.id, w.n)+pathJWKS, nil, "")
		return status, lat, true
	}}
}

// prepareTOTPVerify: POST /authentication/twoFa/verify with a pre-made challenge token and the
// current code of a user whose factor has not yet seen this time step.
func (b *bench) prepareTOTPVerify(ctx context.Context) (*prepared, error) {
	if err := b.ensurePool(ctx); err != nil {
		return nil, err
	}
	per := b.challengesPerUser()
	made, err := b.makeChallenges(ctx, per)
	if err != nil {
		return nil, err
	}
	pool := b.pool
	return &prepared{
		pooled:       true,
		beforeTiming: b.freshStep,
		exhausted:    b.exhaustedText(),
		notes:        []string{fmt.Sprintf("%d challenge tokens made before timing (%d per user)", made, per)},
		after:        pool.dropPending,
		step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
			_, code, challenge, ok := pool.take(time.Now(), true)
			if !ok {
				return 0, 0, false
			}
			status, lat := b.postCode(ctx, w, pathVerify, code, challenge)
			return status, lat, true
		},
	}, nil
}

// prepareLoginTOTP: the password step and the code step of a 2FA login, timed as one operation.
func (b *bench) prepareLoginTOTP(ctx context.Context) (*prepared, error) {
	if err := b.ensurePool(ctx); err != nil {
		return nil, err
	}
	pool := b.pool
	return &prepared{
		pooled:       true,
		beforeTiming: b.freshStep,
		exhausted:    b.exhaustedText(),
		step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
			u, code, _, ok := pool.take(time.Now(), false)
			if !ok {
				return 0, 0, false
			}
			start := time.Now()
			status, _ := b.timedDo(ctx, w, http.MethodPost, b.api.base(w.id, w.n)+pathLogin, u.loginBody, "")
			if !isOK(status) {
				return status, time.Since(start), true
			}
			var ans loginAnswer
			if json.Unmarshal(w.buf.Bytes(), &ans) != nil || !ans.TwoFaRequired || ans.ChallengeToken == "" {
				return statusBadBody, time.Since(start), true
			}
			status, _ = b.postCode(ctx, w, pathVerify, code, ans.ChallengeToken)
			return status, time.Since(start), true
		},
	}, nil
}

// prepareRecover: POST /authentication/twoFa/recover with a pre-made challenge token and an
// unused backup code.
func (b *bench) prepareRecover(ctx context.Context) (*prepared, error) {
	if err := b.ensurePool(ctx); err != nil {
		return nil, err
	}
	per := min(b.challengesPerUser(), 10) // a user has 10 backup codes
	made, err := b.makeChallenges(ctx, per)
	if err != nil {
		return nil, err
	}
	pool := b.pool
	return &prepared{
		pooled:    true,
		exhausted: fmt.Sprintf("the %d pre-made challenge tokens (with backup codes) ran out; raise -totp-users", made),
		notes:     []string{fmt.Sprintf("%d challenge tokens made before timing, each paired with an unused backup code", made)},
		after:     pool.dropPending,
		step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
			challenge, code, ok := pool.takeBackup()
			if !ok {
				return 0, 0, false
			}
			status, lat := b.postCode(ctx, w, pathRecover, code, challenge)
			return status, lat, true
		},
	}, nil
}

// exhaustedText explains an early stop of a TOTP operation.
func (b *bench) exhaustedText() string {
	return fmt.Sprintf("TOTP user pool ran out (%d users, each code step used once per user, %v steps); raise -totp-users",
		len(b.pool.users), b.pool.period)
}

// challengesPerUser is how many challenge tokens each enrolled user gets for one pooled
// operation: one per time step that a timed run of -d can touch.
func (b *bench) challengesPerUser() int {
	period := b.pool.period
	return int((b.cfg.duration+period-1)/period) + 1
}

// freshStep waits, if any enrolled user's factor has already accepted the current time step,
// until the next step begins, so that the whole pool is usable when timing starts.
func (b *bench) freshStep(ctx context.Context) error {
	now := time.Now()
	s := totp.Step(now, b.pool.period)
	if !b.pool.usedSince(s) {
		return nil
	}
	// A little past the boundary, so that a server clock a few milliseconds behind agrees.
	wait := stepStart(s+1, b.pool.period).Sub(now) + 50*time.Millisecond
	b.logger.Info("waiting for a fresh TOTP time step", "wait", wait.Round(time.Millisecond))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ensureUsers registers the -users plain accounts once.
func (b *bench) ensureUsers(ctx context.Context) error {
	if b.users != nil {
		return nil
	}
	users := make([]credentials, b.cfg.users)
	for i := range users {
		users[i] = credentials{Email: fmt.Sprintf("bench-%s-u%d@example.com", b.runID, i), Password: benchPassword}
	}
	start := time.Now()
	b.logger.Info("registering users", "users", len(users))
	_, err := b.forEachItem(ctx, len(users), func(ctx context.Context, client, i int) error {
		return b.api.register(ctx, client, users[i])
	}, true)
	if err := cmp.Or(ctx.Err(), err); err != nil {
		return fmt.Errorf("register users: %w", err)
	}
	b.logger.Info("users registered", "users", len(users), "took", time.Since(start).Round(time.Millisecond))
	b.users = users
	return nil
}

// ensurePool registers and enrols the -totp-users accounts once: each logs in, enables an
// authenticator and confirms it with the current code. Accounts whose enrolment fails are left
// out (and counted); the pool must not end up empty.
func (b *bench) ensurePool(ctx context.Context) error {
	if b.pool != nil || b.poolErr != nil {
		return b.poolErr
	}
	n := b.cfg.totpUsers
	var (
		optsOnce sync.Once
		opts     totp.Options // as the server advertises them; the same for every user
	)
	b.logger.Info("enrolling users with an authenticator", "users", n)
	e, err := enrolAll(ctx, b, n, func(ctx context.Context, client, i int) (*enrolled, error) {
		u, o, err := b.enrol(ctx, client, i)
		if err != nil {
			return nil, err
		}
		optsOnce.Do(func() { opts = o })
		return u, nil
	})
	if err != nil {
		return err
	}
	if e.failed == n {
		b.poolErr = fmt.Errorf("enrol users: all %d failed, the first: %w", n, e.first)
		return b.poolErr
	}
	b.poolNote = e.note("with an authenticator", "")
	b.logger.Info("users enrolled", "users", len(e.users), "failed", e.failed, "took", e.took)
	b.pool = &userPool{period: opts.Period, opts: opts, users: e.users}
	return nil
}

// enrolment is how enrolling a pool's users went.
type enrolment[U any] struct {
	users  []*U          // those that enrolled, in item order
	failed int           // how many did not
	first  error         // the first failure
	took   time.Duration // rounded to the millisecond
}

// enrolAll runs enrol for items 0..n-1 on the workers and keeps the users that enrolled (none
// when every enrolment failed). It returns ctx's error when ctx ends first.
func enrolAll[U any](ctx context.Context, b *bench, n int, enrol func(ctx context.Context, client, i int) (*U, error)) (enrolment[U], error) {
	start := time.Now()
	users := make([]*U, n)
	failed, first := b.forEachItem(ctx, n, func(ctx context.Context, client, i int) error {
		u, err := enrol(ctx, client, i)
		users[i] = u
		return err
	}, false)
	if err := ctx.Err(); err != nil {
		return enrolment[U]{}, err
	}
	e := enrolment[U]{failed: failed, first: first, took: time.Since(start).Round(time.Millisecond)}
	for _, u := range users {
		if u != nil {
			e.users = append(e.users, u)
		}
	}
	return e, nil
}

// note is the report's line on the pool: "<n> users enrolled <how> in <took><tail>", then the
// failures if there were any.
func (e enrolment[U]) note(how, tail string) string {
	s := fmt.Sprintf("%d users enrolled %s in %v%s", len(e.users), how, e.took, tail)
	if e.failed > 0 {
		s += fmt.Sprintf(" (%d failed, the first: %v)", e.failed, e.first)
	}
	return s
}

// enrol registers the i-th pool account, logs it in, enables an authenticator and confirms it
// with the current code. It returns the user and the code options the server advertises.
func (b *bench) enrol(ctx context.Context, client, i int) (*enrolled, totp.Options, error) {
	c := credentials{Email: fmt.Sprintf("bench-%s-t%d@example.com", b.runID, i), Password: benchPassword}
	if err := b.api.register(ctx, client, c); err != nil {
		return nil, totp.Options{}, err
	}
	t, err := b.api.login(ctx, client, c)
	if err != nil {
		return nil, totp.Options{}, err
	}
	var en enableAnswer
	if err := b.api.call(ctx, client, http.MethodPost, pathEnable, map[string]string{"method": "authenticator"}, t.AccessToken, &en); err != nil {
		return nil, totp.Options{}, err
	}
	opts, err := totpOptions(en.OtpauthURL)
	if err != nil {
		return nil, totp.Options{}, err
	}
	secret, err := totp.Decode(en.Secret)
	if err != nil {
		return nil, totp.Options{}, fmt.Errorf("decode secret: %w", err)
	}
	now := time.Now()
	var ev enableVerifyAnswer
	if err := b.api.call(ctx, client, http.MethodPost, pathEnableVerify, codeBody{totp.Code(secret, now, opts)}, t.AccessToken, &ev); err != nil {
		return nil, totp.Options{}, err
	}
	backup := ev.BackupCodes
	if len(backup) == 0 {
		backup = ev.Codes
	}
	loginBody, err := json.Marshal(c)
	if err != nil {
		return nil, totp.Options{}, err
	}
	return &enrolled{creds: c, loginBody: loginBody, secret: secret, backup: backup, lastStep: totp.Step(now, opts.Period)}, opts, nil
}

// makeChallenges gives every enrolled user per challenge tokens (password logins) and returns
// how many were made. Failed logins are skipped; none at all is an error.
func (b *bench) makeChallenges(ctx context.Context, per int) (int, error) {
	users := b.pool.users
	tokens := make([][]string, len(users))
	for i := range tokens {
		tokens[i] = make([]string, per)
	}
	start := time.Now()
	b.logger.Info("making challenge tokens", "tokens", per*len(users))
	failed, err := b.forEachItem(ctx, per*len(users), func(ctx context.Context, client, i int) error {
		u, k := i%len(users), i/len(users)
		t, err := b.api.challenge(ctx, client, users[u].creds)
		tokens[u][k] = t
		return err
	}, false)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if failed == per*len(users) {
		return 0, fmt.Errorf("make challenge tokens: all %d failed, the first: %w", failed, err)
	}
	made := 0
	for i, u := range users {
		u.pending = u.pending[:0]
		for _, t := range tokens[i] {
			if t != "" {
				u.pending = append(u.pending, t)
				made++
			}
		}
	}
	b.logger.Info("challenge tokens made", "tokens", made, "failed", failed, "took", time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		b.logger.Warn("some challenge tokens could not be made", "failed", failed, "first_error", err)
	}
	return made, nil
}

// forEachWorker runs f once for every worker, concurrently. If any fail, the error names how
// many and the first.
func (b *bench) forEachWorker(ctx context.Context, f func(ctx context.Context, w *worker) error) error {
	errs := make([]error, len(b.workers))
	var wg sync.WaitGroup
	for _, w := range b.workers {
		wg.Go(func() { errs[w.id] = f(ctx, w) })
	}
	wg.Wait()
	failed, first := 0, error(nil)
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d clients failed, the first: %w", failed, len(errs), first)
	}
	return nil
}

// forEachItem runs f for items 0..n-1 on as many goroutines as there are workers (f gets the
// worker's number, for round-robin across targets). It returns how many items failed and the
// first failure. With strict, the first failure stops the rest.
func (b *bench) forEachItem(ctx context.Context, n int, f func(ctx context.Context, client, i int) error, strict bool) (failed int, firstErr error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next    atomic.Int64
		nfailed atomic.Int64
		once    sync.Once
		wg      sync.WaitGroup
	)
	for c := range min(len(b.workers), n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, c, i); err != nil {
					nfailed.Add(1)
					once.Do(func() { firstErr = err })
					if strict {
						cancel()
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return int(nfailed.Load()), firstErr
}

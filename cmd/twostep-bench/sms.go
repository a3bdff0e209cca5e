package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/twostep-auth/twostep/internal/sms"
	"github.com/twostep-auth/twostep/internal/sms/smstest"
)

// The Twilio settings of the servers started for sms-login: the credentials the fake accepts
// (an account SID is AC and 32 hex digits) and a sender number (Twilio's magic test number).
const (
	smsTwilioFrom = "+15005550006"
	// smsCooldown is the resend cooldown the servers get: each phone can be texted once per
	// cooldown, so the pool of -sms-users phones bounds the rate at about users / cooldown.
	smsCooldown = "1s"
	// smsHighLimit stands for "no limit" in every SMS send ceiling the servers get.
	smsHighLimit = "1000000"
	// smsSpacingMargin is added to the cooldown between two texts to one phone, so that a
	// server clock read a few milliseconds apart, or stored with millisecond precision, agrees.
	smsSpacingMargin = 100 * time.Millisecond
	// smsWaitTimeout bounds the wait for the fake to receive a text. The servers send before they
	// answer, so the text is normally there at once.
	smsWaitTimeout = 5 * time.Second
	// maxSMSUsers keeps the phones distinct: they are +1555 and seven digits.
	maxSMSUsers = 1_000_000
)

// smsLimitVars are the SMS send ceilings the servers started for sms-login get as smsHighLimit.
// A server ignores those it does not know (config.Load reads only the variables it defines).
var smsLimitVars = []string{
	"TWOSTEP_SMS_HOURLY_LIMIT", "TWOSTEP_SMS_PHONE_DAILY_LIMIT", "TWOSTEP_SMS_DAILY_LIMIT", "TWOSTEP_SMS_IP_HOURLY_LIMIT",
}

// smsServerEnv is the environment that points a server's twilio provider at the fake at url.
func smsServerEnv(url string) []string {
	env := []string{
		"TWOSTEP_SMS_PROVIDER=twilio",
		"TWOSTEP_TWILIO_ACCOUNT_SID=" + smstest.AccountSID,
		"TWOSTEP_TWILIO_AUTH_TOKEN=" + smstest.AuthToken,
		"TWOSTEP_TWILIO_FROM=" + smsTwilioFrom,
		"TWOSTEP_TWILIO_BASE_URL=" + url,
		"TWOSTEP_SMS_RESEND_COOLDOWN=" + smsCooldown,
	}
	for _, k := range smsLimitVars {
		env = append(env, k+"="+smsHighLimit)
	}
	return env
}

// serverCooldown returns the resend cooldown of servers with this environment (the server's
// default, 30s, when unset).
func serverCooldown(lookup func(string) string) (time.Duration, error) {
	v := lookup("TWOSTEP_SMS_RESEND_COOLDOWN")
	if v == "" {
		return 30 * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("TWOSTEP_SMS_RESEND_COOLDOWN=%q: want a duration like 1s", v)
	}
	return d, nil
}

// inbox is where the harness reads the texts the servers send: the fake Twilio.
type inbox interface {
	Count(to string) int
	Wait(ctx context.Context, to string, n int) (sms.Message, error)
}

// smsUser is an account with a confirmed SMS factor on a phone of its own.
type smsUser struct {
	creds     credentials
	loginBody []byte // creds as JSON
	phone     string
	// texts is how many texts the fake has received for phone, as far as the harness knows.
	// Only the client holding the user (between take and release) touches it.
	texts int

	// Guarded by the pool's mutex:
	busy    bool      // handed to a client and not yet released
	readyAt time.Time // the phone may be texted again from then on
}

// smsPool hands SMS users to clients so that no phone is texted twice within the servers'
// resend cooldown: a user is handed to one client at a time, and after a text is (or may have
// been) sent to its phone it rests for spacing, counted from when the server's answer arrived,
// which is after the server charged the cooldown. Users are walked round-robin, so the one
// served longest ago is offered first. It is safe for concurrent use.
type smsPool struct {
	spacing time.Duration // the servers' cooldown plus smsSpacingMargin

	mu     sync.Mutex
	users  []*smsUser
	cursor int // next user to look at
}

// take returns the next user, round-robin, whose phone may be texted at now, and marks it busy.
// ok is false when every phone is busy or resting: the pool is too small for the rate.
func (p *smsPool) take(now time.Time) (u *smsUser, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range len(p.users) {
		u := p.users[p.cursor]
		p.cursor = (p.cursor + 1) % len(p.users)
		if u.busy || now.Before(u.readyAt) {
			continue
		}
		u.busy = true
		return u, true
	}
	return nil, false
}

// release gives u back. textedBy, unless zero, is a time by which any text the client asked
// for had been sent (when the server's answer arrived): the phone rests until textedBy+spacing.
// A zero textedBy means no text was asked for.
func (p *smsPool) release(u *smsUser, textedBy time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u.busy = false
	if !textedBy.IsZero() {
		if r := textedBy.Add(p.spacing); r.After(u.readyAt) {
			u.readyAt = r
		}
	}
}

// allReadyAt returns when every phone of the pool may be texted again.
func (p *smsPool) allReadyAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t time.Time
	for _, u := range p.users {
		if u.readyAt.After(t) {
			t = u.readyAt
		}
	}
	return t
}

// waitAllReady waits until every phone of the pool may be texted again.
func (p *smsPool) waitAllReady(ctx context.Context) error {
	wait := time.Until(p.allReadyAt())
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// smsPhone returns the i-th SMS user's phone: +1555 and seven digits, starting at an offset
// drawn from the run ID so that runs against one database rarely share phones.
func (b *bench) smsPhone(i int) string {
	base, _ := strconv.ParseUint(b.runID, 16, 32)
	return fmt.Sprintf("+1555%07d", (base+uint64(i))%10_000_000)
}

// ensureSMSPool registers the -sms-users accounts once, each enrolled with SMS on a phone of its
// own: log in, POST /twoFa/enable {"method":"sms","phone"}, read the code from the fake,
// POST /twoFa/enable/verify. Accounts whose enrolment fails are left out (and counted); the
// pool must not end up empty.
func (b *bench) ensureSMSPool(ctx context.Context) error {
	if b.smsPool != nil || b.smsPoolErr != nil {
		return b.smsPoolErr
	}
	if b.inbox == nil {
		b.smsPoolErr = errors.New("no fake SMS provider: sms-login needs servers started by the harness (-server)")
		return b.smsPoolErr
	}
	n := b.cfg.smsUsers
	b.logger.Info("enrolling users with SMS", "users", n, "cooldown", b.smsCooldown)
	e, err := enrolAll(ctx, b, n, b.enrolSMS)
	if err != nil {
		return err
	}
	if e.failed == n {
		b.smsPoolErr = fmt.Errorf("enrol users with SMS: all %d failed, the first: %w", n, e.first)
		return b.smsPoolErr
	}
	b.smsPoolNote = e.note("with SMS", ", each with its own phone")
	b.logger.Info("users enrolled with SMS", "users", len(e.users), "failed", e.failed, "took", e.took)
	b.smsPool = &smsPool{spacing: b.smsCooldown + smsSpacingMargin, users: e.users}
	return nil
}

// enrolSMS registers the i-th SMS account, logs it in and enrols its phone.
func (b *bench) enrolSMS(ctx context.Context, client, i int) (*smsUser, error) {
	c := credentials{Email: fmt.Sprintf("bench-%s-s%d@example.com", b.runID, i), Password: benchPassword}
	if err := b.api.register(ctx, client, c); err != nil {
		return nil, err
	}
	t, err := b.api.login(ctx, client, c)
	if err != nil {
		return nil, err
	}
	phone := b.smsPhone(i)
	before := b.inbox.Count(phone)
	err = b.api.call(ctx, client, http.MethodPost, pathEnable, map[string]string{"method": "sms", "phone": phone}, t.AccessToken, nil)
	textedBy := time.Now()
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, smsWaitTimeout)
	defer cancel()
	m, err := b.inbox.Wait(wctx, phone, before+1)
	if err != nil {
		return nil, fmt.Errorf("enrolment text: %w", err)
	}
	if m.Code == "" {
		return nil, fmt.Errorf("enrolment text to %s has no code", sms.MaskPhone(phone))
	}
	if err := b.api.call(ctx, client, http.MethodPost, pathEnableVerify, map[string]string{"method": "sms", "code": m.Code}, t.AccessToken, nil); err != nil {
		return nil, err
	}
	loginBody, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return &smsUser{creds: c, loginBody: loginBody, phone: phone, texts: before + 1,
		readyAt: textedBy.Add(b.smsCooldown + smsSpacingMargin)}, nil
}

// authorizeSMSBody asks for a code by text.
var authorizeSMSBody = []byte(`{"method":"sms"}`)

// prepareSMSLogin: a whole SMS login timed as one operation: POST /authentication/local
// (challenge token), POST /twoFa/authorize {"method":"sms"}, the text read from the fake,
// POST /twoFa/verify {"method":"sms","code"}; wants tokens.
func (b *bench) prepareSMSLogin(ctx context.Context) (*prepared, error) {
	if err := b.ensureSMSPool(ctx); err != nil {
		return nil, err
	}
	pool, box := b.smsPool, b.inbox
	// Enrolment texted every phone: let them all rest before the warm-up, and again before timing,
	// so that an early stop says the pool is too small for the timed rate, nothing else.
	if err := pool.waitAllReady(ctx); err != nil {
		return nil, err
	}
	return &prepared{
		beforeTiming: pool.waitAllReady,
		exhausted: fmt.Sprintf("every one of the %d SMS users' phones was busy or in its %v resend cooldown "+
			"(each phone is texted at most once per cooldown + %v); raise -sms-users", len(pool.users), b.smsCooldown, smsSpacingMargin),
		notes: []string{fmt.Sprintf("one operation = password login + authorize (text sent through the twilio provider to the fake) + "+
			"code read from the fake + verify; req/s counts whole logins, latency is the whole sequence; "+
			"phones round-robin over %d users, each texted at most once per %v", len(pool.users), pool.spacing)},
		step: func(ctx context.Context, w *worker) (int, time.Duration, bool) {
			u, ok := pool.take(time.Now())
			if !ok {
				return 0, 0, false
			}
			status, lat := b.smsLogin(ctx, w, box, u, pool)
			return status, lat, true
		},
	}, nil
}

// smsLogin runs one SMS login for u, which w holds, and releases u once its text is in.
func (b *bench) smsLogin(ctx context.Context, w *worker, box inbox, u *smsUser, pool *smsPool) (int, time.Duration) {
	base := b.api.base(w.id, w.n) // the whole sequence goes to one target
	start := time.Now()
	status, _ := b.timedDo(ctx, w, http.MethodPost, base+pathLogin, u.loginBody, "")
	if !isOK(status) {
		pool.release(u, time.Time{})
		return status, time.Since(start)
	}
	var ans loginAnswer
	if json.Unmarshal(w.buf.Bytes(), &ans) != nil || !ans.TwoFaRequired || ans.ChallengeToken == "" {
		pool.release(u, time.Time{})
		return statusBadBody, time.Since(start)
	}
	status, _ = b.timedDo(ctx, w, http.MethodPost, base+pathAuthorize, authorizeSMSBody, ans.ChallengeToken)
	textedBy := time.Now()
	if !isOK(status) {
		// A text may have gone out all the same; count what the fake has, and rest the phone.
		u.texts = box.Count(u.phone)
		pool.release(u, textedBy)
		return status, time.Since(start)
	}
	wctx, cancel := context.WithTimeout(ctx, smsWaitTimeout)
	m, err := box.Wait(wctx, u.phone, u.texts+1)
	cancel()
	if err != nil {
		u.texts = box.Count(u.phone)
		pool.release(u, textedBy)
		if ctx.Err() != nil {
			return statusTransport, time.Since(start)
		}
		return statusNoText, time.Since(start)
	}
	u.texts++
	pool.release(u, textedBy) // verifying sends nothing: the phone may rest from now
	body := []byte(`{"method":"sms","code":"` + m.Code + `"}`)
	status, _ = b.timedDo(ctx, w, http.MethodPost, base+pathVerify, body, ans.ChallengeToken)
	return wantTokens(status, w), time.Since(start)
}

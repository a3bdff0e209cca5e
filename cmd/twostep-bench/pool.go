package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twostep-auth/twostep/internal/totp"
)

// enrolled is a user with an authenticator factor.
type enrolled struct {
	creds     credentials
	loginBody []byte // creds as JSON
	secret    []byte
	backup    []string // unused backup codes
	pending   []string // challenge tokens made for the next operation, oldest first
	// lastStep is the last TOTP time step used for this user's factor (by enrolment or by the
	// harness); the server refuses a step that is not later.
	lastStep int64
}

// totpOptions returns the code options a server advertises in its otpauth URL (api.md:
// SHA1, 6 digits, 30 s), falling back to those defaults for anything the URL leaves out.
func totpOptions(otpauthURL string) (totp.Options, error) {
	opts := totp.Options{Period: 30 * time.Second, Digits: 6, Algorithm: totp.SHA1}
	if otpauthURL == "" {
		return opts, nil
	}
	u, err := url.Parse(otpauthURL)
	if err != nil {
		return opts, fmt.Errorf("otpauth URL: %w", err)
	}
	q := u.Query()
	if p := q.Get("period"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return opts, fmt.Errorf("otpauth URL: period %q", p)
		}
		opts.Period = time.Duration(n) * time.Second
	}
	if d := q.Get("digits"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil {
			return opts, fmt.Errorf("otpauth URL: digits %q", d)
		}
		opts.Digits = n
	}
	switch a := strings.ToUpper(q.Get("algorithm")); a {
	case "", "SHA1":
	case "SHA256":
		opts.Algorithm = totp.SHA256
	case "SHA512":
		opts.Algorithm = totp.SHA512
	default:
		return opts, fmt.Errorf("otpauth URL: algorithm %q", a)
	}
	if err := opts.Validate(); err != nil {
		return opts, fmt.Errorf("otpauth URL: %w", err)
	}
	return opts, nil
}

// stepStart returns the instant step begins.
func stepStart(step int64, period time.Duration) time.Time {
	return time.Unix(step*int64(period/time.Second), 0)
}

// userPool hands enrolled users to clients so that no user's TOTP step is used twice: within one
// step each user is handed out at most once, and a user whose factor already accepted the
// current step (or a later one) is skipped. It walks the users in a circle that continues across
// steps, so the users served last in one step are the last to be served again in the next.
// It is safe for concurrent use.
type userPool struct {
	period time.Duration
	opts   totp.Options

	mu     sync.Mutex
	users  []*enrolled
	cursor int   // next user to look at
	step   int64 // step that handed counts for
	handed int   // users looked at during step
}

// take returns a user whose factor has not seen now's step, marking the step as used, and the
// step's code. With needChallenge it also pops one of the user's pending challenge tokens and
// skips users that have none. ok is false when no user is left for this step: the pool has run out.
func (p *userPool) take(now time.Time, needChallenge bool) (u *enrolled, code, challenge string, ok bool) {
	s := totp.Step(now, p.period)
	p.mu.Lock()
	defer p.mu.Unlock()
	if s != p.step {
		p.step, p.handed = s, 0
	}
	for p.handed < len(p.users) {
		u := p.users[p.cursor]
		p.cursor = (p.cursor + 1) % len(p.users)
		p.handed++
		if u.lastStep >= s || (needChallenge && len(u.pending) == 0) {
			continue
		}
		u.lastStep = s
		if needChallenge {
			challenge, u.pending = u.pending[0], u.pending[1:]
		}
		return u, totp.Code(u.secret, now, p.opts), challenge, true
	}
	return nil, "", "", false
}

// takeBackup returns a user with a pending challenge token and an unused backup code, popping
// both. Backup codes have no time step, so users are simply taken in turn. ok is false when no
// such user is left.
func (p *userPool) takeBackup() (challenge, code string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range len(p.users) {
		u := p.users[p.cursor]
		p.cursor = (p.cursor + 1) % len(p.users)
		if len(u.pending) == 0 || len(u.backup) == 0 {
			continue
		}
		challenge, u.pending = u.pending[0], u.pending[1:]
		code, u.backup = u.backup[0], u.backup[1:]
		return challenge, code, true
	}
	return "", "", false
}

// usedSince reports whether any user's factor has accepted step s or a later one.
func (p *userPool) usedSince(s int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.users {
		if u.lastStep >= s {
			return true
		}
	}
	return false
}

// dropPending forgets every pending challenge token (after an operation, its leftovers are stale).
func (p *userPool) dropPending() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.users {
		u.pending = nil
	}
}

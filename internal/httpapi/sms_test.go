package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/sms"
)

// The phone of most tests, as a person types it, in E.164 and masked.
const (
	adaPhone       = "+14155552671"
	adaPhoneTyped  = "+1 (415) 555-2671"
	adaPhoneMasked = "+1******2671"
)

const (
	pathEnable       = "/authentication/twoFa/enable"
	pathEnableVerify = "/authentication/twoFa/enable/verify"
	pathAuthorize    = "/authentication/twoFa/authorize"
	pathPhone        = "/authentication/user/phone"
	pathPhoneVerify  = "/authentication/user/phone/verify"
	pathPhoneSignUp  = "/authentication/phone/new"
	pathPhoneSignIn  = "/authentication/phone"
	pathPhoneLogin   = "/authentication/phone/verify"
)

// logBuffer collects log lines; safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// phoneEnv is an env that keeps every answer it got and the logs, so that
// the end of each test can check that no code sent by text or call ever
// left the server any other way.
type phoneEnv struct {
	*env
	logs    *logBuffer
	mu      sync.Mutex
	answers []resp
}

func newPhoneEnv(t *testing.T, engine string, opts ...envOption) *phoneEnv {
	t.Helper()
	logs := &logBuffer{}
	p := &phoneEnv{env: newEnv(t, engine, append([]envOption{withLogs(logs)}, opts...)...), logs: logs}
	// Registered after the database's own clean-up, so it runs first.
	t.Cleanup(p.checkNoCodeLeaked)
	return p
}

// send does r (with the test User-Agent) and keeps the answer.
func (p *phoneEnv) send(r request) resp {
	p.t.Helper()
	if r.header == nil {
		r.header = http.Header{"User-Agent": {testUA}}
	}
	out := p.do(r)
	p.mu.Lock()
	p.answers = append(p.answers, out)
	p.mu.Unlock()
	return out
}

func (p *phoneEnv) call(method, path, token string, body any) resp {
	p.t.Helper()
	return p.send(request{method: method, path: path, token: token, body: body})
}

func (p *phoneEnv) post(path, token string, body any) resp {
	p.t.Helper()
	return p.call(http.MethodPost, path, token, body)
}

// post503 posts a request whose expected answer is a 5xx.
func (p *phoneEnv) post503(path, token string, body any) resp {
	p.t.Helper()
	return p.send(request{method: http.MethodPost, path: path, token: token, body: body, allow5xx: true})
}

func (p *phoneEnv) verify(token string, body any) resp {
	p.t.Helper()
	return p.post("/authentication/twoFa/verify", token, body)
}

// isAlnum reports whether b is an ASCII letter or digit.
func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// containsCode reports whether code appears in s on its own (not as a
// part of a longer run of letters and digits, such as a random id).
func containsCode(s, code string) bool {
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], code)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(code)
		if (j == 0 || !isAlnum(s[j-1])) && (end == len(s) || !isAlnum(s[end])) {
			return true
		}
		i = j + 1
	}
	return false
}

// checkNoCodeLeaked fails the test if a code that went out by text or call
// appears in an HTTP answer, a log line or an audit row, or a full phone
// number in a log line or an audit row.
func (p *phoneEnv) checkNoCodeLeaked() {
	t := p.t
	msgs := p.sms.Messages()
	p.mu.Lock()
	answers := slices.Clone(p.answers)
	p.mu.Unlock()
	logs := p.logs.String()
	rows, err := p.db.SQL().QueryContext(context.Background(), `SELECT type, CAST(detail AS TEXT) FROM audit_events`)
	if err != nil {
		t.Errorf("read audit events: %v", err)
		return
	}
	defer rows.Close()
	var audit []string
	for rows.Next() {
		var typ string
		var detail *string
		if err := rows.Scan(&typ, &detail); err != nil {
			t.Errorf("read audit events: %v", err)
			return
		}
		if detail != nil {
			audit = append(audit, typ+" "+*detail)
		}
	}
	for _, m := range msgs {
		for _, a := range answers {
			if containsCode(string(a.Body), m.Code) || containsCode(fmt.Sprint(a.Header), m.Code) {
				t.Errorf("an HTTP answer carries the %s code sent by %s: %d %s", m.Purpose, m.Channel, a.Status, a.Body)
			}
		}
		if containsCode(logs, m.Code) {
			t.Errorf("the logs carry the %s code sent by %s:\n%s", m.Purpose, m.Channel, logs)
		}
		if strings.Contains(logs, m.To) {
			t.Errorf("the logs carry the full number %s:\n%s", m.To, logs)
		}
		for _, a := range audit {
			if containsCode(a, m.Code) {
				t.Errorf("audit row %s carries the %s code", a, m.Purpose)
			}
			if strings.Contains(a, m.To) {
				t.Errorf("audit row %s carries the full number %s", a, m.To)
			}
		}
	}
}

// mark is where the next message will be in the recorder.
func (p *phoneEnv) mark() int { return p.sms.Count("") }

// one fails unless exactly one message went out since mark, to to, by
// channel, for purpose, with a well-formed text; it returns its code.
func (p *phoneEnv) one(what string, mark int, to string, channel sms.Channel, purpose string) string {
	p.t.Helper()
	got := p.sms.Messages()[mark:]
	if len(got) != 1 {
		p.t.Fatalf("%s: %d messages went out, want 1 (%v)", what, len(got), got)
	}
	m := got[0]
	if m.To != to || m.Channel != channel || m.Purpose != purpose {
		p.t.Fatalf("%s sent %s %s for %s, want %s %s for %s", what, m.Channel, sms.MaskPhone(m.To), m.Purpose, channel, sms.MaskPhone(to), purpose)
	}
	checkText(p.t, what, m)
	return m.Code
}

// none fails if a message went out since mark.
func (p *phoneEnv) none(what string, mark int) {
	p.t.Helper()
	if got := p.sms.Messages()[mark:]; len(got) != 0 {
		p.t.Fatalf("%s sent %v, want nothing", what, got)
	}
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// checkText checks the code and what the phone shows or says.
func checkText(t *testing.T, what string, m sms.Message) {
	t.Helper()
	if !sixDigits.MatchString(m.Code) {
		t.Fatalf("%s: code %q, want 6 digits", what, m.Code)
	}
	switch m.Channel {
	case sms.ChannelSMS:
		// The text, then the WebOTP line browsers fill the code in from.
		lines := strings.Split(m.Body, "\n")
		if lines[0] != "Your twostep-test code is "+m.Code || lines[len(lines)-1] != "@twostep.example #"+m.Code {
			t.Errorf("%s: text %q, want \"Your twostep-test code is %s\" and a last line \"@twostep.example #%s\"", what, m.Body, m.Code, m.Code)
		}
	case sms.ChannelCall:
		// Spoken digit by digit, twice; never as one number.
		spoken := strings.Join(strings.Split(m.Code, ""), ". ") + "."
		if !strings.HasPrefix(m.Body, "Your twostep-test code is: ") || strings.Count(m.Body, spoken) != 2 || strings.Contains(m.Body, m.Code) {
			t.Errorf("%s: call says %q, want the digits %q twice", what, m.Body, spoken)
		}
	default:
		t.Errorf("%s: channel %q", what, m.Channel)
	}
}

// otherCode is a 6-digit code that differs from code.
func otherCode(code string, n int) string {
	v, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (v+n)%1000000)
}

// phoneUser is an account of these tests.
type phoneUser struct {
	email, pw, id   string
	access, refresh string
	backup          []string
}

// newUser registers email (with the extra fields) and signs in.
func (p *phoneEnv) newUser(email string, extra map[string]any) *phoneUser {
	p.t.Helper()
	body := map[string]any{"email": email, "password": "correct horse battery"}
	for k, v := range extra {
		body[k] = v
	}
	r := p.post("/authentication/local/new", "", body)
	mustStatus(p.t, "register "+email, r, http.StatusCreated)
	u := &phoneUser{email: email, pw: body["password"].(string)}
	u.id, _ = r.JSON(p.t)["user"].(map[string]any)["id"].(string)
	p.signInPassword(u)
	return u
}

// signInPassword signs u in without 2FA and keeps the session's tokens.
func (p *phoneEnv) signInPassword(u *phoneUser) {
	p.t.Helper()
	r := p.post("/authentication/local", "", map[string]any{"email": u.email, "password": u.pw})
	mustStatus(p.t, "login "+u.email, r, http.StatusOK)
	m := r.JSON(p.t)
	if m["accessToken"] == nil {
		p.t.Fatalf("login %s = %s, want tokens", u.email, r.Body)
	}
	u.access, u.refresh = m["accessToken"].(string), m["refreshToken"].(string)
}

// enrolSMS enables and confirms SMS codes on phone (as typed) for u.
func (p *phoneEnv) enrolSMS(u *phoneUser, phone string) {
	p.t.Helper()
	to, err := auth.NormalizePhone(phone)
	if err != nil {
		p.t.Fatal(err)
	}
	m := p.mark()
	r := p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": phone})
	mustStatus(p.t, "enable sms", r, http.StatusOK)
	code := p.one("enable sms", m, to, sms.ChannelSMS, auth.PurposeEnrolment)
	r = p.post(pathEnableVerify, u.access, map[string]any{"code": code})
	mustStatus(p.t, "confirm sms", r, http.StatusOK)
	var out struct {
		BackupCodes []string `json:"backupCodes"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		p.t.Fatal(err)
	}
	if len(out.BackupCodes) > 0 {
		u.backup = out.BackupCodes
	}
}

// challengeFor signs u in with the password and returns the challenge
// token of the 2FA-required answer.
func (p *phoneEnv) challengeFor(u *phoneUser) string {
	p.t.Helper()
	r := p.post("/authentication/local", "", map[string]any{"email": u.email, "password": u.pw})
	mustStatus(p.t, "password login "+u.email, r, http.StatusOK)
	m := r.JSON(p.t)
	tok, _ := m["challengeToken"].(string)
	if m["twoFaRequired"] != true || tok == "" || m["accessToken"] != nil {
		p.t.Fatalf("password login of a 2FA user = %s, want a challenge and no tokens", r.Body)
	}
	return tok
}

func (p *phoneEnv) authorize(tok, method string) resp {
	p.t.Helper()
	var body any
	if method != "" {
		body = map[string]any{"method": method}
	}
	return p.post(pathAuthorize, tok, body)
}

// sendLogin asks for a code for challenge tok by method (sms or call),
// checks the answer and what went to phone, and returns the code.
func (p *phoneEnv) sendLogin(tok, method, phone string) string {
	p.t.Helper()
	return p.sendCode(tok, method, phone, auth.PurposeLogin)
}

// sendCode asks /twoFa/authorize with token (a challenge or an access
// token) for a code by method (sms or call), checks the answer and that one
// code for purpose went to phone, and returns the code.
func (p *phoneEnv) sendCode(token, method, phone, purpose string) string {
	p.t.Helper()
	m := p.mark()
	r := p.authorize(token, method)
	mustStatus(p.t, "authorize "+method+" for "+purpose, r, http.StatusOK)
	want := map[string]any{"method": method, "message": "A verification code has been sent to " + auth.MaskPhone(phone), "retryAfter": float64(30)}
	if diff := cmp.Diff(want, r.JSON(p.t)); diff != "" {
		p.t.Errorf("authorize %s for %s (-want +got):\n%s", method, purpose, diff)
	}
	return p.one("authorize "+method+" for "+purpose, m, phone, sms.Channel(method), purpose)
}

// user reads GET /authentication/user.
func (p *phoneEnv) user(access string) map[string]any {
	p.t.Helper()
	r := p.call(http.MethodGet, "/authentication/user", access, nil)
	mustStatus(p.t, "GET /authentication/user", r, http.StatusOK)
	u, _ := r.JSON(p.t)["user"].(map[string]any)
	return u
}

// mustTokens fails unless r is a Tokens answer and returns its access
// token.
func mustTokens(t *testing.T, what string, r resp) string {
	t.Helper()
	mustStatus(t, what, r, http.StatusOK)
	m := r.JSON(t)
	access, _ := m["accessToken"].(string)
	if access == "" || m["refreshToken"] == nil || m["tokenType"] != "Bearer" || m["twoFaRequired"] != nil {
		t.Fatalf("%s = %s, want tokens", what, r.Body)
	}
	return access
}

// TestSMSTwoFactor runs SMS 2FA end to end: enrolment, sign-in by text and
// by call, and the rules that bind a code to its challenge.
func TestSMSTwoFactor(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.newUser("ada@example.com", nil)

		m := p.mark()
		r := p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": adaPhoneTyped})
		mustStatus(t, "enable sms", r, http.StatusOK)
		if diff := cmp.Diff(map[string]any{"method": "sms", "message": "Verification code sent", "to": adaPhoneMasked}, r.JSON(t)); diff != "" {
			t.Errorf("enable sms (-want +got):\n%s", diff)
		}
		code := p.one("enable sms", m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)
		if st := p.twoFaStatus(u.access); st["enabled"] != false {
			t.Errorf("GET /twoFa before the code = %v, want 2FA off", st)
		}
		wantErr(t, "enable/verify with a wrong code", p.post(pathEnableVerify, u.access, map[string]any{"code": otherCode(code, 1)}), http.StatusUnauthorized, "invalid_code")
		r = p.post(pathEnableVerify, u.access, map[string]any{"code": code, "method": "sms"})
		mustStatus(t, "enable/verify", r, http.StatusOK)
		conf := decodeEnabled(t, r)
		if conf.Message != "2FA enabled" || conf.Method != "sms" || len(conf.BackupCodes) != 10 {
			t.Errorf("enable/verify = %s, want 2FA enabled, method sms and 10 backup codes", r.Body)
		}
		if got := p.user(u.access); got["phone"] != adaPhone || got["phoneVerified"] != true || got["twoFaEnabled"] != true {
			t.Errorf("user after enrolment = %v, want phone %s verified and 2FA on", got, adaPhone)
		}
		st := p.twoFaStatus(u.access)
		if ms, _ := st["methods"].([]any); st["enabled"] != true || len(ms) != 1 || ms[0].(map[string]any)["method"] != "sms" || ms[0].(map[string]any)["to"] != adaPhoneMasked {
			t.Errorf("GET /twoFa = %v, want one sms method to %s", st, adaPhoneMasked)
		}

		// Sign in with a text.
		p.clock.Advance(31 * time.Second)
		r = p.post("/authentication/local", "", map[string]any{"email": u.email, "password": u.pw})
		mustStatus(t, "password login", r, http.StatusOK)
		if diff := cmp.Diff([]any{"sms", "call", "backup"}, r.JSON(t)["methods"]); diff != "" {
			t.Errorf("login methods (-want +got):\n%s", diff)
		}
		tok := r.Str(t, "challengeToken")
		code = p.sendLogin(tok, "sms", adaPhone)
		access := mustTokens(t, "verify with the texted code", p.verify(tok, map[string]any{"code": code, "method": "sms"}))
		if a := amr(t, access); !slices.Contains(a, "sms") || !slices.Contains(a, "pwd") {
			t.Errorf("amr = %v, want pwd and sms", a)
		}
		wantErr(t, "the used challenge", p.verify(tok, map[string]any{"code": code}), http.StatusUnauthorized, "challenge_expired")
		// The same code on a new challenge is nothing.
		a := p.challengeFor(u)
		wantErr(t, "a used code on a new challenge", p.verify(a, map[string]any{"code": code, "method": "sms"}), http.StatusUnauthorized, "invalid_code")

		// A code completes only the challenge it was sent for.
		p.clock.Advance(31 * time.Second)
		codeA := p.sendLogin(a, "sms", adaPhone)
		b := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		codeB := p.sendLogin(b, "sms", adaPhone)
		if codeA != codeB {
			wantErr(t, "challenge B with A's code", p.verify(b, map[string]any{"code": codeA, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
			wantErr(t, "challenge A with B's code", p.verify(a, map[string]any{"code": codeB, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		}
		mustTokens(t, "challenge A with its code", p.verify(a, map[string]any{"code": codeA, "method": "sms"}))
		mustTokens(t, "challenge B with its code, method by default", p.verify(b, map[string]any{"code": codeB}))

		// A call speaks the code; it is verified as call or as sms.
		c := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		code = p.sendLogin(c, "call", adaPhone)
		access = mustTokens(t, "verify a called code as call", p.verify(c, map[string]any{"code": code, "method": "call"}))
		if a := amr(t, access); !slices.Contains(a, "sms") {
			t.Errorf("amr after a call = %v, want sms", a)
		}
		p.clock.Advance(time.Hour) // at most 5 sends an hour
		d := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		code = p.sendLogin(d, "call", adaPhone)
		mustTokens(t, "verify a called code as sms", p.verify(d, map[string]any{"code": code, "method": "sms"}))

		// A call after a text replaces the text's code: one live code.
		f := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		texted := p.sendLogin(f, "sms", adaPhone)
		p.clock.Advance(31 * time.Second)
		called := p.sendLogin(f, "call", adaPhone)
		if texted != called {
			wantErr(t, "the replaced texted code", p.verify(f, map[string]any{"code": texted, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		}
		mustTokens(t, "the called code", p.verify(f, map[string]any{"code": called, "method": "call"}))
	})
}

// TestSMSResendKeepsAttempts: five wrong tries kill a login code, and a
// resend (by text or call) replaces the code but keeps the count. The
// challenge allows 10 tries here, so only the code's own count decides.
func TestSMSResendKeepsAttempts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine, withConfig(func(c *auth.Config) { c.ChallengeMaxAttempts = 10 }))
		u := p.newUser("ada@example.com", nil)
		p.enrolSMS(u, adaPhone)
		wrong := func(tok, code string, n int) {
			t.Helper()
			for i := 1; i <= n; i++ {
				wantErr(t, "a wrong code", p.verify(tok, map[string]any{"code": otherCode(code, i), "method": "sms"}), http.StatusUnauthorized, "invalid_code")
			}
		}

		// 3 wrong, resend, 1 wrong: the fifth try still works.
		x := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		c1 := p.sendLogin(x, "sms", adaPhone)
		wrong(x, c1, 3)
		p.clock.Advance(31 * time.Second)
		c2 := p.sendLogin(x, "call", adaPhone)
		if c1 != c2 {
			wantErr(t, "the code a resend replaced", p.verify(x, map[string]any{"code": c1, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		} else {
			wrong(x, c2, 1)
		}
		mustTokens(t, "the fifth try, right", p.verify(x, map[string]any{"code": c2, "method": "call"}))

		// 3 wrong, resend, 2 wrong: the code is dead, and a resend does not
		// revive the count. (An hour later: at most 5 sends an hour.)
		p.clock.Advance(time.Hour)
		y := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		c1 = p.sendLogin(y, "sms", adaPhone)
		wrong(y, c1, 3)
		p.clock.Advance(31 * time.Second)
		c2 = p.sendLogin(y, "sms", adaPhone)
		wrong(y, c2, 2)
		wantErr(t, "the right code after 5 wrong ones", p.verify(y, map[string]any{"code": c2, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		p.clock.Advance(31 * time.Second)
		c3 := p.sendLogin(y, "sms", adaPhone)
		wantErr(t, "a resent code after 5 wrong ones", p.verify(y, map[string]any{"code": c3, "method": "sms"}), http.StatusUnauthorized, "invalid_code")

		// A new challenge gets a new code with a fresh count.
		z := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		mustTokens(t, "a new challenge", p.verify(z, map[string]any{"code": p.sendLogin(z, "sms", adaPhone), "method": "sms"}))
	})
}

// TestSMSSendLimits: one send per 30 s per phone, whatever the purpose
// or account, and at most 5 an hour; a refused send sends nothing.
func TestSMSSendLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.newUser("ada@example.com", nil)
		enable := func(v *phoneUser) resp {
			t.Helper()
			return p.post(pathEnable, v.access, map[string]any{"method": "sms", "phone": adaPhone})
		}
		m := p.mark()
		mustStatus(t, "first send", enable(u), http.StatusOK)
		p.one("first send", m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)

		p.clock.Advance(29 * time.Second)
		m = p.mark()
		r := enable(u)
		wantErr(t, "a second send after 29 s", r, http.StatusTooManyRequests, "rate_limited")
		if ra := r.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After = %q, want 1", ra)
		}
		p.none("a refused send", m)
		// The cooldown is the phone's, not the account's or the purpose's.
		bo := p.newUser("bo@example.com", nil)
		wantErr(t, "another account's send to the phone", enable(bo), http.StatusTooManyRequests, "rate_limited")
		wantErr(t, "a phone-verification send to the phone", p.call(http.MethodPut, pathPhone, bo.access, map[string]any{"phone": adaPhone}), http.StatusTooManyRequests, "rate_limited")
		p.none("refused sends", m)

		// Sends 2 to 5 of the hour go out, 31 s apart.
		for i := 2; i <= 5; i++ {
			p.clock.Advance(31 * time.Second)
			m = p.mark()
			mustStatus(t, fmt.Sprintf("send %d", i), enable(u), http.StatusOK)
			p.one(fmt.Sprintf("send %d", i), m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)
		}
		// The sixth is refused until the hour is over, for anyone.
		p.clock.Advance(31 * time.Second)
		m = p.mark()
		r = enable(u)
		wantErr(t, "send 6 in an hour", r, http.StatusTooManyRequests, "rate_limited")
		left := time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC).Sub(p.clock.Now())
		if ra := r.Header.Get("Retry-After"); ra != strconv.Itoa(int(left/time.Second)) {
			t.Errorf("Retry-After of send 6 = %q, want %d (the end of the hour)", ra, int(left/time.Second))
		}
		p.clock.Advance(31 * time.Second)
		wantErr(t, "send 6 for another account", enable(bo), http.StatusTooManyRequests, "rate_limited")
		p.none("sends over the hourly limit", m)
		// Another phone is not affected.
		m = p.mark()
		mustStatus(t, "a send to another phone", p.post(pathEnable, bo.access, map[string]any{"method": "sms", "phone": "+14155552672"}), http.StatusOK)
		p.one("a send to another phone", m, "+14155552672", sms.ChannelSMS, auth.PurposeEnrolment)

		p.clock.Advance(left)
		p.signInPassword(u)
		m = p.mark()
		mustStatus(t, "a send in the next hour", enable(u), http.StatusOK)
		code := p.one("a send in the next hour", m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)
		mustStatus(t, "confirm", p.post(pathEnableVerify, u.access, map[string]any{"code": code}), http.StatusOK)
	})
}

// TestSMSCodeAttemptsAndExpiry: five wrong tries kill an enrolment code, a
// resend keeps the count, and a code lives five minutes.
func TestSMSCodeAttemptsAndExpiry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.newUser("ada@example.com", nil)
		send := func(what string) string {
			t.Helper()
			m := p.mark()
			mustStatus(t, what, p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": adaPhone}), http.StatusOK)
			return p.one(what, m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)
		}
		confirm := func(code string) resp {
			t.Helper()
			return p.post(pathEnableVerify, u.access, map[string]any{"code": code})
		}
		code := send("enable")
		for i := 1; i <= 5; i++ {
			wantErr(t, fmt.Sprintf("wrong code %d", i), confirm(otherCode(code, i)), http.StatusUnauthorized, "invalid_code")
		}
		wantErr(t, "the right code after 5 wrong ones", confirm(code), http.StatusUnauthorized, "invalid_code")
		p.clock.Advance(31 * time.Second)
		code = send("a resend")
		wantErr(t, "a resent code keeps the dead count", confirm(code), http.StatusUnauthorized, "invalid_code")

		// Once the dead code has expired, a send starts afresh; the new
		// code still works a second before its five minutes are up...
		p.clock.Advance(5 * time.Minute)
		code = send("a send after expiry")
		p.clock.Advance(5*time.Minute - time.Second)
		mustStatus(t, "a code after 4m59s", confirm(code), http.StatusOK)

		// ...and not at five minutes.
		bo := p.newUser("bo@example.com", nil)
		m := p.mark()
		mustStatus(t, "bo enables sms", p.post(pathEnable, bo.access, map[string]any{"method": "sms", "phone": "+14155552672"}), http.StatusOK)
		code = p.one("bo enables sms", m, "+14155552672", sms.ChannelSMS, auth.PurposeEnrolment)
		p.clock.Advance(5 * time.Minute)
		wantErr(t, "a code after 5 minutes", p.post(pathEnableVerify, bo.access, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")
		if st := p.twoFaStatus(bo.access); st["enabled"] != false {
			t.Errorf("GET /twoFa after an expired code = %v, want 2FA off", st)
		}
	})
}

// TestSMSWrongCodesCountTowardLockout: wrong SMS codes and wrong
// authenticator codes add up to one per-account count; the 10th in a row
// locks the second factor.
func TestSMSWrongCodesCountTowardLockout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		tf := p.twoFaUser("lee@example.com")
		u := &phoneUser{email: tf.email, pw: tf.pw, id: tf.id, access: tf.access}
		// The enrolling session is in sudo: add a phone.
		p.enrolSMS(u, adaPhone)
		r := p.post("/authentication/local", "", map[string]any{"email": u.email, "password": u.pw})
		if diff := cmp.Diff([]any{"authenticator", "sms", "call", "backup"}, r.JSON(t)["methods"]); diff != "" {
			t.Errorf("login methods (-want +got):\n%s", diff)
		}

		c1 := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		code := p.sendLogin(c1, "sms", adaPhone)
		for i := 1; i <= 5; i++ {
			wantErr(t, fmt.Sprintf("wrong SMS code %d", i), p.verify(c1, map[string]any{"code": otherCode(code, i), "method": "sms"}), http.StatusUnauthorized, "invalid_code")
		}
		c2 := p.challengeFor(u)
		for i := 6; i <= 9; i++ {
			wantErr(t, fmt.Sprintf("wrong authenticator code %d", i), p.verify(c2, map[string]any{"code": p.wrongCode(tf.secret), "method": "authenticator"}), http.StatusUnauthorized, "invalid_code")
		}
		c3 := p.challengeFor(u)
		p.clock.Advance(31 * time.Second)
		code = p.sendLogin(c3, "sms", adaPhone)
		r = p.verify(c3, map[string]any{"code": otherCode(code, 1), "method": "sms"})
		wantErr(t, "the 10th wrong code, an SMS one", r, http.StatusTooManyRequests, "rate_limited")
		if r.Header.Get("Retry-After") == "" {
			t.Error("the lock has no Retry-After")
		}
		wantErr(t, "the right SMS code while locked", p.verify(c3, map[string]any{"code": code, "method": "sms"}), http.StatusTooManyRequests, "rate_limited")
		p.nextStep()
		wantErr(t, "the right authenticator code while locked", p.verify(c3, map[string]any{"code": p.code(tf.secret), "method": "authenticator"}), http.StatusTooManyRequests, "rate_limited")
		if !hasAudit(t, p.env, u.id, auth.EventTwoFaLocked) {
			t.Error("no twofa.locked audit event")
		}

		// After the lock, the phone works again.
		p.clock.Advance(15 * time.Minute)
		c4 := p.challengeFor(u)
		mustTokens(t, "after the lock", p.verify(c4, map[string]any{"code": p.sendLogin(c4, "sms", adaPhone), "method": "sms"}))
	})
}

// TestSMSCodePurposes: a code is bound to its purpose; one sent for
// enrolment, phone verification, a login challenge or a phone sign-in
// completes nothing else.
func TestSMSCodePurposes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		const phone2, phone3 = "+14155552672", "+14155552673"

		// Registration with a phone: a phone-verification code.
		m := p.mark()
		u := p.newUser("ada@example.com", map[string]any{"phone": adaPhoneTyped})
		verifyCode := p.one("register with a phone", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneVerification)
		// Enrolment on the same phone: an enrolment code.
		p.clock.Advance(31 * time.Second)
		m = p.mark()
		mustStatus(t, "enable sms", p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": adaPhone}), http.StatusOK)
		enrolCode := p.one("enable sms", m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)
		if verifyCode != enrolCode {
			wantErr(t, "enrolment with the phone-verification code", p.post(pathEnableVerify, u.access, map[string]any{"code": verifyCode}), http.StatusUnauthorized, "invalid_code")
			wantErr(t, "phone verification with the enrolment code", p.post(pathPhoneVerify, u.access, map[string]any{"code": enrolCode}), http.StatusUnauthorized, "invalid_code")
		}
		r := p.post(pathPhoneVerify, u.access, map[string]any{"code": verifyCode})
		mustStatus(t, "phone verification with its code", r, http.StatusOK)
		mustStatus(t, "enrolment with its code", p.post(pathEnableVerify, u.access, map[string]any{"code": enrolCode}), http.StatusOK)

		// A login code, an enrolment code (a second phone) and a
		// phone-verification code (a new account phone), all live at once.
		p.clock.Advance(31 * time.Second)
		tok := p.challengeFor(u)
		loginCode := p.sendLogin(tok, "sms", adaPhone)
		m = p.mark()
		mustStatus(t, "enable a second phone", p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": phone2, "label": "Work"}), http.StatusOK)
		enrolCode = p.one("enable a second phone", m, phone2, sms.ChannelSMS, auth.PurposeEnrolment)
		m = p.mark()
		mustStatus(t, "change the phone", p.call(http.MethodPut, pathPhone, u.access, map[string]any{"phone": phone3}), http.StatusOK)
		verifyCode = p.one("change the phone", m, phone3, sms.ChannelSMS, auth.PurposePhoneVerification)
		codes := map[string]string{"login": loginCode, "enrolment": enrolCode, "phone verification": verifyCode}
		for name, code := range codes {
			if name != "login" && code != loginCode {
				wantErr(t, "login with the "+name+" code", p.verify(tok, map[string]any{"code": code, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
			}
			if name != "enrolment" && code != enrolCode {
				wantErr(t, "enrolment with the "+name+" code", p.post(pathEnableVerify, u.access, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")
			}
			if name != "phone verification" && code != verifyCode {
				wantErr(t, "phone verification with the "+name+" code", p.post(pathPhoneVerify, u.access, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")
			}
			if code != loginCode {
				wantErr(t, "phone sign-in with the "+name+" code", p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": code}), http.StatusUnauthorized, "invalid_code")
			}
		}
		wantErr(t, "phone sign-in with the login code", p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": loginCode}), http.StatusUnauthorized, "invalid_code")
		// Each still completes its own purpose.
		access := mustTokens(t, "login with its code", p.verify(tok, map[string]any{"code": loginCode, "method": "sms"}))
		_ = access
		mustStatus(t, "enrolment with its code", p.post(pathEnableVerify, u.access, map[string]any{"code": enrolCode}), http.StatusOK)
		r = p.post(pathPhoneVerify, u.access, map[string]any{"code": verifyCode})
		mustStatus(t, "phone verification with its code", r, http.StatusOK)
		if got := r.JSON(t)["user"].(map[string]any); got["phone"] != phone3 || got["phoneVerified"] != true {
			t.Errorf("user after verifying %s = %v", phone3, got)
		}

		// A phone sign-in code is no login code, and the reverse.
		p.clock.Advance(31 * time.Second)
		m = p.mark()
		mustStatus(t, "phone sign-in", p.post(pathPhoneSignIn, "", map[string]any{"phone": phone3}), http.StatusAccepted)
		signInCode := p.one("phone sign-in", m, phone3, sms.ChannelSMS, auth.PurposePhoneSignIn)
		tok = p.challengeFor(u)
		loginCode = p.sendLogin(tok, "sms", adaPhone) // the oldest SMS factor
		if signInCode != loginCode {
			wantErr(t, "login with the phone sign-in code", p.verify(tok, map[string]any{"code": signInCode, "method": "sms"}), http.StatusUnauthorized, "invalid_code")
			wantErr(t, "phone sign-in with the login code", p.post(pathPhoneLogin, "", map[string]any{"phone": phone3, "code": loginCode}), http.StatusUnauthorized, "invalid_code")
		}
		mustTokens(t, "login with its code", p.verify(tok, map[string]any{"code": loginCode, "method": "sms"}))
		// ada has a second factor on another phone: the phone sign-in
		// answers a challenge.
		r = p.post(pathPhoneLogin, "", map[string]any{"phone": phone3, "code": signInCode})
		mustStatus(t, "phone sign-in with its code", r, http.StatusOK)
		if r.JSON(t)["twoFaRequired"] != true {
			t.Errorf("phone sign-in of an account with a factor on another phone = %s, want the 2FA-required answer", r.Body)
		}
	})
}

// TestSMSCodesBelongToTheirUser: two accounts enrolling at once cannot use
// each other's codes.
func TestSMSCodesBelongToTheirUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		ada := p.newUser("ada@example.com", nil)
		bo := p.newUser("bo@example.com", nil)
		m := p.mark()
		mustStatus(t, "ada enables sms", p.post(pathEnable, ada.access, map[string]any{"method": "sms", "phone": adaPhone}), http.StatusOK)
		adaCode := p.one("ada enables sms", m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)
		m = p.mark()
		mustStatus(t, "bo enables sms", p.post(pathEnable, bo.access, map[string]any{"method": "sms", "phone": "+14155552672"}), http.StatusOK)
		boCode := p.one("bo enables sms", m, "+14155552672", sms.ChannelSMS, auth.PurposeEnrolment)
		if adaCode != boCode {
			wantErr(t, "ada with bo's code", p.post(pathEnableVerify, ada.access, map[string]any{"code": boCode}), http.StatusUnauthorized, "invalid_code")
			wantErr(t, "bo with ada's code", p.post(pathEnableVerify, bo.access, map[string]any{"code": adaCode}), http.StatusUnauthorized, "invalid_code")
		}
		mustStatus(t, "ada with her code", p.post(pathEnableVerify, ada.access, map[string]any{"code": adaCode}), http.StatusOK)
		mustStatus(t, "bo with his code", p.post(pathEnableVerify, bo.access, map[string]any{"code": boCode}), http.StatusOK)
	})
}

// TestPhoneVerification: a phone given at registration is verified with a
// code; the other sessions end; replacing a verified phone needs sudo.
func TestPhoneVerification(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		m := p.mark()
		r := p.post("/authentication/local/new", "", map[string]any{"email": "ada@example.com", "password": "correct horse battery", "phone": adaPhoneTyped})
		mustStatus(t, "register with a phone", r, http.StatusCreated)
		if got := r.JSON(t)["user"].(map[string]any); got["phone"] != adaPhone || got["phoneVerified"] != false {
			t.Errorf("registered user = %v, want phone %s not verified", got, adaPhone)
		}
		code := p.one("register with a phone", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneVerification)
		u := &phoneUser{email: "ada@example.com", pw: "correct horse battery", id: r.JSON(t)["user"].(map[string]any)["id"].(string)}
		p.signInPassword(u)
		other := &phoneUser{email: u.email, pw: u.pw}
		p.signInPassword(other)

		wantErr(t, "verify with a wrong code", p.post(pathPhoneVerify, u.access, map[string]any{"code": otherCode(code, 1)}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "verify with no code", p.post(pathPhoneVerify, u.access, map[string]any{}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "verify without a token", p.post(pathPhoneVerify, "", map[string]any{"code": code}), http.StatusUnauthorized, "unauthorized")
		r = p.post(pathPhoneVerify, u.access, map[string]any{"code": code})
		mustStatus(t, "verify the phone", r, http.StatusOK)
		if got := r.JSON(t)["user"].(map[string]any); got["phone"] != adaPhone || got["phoneVerified"] != true {
			t.Errorf("verify answer = %v, want phone %s verified", got, adaPhone)
		}
		if got := p.user(u.access); got["phoneVerified"] != true {
			t.Errorf("user after verify = %v, want phoneVerified", got)
		}
		if p.sessionWorks(other.access) {
			t.Error("another session still works after the phone was verified")
		}
		if !p.sessionWorks(u.access) {
			t.Error("the verifying session stopped working")
		}
		wantErr(t, "the used code again", p.post(pathPhoneVerify, u.access, map[string]any{"code": code}), http.StatusUnauthorized, "invalid_code")

		// Replacing the verified phone needs sudo: the password login is
		// older than SudoTTL now.
		p.clock.Advance(p.cfg.SudoTTL + time.Second)
		m = p.mark()
		wantErr(t, "change a verified phone out of sudo", p.call(http.MethodPut, pathPhone, u.access, map[string]any{"phone": "+1 415 555 2672"}), http.StatusForbidden, "sudo_required")
		p.none("a refused change", m)
		p.signInPassword(u)
		r = p.call(http.MethodPut, pathPhone, u.access, map[string]any{"phone": "+1 415 555 2672"})
		mustStatus(t, "change the phone in sudo", r, http.StatusOK)
		if diff := cmp.Diff(map[string]any{"message": "Verification code sent", "to": "+1******2672"}, r.JSON(t)); diff != "" {
			t.Errorf("change phone (-want +got):\n%s", diff)
		}
		code = p.one("change the phone", m, "+14155552672", sms.ChannelSMS, auth.PurposePhoneVerification)
		if got := p.user(u.access); got["phone"] != adaPhone || got["phoneVerified"] != true {
			t.Errorf("user before the new phone is verified = %v, want the old phone, verified", got)
		}
		r = p.post(pathPhoneVerify, u.access, map[string]any{"code": code})
		mustStatus(t, "verify the new phone", r, http.StatusOK)
		if got := r.JSON(t)["user"].(map[string]any); got["phone"] != "+14155552672" || got["phoneVerified"] != true {
			t.Errorf("user after the change = %v, want +14155552672 verified", got)
		}

		// Without a verified phone, setting one needs no sudo; a phone
		// verified on another account cannot be taken.
		bo := p.newUser("bo@example.com", nil)
		p.clock.Advance(p.cfg.SudoTTL + time.Second)
		m = p.mark()
		mustStatus(t, "bo sets ada's phone out of sudo", p.call(http.MethodPut, pathPhone, bo.access, map[string]any{"phone": "+14155552672"}), http.StatusOK)
		code = p.one("bo sets ada's phone", m, "+14155552672", sms.ChannelSMS, auth.PurposePhoneVerification)
		wantErr(t, "bo verifies ada's phone", p.post(pathPhoneVerify, bo.access, map[string]any{"code": code}), http.StatusConflict, "conflict")
		if got := p.user(bo.access); got["phoneVerified"] != false {
			t.Errorf("bo after the conflict = %v, want no verified phone", got)
		}

		evs, err := p.db.AuditEvents(context.Background(), u.id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var verified []string
		for _, ev := range evs {
			if ev.Type == auth.EventPhoneVerified {
				verified = append(verified, fmt.Sprint(ev.Detail["to"]))
			}
		}
		slices.Sort(verified)
		if diff := cmp.Diff([]string{"+1******2671", "+1******2672"}, verified); diff != "" {
			t.Errorf("phone.verified events (-want +got):\n%s", diff)
		}
	})
}

// TestPhoneSignUpAndSignIn: password-less accounts by phone, sign-in that
// does not tell which numbers are known, and the 2FA-required answer for an
// account with an authenticator.
func TestPhoneSignUpAndSignIn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		sent := map[string]any{"message": "Verification code sent"}

		m := p.mark()
		r := p.post(pathPhoneSignUp, "", map[string]any{"username": "Zoe", "phone": adaPhoneTyped})
		mustStatus(t, "phone sign-up", r, http.StatusAccepted)
		if diff := cmp.Diff(sent, r.JSON(t)); diff != "" {
			t.Errorf("phone sign-up (-want +got):\n%s", diff)
		}
		code := p.one("phone sign-up", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignUp)
		wantErr(t, "sign-up code, wrong", p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": otherCode(code, 1)}), http.StatusUnauthorized, "invalid_code")
		wantErr(t, "sign-up code for another phone", p.post(pathPhoneLogin, "", map[string]any{"phone": "+14155552672", "code": code}), http.StatusUnauthorized, "invalid_code")
		r = p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhoneTyped, "code": code})
		access := mustTokens(t, "phone sign-up verify", r)
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("tokens answer Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
		}
		zoe, _ := r.JSON(t)["user"].(map[string]any)
		if zoe["username"] != "zoe" || zoe["phone"] != adaPhone || zoe["phoneVerified"] != true || zoe["email"] != nil || zoe["twoFaEnabled"] != false {
			t.Errorf("phone sign-up user = %v, want zoe with %s verified and no email", zoe, adaPhone)
		}
		if a := amr(t, access); !slices.Contains(a, "sms") {
			t.Errorf("amr of a phone sign-up = %v, want sms", a)
		}
		if got := p.user(access); got["id"] != zoe["id"] || got["phoneVerified"] != true {
			t.Errorf("GET /authentication/user = %v, want zoe with a verified phone", got)
		}
		wantErr(t, "the used sign-up code", p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": code}), http.StatusUnauthorized, "invalid_code")

		// Sign-in: a known and an unknown number get the same answer, and
		// only the known one a text; asked again at once, the same again.
		const unknown = "+14155550100"
		p.clock.Advance(31 * time.Second)
		m = p.mark()
		known := p.post(pathPhoneSignIn, "", map[string]any{"phone": adaPhone})
		other := p.post(pathPhoneSignIn, "", map[string]any{"phone": unknown})
		mustStatus(t, "sign-in, known number", known, http.StatusAccepted)
		if known.Status != other.Status || !bytes.Equal(known.Body, other.Body) {
			t.Errorf("sign-in: known number %d %s, unknown %d %s; want the same", known.Status, known.Body, other.Status, other.Body)
		}
		code = p.one("sign-in", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignIn)
		m = p.mark()
		known = p.post(pathPhoneSignIn, "", map[string]any{"phone": adaPhone})
		other = p.post(pathPhoneSignIn, "", map[string]any{"phone": unknown})
		if known.Status != other.Status || !bytes.Equal(known.Body, other.Body) || known.Header.Get("Retry-After") != other.Header.Get("Retry-After") {
			t.Errorf("sign-in again at once: known number %d %s (Retry-After %q), unknown %d %s (Retry-After %q); want the same",
				known.Status, known.Body, known.Header.Get("Retry-After"), other.Status, other.Body, other.Header.Get("Retry-After"))
		}
		p.none("sign-in again at once", m)
		r = p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": code})
		mustTokens(t, "sign-in verify", r)
		if got := r.JSON(t)["user"].(map[string]any); got["id"] != zoe["id"] {
			t.Errorf("sign-in user = %v, want zoe", got)
		}
		wantErr(t, "a code for an unknown number", p.post(pathPhoneLogin, "", map[string]any{"phone": unknown, "code": code}), http.StatusUnauthorized, "invalid_code")

		// Sign-up with a number that has an account: a sign-in code, no
		// new account.
		p.clock.Advance(31 * time.Second)
		users := p.countRows("users")
		m = p.mark()
		r = p.post(pathPhoneSignUp, "", map[string]any{"username": "mallory", "phone": adaPhone})
		mustStatus(t, "sign-up with a known number", r, http.StatusAccepted)
		if diff := cmp.Diff(sent, r.JSON(t)); diff != "" {
			t.Errorf("sign-up with a known number (-want +got):\n%s", diff)
		}
		code = p.one("sign-up with a known number", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignIn)
		if n := p.countRows("users"); n != users {
			t.Errorf("users after a sign-up with a known number = %d, want %d", n, users)
		}
		r = p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": code})
		mustTokens(t, "verify after a sign-up with a known number", r)
		if got := r.JSON(t)["user"].(map[string]any); got["id"] != zoe["id"] || got["username"] != "zoe" {
			t.Errorf("user = %v, want zoe", got)
		}

		// With an authenticator, the phone is the first step only.
		secret, _ := p.startEnrol(access, map[string]any{"method": "authenticator"})
		p.confirmEnrol(access, secret)
		p.clock.Advance(31 * time.Second)
		m = p.mark()
		mustStatus(t, "sign-in with 2FA on", p.post(pathPhoneSignIn, "", map[string]any{"phone": adaPhone}), http.StatusAccepted)
		code = p.one("sign-in with 2FA on", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignIn)
		r = p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": code})
		mustStatus(t, "phone verify with 2FA on", r, http.StatusOK)
		ch := r.JSON(t)
		tok, _ := ch["challengeToken"].(string)
		if ch["twoFaRequired"] != true || tok == "" || ch["accessToken"] != nil || ch["message"] != "2FA required" {
			t.Fatalf("phone verify with an authenticator = %s, want the 2FA-required answer", r.Body)
		}
		if diff := cmp.Diff([]any{"authenticator", "backup"}, ch["methods"]); diff != "" {
			t.Errorf("methods (-want +got):\n%s", diff)
		}
		p.nextStep()
		access = mustTokens(t, "second factor after a phone sign-in", p.verify(tok, map[string]any{"code": p.code(secret)}))
		if a := amr(t, access); !slices.Contains(a, "sms") || !slices.Contains(a, "otp") {
			t.Errorf("amr = %v, want sms and otp", a)
		}
	})
}

// TestPhoneSignInFiveWrongCodes: five wrong tries kill a sign-in code.
func TestPhoneSignInFiveWrongCodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		m := p.mark()
		mustStatus(t, "phone sign-up", p.post(pathPhoneSignUp, "", map[string]any{"username": "zoe", "phone": adaPhone}), http.StatusAccepted)
		code := p.one("phone sign-up", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignUp)
		for i := 1; i <= 5; i++ {
			wantErr(t, fmt.Sprintf("wrong code %d", i), p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": otherCode(code, i)}), http.StatusUnauthorized, "invalid_code")
		}
		wantErr(t, "the right code after 5 wrong", p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": code}), http.StatusUnauthorized, "invalid_code")
		// A code that expired does not work either; a fresh one does.
		p.clock.Advance(5 * time.Minute)
		m = p.mark()
		mustStatus(t, "sign-up again", p.post(pathPhoneSignUp, "", map[string]any{"username": "zoe", "phone": adaPhone}), http.StatusAccepted)
		code = p.one("sign-up again", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignUp)
		mustTokens(t, "a fresh code", p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": code}))

		p.clock.Advance(31 * time.Second)
		m = p.mark()
		mustStatus(t, "sign-in", p.post(pathPhoneSignIn, "", map[string]any{"phone": adaPhone}), http.StatusAccepted)
		code = p.one("sign-in", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignIn)
		p.clock.Advance(5 * time.Minute)
		wantErr(t, "a sign-in code after 5 minutes", p.post(pathPhoneLogin, "", map[string]any{"phone": adaPhone, "code": code}), http.StatusUnauthorized, "invalid_code")
	})
}

// TestPhoneSingleUseUnderConcurrency: 20 requests at once with one right
// code sign in once; 20 sends at once to one phone send one text.
func TestPhoneSingleUseUnderConcurrency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		m := p.mark()
		mustStatus(t, "phone sign-up", p.post(pathPhoneSignUp, "", map[string]any{"username": "zoe", "phone": adaPhone}), http.StatusAccepted)
		code := p.one("phone sign-up", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignUp)

		const n = 20
		race := func(body map[string]any, path string) map[int]int {
			statuses := map[int]int{}
			for _, r := range atOnce(n, func(int) resp { return p.post(path, "", body) }) {
				statuses[r.Status]++
			}
			return statuses
		}
		if got := race(map[string]any{"phone": adaPhone, "code": code}, pathPhoneLogin); got[http.StatusOK] != 1 || got[http.StatusUnauthorized] != n-1 {
			t.Errorf("%d concurrent sign-ups with one code: statuses %v, want one 200 and %d 401", n, got, n-1)
		}
		if got := p.countRows("sessions"); got != 1 {
			t.Errorf("sessions = %d, want 1", got)
		}

		p.clock.Advance(31 * time.Second)
		m = p.mark()
		got := race(map[string]any{"phone": adaPhone}, pathPhoneSignIn)
		if got[http.StatusAccepted] != 1 || got[http.StatusTooManyRequests] != n-1 {
			t.Errorf("%d concurrent sign-ins: statuses %v, want one 202 and %d 429", n, got, n-1)
		}
		code = p.one("concurrent sign-ins", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneSignIn)
		if got := race(map[string]any{"phone": adaPhone, "code": code}, pathPhoneLogin); got[http.StatusOK] != 1 {
			t.Errorf("%d concurrent sign-ins with one code: statuses %v, want one 200", n, got)
		}
	})
}

// TestPhoneInputErrors: numbers that are not E.164 are 400 invalid_phone on
// every endpoint that takes one, bodies that are not JSON 400
// invalid_request; nothing is stored or sent.
func TestPhoneInputErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		u := p.newUser("ada@example.com", nil)
		before := p.snapshot()
		m := p.mark()
		type endpoint struct {
			method, path, token string
			body                func(phone string) map[string]any
		}
		endpoints := []endpoint{
			{http.MethodPost, pathPhoneSignUp, "", func(ph string) map[string]any { return map[string]any{"username": "zoe", "phone": ph} }},
			{http.MethodPost, pathPhoneSignIn, "", func(ph string) map[string]any { return map[string]any{"phone": ph} }},
			{http.MethodPost, pathPhoneLogin, "", func(ph string) map[string]any { return map[string]any{"phone": ph, "code": "123456"} }},
			{http.MethodPost, "/authentication/local/new", "", func(ph string) map[string]any {
				return map[string]any{"email": "bo@example.com", "password": "correct horse battery", "phone": ph}
			}},
			{http.MethodPost, pathEnable, u.access, func(ph string) map[string]any { return map[string]any{"method": "sms", "phone": ph} }},
			{http.MethodPost, pathEnable, u.access, func(ph string) map[string]any { return map[string]any{"method": "sms", "phoneNumber": ph} }},
			{http.MethodPut, pathPhone, u.access, func(ph string) map[string]any { return map[string]any{"phone": ph} }},
		}
		bad := []string{
			"4155552671",                      // no + and country code: no default region
			"+04155552671",                    // no country code starts with 0
			"+1415555ABCD",                    // letters
			"+1" + strings.Repeat("5", 38),    // 40 characters
			"+1 (415) 555-2671 ext. 9",        // more than a number
			"++14155552671",                   // two plus signs
			"+1234",                           // too short
			"+1 415 555 2671\x00",             // a NUL
			"+１４１５５５５２６７１",                    // full-width digits
			"+1\u202e4155552671",              // a bidi override
			"+1 (415) 555-2671; DROP TABLE x", // an injection attempt
		}
		for _, ep := range endpoints {
			for _, ph := range bad {
				r := p.call(ep.method, ep.path, ep.token, ep.body(ph))
				if r.Status != http.StatusBadRequest || r.ErrCode(t) != "invalid_phone" {
					t.Errorf("%s %s with phone %q = %d %s, want 400 invalid_phone", ep.method, ep.path, ph, r.Status, r.Body)
				}
			}
			for _, body := range []any{"nope", `{"phone": 14155552671}`, `{"phone": ["+14155552671"]}`, `[]`} {
				r := p.call(ep.method, ep.path, ep.token, body)
				if r.Status != http.StatusBadRequest || r.ErrCode(t) != "invalid_request" {
					t.Errorf("%s %s with body %v = %d %s, want 400 invalid_request", ep.method, ep.path, body, r.Status, r.Body)
				}
			}
		}
		// A phone sign-up needs a valid username.
		for _, name := range []string{"", "x", "has space", strings.Repeat("z", 40)} {
			wantErr(t, fmt.Sprintf("phone sign-up as %q", name), p.post(pathPhoneSignUp, "", map[string]any{"username": name, "phone": adaPhone}), http.StatusBadRequest, "invalid_request")
		}
		if diff := cmp.Diff(before, p.snapshot()); diff != "" {
			t.Errorf("rows after bad requests (-before +after):\n%s", diff)
		}
		p.none("bad requests", m)
	})
}

// TestSMSProviderErrors: an invalid number is 400 invalid_phone, an
// unavailable provider 503 sms_unavailable; either way nothing is left
// half-done: no factor is confirmed, no code is usable, and no cooldown is
// charged, so the same request works at once when the provider is back.
func TestSMSProviderErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		invalidNumber := fmt.Errorf("provider says: %w", sms.ErrInvalidNumber)
		unavailable := fmt.Errorf("provider says: %w", sms.ErrUnavailable)
		liveCodes := func() int {
			t.Helper()
			return len(p.rawRows(`SELECT id FROM sms_codes WHERE used_at IS NULL`))
		}
		u := p.newUser("ada@example.com", nil)
		enable := map[string]any{"method": "sms", "phone": adaPhone}

		// Enrolment.
		p.sms.SetErr(invalidNumber)
		wantErr(t, "enable sms, invalid number", p.post(pathEnable, u.access, enable), http.StatusBadRequest, "invalid_phone")
		p.sms.SetErr(unavailable)
		wantErr(t, "enable sms, provider down", p.post503(pathEnable, u.access, enable), http.StatusServiceUnavailable, "sms_unavailable")
		if n := liveCodes(); n != 0 {
			t.Errorf("usable codes after failed sends = %d, want 0", n)
		}
		if r := p.post(pathEnableVerify, u.access, map[string]any{"code": "123456"}); r.Status == http.StatusOK {
			t.Errorf("enable/verify after failed sends = %s, want an error", r.Body)
		}
		if st := p.twoFaStatus(u.access); st["enabled"] != false || len(st["methods"].([]any)) != 0 {
			t.Errorf("GET /twoFa after failed sends = %v, want 2FA off", st)
		}
		p.sms.SetErr(nil)
		m := p.mark()
		mustStatus(t, "enable sms once the provider is back", p.post(pathEnable, u.access, enable), http.StatusOK)
		code := p.one("enable sms once the provider is back", m, adaPhone, sms.ChannelSMS, auth.PurposeEnrolment)
		mustStatus(t, "confirm", p.post(pathEnableVerify, u.access, map[string]any{"code": code}), http.StatusOK)

		// Login. Failed sends count toward the hourly limit (the provider
		// was asked), so this is an hour later.
		p.clock.Advance(time.Hour)
		tok := p.challengeFor(u)
		p.sms.SetErr(unavailable)
		wantErr(t, "authorize, provider down", p.post503(pathAuthorize, tok, map[string]any{"method": "sms"}), http.StatusServiceUnavailable, "sms_unavailable")
		wantErr(t, "authorize call, provider down", p.post503(pathAuthorize, tok, map[string]any{"method": "call"}), http.StatusServiceUnavailable, "sms_unavailable")
		p.sms.SetErr(nil)
		code = p.sendLogin(tok, "sms", adaPhone)
		u.access = mustTokens(t, "verify once the provider is back", p.verify(tok, map[string]any{"code": code, "method": "sms"}))

		// Phone change.
		p.sms.SetErr(invalidNumber)
		wantErr(t, "change phone, invalid number", p.call(http.MethodPut, pathPhone, u.access, map[string]any{"phone": "+14155552672"}), http.StatusBadRequest, "invalid_phone")
		p.sms.SetErr(unavailable)
		r := p.send(request{method: http.MethodPut, path: pathPhone, token: u.access, body: map[string]any{"phone": "+14155552672"}, allow5xx: true})
		wantErr(t, "change phone, provider down", r, http.StatusServiceUnavailable, "sms_unavailable")
		if n := liveCodes(); n != 0 {
			t.Errorf("usable codes after failed sends = %d, want 0", n)
		}
		p.sms.SetErr(nil)
		m = p.mark()
		mustStatus(t, "change phone once the provider is back", p.call(http.MethodPut, pathPhone, u.access, map[string]any{"phone": "+14155552672"}), http.StatusOK)
		code = p.one("change phone", m, "+14155552672", sms.ChannelSMS, auth.PurposePhoneVerification)
		mustStatus(t, "verify the new phone", p.post(pathPhoneVerify, u.access, map[string]any{"code": code}), http.StatusOK)

		// Phone sign-up: the same request works once the provider is back.
		p.sms.SetErr(unavailable)
		signUp := map[string]any{"username": "zoe", "phone": "+14155552673"}
		wantErr(t, "phone sign-up, provider down", p.post503(pathPhoneSignUp, "", signUp), http.StatusServiceUnavailable, "sms_unavailable")
		p.sms.SetErr(nil)
		m = p.mark()
		mustStatus(t, "phone sign-up once the provider is back", p.post(pathPhoneSignUp, "", signUp), http.StatusAccepted)
		code = p.one("phone sign-up", m, "+14155552673", sms.ChannelSMS, auth.PurposePhoneSignUp)
		r = p.post(pathPhoneLogin, "", map[string]any{"phone": "+14155552673", "code": code})
		mustTokens(t, "phone sign-up verify", r)
		if got := r.JSON(t)["user"].(map[string]any); got["username"] != "zoe" {
			t.Errorf("user = %v, want zoe", got)
		}

		// Phone sign-in answers as for an unknown number, and the next
		// request sends at once.
		p.clock.Advance(31 * time.Second)
		p.sms.SetErr(unavailable)
		known := p.post(pathPhoneSignIn, "", map[string]any{"phone": "+14155552673"})
		other := p.post(pathPhoneSignIn, "", map[string]any{"phone": "+14155550100"})
		if known.Status != http.StatusAccepted || known.Status != other.Status || !bytes.Equal(known.Body, other.Body) {
			t.Errorf("sign-in while the provider is down: known %d %s, unknown %d %s; want the same 202", known.Status, known.Body, other.Status, other.Body)
		}
		p.sms.SetErr(nil)
		m = p.mark()
		mustStatus(t, "sign-in once the provider is back", p.post(pathPhoneSignIn, "", map[string]any{"phone": "+14155552673"}), http.StatusAccepted)
		p.one("sign-in once the provider is back", m, "+14155552673", sms.ChannelSMS, auth.PurposePhoneSignIn)

		// Registration with a phone: the account exists, and the code can
		// be asked for again through a phone change.
		p.sms.SetErr(unavailable)
		m = p.mark()
		bo := p.newUser("bo@example.com", map[string]any{"phone": "+14155552674"})
		p.none("register while the provider is down", m)
		p.sms.SetErr(nil)
		mustStatus(t, "ask for the code again", p.call(http.MethodPut, pathPhone, bo.access, map[string]any{"phone": "+14155552674"}), http.StatusOK)
		code = p.one("ask for the code again", m, "+14155552674", sms.ChannelSMS, auth.PurposePhoneVerification)
		mustStatus(t, "verify bo's phone", p.post(pathPhoneVerify, bo.access, map[string]any{"code": code}), http.StatusOK)
	})
}

// TestSMSAudit: sends and verified phones are audited with masked numbers;
// no code or full number is in any audit row or log line (checked for every
// test by newPhoneEnv).
func TestSMSAudit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine)
		m := p.mark()
		u := p.newUser("ada@example.com", map[string]any{"phone": adaPhone})
		code := p.one("register", m, adaPhone, sms.ChannelSMS, auth.PurposePhoneVerification)
		mustStatus(t, "verify phone", p.post(pathPhoneVerify, u.access, map[string]any{"code": code}), http.StatusOK)
		p.clock.Advance(31 * time.Second)
		p.enrolSMS(u, adaPhone)
		p.clock.Advance(31 * time.Second)
		tok := p.challengeFor(u)
		mustTokens(t, "login", p.verify(tok, map[string]any{"code": p.sendLogin(tok, "call", adaPhone)}))

		evs, err := p.db.AuditEvents(context.Background(), u.id, 1000)
		if err != nil {
			t.Fatal(err)
		}
		type sent struct{ Channel, Purpose, To string }
		var sends []sent
		var verified []string
		for _, ev := range evs {
			switch ev.Type {
			case auth.EventChallengeSent:
				sends = append(sends, sent{fmt.Sprint(ev.Detail["channel"]), fmt.Sprint(ev.Detail["purpose"]), fmt.Sprint(ev.Detail["to"])})
				if ev.IP != testIP || ev.UserAgent != testUA {
					t.Errorf("%s event from %q %q, want %q %q", ev.Type, ev.IP, ev.UserAgent, testIP, testUA)
				}
			case auth.EventPhoneVerified:
				verified = append(verified, fmt.Sprint(ev.Detail["to"]))
			}
		}
		slices.SortFunc(sends, func(a, b sent) int { return strings.Compare(a.Purpose, b.Purpose) })
		want := []sent{{"sms", "enrolment", adaPhoneMasked}, {"call", "login", adaPhoneMasked}, {"sms", "phone_verification", adaPhoneMasked}}
		if diff := cmp.Diff(want, sends); diff != "" {
			t.Errorf("twofa.challenge.sent events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{adaPhoneMasked}, verified); diff != "" {
			t.Errorf("phone.verified events (-want +got):\n%s", diff)
		}
	})
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/sms"
	"github.com/twostep-auth/twostep/internal/sms/twilio"
	"github.com/twostep-auth/twostep/internal/totp"
)

// fakeServer is a small in-memory stand-in for twostep that keeps the parts of the API contract
// the harness relies on, strictly where a mistake of the harness would show: tokens are single
// use, a TOTP step is accepted once per factor and must be later than the last one, backup codes
// work once, a phone is texted at most once per cooldown and an SMS code works once. It counts
// every request it refuses.
type fakeServer struct {
	opts totp.Options // the period is short in tests, so that steps pass quickly

	// SMS, when sender is set: texts go through sender, at most one per cooldown per phone, each
	// answered after smsDelay (to make a login take time).
	sender   sms.Sender
	cooldown time.Duration
	smsDelay time.Duration

	mu         sync.Mutex
	users      map[string]*fakeUser // by email
	access     map[string]string    // access token → email
	refresh    map[string]string    // refresh token → email
	challenges map[string]string    // challenge token → email
	smsCodes   map[string]string    // challenge token → the code texted for it
	lastText   map[string]time.Time // phone → when it was last charged a text
	refused    map[string]int       // "path status" → count
}

type fakeUser struct {
	password string
	secret   []byte
	enabled  bool
	lastStep int64
	backup   map[string]bool
	phone    string // SMS factor
	smsCode  string // enrolment code, until confirmed
}

func newFakeServer(period time.Duration) *fakeServer {
	return &fakeServer{
		opts:       totp.Options{Period: period, Digits: 6, Algorithm: totp.SHA1},
		users:      map[string]*fakeUser{},
		access:     map[string]string{},
		refresh:    map[string]string{},
		challenges: map[string]string{},
		smsCodes:   map[string]string{},
		lastText:   map[string]time.Time{},
		refused:    map[string]int{},
	}
}

// textLocked texts a new code to phone unless the phone is in its cooldown. f.mu must be held.
func (f *fakeServer) textLocked(phone string) (code string, status int, errCode string) {
	if f.sender == nil {
		return "", 503, "sms_unavailable"
	}
	now := time.Now()
	if last, ok := f.lastText[phone]; ok && now.Sub(last) < f.cooldown {
		return "", 429, "rate_limited"
	}
	f.lastText[phone] = now
	time.Sleep(f.smsDelay)
	code = fmt.Sprintf("%06d", mrand.IntN(1000000))
	m := sms.Message{To: phone, Channel: sms.ChannelSMS, Body: "Your fake code is " + code + "\n\n@fake #" + code}
	if err := f.sender.Send(context.Background(), m); err != nil {
		delete(f.lastText, phone)
		return "", 503, "sms_unavailable"
	}
	return code, 0, ""
}

// refusals returns a copy of the refused-request counts.
func (f *fakeServer) refusals() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.refused {
		out[k] = v
	}
	return out
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tokensLocked issues a token pair for email. f.mu must be held.
func (f *fakeServer) tokensLocked(email string) map[string]any {
	a, r := randomToken(), randomToken()
	f.access[a], f.refresh[r] = email, email
	return map[string]any{"accessToken": a, "refreshToken": r, "expiresIn": 900, "tokenType": "Bearer"}
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	type in struct {
		Email        string `json:"email"`
		Password     string `json:"password"`
		RefreshToken string `json:"refreshToken"`
		Method       string `json:"method"`
		Code         string `json:"code"`
		Phone        string `json:"phone"`
	}
	// handle wraps h: it decodes the body, holds the lock, and writes h's answer.
	handle := func(pattern string, h func(r *http.Request, body in) (int, any)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			var body in
			if r.Body != nil && r.ContentLength != 0 {
				if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
					http.Error(w, `{"error":{"code":"invalid_request"}}`, http.StatusBadRequest)
					return
				}
			}
			f.mu.Lock()
			status, v := h(r, body)
			if status >= 300 {
				f.refused[fmt.Sprintf("%s %d", r.URL.Path, status)]++
			}
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(v)
		})
	}
	bearer := func(r *http.Request, m map[string]string) (string, bool) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		email, found := m[tok]
		return email, ok && found
	}
	fail := func(status int, code string) (int, any) {
		return status, map[string]any{"error": map[string]string{"code": code, "message": code}}
	}
	// verifyCode accepts a TOTP code for a step later than the factor's last one.
	verifyCode := func(u *fakeUser, code string) bool {
		step, ok := totp.Verify(u.secret, code, time.Now(), 1, f.opts)
		if !ok || step <= u.lastStep {
			return false
		}
		u.lastStep = step
		return true
	}

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	handle("GET /.well-known/jwks.json", func(r *http.Request, _ in) (int, any) {
		return 200, map[string]any{"keys": []any{map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "AAAA"}}}
	})
	handle("POST /authentication/local/new", func(r *http.Request, b in) (int, any) {
		if b.Email == "" || len(b.Password) < 8 {
			return fail(400, "invalid_request")
		}
		if f.users[b.Email] != nil {
			return fail(409, "conflict")
		}
		f.users[b.Email] = &fakeUser{password: b.Password}
		return 201, map[string]any{"user": map[string]any{"email": b.Email}}
	})
	handle("POST /authentication/local", func(r *http.Request, b in) (int, any) {
		u := f.users[b.Email]
		if u == nil || u.password != b.Password {
			return fail(401, "invalid_credentials")
		}
		if u.enabled {
			c := randomToken()
			f.challenges[c] = b.Email
			return 200, map[string]any{"message": "2FA required", "twoFaRequired": true, "challengeToken": c,
				"methods": []string{"authenticator", "backup"}, "expiresIn": 300}
		}
		return 200, f.tokensLocked(b.Email)
	})
	handle("POST /authentication/renew", func(r *http.Request, b in) (int, any) {
		email, ok := f.refresh[b.RefreshToken]
		if !ok {
			return fail(401, "unauthorized")
		}
		delete(f.refresh, b.RefreshToken)
		return 200, f.tokensLocked(email)
	})
	handle("GET /authentication/user", func(r *http.Request, _ in) (int, any) {
		email, ok := bearer(r, f.access)
		if !ok {
			return fail(401, "unauthorized")
		}
		return 200, map[string]any{"user": map[string]any{"email": email}}
	})
	handle("POST /authentication/twoFa/enable", func(r *http.Request, b in) (int, any) {
		email, ok := bearer(r, f.access)
		if ok && b.Method == "sms" && b.Phone != "" {
			code, status, errCode := f.textLocked(b.Phone)
			if status != 0 {
				return fail(status, errCode)
			}
			f.users[email].phone, f.users[email].smsCode = b.Phone, code
			return 200, map[string]any{"method": "sms", "message": "Verification code sent", "to": "+1******" + b.Phone[len(b.Phone)-4:]}
		}
		if !ok || b.Method != "authenticator" {
			return fail(400, "invalid_request")
		}
		secret := make([]byte, totp.SecretSize)
		rand.Read(secret)
		f.users[email].secret = secret
		return 200, map[string]any{"method": "authenticator", "secret": totp.Encode(secret),
			"otpauthUrl": fmt.Sprintf("otpauth://totp/fake:%s?secret=%s&issuer=fake&algorithm=SHA1&digits=6&period=%d",
				email, totp.Encode(secret), int(f.opts.Period.Seconds()))}
	})
	handle("POST /authentication/twoFa/enable/verify", func(r *http.Request, b in) (int, any) {
		email, ok := bearer(r, f.access)
		if !ok {
			return fail(401, "unauthorized")
		}
		u := f.users[email]
		if b.Method == "sms" {
			if u.smsCode == "" || b.Code != u.smsCode {
				return fail(401, "invalid_code")
			}
			u.enabled, u.smsCode = true, ""
			return 200, map[string]any{"message": "2FA enabled", "method": "sms"}
		}
		if u.secret == nil || !verifyCode(u, b.Code) {
			return fail(401, "invalid_code")
		}
		u.enabled, u.backup = true, map[string]bool{}
		var codes []string
		for range 10 {
			c := strings.ToUpper(randomToken()[:16])
			u.backup[c] = true
			codes = append(codes, c[:4]+"-"+c[4:8]+"-"+c[8:12]+"-"+c[12:])
		}
		return 200, map[string]any{"message": "2FA enabled", "method": "authenticator", "backupCodes": codes}
	})
	handle("POST /authentication/twoFa/authorize", func(r *http.Request, b in) (int, any) {
		email, ok := bearer(r, f.challenges)
		if !ok {
			return fail(401, "unauthorized")
		}
		u := f.users[email]
		if b.Method != "sms" || u.phone == "" || u.smsCode != "" {
			return fail(400, "invalid_request")
		}
		code, status, errCode := f.textLocked(u.phone)
		if status != 0 {
			return fail(status, errCode)
		}
		f.smsCodes[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] = code
		return 200, map[string]any{"method": "sms", "message": "A verification code has been sent", "retryAfter": int(f.cooldown / time.Second)}
	})
	handle("POST /authentication/twoFa/verify", func(r *http.Request, b in) (int, any) {
		email, ok := bearer(r, f.challenges)
		if !ok {
			return fail(401, "unauthorized")
		}
		if b.Method == "sms" {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if code, ok := f.smsCodes[tok]; !ok || code != b.Code {
				return fail(401, "invalid_code")
			}
			delete(f.smsCodes, tok)
			delete(f.challenges, tok)
			return 200, f.tokensLocked(email)
		}
		if !verifyCode(f.users[email], b.Code) {
			return fail(401, "invalid_code")
		}
		delete(f.challenges, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		return 200, f.tokensLocked(email)
	})
	handle("POST /authentication/twoFa/recover", func(r *http.Request, b in) (int, any) {
		email, ok := bearer(r, f.challenges)
		if !ok {
			return fail(401, "unauthorized")
		}
		u, code := f.users[email], strings.ToUpper(strings.ReplaceAll(b.Code, "-", ""))
		if !u.backup[code] {
			return fail(401, "invalid_code")
		}
		delete(u.backup, code)
		delete(f.challenges, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		t := f.tokensLocked(email)
		t["remaining"] = len(u.backup)
		return 200, t
	})
	return mux
}

// fakeServerEnv, set to "1" in a test binary's environment, makes the binary act as a twostep
// binary instead of running tests: "migrate" exits at once, "serve" serves a fakeServer on
// TWOSTEP_ADDR until SIGTERM. It lets the tests run the -server path end to end.
const fakeServerEnv = "TWOSTEP_BENCH_FAKE_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(fakeServerEnv) == "1" {
		os.Exit(fakeServerMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeServerMain is the twostep stand-in's main. It refuses to start without the settings the
// harness promises its servers.
func fakeServerMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "fake twostep: want one of migrate, serve")
		return 2
	}
	for _, k := range []string{"TWOSTEP_DATABASE_URL", "TWOSTEP_LOG_FORMAT", "TWOSTEP_ACCESS_LOG", "TWOSTEP_LOGIN_IP_LIMIT"} {
		if os.Getenv(k) == "" {
			fmt.Fprintf(os.Stderr, "fake twostep: %s is not set\n", k)
			return 2
		}
	}
	switch args[0] {
	case "migrate":
		fmt.Println("fake twostep: migrated")
		return 0
	case "serve":
	default:
		fmt.Fprintf(os.Stderr, "fake twostep: unknown command %q\n", args[0])
		return 2
	}
	l, err := net.Listen("tcp", os.Getenv("TWOSTEP_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake twostep:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fake := newFakeServer(time.Second)
	if err := fake.smsFromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "fake twostep:", err)
		return 2
	}
	srv := &http.Server{Handler: fake.handler()}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	fmt.Println("fake twostep: serving on", l.Addr())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "fake twostep:", err)
		return 1
	}
	return 0
}

// fakeSMSDelayEnv, in the fake twostep's environment, holds each text back (a duration).
const fakeSMSDelayEnv = "TWOSTEP_BENCH_FAKE_SMS_DELAY"

// smsFromEnv sets up texting as a real server would from its environment: with
// TWOSTEP_SMS_PROVIDER=twilio, through Twilio at TWOSTEP_TWILIO_BASE_URL, with the
// TWOSTEP_SMS_RESEND_COOLDOWN cooldown. It refuses a twilio setting the real server would refuse.
func (f *fakeServer) smsFromEnv() error {
	switch p := os.Getenv("TWOSTEP_SMS_PROVIDER"); p {
	case "":
		return nil
	case "twilio":
	default:
		return fmt.Errorf("TWOSTEP_SMS_PROVIDER=%q: the fake knows only twilio", p)
	}
	sid := os.Getenv("TWOSTEP_TWILIO_ACCOUNT_SID")
	if _, err := hex.DecodeString(strings.TrimPrefix(sid, "AC")); len(sid) != 34 || !strings.HasPrefix(sid, "AC") || err != nil {
		return fmt.Errorf("TWOSTEP_TWILIO_ACCOUNT_SID=%q: want AC and 32 hex digits", sid)
	}
	for _, k := range []string{"TWOSTEP_TWILIO_AUTH_TOKEN", "TWOSTEP_TWILIO_FROM", "TWOSTEP_TWILIO_BASE_URL", "TWOSTEP_SMS_HOURLY_LIMIT"} {
		if os.Getenv(k) == "" {
			return fmt.Errorf("%s is not set", k)
		}
	}
	cooldown, err := time.ParseDuration(os.Getenv("TWOSTEP_SMS_RESEND_COOLDOWN"))
	if err != nil {
		return fmt.Errorf("TWOSTEP_SMS_RESEND_COOLDOWN: %w", err)
	}
	if v := os.Getenv(fakeSMSDelayEnv); v != "" {
		if f.smsDelay, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("%s: %w", fakeSMSDelayEnv, err)
		}
	}
	f.cooldown = cooldown
	f.sender = &twilio.Client{AccountSID: sid, AuthToken: os.Getenv("TWOSTEP_TWILIO_AUTH_TOKEN"),
		From: os.Getenv("TWOSTEP_TWILIO_FROM"), BaseURL: os.Getenv("TWOSTEP_TWILIO_BASE_URL")}
	return nil
}

package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/httpapi"
	"github.com/twostep-auth/twostep/internal/password"
	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
	"github.com/twostep-auth/twostep/internal/token"
)

const testPassword = "correct horse battery"

func TestRegister(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		r := e.post("/authentication/local/new", "", map[string]any{
			"email": "  Ada@Example.COM ", "username": "Ada_L", "password": testPassword,
		})
		mustStatus(t, "register", r, http.StatusCreated)
		var got struct {
			User map[string]any `json:"user"`
		}
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatal(err)
		}
		id, _ := got.User["id"].(string)
		if id == "" {
			t.Fatalf("register: user.id = %v, want an id", got.User["id"])
		}
		want := map[string]any{
			"id": id, "email": "ada@example.com", "username": "ada_l", "phone": nil,
			"phoneVerified": false, "twoFaEnabled": false, "roles": []any{"user"},
			"createdAt": e.clock.Now().UTC().Format(time.RFC3339),
		}
		if diff := cmp.Diff(want, got.User); diff != "" {
			t.Errorf("register: user mismatch (-want +got):\n%s", diff)
		}
		if n := e.countRows("users"); n != 1 {
			t.Fatalf("users after one sign-up = %d, want 1", n)
		}

		// The password is stored hashed, never as given.
		var hash string
		if err := e.db.SQL().QueryRowContext(t.Context(), "SELECT password_hash FROM users").Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, testPassword) {
			t.Errorf("stored password = %q, want an argon2id hash", hash)
		}

		for _, body := range []map[string]any{
			{"email": "ada@example.com", "password": testPassword},
			{"email": "ADA@EXAMPLE.COM", "password": "another password"},
			{"email": "Ada@example.com", "password": testPassword, "username": "someone"},
			{"email": "other@example.com", "password": testPassword, "username": "ADA_L"},
		} {
			r := e.post("/authentication/local/new", "", body)
			mustErr(t, "register again "+body["email"].(string), r, http.StatusConflict, "conflict")
		}
		if n := e.countRows("users"); n != 1 {
			t.Fatalf("users after duplicate sign-ups = %d, want 1", n)
		}
	})
}

func TestRegisterBoundaries(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		// The password bounds are bytes: 8 and 1024 are accepted, also
		// when made of multi-byte characters.
		for i, pw := range []string{"12345678", strings.Repeat("x", 1024), "éééé", strings.Repeat("€", 341) + "x"} {
			email := "ok" + strconv.Itoa(i) + "@example.com"
			r := e.post("/authentication/local/new", "", map[string]any{"email": email, "password": pw})
			mustStatus(t, "register with a "+strconv.Itoa(len(pw))+"-byte password", r, http.StatusCreated)
			e.login(email, pw)
		}
	})
}

func TestRegisterRejectsBadInput(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		tests := []struct {
			name string
			body any
		}{
			{"no email", map[string]any{"password": testPassword}},
			{"empty email", map[string]any{"email": "", "password": testPassword}},
			{"blank email", map[string]any{"email": "   ", "password": testPassword}},
			{"email without at", map[string]any{"email": "ada.example.com", "password": testPassword}},
			{"email without domain dot", map[string]any{"email": "ada@example", "password": testPassword}},
			{"email with display name", map[string]any{"email": "Ada <ada@example.com>", "password": testPassword}},
			{"email with space", map[string]any{"email": "a da@example.com", "password": testPassword}},
			{"non-ASCII email", map[string]any{"email": "élève@école.fr", "password": testPassword}},
			{"email of broken UTF-8", "{\"email\":\"\xff\xfe@example.com\",\"password\":\"" + testPassword + "\"}"},
			{"email with control character", map[string]any{"email": "ada\u0001@example.com", "password": testPassword}},
			{"email domain with punctuation", map[string]any{"email": "ada@!example.com", "password": testPassword}},
			{"email domain label with leading hyphen", map[string]any{"email": "ada@-example.com", "password": testPassword}},
			{"email domain with underscore", map[string]any{"email": "ada@ex_ample.com", "password": testPassword}},
			{"email domain with empty label", map[string]any{"email": "ada@example..com", "password": testPassword}},
			{"email local part over 64", map[string]any{"email": strings.Repeat("a", 65) + "@example.com", "password": testPassword}},
			{"email too long", map[string]any{"email": strings.Repeat("a", 250) + "@example.com", "password": testPassword}},
			{"no password", map[string]any{"email": "ada@example.com"}},
			{"empty password", map[string]any{"email": "ada@example.com", "password": ""}},
			{"7-byte password", map[string]any{"email": "ada@example.com", "password": "1234567"}},
			{"7-byte password of 4 characters", map[string]any{"email": "ada@example.com", "password": "ééé1"}},
			{"1025-byte password", map[string]any{"email": "ada@example.com", "password": strings.Repeat("x", 1025)}},
			{"password with NUL", map[string]any{"email": "ada@example.com", "password": "correct\x00horse"}},
			{"short username", map[string]any{"email": "ada@example.com", "password": testPassword, "username": "ab"}},
			{"username with space", map[string]any{"email": "ada@example.com", "password": testPassword, "username": "ada l"}},
			{"username starting with dash", map[string]any{"email": "ada@example.com", "password": testPassword, "username": "-ada"}},
			{"empty object", map[string]any{}},
			{"null fields", map[string]any{"email": nil, "password": nil}},
		}
		for _, tt := range tests {
			r := e.post("/authentication/local/new", "", tt.body)
			mustErr(t, "register "+tt.name, r, http.StatusBadRequest, "invalid_request")
			if n := e.countRows("users"); n != 0 {
				t.Fatalf("after register %s: %d users stored, want 0", tt.name, n)
			}
		}
		if n := e.countRows("audit_events"); n != 0 {
			t.Errorf("after refused sign-ups: %d audit events, want 0", n)
		}
	})
}

func TestLogin(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		r := e.post("/authentication/local/new", "", map[string]any{"email": "ada@example.com", "username": "ada", "password": testPassword})
		mustStatus(t, "register", r, http.StatusCreated)
		userID := r.JSON(t)["user"].(map[string]any)["id"].(string)

		for _, body := range []map[string]any{
			{"email": "ada@example.com", "password": testPassword},
			{"email": " ADA@Example.com", "password": testPassword},
			{"username": "ada", "password": testPassword},
			{"username": "ADA", "password": testPassword},
			{"email": "ada", "password": testPassword}, // a username in the email field
		} {
			r := e.post("/authentication/local", "", body)
			mustStatus(t, "login "+jsonString(body), r, http.StatusOK)
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("login: Cache-Control = %q, want no-store", cc)
			}
			m := r.JSON(t)
			if m["tokenType"] != "Bearer" || m["expiresIn"] != float64(900) {
				t.Errorf("login = %s, want tokenType Bearer and expiresIn 900", r.Body)
			}
			if u, _ := m["user"].(map[string]any); u["id"] != userID {
				t.Errorf("login: user = %v, want id %s", m["user"], userID)
			}
			access := m["accessToken"].(string)
			refresh := m["refreshToken"].(string)
			if n := rawLen(t, refresh); n < 32 {
				t.Errorf("refresh token has %d bytes of entropy, want at least 32", n)
			}
			claims := jwtPayload(t, access)
			if claims["sub"] != userID || claims["iss"] != "twostep-test" || claims["aud"] != "twostep-test" || claims["sid"] == "" {
				t.Errorf("access token claims = %v", claims)
			}
			if !slices.Equal(toStrings(claims["amr"]), []string{"pwd"}) {
				t.Errorf("access token amr = %v, want [pwd]", claims["amr"])
			}
			if hdr := jwtHeader(t, access); hdr["alg"] != "EdDSA" || hdr["kid"] == "" {
				t.Errorf("access token header = %v, want alg EdDSA and a kid", hdr)
			}
			u := e.get("/authentication/user", access)
			mustStatus(t, "user", u, http.StatusOK)
			if got := u.JSON(t)["user"].(map[string]any)["id"]; got != userID {
				t.Errorf("user.id = %v, want %s", got, userID)
			}
		}
		if n := e.countRows("sessions"); n != 5 {
			t.Errorf("sessions after 5 logins = %d, want 5", n)
		}
	})
}

func TestLoginFailuresLookAlike(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		e.register("ada@example.com")
		e.post("/authentication/local/new", "", map[string]any{"email": "bob@example.com", "username": "bob", "password": testPassword})

		wrong := e.post("/authentication/local", "", map[string]any{"email": "ada@example.com", "password": "wrong password"})
		mustErr(t, "login with a wrong password", wrong, http.StatusUnauthorized, "invalid_credentials")
		for _, body := range []map[string]any{
			{"email": "nobody@example.com", "password": "wrong password"},
			{"email": "nobody@example.com", "password": testPassword},
			{"username": "nobody", "password": testPassword},
			{"username": "bob", "password": "wrong password"},
			{"email": "ada@example.com", "password": "Correct horse battery"},
			{"email": "ada@example.com", "password": strings.Repeat("x", 1025)},
		} {
			r := e.post("/authentication/local", "", body)
			if r.Status != wrong.Status || !bytes.Equal(r.Body, wrong.Body) {
				t.Errorf("login %s = %d %s, want the wrong-password answer %d %s", jsonString(body), r.Status, r.Body, wrong.Status, wrong.Body)
			}
			if len(r.Header.Values("Set-Cookie")) > 0 || r.Header.Get("Retry-After") != "" {
				t.Errorf("login %s: headers %v differ from a plain 401", jsonString(body), r.Header)
			}
		}
		if n := e.countRows("sessions"); n != 0 {
			t.Errorf("sessions after failed logins = %d, want 0", n)
		}
	})
}

// TestLoginTiming runs with the real argon2id cost: an unknown account
// must cost a password hash too, or its answer would come much faster than
// a wrong password's.
func TestLoginTiming(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, withPasswordParams(password.Default()))
		e.register("ada@example.com")
		e.login("ada@example.com", testPassword) // warm up; resets the throttle
		const n = 5
		var wrong, unknown []time.Duration
		timed := func(body map[string]any) time.Duration {
			start := time.Now()
			r := e.post("/authentication/local", "", body)
			d := time.Since(start)
			mustErr(t, "login "+jsonString(body), r, http.StatusUnauthorized, "invalid_credentials")
			return d
		}
		for i := range n {
			// Interleaved, so that load from parallel tests hits both alike.
			wrong = append(wrong, timed(map[string]any{"email": "ada@example.com", "password": "wrong password " + strconv.Itoa(i)}))
			unknown = append(unknown, timed(map[string]any{"email": "nobody" + strconv.Itoa(i) + "@example.com", "password": "wrong password"}))
		}
		mw, mu := median(wrong), median(unknown)
		t.Logf("median login time: wrong password %v, unknown account %v", mw, mu)
		if mu < mw/2 || mu > mw*2 {
			t.Errorf("median unknown-account login %v, want within 0.5×–2× of the wrong-password median %v", mu, mw)
		}
	})
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// loginAs posts a login from remote (empty: the env's address) with extra
// headers.
func (e *env) loginAs(body map[string]any, remote string, hdr http.Header) resp {
	e.t.Helper()
	return e.do(request{method: http.MethodPost, path: "/authentication/local", body: body, remoteAddr: remote, header: hdr})
}

func wrongPw(email string) map[string]any {
	return map[string]any{"email": email, "password": "wrong password"}
}

// retryAfter returns the Retry-After of a 429 rate_limited answer.
func retryAfter(t *testing.T, what string, r resp) int {
	t.Helper()
	mustErr(t, what, r, http.StatusTooManyRequests, "rate_limited")
	s, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || s < 1 {
		t.Fatalf("%s: Retry-After = %q, want a whole number of seconds ≥ 1", what, r.Header.Get("Retry-After"))
	}
	return s
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		e.register("ada@example.com")
		e.register("bob@example.com")

		for i := 1; i <= 5; i++ {
			mustErr(t, "wrong password #"+strconv.Itoa(i), e.post("/authentication/local", "", wrongPw("ada@example.com")), http.StatusUnauthorized, "invalid_credentials")
		}
		// The 6th is refused before the password is checked: even the right
		// one, from another address, with another spelling.
		if s := retryAfter(t, "wrong password #6", e.post("/authentication/local", "", wrongPw("ada@example.com"))); s != 1 {
			t.Errorf("first delay = %ds, want 1", s)
		}
		retryAfter(t, "right password while throttled", e.post("/authentication/local", "", map[string]any{"email": "ada@example.com", "password": testPassword}))
		retryAfter(t, "other address while throttled", e.loginAs(wrongPw("ADA@example.com"), "203.0.113.9:555", nil))
		retryAfter(t, "with X-Forwarded-For from an untrusted peer", e.loginAs(wrongPw("ada@example.com"), "", http.Header{"X-Forwarded-For": {"198.51.100.1"}}))

		// Another account's success does not reset it.
		e.login("bob@example.com", testPassword)
		retryAfter(t, "after another account's success", e.post("/authentication/local", "", wrongPw("ada@example.com")))

		// Past each delay exactly one more try goes through; the delays grow.
		prev := 0
		for round := range 4 {
			r := e.post("/authentication/local", "", wrongPw("ada@example.com"))
			s := retryAfter(t, "round "+strconv.Itoa(round), r)
			if s <= prev {
				t.Errorf("round %d: Retry-After %d, want more than the previous %d", round, s, prev)
			}
			prev = s
			e.clock.Advance(time.Duration(s) * time.Second)
			mustErr(t, "after waiting, round "+strconv.Itoa(round), e.post("/authentication/local", "", wrongPw("ada@example.com")), http.StatusUnauthorized, "invalid_credentials")
		}
		if prev < 8 {
			t.Errorf("after 4 delays Retry-After = %d, want it doubling (8)", prev)
		}

		// A wait that has not fully passed is still refused, with the rest of it.
		s := retryAfter(t, "throttled", e.post("/authentication/local", "", wrongPw("ada@example.com")))
		e.clock.Advance(time.Duration(s-1) * time.Second)
		if got := retryAfter(t, "one second early", e.post("/authentication/local", "", wrongPw("ada@example.com"))); got != 1 {
			t.Errorf("one second early: Retry-After %d, want 1", got)
		}
		e.clock.Advance(time.Second)
		// The right password after the wait signs in and resets the count.
		e.login("ada@example.com", testPassword)
		for i := 1; i <= 5; i++ {
			mustErr(t, "after reset, wrong password #"+strconv.Itoa(i), e.post("/authentication/local", "", wrongPw("ada@example.com")), http.StatusUnauthorized, "invalid_credentials")
		}
		retryAfter(t, "after reset, wrong password #6", e.post("/authentication/local", "", wrongPw("ada@example.com")))
	})
}

// TestLoginThrottleSharedByNames: email and username lead to one counter,
// and unknown names are throttled like real ones.
func TestLoginThrottleSharedByNames(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		r := e.post("/authentication/local/new", "", map[string]any{"email": "ada@example.com", "username": "ada", "password": testPassword})
		mustStatus(t, "register", r, http.StatusCreated)
		for i := range 5 {
			body := wrongPw("ada@example.com")
			if i%2 == 1 {
				body = map[string]any{"username": "ada", "password": "wrong password"}
			}
			mustErr(t, "wrong password #"+strconv.Itoa(i+1), e.post("/authentication/local", "", body), http.StatusUnauthorized, "invalid_credentials")
		}
		retryAfter(t, "by username after 5 failures", e.post("/authentication/local", "", map[string]any{"username": "ada", "password": "wrong password"}))

		for i := range 5 {
			mustErr(t, "unknown #"+strconv.Itoa(i+1), e.post("/authentication/local", "", wrongPw("ghost@example.com")), http.StatusUnauthorized, "invalid_credentials")
		}
		retryAfter(t, "unknown account after 5 failures", e.post("/authentication/local", "", wrongPw("ghost@example.com")))
	})
}

func TestLoginThrottleStopsForGood(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, withConfig(func(c *auth.Config) {
			c.LoginMaxFailures = 8
			c.LoginMaxDelay = time.Second
		}))
		e.register("ada@example.com")
		let := 0
		for range 40 {
			r := e.post("/authentication/local", "", wrongPw("ada@example.com"))
			switch r.Status {
			case http.StatusUnauthorized:
				let++
			case http.StatusTooManyRequests:
				retryAfter(t, "throttled", r)
			default:
				t.Fatalf("wrong password = %d %s, want 401 or 429", r.Status, r.Body)
			}
			e.clock.Advance(2 * time.Second)
		}
		if let != 8 {
			t.Fatalf("%d wrong passwords let through, want exactly LoginMaxFailures (8)", let)
		}
		e.clock.Advance(30 * 24 * time.Hour)
		retryAfter(t, "a month later", e.post("/authentication/local", "", wrongPw("ada@example.com")))
		retryAfter(t, "a month later, right password", e.post("/authentication/local", "", map[string]any{"email": "ada@example.com", "password": testPassword}))

		if err := e.svc.Unlock(t.Context(), "ADA@example.com", auth.RequestMeta{}); err != nil {
			t.Fatalf("Unlock() = %v", err)
		}
		mustErr(t, "after unlock, wrong password", e.post("/authentication/local", "", wrongPw("ada@example.com")), http.StatusUnauthorized, "invalid_credentials")
		e.login("ada@example.com", testPassword)
	})
}

func TestLoginThrottleConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		e.register("ada@example.com")
		const n = 40
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				statuses[i] = e.post("/authentication/local", "", wrongPw("ada@example.com")).Status
			})
		}
		wg.Wait()
		var got401, got429 int
		for _, s := range statuses {
			switch s {
			case http.StatusUnauthorized:
				got401++
			case http.StatusTooManyRequests:
				got429++
			default:
				t.Errorf("concurrent wrong password = %d, want 401 or 429", s)
			}
		}
		if got401 > 5 || got401 == 0 || got401+got429 != n {
			t.Errorf("%d concurrent wrong passwords: %d answered 401 and %d 429, want at most 5 (and at least 1) 401, the rest 429", n, got401, got429)
		}
	})
}

func TestLoginIPLimit(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, withConfig(func(c *auth.Config) { c.LoginIPLimit = 3 }))
		// Each attempt names another account, so only the IP limit applies.
		attempt := func(i int, remote string, hdr http.Header) resp {
			return e.loginAs(wrongPw("u"+strconv.Itoa(i)+"@example.com"), remote, hdr)
		}
		i := 0
		for range 3 {
			i++
			mustErr(t, "attempt "+strconv.Itoa(i), attempt(i, "", nil), http.StatusUnauthorized, "invalid_credentials")
		}
		i++
		s := retryAfter(t, "4th attempt in a minute", attempt(i, "", nil))
		if s > 60 {
			t.Errorf("Retry-After %d, want at most the rest of the minute", s)
		}
		// X-Forwarded-For from an untrusted peer changes nothing.
		for _, xff := range []string{"198.51.100.1", "198.51.100.2, 198.51.100.3"} {
			i++
			retryAfter(t, "untrusted XFF "+xff, attempt(i, "", http.Header{"X-Forwarded-For": {xff}}))
		}
		// Another address has its own allowance.
		i++
		mustErr(t, "another address", attempt(i, "203.0.113.5:999", nil), http.StatusUnauthorized, "invalid_credentials")

		// The next minute resets it.
		e.clock.Advance(time.Duration(s) * time.Second)
		for range 3 {
			i++
			mustErr(t, "next minute, attempt "+strconv.Itoa(i), attempt(i, "", nil), http.StatusUnauthorized, "invalid_credentials")
		}
		i++
		retryAfter(t, "next minute, 4th attempt", attempt(i, "", nil))
	})
}

func TestLoginIPLimitTrustedProxy(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine,
			withConfig(func(c *auth.Config) { c.LoginIPLimit = 3 }),
			withOptions(func(o *httpapi.Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }))
		const proxy = "10.1.2.3:4567"
		i := 0
		attempt := func(xff string) resp {
			i++
			return e.loginAs(wrongPw("u"+strconv.Itoa(i)+"@example.com"), proxy, http.Header{"X-Forwarded-For": {xff}})
		}
		// Two clients behind the proxy get 3 attempts each.
		for _, client := range []string{"198.51.100.7", "198.51.100.8"} {
			for k := range 3 {
				mustErr(t, client+" attempt "+strconv.Itoa(k+1), attempt(client), http.StatusUnauthorized, "invalid_credentials")
			}
			retryAfter(t, client+" attempt 4", attempt(client))
		}
		// The client is the right-most address that is not a trusted proxy:
		// what the client itself wrote on the left is not believed.
		retryAfter(t, "spoofed left-most entry", attempt("192.0.2.99, 198.51.100.7"))
		retryAfter(t, "through two proxies", attempt("198.51.100.8, 10.9.9.9"))
		mustErr(t, "a third client", attempt("192.0.2.99, 198.51.100.9"), http.StatusUnauthorized, "invalid_credentials")
		// The proxy itself, without the header, is one more client.
		i++
		mustErr(t, "the proxy without XFF", e.loginAs(wrongPw("u"+strconv.Itoa(i)+"@example.com"), proxy, nil), http.StatusUnauthorized, "invalid_credentials")
	})
}

func TestRenew(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, refresh := e.signup("ada@example.com")
		sid := jwtPayload(t, access)["sid"]

		e.clock.Advance(time.Minute)
		r := e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh})
		mustStatus(t, "renew", r, http.StatusOK)
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("renew: Cache-Control = %q, want no-store", cc)
		}
		m := r.JSON(t)
		access2, refresh2 := m["accessToken"].(string), m["refreshToken"].(string)
		if access2 == access || refresh2 == refresh {
			t.Fatalf("renew returned the same tokens")
		}
		if m["tokenType"] != "Bearer" || m["expiresIn"] != float64(900) {
			t.Errorf("renew = %s, want tokenType Bearer and expiresIn 900", r.Body)
		}
		if got := jwtPayload(t, access2)["sid"]; got != sid {
			t.Errorf("renewed access token sid = %v, want the same session %v", got, sid)
		}
		mustStatus(t, "user with the renewed token", e.get("/authentication/user", access2), http.StatusOK)

		// The second pair renews in turn.
		r = e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh2})
		mustStatus(t, "renew the renewed token", r, http.StatusOK)
		access3, refresh3 := r.Str(t, "accessToken"), r.Str(t, "refreshToken")

		// Presenting an old refresh token again revokes the whole session.
		mustErr(t, "reuse the first refresh token", e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh}), http.StatusUnauthorized, "unauthorized")
		mustErr(t, "the newest refresh token after reuse", e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh3}), http.StatusUnauthorized, "unauthorized")
		for _, tok := range []string{access, access2, access3} {
			mustErr(t, "access token after reuse", e.get("/authentication/user", tok), http.StatusUnauthorized, "unauthorized")
		}
		// Another session of the same user is untouched.
		other, _ := e.signupAgain("ada@example.com")
		mustStatus(t, "another session after reuse", e.get("/authentication/user", other), http.StatusOK)
	})
}

// signupAgain logs in an existing account made by register.
func (e *env) signupAgain(email string) (access, refresh string) {
	e.t.Helper()
	m := e.login(email, testPassword)
	return m["accessToken"].(string), m["refreshToken"].(string)
}

func TestRenewConcurrentReuse(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		e.register("ada@example.com")
		for round := range 5 {
			_, refresh := e.signupAgain("ada@example.com")
			const n = 16
			answers := atOnce(n, func(int) resp {
				return e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh})
			})
			ok := 0
			for _, r := range answers {
				switch s := r.Status; s {
				case http.StatusOK:
					ok++
				case http.StatusUnauthorized:
				default:
					t.Errorf("concurrent renew = %d, want 200 or 401", s)
				}
			}
			if ok > 1 {
				t.Errorf("round %d: %d concurrent renewals of one refresh token succeeded, want at most 1", round, ok)
			}
		}
	})
}

func TestRenewRefusesBadTokens(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, refresh := e.signup("ada@example.com")
		for _, tt := range []struct {
			name   string
			body   any
			status int
		}{
			{"empty", map[string]any{"refreshToken": ""}, http.StatusBadRequest},
			{"missing", map[string]any{}, http.StatusBadRequest},
			{"number", map[string]any{"refreshToken": 12345}, http.StatusBadRequest},
			{"garbage", map[string]any{"refreshToken": "garbage"}, http.StatusUnauthorized},
			{"huge", map[string]any{"refreshToken": strings.Repeat("A", 60000)}, http.StatusUnauthorized},
			{"access token", map[string]any{"refreshToken": access}, http.StatusUnauthorized},
			{"altered", map[string]any{"refreshToken": flipChar(refresh, len(refresh)/2)}, http.StatusUnauthorized},
			{"with whitespace", map[string]any{"refreshToken": " " + refresh + " "}, http.StatusUnauthorized},
			{"bad JSON escape", `{"refreshToken":"\xff\xfe"}`, http.StatusBadRequest},
			{"invalid UTF-8", "{\"refreshToken\":\"\xff\xfe" + refresh + "\"}", http.StatusUnauthorized},
		} {
			r := e.post("/authentication/renew", "", tt.body)
			if r.Status != tt.status {
				t.Errorf("renew with %s token = %d %s, want %d", tt.name, r.Status, r.Body, tt.status)
			}
		}
		// None of that harmed the real token.
		mustStatus(t, "renew after bad attempts", e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh}), http.StatusOK)
	})
}

func TestRenewExpired(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		_, refresh := e.signup("ada@example.com")
		// Just before the end it still works, and renewing extends the session.
		e.clock.Advance(e.cfg.RefreshTTL - time.Minute)
		r := e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh})
		mustStatus(t, "renew a minute before expiry", r, http.StatusOK)
		refresh = r.Str(t, "refreshToken")
		e.clock.Advance(e.cfg.RefreshTTL - time.Minute)
		r = e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh})
		mustStatus(t, "renew within the extended life", r, http.StatusOK)
		refresh = r.Str(t, "refreshToken")

		e.clock.Advance(e.cfg.RefreshTTL + time.Second)
		mustErr(t, "renew after expiry", e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh}), http.StatusUnauthorized, "unauthorized")
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, refresh := e.signup("ada@example.com")
		other, otherRefresh := e.signupAgain("ada@example.com")

		r := e.post("/authentication/logout", access, nil)
		mustStatus(t, "logout", r, http.StatusOK)
		if diff := cmp.Diff(map[string]any{"message": "Logged out"}, r.JSON(t)); diff != "" {
			t.Errorf("logout body mismatch (-want +got):\n%s", diff)
		}
		mustErr(t, "user after logout", e.get("/authentication/user", access), http.StatusUnauthorized, "unauthorized")
		mustErr(t, "renew after logout", e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh}), http.StatusUnauthorized, "unauthorized")
		mustErr(t, "logout again", e.post("/authentication/logout", access, nil), http.StatusUnauthorized, "unauthorized")

		// Only that session ended.
		mustStatus(t, "user of the other session", e.get("/authentication/user", other), http.StatusOK)
		mustStatus(t, "renew of the other session", e.post("/authentication/renew", "", map[string]any{"refreshToken": otherRefresh}), http.StatusOK)
		mustErr(t, "logout without a token", e.post("/authentication/logout", "", nil), http.StatusUnauthorized, "unauthorized")
	})
}

func TestUserRefusesBadTokens(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, refresh := e.signup("ada@example.com")
		bobAccess, _ := e.signup("bob@example.com")
		challengeTok := e.loginChallenge("carol@example.com")
		mustStatus(t, "user", e.get("/authentication/user", access), http.StatusOK)

		parts := strings.Split(access, ".")
		header, payload := jwtHeader(t, access), jwtPayload(t, access)
		bobClaims := jwtPayload(t, bobAccess)
		kid := header["kid"].(string)

		var jwks struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(e.get("/.well-known/jwks.json", "").Body, &jwks); err != nil || len(jwks.Keys) == 0 {
			t.Fatalf("jwks: %v %v", jwks, err)
		}
		x, _ := jwks.Keys[0]["x"].(string)
		pub, err := base64.RawURLEncoding.DecodeString(x)
		if err != nil || len(pub) != 32 {
			t.Fatalf("jwks x = %q: %v", x, err)
		}

		hs256 := func(key []byte) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(payload))
			tok.Header["kid"] = kid
			tok.Header["typ"] = "at+jwt"
			s, err := tok.SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		withPayload := func(edit func(map[string]any)) string {
			p := map[string]any{}
			for k, v := range payload {
				p[k] = v
			}
			edit(p)
			return parts[0] + "." + b64JSON(t, p) + "." + parts[2]
		}
		withHeader := func(edit func(map[string]any)) string {
			h := map[string]any{}
			for k, v := range header {
				h[k] = v
			}
			edit(h)
			return b64JSON(t, h) + "." + parts[1] + "." + parts[2]
		}
		foreign := func(store string, opts token.Options) string {
			t.Helper()
			db := e.db
			sealer := e.sealer
			if store == "other" {
				db = sqltest.Open(t, engine)
				k, err := seal.GenerateKey(rand.Reader, "k9")
				if err != nil {
					t.Fatal(err)
				}
				if sealer, err = seal.New(k); err != nil {
					t.Fatal(err)
				}
			}
			kr := token.NewKeyring(db, sealer, opts)
			if err := kr.Load(t.Context(), e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			s, err := kr.Issue(token.Claims{Subject: payload["sub"].(string), SessionID: payload["sid"].(string), AMR: []string{"pwd"}, IssuedAt: e.clock.Now()})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		rightOpts := token.Options{Issuer: "twostep-test", Audience: "twostep-test"}

		tests := []struct {
			name string
			auth string // the whole Authorization header; "" sends none
		}{
			{"no header", ""},
			{"scheme only", "Bearer"},
			{"empty token", "Bearer "},
			{"basic scheme", "Basic YWRhQGV4YW1wbGUuY29tOnB3"},
			{"token without scheme", access},
			{"other scheme", "Token " + access},
			{"garbage", "Bearer garbage"},
			{"three dots of garbage", "Bearer a.b.c"},
			{"huge", "Bearer " + strings.Repeat("a.", 5000) + "b"},
			{"two tokens", "Bearer " + access + " " + access},
			{"alg none", "Bearer " + b64JSON(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + parts[1] + "."},
			{"alg none with signature", "Bearer " + withHeader(func(h map[string]any) { h["alg"] = "none" })},
			{"no signature", "Bearer " + parts[0] + "." + parts[1] + "."},
			{"HS256 keyed with the public key", "Bearer " + hs256(pub)},
			{"HS256 keyed with the public key's text", "Bearer " + hs256([]byte(x))},
			{"flipped signature", "Bearer " + parts[0] + "." + parts[1] + "." + flipChar(parts[2], 10)},
			{"signature of another token", "Bearer " + parts[0] + "." + parts[1] + "." + strings.Split(bobAccess, ".")[2]},
			{"edited subject", "Bearer " + withPayload(func(p map[string]any) { p["sub"] = bobClaims["sub"] })},
			{"edited session", "Bearer " + withPayload(func(p map[string]any) { p["sid"] = bobClaims["sid"] })},
			{"edited expiry", "Bearer " + withPayload(func(p map[string]any) { p["exp"] = p["exp"].(float64) + 3600 })},
			{"unknown kid", "Bearer " + withHeader(func(h map[string]any) { h["kid"] = "nope" })},
			{"no kid", "Bearer " + withHeader(func(h map[string]any) { delete(h, "kid") })},
			{"other typ", "Bearer " + withHeader(func(h map[string]any) { h["typ"] = "JWT" })},
			{"another server's key", "Bearer " + foreign("other", rightOpts)},
			{"another issuer", "Bearer " + foreign("same", token.Options{Issuer: "evil", Audience: "twostep-test"})},
			{"another audience", "Bearer " + foreign("same", token.Options{Issuer: "twostep-test", Audience: "evil"})},
			{"refresh token", "Bearer " + refresh},
			{"challenge token", "Bearer " + challengeTok},
		}
		// The same key, issuer and audience do make a good token: the
		// foreign cases fail for the reason they name.
		mustStatus(t, "user with a token of a second keyring on the same store", e.get("/authentication/user", foreign("same", rightOpts)), http.StatusOK)
		mustStatus(t, "user with a lower-case scheme", e.do(request{method: http.MethodGet, path: "/authentication/user", header: http.Header{"Authorization": {"bearer " + access}}}), http.StatusOK)

		for _, tt := range tests {
			hdr := http.Header{}
			if tt.auth != "" {
				hdr.Set("Authorization", tt.auth)
			}
			for _, route := range []request{
				{method: http.MethodGet, path: "/authentication/user", header: hdr},
				{method: http.MethodPost, path: "/authentication/logout", header: hdr},
			} {
				r := e.do(route)
				if r.Status != http.StatusUnauthorized || r.ErrCode(t) != "unauthorized" {
					t.Errorf("%s %s with %s = %d %s, want 401 unauthorized", route.method, route.path, tt.name, r.Status, r.Body)
				}
			}
		}
		mustStatus(t, "user after the bad tokens", e.get("/authentication/user", access), http.StatusOK)

		// An expired access token is refused although its session lives.
		e.clock.Advance(16 * time.Minute)
		mustErr(t, "user with an expired token", e.get("/authentication/user", access), http.StatusUnauthorized, "unauthorized")
		mustStatus(t, "renew after the access token expired", e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh}), http.StatusOK)
	})
}

func TestUserRevokedSession(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, _ := e.signup("ada@example.com")
		sid := jwtPayload(t, access)["sid"].(string)
		mustStatus(t, "user", e.get("/authentication/user", access), http.StatusOK)
		if _, err := e.db.RevokeSession(context.Background(), sid, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		mustErr(t, "user of a revoked session", e.get("/authentication/user", access), http.StatusUnauthorized, "unauthorized")
	})
}

func TestCacheControlAndRequestID(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		e.register("ada@example.com")
		r := e.post("/authentication/local", "", map[string]any{"email": "ada@example.com", "password": testPassword})
		mustStatus(t, "login", r, http.StatusOK)
		access := r.Str(t, "accessToken")
		for _, rr := range []resp{r, e.get("/authentication/user", access), e.post("/authentication/renew", "", map[string]any{"refreshToken": r.Str(t, "refreshToken")})} {
			if cc := rr.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control = %q on an answer with tokens or personal data, want no-store", cc)
			}
		}

		get := func(id string) string {
			hdr := http.Header{}
			if id != "" {
				hdr.Set("X-Request-Id", id)
			}
			return e.do(request{method: http.MethodGet, path: "/healthz", header: hdr}).Header.Get("X-Request-Id")
		}
		for _, id := range []string{"abc-123", "0191f4d2-7c3a-7b7e-9a55-2b1f0c9d8e11", "trace_1.2", strings.Repeat("a", 64)} {
			if got := get(id); got != id {
				t.Errorf("X-Request-Id %q echoed as %q, want it unchanged", id, got)
			}
		}
		seen := map[string]bool{}
		for _, id := range []string{"", "has space", "quote\"d", "<script>", "ünïcode", strings.Repeat("a", 65), "a\tb"} {
			got := get(id)
			if got == id || got == "" || len(got) > 64 || strings.ContainsAny(got, " \"<>\t") || seen[got] {
				t.Errorf("X-Request-Id %q answered as %q, want a fresh, plain id", id, got)
			}
			seen[got] = true
		}
	})
}

// jwtPart decodes one base64url JSON part of a JWT.
func jwtPart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%.20q… is not a JWT", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("JWT part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("JWT part %d: %v", i, err)
	}
	return m
}

func jwtHeader(t *testing.T, tok string) map[string]any  { t.Helper(); return jwtPart(t, tok, 0) }
func jwtPayload(t *testing.T, tok string) map[string]any { t.Helper(); return jwtPart(t, tok, 1) }

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// flipChar changes the base64url character at i to another one.
func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// rawLen is the number of bytes a base64url token encodes.
func rawLen(t *testing.T, tok string) int {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatalf("token %q is not base64url: %v", tok, err)
	}
	return len(raw)
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func jsonString(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

package webui

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/seal"
)

type value struct {
	A string    `json:"a"`
	X time.Time `json:"x"`
}

func testCookie(t *testing.T, sameSite http.SameSite) Cookie {
	t.Helper()
	ring, err := seal.New(seal.Key{ID: "t1", Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return Cookie{Name: "test", What: "test state", Keyring: ring, AAD: []byte("test cookie v1"), SameSite: sameSite}
}

// request builds a request to host from peer, over TLS when tls is set.
func request(host, peer string, useTLS bool, header http.Header) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host, r.RemoteAddr = host, peer
	if useTLS {
		r.TLS = &tls.ConnectionState{}
	}
	for k, v := range header {
		r.Header[k] = v
	}
	return r
}

// withCookies returns a request carrying the cookies rec set.
func withCookies(r *http.Request, rec *httptest.ResponseRecorder) *http.Request {
	r = r.Clone(r.Context())
	for _, c := range rec.Result().Cookies() {
		r.AddCookie(c)
	}
	return r
}

func TestCookieFlags(t *testing.T) {
	tests := []struct {
		name       string
		host, peer string
		tls        bool
		header     http.Header
		wantSecure bool
	}{
		{"https", "app.example.com", "192.0.2.1:1234", true, nil, true},
		{"plain http, public name", "app.example.com", "192.0.2.1:1234", false, nil, true},
		{"plain http, localhost from loopback", "localhost:8080", "127.0.0.1:5555", false, nil, false},
		{"plain http, 127.0.0.1 from loopback", "127.0.0.1:8080", "127.0.0.1:5555", false, nil, false},
		{"plain http, [::1] from mapped loopback", "[::1]:8080", "[::ffff:127.0.0.1]:5555", false, nil, false},
		{"plain http, localhost from afar", "localhost:8080", "192.0.2.1:1234", false, nil, true},
		{"through a proxy", "127.0.0.1:8080", "127.0.0.1:5555", false, http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"forwarded", "localhost", "127.0.0.1:5555", false, http.Header{"Forwarded": {"for=192.0.2.1"}}, true},
	}
	for _, tc := range tests {
		for _, ss := range []http.SameSite{http.SameSiteStrictMode, http.SameSiteLaxMode} {
			c := testCookie(t, ss)
			r := request(tc.host, tc.peer, tc.tls, tc.header)
			if got := Secure(r); got != tc.wantSecure {
				t.Errorf("%s: Secure = %v, want %v", tc.name, got, tc.wantSecure)
			}
			wantName := "test"
			if tc.wantSecure {
				wantName = "__Host-test"
			}
			expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			for _, exp := range []time.Time{{}, expires} {
				rec := httptest.NewRecorder()
				if err := c.Write(rec, r, value{A: "x"}, exp); err != nil {
					t.Fatal(err)
				}
				cks := rec.Result().Cookies()
				if len(cks) != 1 {
					t.Fatalf("%s: %d cookies set", tc.name, len(cks))
				}
				ck := cks[0]
				if ck.Name != wantName || ck.Secure != tc.wantSecure || !ck.HttpOnly || ck.SameSite != ss || ck.Path != "/" || ck.MaxAge != 0 || ck.Domain != "" {
					t.Errorf("%s: cookie %q, want name %s, Secure %v, HttpOnly, SameSite %v, Path /, no Max-Age or Domain",
						tc.name, rec.Header().Get("Set-Cookie"), wantName, tc.wantSecure, ss)
				}
				if !ck.Expires.Equal(exp) && !(exp.IsZero() && ck.RawExpires == "") {
					t.Errorf("%s: Expires %v, want %v", tc.name, ck.Expires, exp)
				}
			}

			rec := httptest.NewRecorder()
			c.Clear(rec, r)
			cks := rec.Result().Cookies()
			if len(cks) != 1 || cks[0].Name != wantName || cks[0].Value != "" || cks[0].MaxAge >= 0 ||
				cks[0].Secure != tc.wantSecure || !cks[0].HttpOnly || cks[0].SameSite != ss || cks[0].Path != "/" {
				t.Errorf("%s: clearing sets %q", tc.name, rec.Header().Values("Set-Cookie"))
			}
		}
	}
}

func TestCookieRoundTrip(t *testing.T) {
	c := testCookie(t, http.SameSiteStrictMode)
	r := request("app.example.com", "192.0.2.1:1234", true, nil)
	want := value{A: "session-id", X: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	rec := httptest.NewRecorder()
	if err := c.Write(rec, r, want, time.Time{}); err != nil {
		t.Fatal(err)
	}
	raw := rec.Result().Cookies()[0].Value
	if strings.Contains(raw, "session-id") {
		t.Errorf("cookie %q shows its value", raw)
	}
	var got value
	if !c.Read(withCookies(r, rec), &got) || got != want {
		t.Fatalf("Read = %+v, want %+v", got, want)
	}

	// The same cookie under its other name (plain http on localhost) is
	// not read: the __Host- prefix is part of the name.
	if c.Read(withCookies(request("localhost", "127.0.0.1:1", false, nil), rec), &got) {
		t.Error("a __Host- cookie was read by a request that expects the plain name")
	}
	// No cookie.
	if c.Read(r, &got) {
		t.Error("Read without a cookie reported true")
	}
}

func TestCookieRefusesTampering(t *testing.T) {
	c := testCookie(t, http.SameSiteLaxMode)
	r := request("app.example.com", "192.0.2.1:1234", true, nil)
	rec := httptest.NewRecorder()
	if err := c.Write(rec, r, value{A: "admin"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	good := rec.Result().Cookies()[0].Value
	sealed, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil {
		t.Fatal(err)
	}

	read := func(v string) bool {
		req := r.Clone(r.Context())
		req.AddCookie(&http.Cookie{Name: "__Host-test", Value: v})
		var got value
		return c.Read(req, &got)
	}
	if !read(good) {
		t.Fatal("the untouched cookie does not open")
	}
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		if read(base64.RawURLEncoding.EncodeToString(b)) {
			t.Fatalf("a cookie with byte %d flipped opened", i)
		}
	}
	if read(good[:len(good)-4]) {
		t.Error("a truncated cookie opened")
	}
	if read("not base64!") {
		t.Error("a cookie that is not base64 opened")
	}
	if read(strings.Repeat("A", maxCookieBytes+1)) {
		t.Error("an oversized cookie opened")
	}

	// A value sealed for another purpose (another AAD) under the same key
	// does not open.
	other := c
	other.AAD = []byte("another cookie v1")
	rec = httptest.NewRecorder()
	if err := other.Write(rec, r, value{A: "admin"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if read(rec.Result().Cookies()[0].Value) {
		t.Error("a cookie sealed with another AAD opened")
	}
}

func TestCookieTooLarge(t *testing.T) {
	c := testCookie(t, http.SameSiteLaxMode)
	r := request("app.example.com", "192.0.2.1:1234", true, nil)
	rec := httptest.NewRecorder()
	err := c.Write(rec, r, value{A: strings.Repeat("x", 4000)}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "test state is") {
		t.Fatalf("Write of a 4000-byte value: err %v, want too large", err)
	}
	if got := rec.Header().Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("a failed Write set %q", got)
	}
}

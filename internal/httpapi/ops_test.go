package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/apispec"
	"github.com/twostep-auth/twostep/internal/httpapi"
	"github.com/twostep-auth/twostep/internal/totp"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		for _, path := range []string{"/healthz", "/readyz"} {
			r := e.get(path, "")
			mustStatus(t, path, r, http.StatusOK)
			if s := r.Str(t, "status"); s != "ok" {
				t.Errorf("%s status = %q, want ok", path, s)
			}
		}

		down := newEnv(t, engine, withOptions(func(o *httpapi.Options) {
			o.Ready = func(context.Context) error { return errors.New("database unreachable") }
		}))
		mustStatus(t, "/healthz while not ready", down.get("/healthz", ""), http.StatusOK)
		r := down.do(request{method: http.MethodGet, path: "/readyz", allow5xx: true})
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("/readyz while the database is down = %d %s, want 503", r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "unreachable") {
			t.Errorf("/readyz = %s, want no internal error text", r.Body)
		}

		// A real database that is closed is not ready either.
		closed := newEnv(t, engine)
		if err := closed.db.Close(); err != nil {
			t.Fatal(err)
		}
		if r := closed.do(request{method: http.MethodGet, path: "/readyz", allow5xx: true}); r.Status != http.StatusServiceUnavailable {
			t.Errorf("/readyz with a closed database = %d, want 503", r.Status)
		}
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		e.register("ada@example.com")
		mustErr(t, "wrong password", e.post("/authentication/local", "", wrongPw("ada@example.com")), http.StatusUnauthorized, "invalid_credentials")
		e.login("ada@example.com", testPassword)
		e.do(request{method: http.MethodGet, path: "/no/such/path-12345"})

		r := e.get("/metrics", "")
		mustStatus(t, "metrics", r, http.StatusOK)
		body := string(r.Body)
		for _, want := range []string{
			`twostep_http_requests_total{method="POST",route="POST /authentication/local",status="401"} 1`,
			`twostep_http_requests_total{method="POST",route="POST /authentication/local",status="200"} 1`,
			`twostep_http_requests_total{method="POST",route="POST /authentication/local/new",status="201"} 1`,
			`twostep_http_request_duration_seconds_bucket{route="POST /authentication/local",le="+Inf"} 2`,
			`twostep_http_request_duration_seconds_count{route="POST /authentication/local"} 2`,
			`twostep_logins_total{outcome="invalid_credentials",step="password"} 1`,
			`twostep_logins_total{outcome="succeeded",step="password"} 1`,
		} {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("metrics lack %s", want)
			}
		}
		// Unknown paths do not become label values (unbounded cardinality).
		if strings.Contains(body, "path-12345") {
			t.Errorf("metrics name an unknown request path as a label")
		}
	})
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	r := e.get("/openapi.json", "")
	mustStatus(t, "openapi.json", r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("openapi.json Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(r.Body, apispec.Document()) {
		t.Errorf("openapi.json is not the embedded document")
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	for _, p := range []string{"/authentication/local/new", "/authentication/local", "/authentication/renew", "/authentication/logout", "/authentication/user", "/healthz", "/readyz", "/metrics", "/openapi.json", "/.well-known/jwks.json"} {
		if doc.Paths[p] == nil {
			t.Errorf("openapi.json lacks %s", p)
		}
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, _ := e.signup("ada@example.com")
		kid := jwtHeader(t, access)["kid"].(string)

		r := e.get("/.well-known/jwks.json", "")
		mustStatus(t, "jwks", r, http.StatusOK)
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Fatalf("jwks is not JSON: %v", err)
		}
		var key map[string]any
		for _, k := range doc.Keys {
			if _, ok := k["d"]; ok {
				t.Fatalf("jwks publishes a private key: %v", k)
			}
			if k["kid"] == kid {
				key = k
			}
		}
		if key == nil {
			t.Fatalf("jwks %s has no key with the token's kid %q", r.Body, kid)
		}
		if key["kty"] != "OKP" || key["crv"] != "Ed25519" {
			t.Errorf("jwks key = %v, want kty OKP, crv Ed25519", key)
		}
		pub, err := base64.RawURLEncoding.DecodeString(key["x"].(string))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("jwks x = %v: %v", key["x"], err)
		}
		parts := strings.Split(access, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Errorf("the published key does not verify the token it names")
		}

		etag := r.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("jwks has no ETag")
		}
		nm := e.do(request{method: http.MethodGet, path: "/.well-known/jwks.json", header: http.Header{"If-None-Match": {etag}}})
		if nm.Status != http.StatusNotModified || len(nm.Body) != 0 {
			t.Errorf("jwks with If-None-Match: current ETag = %d %q, want 304 without a body", nm.Status, nm.Body)
		}
		other := e.do(request{method: http.MethodGet, path: "/.well-known/jwks.json", header: http.Header{"If-None-Match": {`"stale"`}}})
		if other.Status != http.StatusOK || !bytes.Equal(other.Body, r.Body) {
			t.Errorf("jwks with a stale ETag = %d, want 200 and the document", other.Status)
		}
	})
}

// bodyRoute is an operation that reads a JSON body, and the string
// fields it reads.
type bodyRoute struct {
	method, path string
	auth         string // "", "access" or "challenge"
	fields       []string
	optional     bool // an empty body is allowed
}

var bodyRoutes = []bodyRoute{
	{http.MethodPost, "/authentication/local/new", "", []string{"email", "password", "username", "phone"}, false},
	{http.MethodPost, "/authentication/local", "", []string{"email", "username", "password"}, false},
	{http.MethodPost, "/authentication/renew", "", []string{"refreshToken"}, false},
	{http.MethodPost, "/authentication/twoFa/enable", "access", []string{"method", "phone", "phoneNumber", "label", "code"}, false},
	{http.MethodPut, "/authentication/twoFa/enable", "access", []string{"method", "phone", "phoneNumber", "label", "code"}, false},
	{http.MethodPost, "/authentication/twoFa/enable/verify", "access", []string{"code", "method"}, false},
	{http.MethodPost, "/authentication/twoFa/authorize", "challenge", []string{"method"}, true},
	{http.MethodPost, "/authentication/twoFa/authorize", "access", []string{"method"}, true},
	{http.MethodPost, "/authentication/twoFa/verify", "challenge", []string{"code", "method"}, false},
	{http.MethodPost, "/authentication/twoFa/verify", "access", []string{"code", "method"}, false},
	{http.MethodPost, "/authentication/twoFa/recover", "challenge", []string{"code"}, false},
	{http.MethodPost, "/authentication/twoFa/backup-codes", "access", []string{"code"}, true},
	{http.MethodPost, "/authentication/twoFa/disable", "access", []string{"method", "code"}, true},
	{http.MethodPut, "/authentication/twoFa/disable", "access", []string{"method", "code"}, true},
}

type badBody struct {
	name        string
	body        string
	contentType string // "" means application/json
	status      int
}

func badBodies(rt bodyRoute) []badBody {
	bb := []badBody{
		{"not JSON", "hello", "", 400},
		{"truncated", `{"` + rt.fields[0] + `":"x`, "", 400},
		{"JSON array", `[{"` + rt.fields[0] + `":"x"}]`, "", 400},
		{"JSON string", `"x"`, "", 400},
		{"JSON number", `42`, "", 400},
		{"JSON null", `null`, "", 400},
		{"JSON true", `true`, "", 400},
		{"trailing garbage", `{"` + rt.fields[0] + `":"x"} garbage`, "", 400},
		{"two objects", `{}{}`, "", 400},
		{"bad escape", `{"` + rt.fields[0] + `":"\x"}`, "", 400},
		{"deep nesting", `{"z":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "", 400},
		{"1 MiB", `{"` + rt.fields[0] + `":"` + strings.Repeat("a", 1<<20) + `"}`, "", 413},
		{"text/plain", `{}`, "text/plain", 415},
		{"form", rt.fields[0] + "=x", "application/x-www-form-urlencoded", 415},
		{"bad content type", `{}`, ";;;", 415},
	}
	if !rt.optional {
		bb = append(bb, badBody{"empty", "", "", 400}, badBody{"whitespace", " \n", "", 400})
	}
	for _, f := range rt.fields {
		for kind, v := range map[string]string{"number": "12345", "object": `{"a":"b"}`, "array": `["x"]`, "bool": "true", "float": "1e999"} {
			bb = append(bb, badBody{f + " as " + kind, `{"` + f + `":` + v + `}`, "", 400})
		}
	}
	return bb
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, refresh := e.signup("ada@example.com")
		e.register("bob@example.com")
		pw := e.register("carol@example.com")
		carol := e.login("carol@example.com", pw)
		secret := e.enableAuthenticator(carol["accessToken"].(string))
		e.clock.Advance(30 * time.Second) // the enrolment's code is used up
		r := e.post("/authentication/local", "", map[string]any{"email": "carol@example.com", "password": pw})
		mustStatus(t, "carol's login", r, http.StatusOK)
		challenge := r.Str(t, "challengeToken")
		tokens := map[string]string{"access": access, "challenge": challenge}

		before := e.snapshot()
		for _, rt := range bodyRoutes {
			for _, bb := range badBodies(rt) {
				what := rt.method + " " + rt.path + " (" + rt.auth + ") with " + bb.name
				hdr := http.Header{}
				if bb.contentType != "" {
					hdr.Set("Content-Type", bb.contentType)
				}
				r := e.do(request{method: rt.method, path: rt.path, token: tokens[rt.auth], body: bb.body, header: hdr})
				if bb.body == "" {
					// do sends no Content-Type without a body; an empty
					// JSON body is still no JSON object.
					r = e.do(request{method: rt.method, path: rt.path, token: tokens[rt.auth], body: []byte{}, header: http.Header{"Content-Type": {"application/json"}}})
				}
				code := "invalid_request"
				if r.Status != bb.status || r.ErrCode(t) != code {
					t.Errorf("%s = %d %.200s, want %d %s", what, r.Status, r.Body, bb.status, code)
				}
			}
		}
		// Logout reads no body: whatever is sent, without a token it is 401.
		for _, bb := range badBodies(bodyRoutes[0]) {
			r := e.do(request{method: http.MethodPost, path: "/authentication/logout", body: bb.body})
			mustErr(t, "logout without a token, with "+bb.name, r, http.StatusUnauthorized, "unauthorized")
		}
		if after := e.snapshot(); !equalCounts(before, after) {
			t.Errorf("bad requests changed stored rows: before %v, after %v", before, after)
		}

		// Nothing was used up: the session renews, the challenge completes.
		mustStatus(t, "user after bad input", e.get("/authentication/user", access), http.StatusOK)
		mustStatus(t, "renew after bad input", e.post("/authentication/renew", "", map[string]any{"refreshToken": refresh}), http.StatusOK)
		r = e.post("/authentication/twoFa/verify", challenge, map[string]any{"code": totp.Code(secret, e.clock.Now(), totp.Options{})})
		mustStatus(t, "challenge after bad input", r, http.StatusOK)
	})
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestBadInputEveryDocumentedOperation sends broken bodies to every
// operation of the OpenAPI document that takes one, with a token of each
// kind: whatever the route, the answer is a 4xx JSON error and nothing is
// stored.
func TestBadInputEveryDocumentedOperation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		access, _ := e.signup("ada@example.com")
		challenge := e.loginChallenge("carol@example.com")
		var doc struct {
			Paths map[string]map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(apispec.Document(), &doc); err != nil {
			t.Fatal(err)
		}
		param := regexp.MustCompile(`\{[^}]+\}`)
		before := e.snapshot()
		n := 0
		for path, item := range doc.Paths {
			for method, raw := range item {
				var op struct {
					RequestBody json.RawMessage `json:"requestBody"`
				}
				if json.Unmarshal(raw, &op) != nil || op.RequestBody == nil {
					continue
				}
				p := param.ReplaceAllString(path, "x")
				if !e.routed(strings.ToUpper(method), p) {
					continue // documented for a later issue
				}
				n++
				for _, tok := range []string{"", access, challenge} {
					for _, body := range []string{"nope", "[]", `{"a":1} x`, `{"code":1,"email":1,"phone":1,"refreshToken":1,"method":1,"query":1,"twoFa":1}`, strings.Repeat("x", 1<<20)} {
						r := e.do(request{method: strings.ToUpper(method), path: p, token: tok, body: body})
						if r.Status < 400 || r.Status >= 500 {
							t.Errorf("%s %s with %.20q = %d %.200s, want a 4xx", method, p, body, r.Status, r.Body)
							continue
						}
						var eb errorShape
						if json.Unmarshal(r.Body, &eb) != nil || eb.Error.Code == "" {
							t.Errorf("%s %s with %.20q = %d %.200s, want a JSON error", method, p, body, r.Status, r.Body)
						}
					}
				}
			}
		}
		if n < 10 {
			t.Fatalf("found %d operations with a body in the document, want the contract's", n)
		}
		if after := e.snapshot(); !equalCounts(before, after) {
			t.Errorf("bad requests changed stored rows: before %v, after %v", before, after)
		}
	})
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	access, _ := e.signup("ada@example.com")
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/", 404},
		{http.MethodGet, "/nope", 404},
		{http.MethodPost, "/authentication/nope", 404},
		{http.MethodGet, "/authentication/user/", 404},
		{http.MethodGet, "/authentication/local/new/extra", 404},
		{http.MethodGet, "/Authentication/User", 404},
		{http.MethodGet, "/authentication/local", 405},
		{http.MethodGet, "/authentication/local/new", 405},
		{http.MethodPut, "/authentication/renew", 405},
		{http.MethodDelete, "/authentication/user", 405},
		{http.MethodPost, "/authentication/user", 405},
		{http.MethodPost, "/healthz", 405},
		{http.MethodDelete, "/.well-known/jwks.json", 405},
		{http.MethodPatch, "/authentication/twoFa/enable", 405},
	} {
		for _, tok := range []string{"", access} {
			r := e.do(request{method: tt.method, path: tt.path, token: tok, body: map[string]any{"email": "x@example.com", "password": testPassword}})
			if r.Status != tt.status {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, r.Status, r.Body, tt.status)
			}
		}
	}
	if n := e.countRows("users"); n != 1 {
		t.Errorf("users after unknown routes = %d, want 1", n)
	}
}

// routed reports whether the server has a route for method and path (the
// document may list operations of later issues).
func (e *env) routed(method, path string) bool {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	var eb errorShape
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	return !(rec.Code == http.StatusNotFound && eb.Error.Code == "not_found" && eb.Error.Message == "No such endpoint")
}

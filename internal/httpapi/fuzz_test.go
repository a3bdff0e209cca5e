package httpapi_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/twostep-auth/twostep/internal/sqlstore"
)

// FuzzRequestDecoding sends arbitrary bodies to the endpoints that decode
// JSON before any token is checked: whatever arrives, the answer is below
// 500, matches the OpenAPI document (env.do checks), and a 4xx is a JSON
// error. Seeds are in testdata/fuzz/FuzzRequestDecoding.
func FuzzRequestDecoding(f *testing.F) {
	e := newEnv(f, sqlstore.EngineSQLite)
	f.Add([]byte(`{"email":"ada@example.com","password":"correct horse battery"}`))
	f.Add([]byte(`{"refreshToken":"x","code":"123456","method":"authenticator"}`))

	// The accounts and the challenge are made on the first iteration, which
	// has a *testing.T for the helpers.
	var once sync.Once
	var challenge, access string
	f.Fuzz(func(t *testing.T, body []byte) {
		e := e.withT(t)
		once.Do(func() {
			challenge = e.loginChallenge("fuzz-2fa@example.com")
			access, _ = e.signup("fuzz@example.com")
		})
		for _, rq := range []request{
			{method: http.MethodPost, path: "/authentication/local/new"},
			{method: http.MethodPost, path: "/authentication/local"},
			{method: http.MethodPost, path: "/authentication/renew"},
			{method: http.MethodPost, path: "/authentication/twoFa/verify", token: challenge},
			{method: http.MethodPost, path: "/authentication/twoFa/verify", token: access},
		} {
			rq.body = body
			r := e.do(rq) // fails on a 5xx or an answer the document does not allow
			if r.Status >= 400 && r.Status < 500 {
				var eb errorShape
				if err := json.Unmarshal(r.Body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
					t.Errorf("%s %s with %q = %d %s, want a JSON error", rq.method, rq.path, body, r.Status, r.Body)
				}
			}
		}
	})
}

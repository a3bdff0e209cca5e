package apispec_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/apispec"
)

// contractOperations is every endpoint in shared/api.md, written out from
// its tables (Accounts, Two-factor authentication under
// /authentication/twoFa, Administration, Operations).
var contractOperations = []string{
	// Accounts
	"POST /authentication/local/new",
	"POST /authentication/local",
	"POST /authentication/renew",
	"POST /authentication/logout",
	"GET /authentication/user",
	"PUT /authentication/user/phone",
	"POST /authentication/user/phone/verify",
	"POST /authentication/phone/new",
	"POST /authentication/phone",
	"POST /authentication/phone/verify",
	// Hosted pages (issue 8): the server-side exchange of /login's one-time
	// code, beyond api.md's tables.
	"POST /authentication/exchange",
	// Two-factor authentication
	"GET /authentication/twoFa",
	"PUT /authentication/twoFa/enable",
	"POST /authentication/twoFa/enable",
	"POST /authentication/twoFa/enable/verify",
	"POST /authentication/twoFa/authorize",
	"POST /authentication/twoFa/verify",
	"GET /authentication/twoFa/generate",
	"POST /authentication/twoFa/backup-codes",
	"POST /authentication/twoFa/recover",
	"PUT /authentication/twoFa/disable",
	"POST /authentication/twoFa/disable",
	// Administration
	"GET /admin/settings",
	"PUT /admin/settings",
	"GET /admin/users",
	"GET /admin/users/{id}",
	"POST /admin/users/{id}/twoFa/reset",
	"POST /admin/users/{id}/sessions/revoke",
	"POST /admin/users/{id}/disable",
	"POST /admin/users/{id}/enable",
	"GET /admin/audit",
	// Operations
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /openapi.json",
	"GET /.well-known/jwks.json",
}

// operationsWithoutInput take no input and no credentials, so no 4xx answer
// of theirs could be honest: they are exempt from the error-response rule.
var operationsWithoutInput = []string{
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /openapi.json",
	"GET /.well-known/jwks.json",
}

func parseDocument(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(apispec.Document(), &doc); err != nil {
		t.Fatalf("Document() is not JSON: %v", err)
	}
	return doc
}

// documentOperations lists "METHOD /path" for every operation in doc.
func documentOperations(doc map[string]any) map[string]map[string]any {
	ops := map[string]map[string]any{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops[strings.ToUpper(method)+" "+path] = op.(map[string]any)
			}
		}
	}
	return ops
}

func newValidator(t *testing.T) *apispec.Validator {
	t.Helper()
	v, err := apispec.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator() = %v", err)
	}
	return v
}

func TestDocumentIsOpenAPI31(t *testing.T) {
	raw := apispec.Document()
	if !json.Valid(raw) {
		t.Fatal("Document() is not valid JSON")
	}
	doc := parseDocument(t)
	if v, _ := doc["openapi"].(string); !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}

	// An independent implementation checks the document's structure:
	// operations, responses, references, security schemes, examples.
	loader := openapi3.NewLoader()
	loaded, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("kin-openapi LoadFromData = %v", err)
	}
	if !loaded.IsOpenAPI31OrLater() {
		t.Errorf("kin-openapi IsOpenAPI31OrLater() = false, want true")
	}
	if err := loaded.Validate(context.Background()); err != nil {
		t.Errorf("kin-openapi Validate = %v", err)
	}
}

func TestDocumentReturnsCopy(t *testing.T) {
	a := apispec.Document()
	a[0] = 'x'
	if b := apispec.Document(); b[0] != '{' {
		t.Errorf("Document()[0] = %q after changing an earlier result, want '{'", b[0])
	}
}

func TestDocumentListsExactlyTheContract(t *testing.T) {
	doc := parseDocument(t)
	var got []string
	for op := range documentOperations(doc) {
		got = append(got, op)
	}
	want := slices.Clone(contractOperations)
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("operations in the document (-contract +document):\n%s", diff)
	}
}

func TestErrorCodes(t *testing.T) {
	doc := parseDocument(t)
	schema := doc["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)
	var got []string
	for _, c := range schema["enum"].([]any) {
		got = append(got, c.(string))
	}
	want := []string{"invalid_request", "invalid_credentials", "unauthorized", "invalid_code", "challenge_expired", "sudo_required", "forbidden", "enrollment_required", "not_found", "conflict", "invalid_phone", "rate_limited", "sms_unavailable", "internal_error", "unavailable"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ErrorCode enum (-want +got):\n%s", diff)
	}
}

// errorBody is a contract error body whose code fits status.
func errorBody(status int) ([]byte, http.Header) {
	code := map[int]string{
		400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
		409: "conflict", 413: "invalid_request", 415: "invalid_request", 429: "rate_limited",
		500: "internal_error", 503: "unavailable",
	}[status]
	h := http.Header{"Content-Type": {"application/json"}}
	if status == 429 {
		h.Set("Retry-After", "30")
	}
	return fmt.Appendf(nil, `{"error":{"code":%q,"message":"something"}}`, code), h
}

// concretePath fills a path template's parameters.
func concretePath(template string) string {
	return strings.ReplaceAll(template, "{id}", "0191f4d2-7c3a-7b7e-9a55-2b1f0c9d8e11")
}

func TestEveryOperationHasErrorResponses(t *testing.T) {
	doc := parseDocument(t)
	v := newValidator(t)
	for name, op := range documentOperations(doc) {
		method, template, _ := strings.Cut(name, " ")
		path := concretePath(template)
		responses := op["responses"].(map[string]any)
		fourxx := 0
		for status := range responses {
			var code int
			if _, err := fmt.Sscan(status, &code); err != nil {
				t.Errorf("%s: response key %q is not a status code", name, status)
				continue
			}
			if code < 400 || (name == "GET /readyz" && code == 503) {
				continue
			}
			if code < 500 {
				fourxx++
			}
			body, h := errorBody(code)
			if err := v.ValidateResponse(method, path, code, h, body); err != nil {
				t.Errorf("ValidateResponse(%s %d, error body) = %v, want nil", name, code, err)
			}
		}
		if fourxx == 0 && !slices.Contains(operationsWithoutInput, name) {
			t.Errorf("%s documents no 4xx error response", name)
		}
	}
}

// Example bodies, shaped as api.md shows them.
const (
	userJSON   = `{"id":"0191f4d2-7c3a-7b7e-9a55-2b1f0c9d8e11","email":"ada@example.com","username":"ada","phone":"+14155552671","phoneVerified":true,"twoFaEnabled":false,"roles":["user"],"createdAt":"2025-01-02T03:04:05Z"}`
	tokensJSON = `"accessToken":"eyJhbGciOiJFZERTQSJ9.e30.c2ln","refreshToken":"Zr8Jx2kq0y9Q3v5mX1bN7cT4pL6sW8aD0fG2hJ4kL6n","expiresIn":900,"tokenType":"Bearer"`
	backupJSON = `["7K3M-Q9TZ-0BX4-HN20","7K3M-Q9TZ-0BX4-HN21","7K3M-Q9TZ-0BX4-HN22","7K3M-Q9TZ-0BX4-HN23","7K3M-Q9TZ-0BX4-HN24","7K3M-Q9TZ-0BX4-HN25","7K3M-Q9TZ-0BX4-HN26","7K3M-Q9TZ-0BX4-HN27","7K3M-Q9TZ-0BX4-HN28","7K3M-Q9TZ-0BX4-HN29"]`
)

func jsonHeader() http.Header {
	return http.Header{"Content-Type": {"application/json; charset=utf-8"}}
}

func noStoreHeader() http.Header {
	h := jsonHeader()
	h.Set("Cache-Control", "no-store")
	return h
}

type responseCase struct {
	name   string
	method string
	path   string
	status int
	header http.Header
	body   string
}

func TestValidateResponseAccepts(t *testing.T) {
	v := newValidator(t)
	tests := []responseCase{
		{"login tokens", "POST", "/authentication/local", 200, noStoreHeader(),
			`{` + tokensJSON + `,"user":` + userJSON + `}`},
		{"login 2FA required", "POST", "/authentication/local", 200, noStoreHeader(),
			`{"message":"2FA required","twoFaRequired":true,"challengeToken":"q5H1vYx0aB3dE6gH9jK2mN","methods":["authenticator","sms","backup"],"expiresIn":300}`},
		{"login enrolment only", "POST", "/authentication/local", 200, noStoreHeader(),
			`{` + tokensJSON + `,"user":` + userJSON + `,"twoFaEnrollmentRequired":true}`},
		{"login wrong password", "POST", "/authentication/local", 401, jsonHeader(),
			`{"error":{"code":"invalid_credentials","message":"Invalid email or password"}}`},
		{"login throttled", "POST", "/authentication/local", 429,
			http.Header{"Content-Type": {"application/json"}, "Retry-After": {"8"}},
			`{"error":{"code":"rate_limited","message":"Too many attempts"}}`},
		{"register", "POST", "/authentication/local/new", 201, jsonHeader(),
			`{"user":{"id":"u1","email":"bob@example.com","username":null,"phone":null,"phoneVerified":false,"twoFaEnabled":false,"roles":["user"],"createdAt":"2025-01-02T03:04:05.123456789Z"}}`},
		{"register extra field", "POST", "/authentication/local/new", 201, jsonHeader(),
			`{"user":` + userJSON + `,"note":"extra fields are allowed"}`},
		{"renew", "POST", "/authentication/renew", 200, noStoreHeader(), `{` + tokensJSON + `}`},
		{"phone verify", "POST", "/authentication/phone/verify", 200, noStoreHeader(),
			`{` + tokensJSON + `,"user":` + userJSON + `}`},
		{"set phone", "PUT", "/authentication/user/phone", 200, jsonHeader(),
			`{"message":"Verification code sent","to":"+1******2671"}`},
		{"twoFa status", "GET", "/authentication/twoFa", 200, jsonHeader(),
			`{"enabled":true,"methods":[{"method":"authenticator","label":"Phone app","to":null,"createdAt":"2025-01-02T03:04:05Z","lastUsedAt":null},{"method":"sms","label":null,"to":"+44*******0123","createdAt":"2025-01-02T03:04:05Z","lastUsedAt":"2025-01-03T03:04:05Z"}],"backupCodesRemaining":10,"sudoUntil":"2025-01-03T03:14:05Z"}`},
		{"enable authenticator (PUT)", "PUT", "/authentication/twoFa/enable", 200, noStoreHeader(),
			`{"method":"authenticator","secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP","otpauthUrl":"otpauth://totp/twostep:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=twostep&algorithm=SHA1&digits=6&period=30","qrCode":"data:image/png;base64,iVBORw0KGgo=","result":"data:image/png;base64,iVBORw0KGgo="}`},
		{"enable authenticator (POST)", "POST", "/authentication/twoFa/enable", 200, noStoreHeader(),
			`{"method":"authenticator","secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP","otpauthUrl":"otpauth://totp/twostep:ada?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=twostep&algorithm=SHA1&digits=6&period=30","qrCode":"data:image/png;base64,iVBORw0KGgo=","result":"data:image/png;base64,iVBORw0KGgo="}`},
		{"enable sms", "POST", "/authentication/twoFa/enable", 200, noStoreHeader(),
			`{"method":"sms","message":"Verification code sent","to":"+1******2671"}`},
		{"enable verify", "POST", "/authentication/twoFa/enable/verify", 200, noStoreHeader(),
			`{"message":"2FA enabled","method":"authenticator","backupCodes":` + backupJSON + `}`},
		{"authorize sms", "POST", "/authentication/twoFa/authorize", 200, jsonHeader(),
			`{"method":"sms","message":"A verification code has been sent to +1******2671","retryAfter":30}`},
		{"authorize authenticator", "POST", "/authentication/twoFa/authorize", 200, jsonHeader(),
			`{"method":"authenticator","message":"Check your authenticator app for the code"}`},
		{"verify", "POST", "/authentication/twoFa/verify", 200, noStoreHeader(), `{` + tokensJSON + `}`},
		{"challenge expired", "POST", "/authentication/twoFa/verify", 401, jsonHeader(),
			`{"error":{"code":"challenge_expired","message":"Log in again"}}`},
		{"backup codes", "GET", "/authentication/twoFa/generate", 200, noStoreHeader(),
			`{"codes":` + backupJSON + `,"backupCodes":` + backupJSON + `}`},
		{"recover", "POST", "/authentication/twoFa/recover", 200, noStoreHeader(),
			`{` + tokensJSON + `,"message":"You have 9 back up codes left","remaining":9}`},
		{"disable", "PUT", "/authentication/twoFa/disable", 200, jsonHeader(), `{"message":"2FA disabled"}`},
		{"settings", "GET", "/admin/settings", 200, jsonHeader(),
			`{"twoFa":{"enabled":true,"methods":{"authenticator":true,"sms":true,"call":true},"backupCodes":{"enabled":true},"requiredForRoles":["admin"],"sudoMinutes":10}}`},
		{"users page", "GET", "/admin/users?query=ada&limit=10", 200, jsonHeader(),
			`{"users":[` + userJSON + `],"nextCursor":null}`},
		{"admin user", "GET", "/admin/users/u1", 200, jsonHeader(),
			`{"user":` + userJSON + `,"twoFa":{"enabled":false,"methods":[],"backupCodesRemaining":0,"sudoUntil":null}}`},
		{"admin user unknown", "GET", "/admin/users/nope", 404, jsonHeader(),
			`{"error":{"code":"not_found","message":"No such user"}}`},
		{"audit list", "GET", "/admin/audit?type=login.failed&limit=2", 200, jsonHeader(),
			`{"events":[{"id":"e2","time":"2025-01-02T03:04:06Z","type":"twofa.enabled","userId":"u1","actorId":null,"ip":"203.0.113.7","userAgent":"curl/8.0","detail":{"method":"authenticator"}},{"id":"e1","time":"2025-01-02T03:04:05Z","type":"login.failed","userId":null,"actorId":null,"ip":"2001:db8::1","userAgent":null,"detail":null}]}`},
		{"audit list empty", "GET", "/admin/audit", 200, jsonHeader(), `{"events":[]}`},
		{"enrolment required", "GET", "/authentication/user", 403, jsonHeader(),
			`{"error":{"code":"enrollment_required","message":"Set up two-factor authentication first"}}`},
		{"jwks", "GET", "/.well-known/jwks.json", 200, jsonHeader(),
			`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"2025-01-k1","alg":"EdDSA","use":"sig"}]}`},
		{"jwks not modified", "GET", "/.well-known/jwks.json", 304, http.Header{"Etag": {`"k1"`}}, ``},
		{"healthz", "GET", "/healthz", 200, jsonHeader(), `{"status":"ok"}`},
		{"readyz down", "GET", "/readyz", 503, jsonHeader(), `{"status":"unavailable","checks":{"database":"ok","redis":"error"}}`},
		{"metrics", "GET", "/metrics", 200,
			http.Header{"Content-Type": {"text/plain; version=0.0.4; charset=utf-8; escaping=underscores"}},
			"# HELP up 1\nup 1\n"},
		{"openapi", "GET", "/openapi.json", 200, jsonHeader(), string(apispec.Document())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := v.ValidateResponse(tt.method, tt.path, tt.status, tt.header, []byte(tt.body)); err != nil {
				t.Errorf("ValidateResponse(%s %s %d) = %v, want nil", tt.method, tt.path, tt.status, err)
			}
		})
	}
}

func TestValidateResponseRejects(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		responseCase
		want error
	}{
		{responseCase{"tokens without refreshToken", "POST", "/authentication/renew", 200, noStoreHeader(),
			`{"accessToken":"a.b.c","expiresIn":900,"tokenType":"Bearer"}`}, apispec.ErrMismatch},
		{responseCase{"expiresIn as a string", "POST", "/authentication/renew", 200, noStoreHeader(),
			`{"accessToken":"a.b.c","refreshToken":"r","expiresIn":"900","tokenType":"Bearer"}`}, apispec.ErrMismatch},
		{responseCase{"expiresIn as a string in a login answer", "POST", "/authentication/local", 200, noStoreHeader(),
			`{"accessToken":"a.b.c","refreshToken":"r","expiresIn":"900","tokenType":"Bearer","user":` + userJSON + `}`}, apispec.ErrMismatch},
		{responseCase{"tokenType not Bearer", "POST", "/authentication/renew", 200, noStoreHeader(),
			`{"accessToken":"a.b.c","refreshToken":"r","expiresIn":900,"tokenType":"bearer"}`}, apispec.ErrMismatch},
		{responseCase{"tokens without Cache-Control", "POST", "/authentication/renew", 200, jsonHeader(),
			`{` + tokensJSON + `}`}, apispec.ErrMismatch},
		{responseCase{"2FA answer without challengeToken", "POST", "/authentication/local", 200, noStoreHeader(),
			`{"message":"2FA required","twoFaRequired":true,"methods":["authenticator"],"expiresIn":300}`}, apispec.ErrMismatch},
		{responseCase{"error with an unknown code", "POST", "/authentication/local", 401, jsonHeader(),
			`{"error":{"code":"wrong_password","message":"no"}}`}, apispec.ErrMismatch},
		{responseCase{"error code that does not fit the status", "POST", "/authentication/local", 401, jsonHeader(),
			`{"error":{"code":"not_found","message":"no"}}`}, apispec.ErrMismatch},
		{responseCase{"error without message", "POST", "/authentication/local", 400, jsonHeader(),
			`{"error":{"code":"invalid_request"}}`}, apispec.ErrMismatch},
		{responseCase{"429 without Retry-After", "POST", "/authentication/local", 429, jsonHeader(),
			`{"error":{"code":"rate_limited","message":"slow down"}}`}, apispec.ErrMismatch},
		{responseCase{"Retry-After not in seconds", "POST", "/authentication/local", 429,
			http.Header{"Content-Type": {"application/json"}, "Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}},
			`{"error":{"code":"rate_limited","message":"slow down"}}`}, apispec.ErrMismatch},
		{responseCase{"undocumented status", "POST", "/authentication/local", 418, jsonHeader(),
			`{"error":{"code":"invalid_request","message":"teapot"}}`}, apispec.ErrUndocumentedStatus},
		{responseCase{"404 on healthz", "GET", "/healthz", 404, jsonHeader(),
			`{"error":{"code":"not_found","message":"no"}}`}, apispec.ErrUndocumentedStatus},
		{responseCase{"unknown path", "GET", "/authentication/nope", 200, jsonHeader(), `{}`}, apispec.ErrUnknownPath},
		{responseCase{"unknown nested path", "GET", "/admin/users/u1/extra", 200, jsonHeader(), `{}`}, apispec.ErrUnknownPath},
		{responseCase{"unknown method", "DELETE", "/authentication/user", 200, jsonHeader(), `{}`}, apispec.ErrUnknownMethod},
		{responseCase{"user without email key", "GET", "/authentication/user", 200, jsonHeader(),
			`{"user":{"id":"u1","username":null,"phone":null,"phoneVerified":false,"twoFaEnabled":false,"roles":[],"createdAt":"2025-01-02T03:04:05Z"}}`}, apispec.ErrMismatch},
		{responseCase{"user createdAt not a time", "GET", "/authentication/user", 200, jsonHeader(),
			`{"user":{"id":"u1","email":null,"username":"x","phone":null,"phoneVerified":false,"twoFaEnabled":false,"roles":[],"createdAt":"yesterday"}}`}, apispec.ErrMismatch},
		{responseCase{"unmasked phone in to", "PUT", "/authentication/user/phone", 200, jsonHeader(),
			`{"message":"Verification code sent","to":"+14155552671"}`}, apispec.ErrMismatch},
		{responseCase{"nine backup codes", "POST", "/authentication/twoFa/backup-codes", 200, noStoreHeader(),
			`{"codes":["7K3M-Q9TZ-0BX4-HN20"],"backupCodes":["7K3M-Q9TZ-0BX4-HN20"]}`}, apispec.ErrMismatch},
		{responseCase{"secret in the wrong alphabet", "PUT", "/authentication/twoFa/enable", 200, noStoreHeader(),
			`{"method":"authenticator","secret":"jbswy3dpehpk3pxpjbswy3dpehpk3pxp","otpauthUrl":"otpauth://totp/x","qrCode":"data:image/png;base64,AA==","result":"data:image/png;base64,AA=="}`}, apispec.ErrMismatch},
		{responseCase{"JWK with a private key", "GET", "/.well-known/jwks.json", 200, jsonHeader(),
			`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","kid":"k1"}]}`}, apispec.ErrMismatch},
		{responseCase{"audit event with unknown shape", "GET", "/admin/audit", 200, jsonHeader(),
			`{"events":[{"id":"e1","time":"2025-01-02T03:04:05Z","type":"Login Failed","userId":null,"actorId":null,"ip":null,"userAgent":null,"detail":null}]}`}, apispec.ErrMismatch},
		{responseCase{"not JSON", "GET", "/authentication/user", 200, jsonHeader(), `{"user":`}, apispec.ErrMismatch},
		{responseCase{"wrong content type", "GET", "/authentication/user", 200,
			http.Header{"Content-Type": {"text/html"}}, `{"user":` + userJSON + `}`}, apispec.ErrMismatch},
		{responseCase{"empty body", "GET", "/authentication/user", 200, jsonHeader(), ``}, apispec.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.ValidateResponse(tt.method, tt.path, tt.status, tt.header, []byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Errorf("ValidateResponse(%s %s %d) = %v, want %v", tt.method, tt.path, tt.status, err, tt.want)
			}
		})
	}
}

func TestValidateRequest(t *testing.T) {
	v := newValidator(t)
	bearer := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer eyJ.e30.sig"}}
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		body   string
		want   error // nil: accepted
	}{
		{"login by email", "POST", "/authentication/local", jsonHeader(), `{"email":"ada@example.com","password":"correct horse"}`, nil},
		{"login by username", "POST", "/authentication/local", jsonHeader(), `{"username":"ada","password":"correct horse"}`, nil},
		{"login without identity", "POST", "/authentication/local", jsonHeader(), `{"password":"correct horse"}`, apispec.ErrMismatch},
		{"login password of the wrong type", "POST", "/authentication/local", jsonHeader(), `{"email":"a@b.c","password":123}`, apispec.ErrMismatch},
		{"login without body", "POST", "/authentication/local", jsonHeader(), ``, apispec.ErrMismatch},
		{"register", "POST", "/authentication/local/new", jsonHeader(), `{"email":"ada@example.com","password":"correct horse","phone":"+1 (415) 555-2671"}`, nil},
		{"enable authenticator", "PUT", "/authentication/twoFa/enable", bearer, `{"method":"authenticator"}`, nil},
		{"enable sms with phoneNumber", "POST", "/authentication/twoFa/enable", bearer, `{"method":"sms","phoneNumber":"+14155552671"}`, nil},
		{"enable unknown method", "POST", "/authentication/twoFa/enable", bearer, `{"method":"email"}`, apispec.ErrMismatch},
		{"enable without token", "PUT", "/authentication/twoFa/enable", jsonHeader(), `{"method":"authenticator"}`, apispec.ErrMismatch},
		{"verify code as a number", "POST", "/authentication/twoFa/verify", bearer, `{"code":123456}`, apispec.ErrMismatch},
		{"authorize without body", "POST", "/authentication/twoFa/authorize", bearer, ``, nil},
		{"disable without body", "PUT", "/authentication/twoFa/disable", bearer, ``, nil},
		{"logout", "POST", "/authentication/logout", bearer, ``, nil},
		{"logout with a body", "POST", "/authentication/logout", bearer, `{"all":true}`, apispec.ErrMismatch},
		{"user", "GET", "/authentication/user", bearer, ``, nil},
		{"users with empty parameters", "GET", "/admin/users?query=&limit=&cursor=", bearer, ``, nil},
		{"users with a limit", "GET", "/admin/users?limit=20", bearer, ``, nil},
		{"users with a bad limit", "GET", "/admin/users?limit=many", bearer, ``, apispec.ErrMismatch},
		{"users with a limit too large", "GET", "/admin/users?limit=1000", bearer, ``, apispec.ErrMismatch},
		{"audit since", "GET", "/admin/audit?since=2025-01-02T03:04:05Z&type=twofa.locked", bearer, ``, nil},
		{"audit since not a time", "GET", "/admin/audit?since=yesterday", bearer, ``, apispec.ErrMismatch},
		{"reset", "POST", "/admin/users/u1/twoFa/reset", bearer, ``, nil},
		{"unknown path", "POST", "/authentication/twoFa/nope", bearer, `{}`, apispec.ErrUnknownPath},
		{"unknown method", "DELETE", "/admin/users/u1", bearer, ``, apispec.ErrUnknownMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.ValidateRequest(tt.method, tt.path, tt.header, []byte(tt.body))
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("ValidateRequest(%s %s) = %v, want %v", tt.method, tt.path, err, tt.want)
			}
		})
	}
}

func TestValidatorConcurrentUse(t *testing.T) {
	v := newValidator(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if err := v.ValidateResponse("POST", "/authentication/renew", 200, noStoreHeader(), []byte(`{`+tokensJSON+`}`)); err != nil {
					t.Errorf("ValidateResponse(renew) = %v, want nil", err)
					return
				}
				if err := v.ValidateResponse("GET", "/admin/users/u1", 200, jsonHeader(), []byte(`{}`)); !errors.Is(err, apispec.ErrMismatch) {
					t.Errorf("ValidateResponse(admin user {}) = %v, want ErrMismatch", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

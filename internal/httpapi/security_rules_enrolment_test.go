package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twostep-auth/twostep/internal/apispec"
	"github.com/twostep-auth/twostep/internal/auth"
)

// TestSecurityRulesEnrollmentOnlyEveryEndpoint: "In the enrolment-required
// state only GET /twoFa, /twoFa/enable, /twoFa/enable/verify and
// /authentication/logout work; everything else answers 403
// enrollment_required." Every operation the OpenAPI document lists as
// taking an access token is tried with an enrolment-only token and a body
// that would otherwise be worth acting on; none may act.
func TestSecurityRulesEnrollmentOnlyEveryEndpoint(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine)
		pw := "correct horse battery"
		if _, err := e.svc.Register(context.Background(), auth.RegisterInput{Email: "root@example.com", Password: pw, Roles: []string{auth.RoleAdmin}}, auth.RequestMeta{}); err != nil {
			t.Fatal(err)
		}
		e.register("victim@example.com")
		victimID := jwtClaims(t, e.login("victim@example.com", pw)["accessToken"].(string))["sub"].(string)

		r := e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": "root@example.com", "password": pw})
		mustStatus(t, "first admin login", r, http.StatusOK)
		m := r.JSON(t)
		if m["twoFaEnrollmentRequired"] != true {
			t.Fatalf("first admin login = %s, want twoFaEnrollmentRequired", r.Body)
		}
		access := m["accessToken"].(string)

		var doc struct {
			Paths map[string]map[string]struct {
				Security []map[string]any `json:"security"`
			} `json:"paths"`
		}
		if err := json.Unmarshal(apispec.Document(), &doc); err != nil {
			t.Fatal(err)
		}
		allowed := []string{
			"GET /authentication/twoFa",
			"PUT /authentication/twoFa/enable", "POST /authentication/twoFa/enable",
			"POST /authentication/twoFa/enable/verify",
			"POST /authentication/logout",
		}
		param := regexp.MustCompile(`\{[^}]+\}`)
		body := map[string]any{
			"code": "123456", "method": "authenticator", "phone": "+14155552679",
			"twoFa": map[string]any{"enabled": false, "requiredForRoles": []string{}},
		}
		before := e.snapshot()
		n := 0
		for path, item := range doc.Paths {
			for method, op := range item {
				takesAccess := slices.ContainsFunc(op.Security, func(s map[string]any) bool { _, ok := s["accessToken"]; return ok })
				method = strings.ToUpper(method)
				if !takesAccess || slices.Contains(allowed, method+" "+path) {
					continue
				}
				p := param.ReplaceAllString(path, victimID)
				if !e.routed(method, p) {
					continue
				}
				n++
				var b any
				if method != http.MethodGet {
					b = body
				}
				rr := e.call(method, p, access, b)
				if rr.Status != http.StatusForbidden || rr.ErrCode(t) != "enrollment_required" {
					t.Errorf("%s %s with an enrolment-only token = %d %s, want 403 enrollment_required", method, p, rr.Status, rr.Body)
				}
			}
		}
		if n < 15 {
			t.Fatalf("tried %d operations, want every access-token operation of the contract", n)
		}
		if after := e.snapshot(); !equalCounts(before, after) {
			t.Errorf("enrolment-only requests changed stored rows: before %v, after %v", before, after)
		}
	})
}

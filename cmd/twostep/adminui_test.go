package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/twostep-auth/twostep/internal/sqlstore"
)

// TestServeAdminPanel: "twostep serve" mounts the admin panel, whose
// cookie key comes from the database, and the first administrator's first
// sign-in leads to enrolment.
func TestServeAdminPanel(t *testing.T) {
	vars := databaseVars(t, sqlstore.EngineSQLite)
	getenv := environ(vars)
	if err := run(t.Context(), []string{"twostep", "admin", "create", "--email", "root@example.com", "--password", testPassword}, getenv, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("admin create = %v", err)
	}
	srv := startServe(t, getenv)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar}

	resp, err := client.Get(srv.url + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/admin/ui/login" || !strings.Contains(string(body), `name="password"`) {
		t.Fatalf("GET /admin/ = %d at %s, want the sign-in page; body:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("sign-in page Content-Security-Policy = %q", csp)
	}

	resp, err = client.PostForm(srv.url+"/admin/ui/login", url.Values{"email": {"root@example.com"}, "password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/admin/ui/enrol" || !strings.Contains(string(body), "Set up two-step verification") {
		t.Fatalf("first sign-in = %d at %s, want the enrolment page; body:\n%s", resp.StatusCode, resp.Request.URL, body)
	}

	// The JSON API keeps its /admin paths.
	status, m := call(t, http.MethodGet, srv.url+"/admin/settings", "", nil)
	if status != http.StatusUnauthorized || m["error"] == nil {
		t.Errorf("GET /admin/settings = %d %v, want the API's 401", status, m)
	}
}

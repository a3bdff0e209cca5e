package webui

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestSecurityHeaders(t *testing.T) {
	h := SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("status %d: the wrapped handler did not answer", rec.Code)
	}
	want := map[string]string{
		"Content-Security-Policy":      ContentSecurityPolicy,
		"X-Frame-Options":              "DENY",
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "no-referrer",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Cache-Control":                "no-store",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, d := range []string{"default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, d) {
			t.Errorf("the CSP lacks %q", d)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe-") {
		t.Error("the CSP allows unsafe-*")
	}
}

func TestParseTemplatesAndRender(t *testing.T) {
	fsys := fstest.MapFS{
		"templates/layout.html": {Data: []byte(`{{define "layout"}}<title>{{.}}</title>{{template "body" .}}{{end}}`)},
		"templates/home.html":   {Data: []byte(`{{define "body"}}<p>{{up .}}</p>{{end}}`)},
		"templates/broken.html": {Data: []byte(`{{define "body"}}{{.Missing}}{{end}}`)},
	}
	pages, err := ParseTemplates(fsys, template.FuncMap{"up": strings.ToUpper})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pages["layout"]; ok || len(pages) != 2 {
		t.Fatalf("pages %v, want home and broken", pages)
	}

	rec := httptest.NewRecorder()
	if err := Render(rec, pages["home"], http.StatusCreated, "<hi>"); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
		rec.Body.String() != "<title>&lt;hi&gt;</title><p>&lt;HI&gt;</p>" {
		t.Errorf("Render: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}

	// A failing template writes nothing, so that the caller can answer 500.
	rec = httptest.NewRecorder()
	if err := Render(rec, pages["broken"], http.StatusOK, "a string has no fields"); err == nil {
		t.Error("Render of a failing template returned nil")
	}
	if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Errorf("a failed Render wrote %q %v", rec.Body, rec.Header())
	}

	if _, err := ParseTemplates(fstest.MapFS{
		"templates/layout.html": {Data: []byte(`{{define "layout"}}{{end}}`)},
		"templates/bad.html":    {Data: []byte(`{{if}}`)},
	}, nil); err == nil || !strings.Contains(err.Error(), "template bad") {
		t.Errorf("a bad page template: err %v", err)
	}
}

func TestPeerMetaAndRequestID(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.7:4321"
	r.Header.Set("User-Agent", "test-agent")
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if m := PeerMeta(r); m.IP != "192.0.2.7" || m.UserAgent != "test-agent" {
		t.Errorf("PeerMeta = %+v, want the peer, not the forwarded address", m)
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Request-Id", "req-1")
	if got := RequestID(rec); got != "req-1" {
		t.Errorf("RequestID = %q", got)
	}
}

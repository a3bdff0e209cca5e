package webui

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
)

// ContentSecurityPolicy allows only the pages' own style sheet and script,
// and images from the server or data: URIs (an enrolment QR code).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// SecurityHeaders sets the headers every answer of the pages carries: the
// Content-Security-Policy, no framing, no sniffing, no referrer, isolation
// from other origins, and no caching.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// ParseTemplates builds one template set per page from fsys's
// templates/*.html: templates/layout.html plus the page's own file, keyed
// by the page's file name without .html.
func ParseTemplates(fsys fs.FS, funcs template.FuncMap) (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(fsys, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	files, err := fs.Glob(fsys, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// Render writes t's "layout" template with data as an HTML answer with
// status. The page is rendered to memory first: when that fails, nothing
// has been written and the error is returned, for a clean 500.
func Render(w http.ResponseWriter, t *template.Template, status int, data any) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
	return nil
}

// ServerError logs an unexpected error of a page once, with the request
// id, under ui ("admin ui"), and returns the sentence the error page shows,
// which names that id.
func ServerError(logger *slog.Logger, ui string, w http.ResponseWriter, r *http.Request, err error) string {
	id := RequestID(w)
	logger.ErrorContext(r.Context(), ui+": internal error", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
	text := "Something went wrong on the server. Nothing you did caused it."
	if id != "" {
		text += " Request id: " + id + "."
	}
	return text
}

// RenderPage is Render for a page of ui ("admin ui") named name: a
// failure to render is logged and answered with a plain 500.
func RenderPage(logger *slog.Logger, ui string, w http.ResponseWriter, r *http.Request, t *template.Template, name string, status int, data any) {
	if err := Render(w, t, status, data); err != nil {
		logger.ErrorContext(r.Context(), ui+": render", "request_id", RequestID(w), "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

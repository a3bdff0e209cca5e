package adminui

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/webui"
)

type pageTemplate = template.Template

// view is what every page template gets.
type view struct {
	Title string
	Nav   string // the active section: users, audit or settings
	Admin *auth.User
	Flash *flash
	CSS   string
	// Notice is shown on the sign-in pages: why the browser came back
	// there, or that the connection will not keep the cookie.
	Notice string
	Data   any
}

var funcs = template.FuncMap{
	"when":       formatTime,
	"whenPtr":    formatTimePtr,
	"method":     methodName,
	"join":       strings.Join,
	"eventKind":  eventKind,
	"eventTypes": func() []string { return eventTypes },
	"contains":   slices.Contains[[]string],
}

// parseTemplates builds one template set per page: the layout plus the
// page's own file.
func parseTemplates() (map[string]*pageTemplate, error) {
	pages, err := webui.ParseTemplates(templateFS, funcs)
	if err != nil {
		return nil, fmt.Errorf("admin ui: %w", err)
	}
	return pages, nil
}

// renderPage writes a page with status. The page is rendered to memory
// first, so a template failure is a clean 500.
func (p *panel) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t, ok := p.pages[name]
	if !ok {
		p.renderError(w, r, fmt.Errorf("admin ui: no template %q", name))
		return
	}
	v.CSS = p.static.URL("app.css")
	webui.RenderPage(p.logger, "admin ui", w, r, t, name, status, v)
}

// render writes a page of the signed-in panel: with the navigation, the
// pending flash message, and the cookie written back when it changed.
func (p *panel) render(w http.ResponseWriter, q *request, status int, name string, v view) {
	v.Admin = &q.admin.User
	if v.Flash == nil {
		v.Flash = q.takeFlash()
	}
	p.saveChanged(w, q)
	p.renderPage(w, q.Request, status, name, v)
}

// saveChanged writes the cookie back when it changed.
func (p *panel) saveChanged(w http.ResponseWriter, q *request) {
	if q.dirty {
		p.save(w, q.Request, q.st)
		q.dirty = false
	}
}

// redirect answers a form with 303 See Other, writing the cookie back
// first when it changed.
func (p *panel) redirect(w http.ResponseWriter, q *request, target string) {
	p.saveChanged(w, q)
	http.Redirect(w, q.Request, target, http.StatusSeeOther)
}

// renderMessage shows a page with a heading and one paragraph.
func (p *panel) renderMessage(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	p.renderPage(w, r, status, "message", view{Title: title, Data: text})
}

// renderError shows an error that is not the user's to fix. Unexpected
// errors are logged once, here, with the request id the page shows.
func (p *panel) renderError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, auth.ErrNotFound):
		p.renderMessage(w, r, http.StatusNotFound, "Not found", "There is no such user.")
	case errors.Is(err, auth.ErrUnavailable):
		p.renderMessage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The database or Redis is not answering. Nothing was changed; try again in a moment.")
	default:
		p.renderMessage(w, r, http.StatusInternalServerError, "Server error", webui.ServerError(p.logger, "admin ui", w, r, err))
	}
}

// problems returns the field problems of a validation error, or nil.
func problems(err error) map[string]string {
	var ve *auth.ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	return nil
}

// problemText joins a validation error's problems into one sentence.
func problemText(m map[string]string) string { return webui.JoinProblems(m, "; ") }

// waitText says how long a rate-limited action must wait.
func waitText(err error) string {
	var rl *auth.RateLimitError
	if !errors.As(err, &rl) {
		return "a while"
	}
	d := rl.RetryAfter.Round(time.Second)
	switch {
	case d < 2*time.Second:
		return "a second"
	case d < 2*time.Minute:
		return fmt.Sprintf("%d seconds", int(d/time.Second))
	default:
		return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
	}
}

const timeLayout = "2006-01-02 15:04 UTC"

func formatTime(t time.Time) string { return webui.FormatTime(t, timeLayout) }

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return formatTime(*t)
}

// methodName is how the panel names a second-factor method.
func methodName(m string) string {
	switch m {
	case auth.MethodAuthenticator:
		return "Authenticator app"
	case auth.MethodSMS:
		return "Text message"
	case auth.MethodCall:
		return "Phone call"
	case auth.MethodBackup:
		return "Backup code"
	}
	return m
}

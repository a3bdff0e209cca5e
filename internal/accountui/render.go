package accountui

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/webui"
)

type pageTemplate = template.Template

// view is what every page template gets.
type view struct {
	Title string
	Name  string // the service's name
	User  *auth.User
	Flash *flash
	// Error is the page's own error (a form that did not go through);
	// Fields names the form fields it is about.
	Error  string
	Fields map[string]string
	CSS    string
	JS     string
	// Wide pages (the security page) use the whole width.
	Wide bool
	Data any
}

var funcs = template.FuncMap{
	"when":    formatTime,
	"whenPtr": formatTimePtr,
	"method":  methodName,
	"group":   webui.GroupsOfFour,
	"field":   func(m map[string]string, k string) string { return m[k] },
}

// parseTemplates builds one template set per page: the layout plus the
// page's own file.
func parseTemplates() (map[string]*pageTemplate, error) {
	pages, err := webui.ParseTemplates(templateFS, funcs)
	if err != nil {
		return nil, fmt.Errorf("account ui: %w", err)
	}
	return pages, nil
}

// renderPage writes a page with status. The page is rendered to memory
// first, so a template failure is a clean 500.
func (s *site) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t, ok := s.pages[name]
	if !ok {
		s.renderError(w, r, fmt.Errorf("account ui: no template %q", name))
		return
	}
	v.CSS, v.JS, v.Name = s.assets.URL("style.css"), s.assets.URL("app.js"), s.opts.Name
	webui.RenderPage(s.logger, "account ui", w, r, t, name, status, v)
}

// render writes a page with the pending flash message (unless v has one),
// the signed-in user when there is one, and the cookie written back when
// it changed.
func (s *site) render(w http.ResponseWriter, q *request, status int, name string, v view) {
	if v.Flash == nil {
		v.Flash = q.takeFlash()
	}
	if q.p.User.ID != "" && v.User == nil {
		v.User = &q.p.User
	}
	s.save(w, q)
	s.renderPage(w, q.Request, status, name, v)
}

// renderMessage shows a page with a heading and one paragraph.
func (s *site) renderMessage(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	s.renderPage(w, r, status, "message", view{Title: title, Data: text})
}

// renderError shows an error that is not the user's to fix. Unexpected
// errors are logged once, here, with the request id the page shows.
func (s *site) renderError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		s.renderMessage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The service is not answering right now. Nothing was changed; try again in a moment.")
	default:
		s.renderMessage(w, r, http.StatusInternalServerError, "Server error", webui.ServerError(s.logger, "account ui", w, r, err))
	}
}

// userError turns an error a person can act on into a status and a
// sentence; ok is false for anything else (a server fault).
func userError(err error) (status int, text string, fields map[string]string, ok bool) {
	var ve *auth.ValidationError
	switch {
	case errors.Is(err, auth.ErrInvalidPhone):
		return http.StatusBadRequest, "Enter the phone number in international format, with + and the country code, like +14155552671.",
			map[string]string{"phone": "Use international format, like +14155552671."}, true
	case errors.As(err, &ve):
		return http.StatusBadRequest, "Check the highlighted fields.", fieldProblems(ve.Problems), true
	case errors.Is(err, auth.ErrInvalidCredentials):
		return http.StatusUnauthorized, "Wrong email, username or password.", nil, true
	case errors.Is(err, auth.ErrInvalidCode):
		return http.StatusUnauthorized, "That code is not right. Check it and try again.", map[string]string{"code": "Wrong code."}, true
	case errors.Is(err, auth.ErrChallengeExpired):
		return http.StatusUnauthorized, "This sign-in has expired. Start again.", nil, true
	case errors.Is(err, auth.ErrRateLimited):
		return http.StatusTooManyRequests, "Too many attempts. Try again in " + waitText(err) + ".", nil, true
	case errors.Is(err, auth.ErrConflict):
		msg := strings.TrimSpace(err.Error()[strings.LastIndex(err.Error(), ":")+1:])
		return http.StatusConflict, sentence(msg), nil, true
	case errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden, "This account is disabled. Ask your administrator.", nil, true
	case errors.Is(err, auth.ErrNotFound):
		return http.StatusNotFound, "That no longer exists. Reload the page.", nil, true
	case errors.Is(err, auth.ErrSMSUnavailable):
		return http.StatusServiceUnavailable, "The code could not be sent. Try again in a moment.", nil, true
	case errors.Is(err, auth.ErrEnrollmentRequired):
		return http.StatusForbidden, "Set up two-step verification first.", nil, true
	}
	return 0, "", nil, false
}

// What a form that takes a code says when too many wrong codes were
// entered (%s is how long to wait): codeWait when only that form waits,
// codeLocked when the account's second factor is locked.
const (
	codeWait   = "Too many wrong codes. Try again in %s."
	codeLocked = "Too many wrong codes. Two-step verification for this account is locked for %s."
)

// codeError is userError for a form that takes a code: a rate limit is
// said with tooMany (codeWait or codeLocked).
func codeError(err error, tooMany string) (status int, text string, ok bool) {
	status, text, _, ok = userError(err)
	if ok && errors.Is(err, auth.ErrRateLimited) {
		text = fmt.Sprintf(tooMany, waitText(err))
	}
	return status, text, ok
}

// fieldProblems turns auth's field problems ("is required") into
// sentences for the form ("Email is required.").
func fieldProblems(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if strings.HasPrefix(v, k+" ") || strings.HasPrefix(v, "password ") {
			out[k] = sentence(v)
		} else {
			out[k] = sentence(fieldLabel(k) + " " + v)
		}
	}
	return out
}

func fieldLabel(k string) string {
	switch k {
	case "email":
		return "Email"
	case "username":
		return "Username"
	case "password":
		return "Password"
	case "phone":
		return "Phone number"
	case "label":
		return "Name"
	case "method":
		return "This method"
	}
	return k
}

// sentence capitalises s and ends it with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// waitText says how long a rate-limited action must wait.
func waitText(err error) string {
	var rl *auth.RateLimitError
	if !errors.As(err, &rl) {
		return "a while"
	}
	return duration(rl.RetryAfter)
}

// duration says d in words, rounded up: "1 second", "25 seconds", "15
// minutes".
func duration(d time.Duration) string {
	switch {
	case d <= time.Second:
		return "1 second"
	case d < 2*time.Minute:
		return fmt.Sprintf("%d seconds", int((d+time.Second-1)/time.Second))
	default:
		return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
	}
}

// problemText joins field problems into one sentence, in field order.
func problemText(m map[string]string) string { return webui.JoinProblems(m, " ") }

const timeLayout = "2 Jan 2006, 15:04 UTC"

func formatTime(t time.Time) string { return webui.FormatTime(t, timeLayout) }

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return formatTime(*t)
}

// methodName is how the pages name a second-factor method.
func methodName(m string) string {
	switch m {
	case auth.MethodAuthenticator:
		return "Authenticator app"
	case auth.MethodSMS:
		return "Text message"
	case auth.MethodCall:
		return "Voice call"
	case auth.MethodBackup:
		return "Backup code"
	}
	return m
}

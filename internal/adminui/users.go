package adminui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/twostep-auth/twostep/internal/auth"
)

// usersPage is how many users a page of the list shows.
const usersPage = 25

// usersView is the data of the user list.
type usersView struct {
	Query    string
	Users    []auth.User
	NextURL  string
	FirstURL string // set on every page but the first
	Error    string
}

func (p *panel) handleUsers(w http.ResponseWriter, q *request) {
	query := strings.TrimSpace(q.URL.Query().Get("query"))
	cursor := q.URL.Query().Get("cursor")
	v := usersView{Query: query}
	page, err := p.svc.ListUsers(q.Context(), q.admin, auth.UserQuery{Query: query, Limit: usersPage, Cursor: cursor})
	if err != nil {
		if !errors.Is(err, auth.ErrInvalidRequest) {
			p.renderError(w, q.Request, err)
			return
		}
		v.Error = "That search cannot be run: " + problemText(problems(err)) + "."
		p.render(w, q, http.StatusBadRequest, "users", view{Title: "Users", Nav: "users", Data: v})
		return
	}
	v.Users = page.Users
	link := func(cursor string) string {
		vals := url.Values{}
		if query != "" {
			vals.Set("query", query)
		}
		if cursor != "" {
			vals.Set("cursor", cursor)
		}
		if len(vals) == 0 {
			return Prefix + "users"
		}
		return Prefix + "users?" + vals.Encode()
	}
	if page.NextCursor != "" {
		v.NextURL = link(page.NextCursor)
	}
	if cursor != "" {
		v.FirstURL = link("")
	}
	p.render(w, q, http.StatusOK, "users", view{Title: "Users", Nav: "users", Data: v})
}

// userView is the data of a user's page.
type userView struct {
	User    auth.User
	TwoFa   auth.TwoFaStatus
	SignIns []auth.AuditEvent
	Self    bool // the user is the administrator looking
	Error   string
}

// ActivityURL is the audit log filtered to this user.
func (v userView) ActivityURL() string {
	return Prefix + "audit?" + url.Values{"user": {v.User.ID}}.Encode()
}

// recentSignIns is how many sign-ins a user's page lists.
const recentSignIns = 5

func (p *panel) handleUser(w http.ResponseWriter, q *request) {
	u, tf, err := p.svc.AdminUser(q.Context(), q.admin, q.PathValue("id"))
	if err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	// The service lists no sessions; the audit log's recent sign-ins stand
	// for them (with where they came from).
	ev, err := p.svc.AuditEvents(q.Context(), q.admin, auth.AuditQuery{UserID: u.ID, Type: auth.EventLoginSucceeded, Limit: recentSignIns})
	if err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	v := userView{User: u, TwoFa: tf, SignIns: ev.Events, Self: u.ID == q.admin.User.ID}
	p.render(w, q, http.StatusOK, "user", view{Title: userName(u), Nav: "users", Data: v})
}

// userName is how the panel names a user: the email, else the username,
// else the phone.
func userName(u auth.User) string {
	switch {
	case u.Email != "":
		return u.Email
	case u.Username != "":
		return u.Username
	case u.Phone != "":
		return u.Phone
	}
	return u.ID
}

// userAction is something an administrator does to a user, after
// confirming it.
type userAction struct {
	Name    string // path segment
	Title   string
	Explain string // %s is the user's name
	Button  string
	Danger  bool
	run     func(p *panel, q *request, userID string) (int, error)
	done    func(name string, sessions int) string
}

var userActions = map[string]userAction{
	"reset-2fa": {
		Name: "reset-2fa", Title: "Reset two-step verification", Button: "Reset two-step verification", Danger: true,
		Explain: "This removes every second factor and backup code of %s and signs them out everywhere. " +
			"Their next sign-in needs only their password; if their role requires two-step verification, they are walked through setting it up again. " +
			"Do this only once you are sure who is asking.",
		run: func(p *panel, q *request, id string) (int, error) {
			return p.svc.ResetTwoFa(q.Context(), q.admin, id, p.opts.Meta(q.Request))
		},
		done: func(name string, n int) string {
			return fmt.Sprintf("Two-step verification reset for %s; %s.", name, sessionsText(n))
		},
	},
	"revoke-sessions": {
		Name: "revoke-sessions", Title: "Sign out everywhere", Button: "Sign out everywhere", Danger: true,
		Explain: "This ends every session of %s: every browser and app they use must sign in again.",
		run: func(p *panel, q *request, id string) (int, error) {
			return p.svc.RevokeSessions(q.Context(), q.admin, id, p.opts.Meta(q.Request))
		},
		done: func(name string, n int) string {
			return fmt.Sprintf("%s is signed out everywhere; %s.", name, sessionsText(n))
		},
	},
	"disable": {
		Name: "disable", Title: "Disable account", Button: "Disable account", Danger: true,
		Explain: "%s will not be able to sign in, and every session they have ends now. You can enable the account again later.",
		run: func(p *panel, q *request, id string) (int, error) {
			return p.svc.SetUserDisabled(q.Context(), q.admin, id, true, p.opts.Meta(q.Request))
		},
		done: func(name string, n int) string {
			return fmt.Sprintf("%s is disabled; %s.", name, sessionsText(n))
		},
	},
	"enable": {
		Name: "enable", Title: "Enable account", Button: "Enable account",
		Explain: "%s will be able to sign in again.",
		run: func(p *panel, q *request, id string) (int, error) {
			return p.svc.SetUserDisabled(q.Context(), q.admin, id, false, p.opts.Meta(q.Request))
		},
		done: func(name string, _ int) string { return name + " is enabled again." },
	},
}

// confirmView is the data of the confirmation page.
type confirmView struct {
	Action  userAction
	User    auth.User
	Explain string
	Error   string
}

// handleConfirmAction asks before doing anything: the action itself is a
// POST from this page's form.
func (p *panel) handleConfirmAction(w http.ResponseWriter, q *request) {
	a, ok := userActions[q.PathValue("action")]
	if !ok {
		p.handleNotFound(w, q.Request)
		return
	}
	u, _, err := p.svc.AdminUser(q.Context(), q.admin, q.PathValue("id"))
	if err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	p.render(w, q, http.StatusOK, "confirm", view{Title: a.Title, Nav: "users",
		Data: confirmView{Action: a, User: u, Explain: fmt.Sprintf(a.Explain, userName(u))}})
}

// handleUserAction does a confirmed action. A POST without the
// confirmation field (not from the confirmation page) only shows that
// page.
func (p *panel) handleUserAction(w http.ResponseWriter, q *request) {
	a, ok := userActions[q.PathValue("action")]
	if !ok {
		p.handleNotFound(w, q.Request)
		return
	}
	id := q.PathValue("id")
	userURL := Prefix + "users/" + url.PathEscape(id)
	if q.PostFormValue("confirm") != "yes" {
		p.redirect(w, q, userURL+"/"+a.Name)
		return
	}
	u, _, err := p.svc.AdminUser(q.Context(), q.admin, id)
	if err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	n, err := a.run(p, q, id)
	switch {
	case err == nil:
		q.setFlash("ok", a.done(userName(u), n))
	case errors.Is(err, auth.ErrConflict):
		q.setFlash("error", "You cannot disable your own account.")
	default:
		p.renderError(w, q.Request, err)
		return
	}
	p.redirect(w, q, userURL)
}

func sessionsText(n int) string {
	switch n {
	case 0:
		return "no session was active"
	case 1:
		return "1 session ended"
	}
	return fmt.Sprintf("%d sessions ended", n)
}

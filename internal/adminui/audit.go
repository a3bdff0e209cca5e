package adminui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/twostep-auth/twostep/internal/auditcsv"
	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/webui"
)

// eventTypes are the audit event types the filter offers.
var eventTypes = []string{
	auth.EventLoginSucceeded, auth.EventLoginFailed, auth.EventLoginThrottled,
	auth.EventChallengeSent, auth.EventVerifySucceeded, auth.EventVerifyFailed,
	auth.EventTwoFaEnabled, auth.EventTwoFaDisabled, auth.EventTwoFaLocked,
	auth.EventBackupGenerated, auth.EventBackupUsed, auth.EventPhoneVerified,
	auth.EventSessionRevoked, auth.EventRefreshReuse, auth.EventUserRegistered,
	"account.unlocked", auth.EventSettingsChanged, auth.EventAdminUserCreated,
	auth.EventAdminTwoFaReset, auth.EventAdminUserDisabled, auth.EventAdminUserEnabled,
	auth.EventAdminAuditExported,
}

// eventKind colours an event type: "bad" for failures and locks, "good"
// for successes, "admin" for what administrators did.
func eventKind(typ string) string {
	switch {
	case strings.HasSuffix(typ, ".failed"), strings.HasSuffix(typ, ".locked"),
		strings.HasSuffix(typ, ".throttled"), strings.HasSuffix(typ, "_reused"):
		return "bad"
	case strings.HasPrefix(typ, "admin."), strings.HasPrefix(typ, "settings."):
		return "admin"
	case strings.HasSuffix(typ, ".succeeded"), strings.HasSuffix(typ, ".enabled"), strings.HasSuffix(typ, ".verified"):
		return "good"
	}
	return ""
}

// auditPage is how many events a page of the log shows.
const auditPage = 50

// dateTimeLocal is the value format of <input type="datetime-local">; the
// panel reads and shows it as UTC.
const dateTimeLocal = "2006-01-02T15:04"

// auditFilter is the audit page's form, as typed.
type auditFilter struct {
	User  string // a user id, email or username
	Type  string
	Since string
	Until string
}

// values encodes the filter for links (empty fields left out).
func (f auditFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"user": f.User, "type": f.Type, "since": f.Since, "until": f.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// auditRow is one event as the table shows it.
type auditRow struct {
	auth.AuditEvent
	User    *auth.User // nil when the event names no user or it is gone
	Actor   *auth.User // set when someone else (an administrator) acted
	Details []string
}

// auditView is the data of the audit page.
type auditView struct {
	Filter    auditFilter
	Rows      []auditRow
	NextURL   string
	NewestURL string // set on every page but the first
	ExportURL string
	Error     string
}

// query turns the form into an auth.AuditQuery, resolving an email or
// username to the user's id. The error is for the person who typed it.
func (p *panel) auditQuery(q *request, f auditFilter) (auth.AuditQuery, string, error) {
	var aq auth.AuditQuery
	if f.Type != "" && !slices.Contains(eventTypes, f.Type) {
		return aq, "Choose an event type from the list.", nil
	}
	aq.Type = f.Type
	for _, t := range []struct {
		in  string
		out *time.Time
	}{{f.Since, &aq.Since}, {f.Until, &aq.Until}} {
		if t.in == "" {
			continue
		}
		at, err := time.Parse(dateTimeLocal, t.in)
		if err != nil {
			return aq, "Times must look like 2026-01-02T15:04 (UTC).", nil
		}
		*t.out = at
	}
	if f.User != "" {
		id, msg, err := p.findUser(q, f.User)
		if msg != "" || err != nil {
			return aq, msg, err
		}
		aq.UserID = id
	}
	return aq, "", nil
}

// findUser resolves what the filter's user field holds: an id as it is,
// or the account whose email or username it is exactly.
func (p *panel) findUser(q *request, in string) (string, string, error) {
	if _, err := uuid.Parse(in); err == nil {
		return in, "", nil
	}
	want := strings.ToLower(strings.TrimSpace(in))
	page, err := p.svc.ListUsers(q.Context(), q.admin, auth.UserQuery{Query: want, Limit: 100})
	if errors.Is(err, auth.ErrInvalidRequest) {
		return "", "That user cannot be searched for: " + problemText(problems(err)) + ".", nil
	}
	if err != nil {
		return "", "", err
	}
	for _, u := range page.Users {
		if u.Email == want || u.Username == want {
			return u.ID, "", nil
		}
	}
	return "", "No user has that email or username.", nil
}

func filterFrom(r *http.Request) auditFilter {
	v := r.URL.Query()
	return auditFilter{
		User: strings.TrimSpace(v.Get("user")), Type: v.Get("type"),
		Since: v.Get("since"), Until: v.Get("until"),
	}
}

func (p *panel) handleAudit(w http.ResponseWriter, q *request) {
	f := filterFrom(q.Request)
	v := auditView{Filter: f}
	aq, msg, err := p.auditQuery(q, f)
	if err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	if msg != "" {
		v.Error = msg
		p.render(w, q, http.StatusBadRequest, "audit", view{Title: "Audit log", Nav: "audit", Data: v})
		return
	}
	cursor := q.URL.Query().Get("cursor")
	aq.Limit, aq.Cursor = auditPage, cursor
	page, err := p.svc.AuditEvents(q.Context(), q.admin, aq)
	if err != nil {
		if !errors.Is(err, auth.ErrInvalidRequest) {
			p.renderError(w, q.Request, err)
			return
		}
		v.Error = "That page of the log cannot be shown: " + problemText(problems(err)) + "."
		p.render(w, q, http.StatusBadRequest, "audit", view{Title: "Audit log", Nav: "audit", Data: v})
		return
	}
	if v.Rows, err = p.auditRows(q, page.Events); err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	base := f.values()
	if page.NextCursor != "" {
		next := f.values()
		next.Set("cursor", page.NextCursor)
		v.NextURL = Prefix + "audit?" + next.Encode()
	}
	if cursor != "" {
		v.NewestURL = Prefix + "audit?" + base.Encode()
	}
	v.ExportURL = Prefix + "audit/export.csv?" + base.Encode()
	p.render(w, q, http.StatusOK, "audit", view{Title: "Audit log", Nav: "audit", Data: v})
}

// auditRows names the users of events (each looked up once).
func (p *panel) auditRows(q *request, events []auth.AuditEvent) ([]auditRow, error) {
	users := map[string]*auth.User{}
	lookup := func(id string) (*auth.User, error) {
		if id == "" {
			return nil, nil
		}
		if u, ok := users[id]; ok {
			return u, nil
		}
		u, _, err := p.svc.AdminUser(q.Context(), q.admin, id)
		if errors.Is(err, auth.ErrNotFound) {
			users[id] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		users[id] = &u
		return &u, nil
	}
	rows := make([]auditRow, 0, len(events))
	for _, e := range events {
		row := auditRow{AuditEvent: e, Details: details(e)}
		var err error
		if row.User, err = lookup(e.UserID); err != nil {
			return nil, err
		}
		if e.ActorID != "" && e.ActorID != e.UserID {
			if row.Actor, err = lookup(e.ActorID); err != nil {
				return nil, err
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// details turns an event's detail into short "key: value" lines; a
// settings change lists what changed.
func details(e auth.AuditEvent) []string {
	if e.Type == auth.EventSettingsChanged {
		before, after := map[string]string{}, map[string]string{}
		flatten("", e.Detail["before"], before)
		flatten("", e.Detail["after"], after)
		var out []string
		for k, a := range after {
			if b := before[k]; b != a {
				out = append(out, fmt.Sprintf("%s: %s → %s", k, b, a))
			}
		}
		sort.Strings(out)
		return out
	}
	flat := map[string]string{}
	flatten("", map[string]any(e.Detail), flat)
	out := make([]string, 0, len(flat))
	for k, v := range flat {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out
}

// flatten writes v's leaves into out under dotted keys (twoFa. dropped).
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(strings.TrimPrefix(key, "twoFa."), val, out)
		}
	case []any:
		parts := make([]string, 0, len(x))
		for _, val := range x {
			parts = append(parts, fmt.Sprint(val))
		}
		if len(parts) == 0 {
			out[prefix] = "none"
		} else {
			out[prefix] = strings.Join(parts, ", ")
		}
	case bool:
		out[prefix] = map[bool]string{true: "on", false: "off"}[x]
	case nil:
	default:
		out[prefix] = fmt.Sprint(x)
	}
}

// auditExportBatch is how many events the export reads at a time.
const auditExportBatch = 1000

// handleAuditExport writes every event the filter selects as CSV, newest
// first, and audits the export.
func (p *panel) handleAuditExport(w http.ResponseWriter, q *request) {
	aq, msg, err := p.auditQuery(q, filterFrom(q.Request))
	if err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	if msg != "" {
		p.render(w, q, http.StatusBadRequest, "audit", view{Title: "Audit log", Nav: "audit", Data: auditView{Filter: filterFrom(q.Request), Error: msg}})
		return
	}
	ctx := q.Context()
	if err := p.svc.RecordAuditExport(ctx, q.admin, aq, p.opts.Meta(q.Request)); err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	aq.Limit = auditExportBatch
	page, err := p.svc.AuditEvents(ctx, q.admin, aq)
	if err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	if q.dirty {
		p.save(w, q.Request, q.st)
	}
	err = auditcsv.Write(w, page, func(cursor string) (auth.AuditPage, error) {
		aq.Cursor = cursor
		return p.svc.AuditEvents(ctx, q.admin, aq)
	})
	if err != nil {
		// The status is sent: cut the connection rather than end the
		// file as if it were complete.
		p.logger.ErrorContext(ctx, "admin ui: audit export", "request_id", webui.RequestID(w), "err", err)
		panic(http.ErrAbortHandler)
	}
}

package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/twostep-auth/twostep/internal/auditcsv"
	"github.com/twostep-auth/twostep/internal/auth"
)

func (s *server) handleGetSettings() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := s.svc.Settings(r.Context(), principal(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, st.Document())
	})
}

func (s *server) handlePutSettings() http.Handler {
	// Every field is optional: absent (or null) keeps its value.
	type request struct {
		TwoFa *struct {
			Enabled *bool `json:"enabled"`
			Methods *struct {
				Authenticator *bool `json:"authenticator"`
				SMS           *bool `json:"sms"`
				Call          *bool `json:"call"`
			} `json:"methods"`
			BackupCodes *struct {
				Enabled *bool `json:"enabled"`
			} `json:"backupCodes"`
			RequiredForRoles *[]string `json:"requiredForRoles"`
			SudoMinutes      *int      `json:"sudoMinutes"`
		} `json:"twoFa"`
	}
	type response struct {
		auth.SettingsDocument
		StrandedUsers int `json:"strandedUsers"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		var ch auth.SettingsChange
		if t := req.TwoFa; t != nil {
			ch.TwoFaEnabled, ch.RequiredForRoles, ch.SudoMinutes = t.Enabled, t.RequiredForRoles, t.SudoMinutes
			if m := t.Methods; m != nil {
				ch.Authenticator, ch.SMS, ch.Call = m.Authenticator, m.SMS, m.Call
			}
			if b := t.BackupCodes; b != nil {
				ch.BackupCodes = b.Enabled
			}
		}
		res, err := s.svc.UpdateSettings(r.Context(), principal(r), ch, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, response{SettingsDocument: res.Settings.Document(), StrandedUsers: res.StrandedUsers})
	})
}

// managedUserJSON is the contract's User as administrators see it: with
// whether the account is disabled.
type managedUserJSON struct {
	userJSON
	Disabled bool `json:"disabled"`
}

func toManagedUserJSON(u auth.User) managedUserJSON {
	return managedUserJSON{userJSON: toUserJSON(u), Disabled: u.Disabled}
}

// queryInt reads an optional positive integer query parameter (empty: 0).
func queryInt(query url.Values, name string) (int, error) {
	v := query.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, &auth.ValidationError{Problems: map[string]string{name: "must be a positive integer"}}
	}
	return n, nil
}

// queryTime reads an optional RFC 3339 query parameter (empty: zero time).
func queryTime(query url.Values, name string) (time.Time, error) {
	v := query.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &auth.ValidationError{Problems: map[string]string{name: "must be an RFC 3339 time, like 2026-01-02T15:04:05Z"}}
	}
	return t, nil
}

func (s *server) handleListUsers() http.Handler {
	type response struct {
		Users      []managedUserJSON `json:"users"`
		NextCursor *string           `json:"nextCursor"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, err := queryInt(q, "limit")
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		page, err := s.svc.ListUsers(r.Context(), principal(r), auth.UserQuery{Query: q.Get("query"), Limit: limit, Cursor: q.Get("cursor")})
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		out := response{Users: make([]managedUserJSON, 0, len(page.Users)), NextCursor: nullable(page.NextCursor)}
		for _, u := range page.Users {
			out.Users = append(out.Users, toManagedUserJSON(u))
		}
		encode(w, http.StatusOK, out)
	})
}

func (s *server) handleAdminUser() http.Handler {
	type response struct {
		User  managedUserJSON `json:"user"`
		TwoFa twoFaStatusJSON `json:"twoFa"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, st, err := s.svc.AdminUser(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, response{User: toManagedUserJSON(u), TwoFa: toTwoFaStatusJSON(st)})
	})
}

// adminActionJSON answers an admin action on a user.
type adminActionJSON struct {
	Message         string `json:"message"`
	SessionsRevoked int    `json:"sessionsRevoked"`
}

func (s *server) handleResetTwoFa() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := s.svc.ResetTwoFa(r.Context(), principal(r), r.PathValue("id"), meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, adminActionJSON{Message: "2FA reset", SessionsRevoked: n})
	})
}

func (s *server) handleRevokeSessions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := s.svc.RevokeSessions(r.Context(), principal(r), r.PathValue("id"), meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, adminActionJSON{Message: "Sessions revoked", SessionsRevoked: n})
	})
}

func (s *server) handleSetDisabled(disabled bool) http.Handler {
	message := "Account enabled"
	if disabled {
		message = "Account disabled"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := s.svc.SetUserDisabled(r.Context(), principal(r), r.PathValue("id"), disabled, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, adminActionJSON{Message: message, SessionsRevoked: n})
	})
}

// auditEventJSON is the contract's AuditEvent.
type auditEventJSON struct {
	ID        string         `json:"id"`
	Time      string         `json:"time"`
	Type      string         `json:"type"`
	UserID    *string        `json:"userId"`
	ActorID   *string        `json:"actorId"`
	IP        *string        `json:"ip"`
	UserAgent *string        `json:"userAgent"`
	Detail    map[string]any `json:"detail"`
}

func toAuditEventJSON(e auth.AuditEvent) auditEventJSON {
	var detail map[string]any
	if len(e.Detail) > 0 {
		detail = e.Detail
	}
	return auditEventJSON{
		ID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano), Type: e.Type,
		UserID: nullable(e.UserID), ActorID: nullable(e.ActorID),
		IP: nullable(e.IP), UserAgent: nullable(e.UserAgent), Detail: detail,
	}
}

// auditExportBatch is how many events the CSV export reads at a time.
const auditExportBatch = 1000

func (s *server) handleAudit() http.Handler {
	type response struct {
		Events     []auditEventJSON `json:"events"`
		NextCursor *string          `json:"nextCursor"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		q, err := auditQuery(v)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		switch v.Get("format") {
		case "", "json":
		case "csv":
			s.exportAudit(w, r, q)
			return
		default:
			writeError(w, r, s.logger, &auth.ValidationError{Problems: map[string]string{"format": "must be json or csv"}})
			return
		}
		page, err := s.svc.AuditEvents(r.Context(), principal(r), q)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		out := response{Events: make([]auditEventJSON, 0, len(page.Events)), NextCursor: nullable(page.NextCursor)}
		for _, e := range page.Events {
			out.Events = append(out.Events, toAuditEventJSON(e))
		}
		encode(w, http.StatusOK, out)
	})
}

func auditQuery(v url.Values) (auth.AuditQuery, error) {
	q := auth.AuditQuery{UserID: v.Get("userId"), ActorID: v.Get("actorId"), Type: v.Get("type"), Cursor: v.Get("cursor")}
	var err error
	if q.Limit, err = queryInt(v, "limit"); err != nil {
		return auth.AuditQuery{}, err
	}
	if q.Since, err = queryTime(v, "since"); err != nil {
		return auth.AuditQuery{}, err
	}
	if q.Until, err = queryTime(v, "until"); err != nil {
		return auth.AuditQuery{}, err
	}
	return q, nil
}

// exportAudit writes every event q's filter selects as CSV, newest first,
// reading them a batch at a time (q's limit and cursor do not apply). The
// export is itself audited.
func (s *server) exportAudit(w http.ResponseWriter, r *http.Request, q auth.AuditQuery) {
	ctx := r.Context()
	if err := s.svc.RecordAuditExport(ctx, principal(r), q, meta(r)); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	q.Limit, q.Cursor = auditExportBatch, ""
	page, err := s.svc.AuditEvents(ctx, principal(r), q)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	err = auditcsv.Write(w, page, func(cursor string) (auth.AuditPage, error) {
		q.Cursor = cursor
		return s.svc.AuditEvents(ctx, principal(r), q)
	})
	if err != nil {
		// The status is sent: cut the connection rather than end the
		// file as if it were complete.
		s.logger.ErrorContext(ctx, "audit export", "request_id", requestID(ctx), "err", err)
		panic(http.ErrAbortHandler)
	}
}

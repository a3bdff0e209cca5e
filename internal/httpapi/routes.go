package httpapi

import (
	"net/http"
)

// routes lists every endpoint and the middleware that guards it.
// requireAccess(false, …): a live access token; requireAccess(true, …): the
// same, also allowed for sessions that may only enrol a second factor;
// requireAdmin(…): an administrator's access token (see auth.AuthorizeAdmin).
// Endpoints that take a challenge token check it in the handler.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()

	// Accounts.
	mux.Handle("POST /authentication/local/new", s.handleRegister())
	mux.Handle("POST /authentication/local", s.handleLogin())
	mux.Handle("POST /authentication/renew", s.handleRenew())
	mux.Handle("POST /authentication/logout", s.requireAccess(true, s.handleLogout()))
	mux.Handle("GET /authentication/user", s.requireAccess(false, s.handleUser()))
	mux.Handle("PUT /authentication/user/phone", s.requireAccess(false, s.handleChangePhone()))
	mux.Handle("POST /authentication/user/phone/verify", s.requireAccess(false, s.handleVerifyPhone()))
	mux.Handle("POST /authentication/phone/new", s.handlePhoneSignUp())
	mux.Handle("POST /authentication/phone", s.handlePhoneSignIn())
	mux.Handle("POST /authentication/phone/verify", s.handlePhoneVerify())
	mux.Handle("POST /authentication/exchange", s.handleExchange())

	// Two-factor authentication.
	mux.Handle("GET /authentication/twoFa", s.requireAccess(true, s.handleTwoFaStatus()))
	mux.Handle("PUT /authentication/twoFa/enable", s.requireAccess(true, s.handleEnable()))
	mux.Handle("POST /authentication/twoFa/enable", s.requireAccess(true, s.handleEnable()))
	mux.Handle("POST /authentication/twoFa/enable/verify", s.requireAccess(true, s.handleEnableVerify()))
	mux.Handle("POST /authentication/twoFa/authorize", s.handleAuthorize())
	mux.Handle("POST /authentication/twoFa/verify", s.handleVerify())
	mux.Handle("POST /authentication/twoFa/recover", s.handleRecover())
	mux.Handle("GET /authentication/twoFa/generate", s.requireAccess(false, s.handleBackupCodes()))
	mux.Handle("POST /authentication/twoFa/backup-codes", s.requireAccess(false, s.handleBackupCodes()))
	mux.Handle("PUT /authentication/twoFa/disable", s.requireAccess(false, s.handleDisable()))
	mux.Handle("POST /authentication/twoFa/disable", s.requireAccess(false, s.handleDisable()))

	// Administration.
	mux.Handle("GET /admin/settings", s.requireAdmin(s.handleGetSettings()))
	mux.Handle("PUT /admin/settings", s.requireAdmin(s.handlePutSettings()))
	mux.Handle("GET /admin/users", s.requireAdmin(s.handleListUsers()))
	mux.Handle("GET /admin/users/{id}", s.requireAdmin(s.handleAdminUser()))
	mux.Handle("POST /admin/users/{id}/twoFa/reset", s.requireAdmin(s.handleResetTwoFa()))
	mux.Handle("POST /admin/users/{id}/sessions/revoke", s.requireAdmin(s.handleRevokeSessions()))
	mux.Handle("POST /admin/users/{id}/disable", s.requireAdmin(s.handleSetDisabled(true)))
	mux.Handle("POST /admin/users/{id}/enable", s.requireAdmin(s.handleSetDisabled(false)))
	mux.Handle("GET /admin/audit", s.requireAdmin(s.handleAudit()))

	// Operations.
	mux.Handle("GET /healthz", s.handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.Handle("GET /openapi.json", s.handleOpenAPI())
	mux.Handle("GET /.well-known/jwks.json", s.handleJWKS())
	if s.opts.AccountUI != nil {
		// The hosted pages route, guard and answer (in HTML) their own
		// paths, 404s included.
		for _, p := range []string{"/login", "/login/", "/signup", "/signup/", "/logout", "/account/"} {
			mux.Handle(p, s.opts.AccountUI)
		}
	}
	if s.opts.AdminUI != nil {
		// The admin panel answers (in HTML) its own pages, 404s included;
		// it never shares a path with the JSON API above.
		mux.Handle("GET /admin", s.opts.AdminUI)
		mux.Handle("GET /admin/{$}", s.opts.AdminUI)
		mux.Handle("/admin/ui/", s.opts.AdminUI)
	}
	if s.opts.PlivoAnswers != nil {
		// Plivo fetches what to say when the callee answers; single use.
		mux.Handle("GET /sms/plivo/answer/{id}", s.opts.PlivoAnswers)
	}

	return s.jsonFallback(mux)
}

// jsonFallback answers unknown routes (404) and wrong methods (405) in the
// contract's JSON error shape instead of the mux's plain text.
func (s *server) jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &headerOnly{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeError(w, r, s.logger, &apiError{http.StatusMethodNotAllowed, "invalid_request", "Method not allowed on this path"})
			return
		}
		writeError(w, r, s.logger, &apiError{http.StatusNotFound, "not_found", "No such endpoint"})
	})
}

// headerOnly captures what the mux's own 404/405 handler would send.
type headerOnly struct {
	header http.Header
	status int
}

func (h *headerOnly) Header() http.Header         { return h.header }
func (h *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerOnly) WriteHeader(code int)        { h.status = code }

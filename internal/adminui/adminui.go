// Package adminui is twostep's administration panel: server-rendered pages
// under /admin/ that sign an administrator in (password, then a second
// factor, or enrolment of one) and let them change the 2FA settings, manage
// users and read the audit log. It calls *auth.Service directly; every rule
// stays in auth. Templates and the style sheet are embedded in the binary.
//
// Every page is served with a strict Content-Security-Policy and
// X-Frame-Options DENY, every state-changing request passes
// http.CrossOriginProtection, and the sign-in lives in one sealed,
// HttpOnly, SameSite=Strict cookie.
package adminui

import (
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/webui"
)

// Paths of the panel. The JSON API owns every other path under /admin/
// (/admin/settings, /admin/users, /admin/audit, …); the panel owns
// /admin/ itself and the subtree /admin/ui/, so the two never share a
// pattern.
const (
	Root   = "/admin/"
	Prefix = "/admin/ui/"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxFormBytes bounds a request body of the panel.
const maxFormBytes = 64 << 10

// Options tune the panel. The zero value is usable.
type Options struct {
	// Meta returns the client address and user agent of a request, for
	// throttling and audit (httpapi.RequestMeta, which knows the trusted
	// proxies). Default: the peer address and the User-Agent header.
	Meta func(*http.Request) auth.RequestMeta
	// SessionTTL is how long a panel sign-in lasts at most, whatever the
	// refresh token's life (default 12 hours).
	SessionTTL time.Duration
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

// panel serves every page.
type panel struct {
	logger *slog.Logger
	svc    *auth.Service
	cookie webui.Cookie
	opts   Options
	pages  map[string]*pageTemplate
	static *webui.Assets

	// refreshMu guards refreshed: refresh tokens this instance exchanged
	// recently and what it got for them, so that two requests carrying the
	// same cookie share one new pair instead of the second one tripping
	// refresh-token reuse detection (which revokes the session).
	refreshMu sync.Mutex
	refreshed map[[32]byte]refreshedPair
}

type refreshedPair struct {
	tokens auth.Tokens
	at     time.Time
}

// New returns the panel's handler, to be mounted at /admin, Root and Prefix
// of the server (see httpapi.Options.AdminUI). cookieKey (32 bytes) seals the
// panel's cookie; every instance of a deployment must use the same key.
func New(logger *slog.Logger, svc *auth.Service, cookieKey []byte, opts Options) (http.Handler, error) {
	ring, err := seal.New(seal.Key{ID: "ui1", Secret: cookieKey})
	if err != nil {
		return nil, fmt.Errorf("admin ui cookie key: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Meta == nil {
		opts.Meta = webui.PeerMeta
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("admin ui: %w", err)
	}
	assets, err := webui.NewAssets(static, Prefix+"static/")
	if err != nil {
		return nil, fmt.Errorf("admin ui: %w", err)
	}
	p := &panel{
		logger: logger, svc: svc, opts: opts, pages: pages,
		cookie: webui.Cookie{
			Name: "twostep-admin", What: "admin ui state", Keyring: ring,
			// No other sealed value of the server opens as a panel cookie.
			AAD:      []byte("twostep admin ui cookie v1"),
			SameSite: http.SameSiteStrictMode,
		},
		static:    assets,
		refreshed: map[[32]byte]refreshedPair{},
	}
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(p.crossOriginRefused))
	// The panel's forms are a few fields; httpapi sets its own limit too
	// when it mounts the panel.
	return webui.SecurityHeaders(http.MaxBytesHandler(csrf.Handler(p.routes()), maxFormBytes)), nil
}

// routes lists every page. GET pages read; every POST changes something
// and passes the cross-origin check that wraps the whole mux. admin(…)
// pages need a signed-in administrator.
func (p *panel) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin", p.handleRoot)
	mux.HandleFunc("GET "+Root+"{$}", p.handleRoot)
	mux.HandleFunc("GET "+Prefix+"{$}", p.handleRoot)
	mux.Handle("GET "+Prefix+"static/", p.static)

	// Signing in and out.
	mux.HandleFunc("GET "+Prefix+"login", p.handleLoginPage)
	mux.HandleFunc("POST "+Prefix+"login", p.handleLogin)
	mux.HandleFunc("GET "+Prefix+"login/verify", p.handleVerifyPage)
	mux.HandleFunc("POST "+Prefix+"login/verify", p.handleVerify)
	mux.HandleFunc("POST "+Prefix+"login/send", p.handleSendCode)
	mux.HandleFunc("GET "+Prefix+"enrol", p.handleEnrolPage)
	mux.HandleFunc("POST "+Prefix+"enrol", p.handleEnrolStart)
	mux.HandleFunc("POST "+Prefix+"enrol/confirm", p.handleEnrolConfirm)
	mux.HandleFunc("POST "+Prefix+"logout", p.handleLogout)

	// Administration.
	mux.Handle("GET "+Prefix+"settings", p.admin(p.handleSettings))
	mux.Handle("POST "+Prefix+"settings", p.admin(p.handleSaveSettings))
	mux.Handle("GET "+Prefix+"users", p.admin(p.handleUsers))
	mux.Handle("GET "+Prefix+"users/{id}", p.admin(p.handleUser))
	mux.Handle("GET "+Prefix+"users/{id}/{action}", p.admin(p.handleConfirmAction))
	mux.Handle("POST "+Prefix+"users/{id}/{action}", p.admin(p.handleUserAction))
	mux.Handle("GET "+Prefix+"audit", p.admin(p.handleAudit))
	mux.Handle("GET "+Prefix+"audit/export.csv", p.admin(p.handleAuditExport))

	mux.HandleFunc(Prefix, p.handleNotFound)
	return mux
}

func (p *panel) handleRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Prefix+"users", http.StatusSeeOther)
}

func (p *panel) handleNotFound(w http.ResponseWriter, r *http.Request) {
	p.renderMessage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
}

func (p *panel) crossOriginRefused(w http.ResponseWriter, r *http.Request) {
	p.renderMessage(w, r, http.StatusForbidden, "Request refused",
		"This request came from another site, so it was not carried out. Open the admin panel directly and try again.")
}

func (p *panel) now() time.Time { return p.opts.Now() }

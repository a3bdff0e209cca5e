// Package accountui serves twostep's hosted pages: sign-in with a second
// step (/login), sign-up (/signup) and the account security page
// (/account/security), so that an application can send its users to twostep
// instead of building these screens. It calls *auth.Service directly; every
// rule stays in auth.
//
// A sign-in that started with ?return_to= ends with a redirect to that URL,
// only if it matches Options.AllowedReturnURLs, carrying a one-time code
// that the application exchanges server-side (POST /authentication/exchange)
// for tokens. The browser itself holds one sealed, HttpOnly cookie that
// refers to its twostep session; no token ever reaches the page.
//
// Every page is served with a strict Content-Security-Policy and
// X-Frame-Options DENY, and every POST passes http.CrossOriginProtection.
package accountui

import (
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/seal"
	"github.com/twostep-auth/twostep/internal/webui"
)

// Paths the pages own. httpapi mounts the handler at each of them.
const (
	pathLogin    = "/login"
	pathSignup   = "/signup"
	pathLogout   = "/logout"
	pathSecurity = "/account/security"
	staticPrefix = "/account/static/"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// Options tune the pages. The zero value is usable (with no return URLs).
type Options struct {
	// Meta returns the client address and user agent of a request, for
	// throttling and audit (httpapi.RequestMeta, which knows the trusted
	// proxies). Default: the peer address and the User-Agent header.
	Meta func(*http.Request) auth.RequestMeta
	// AllowedReturnURLs are the absolute http(s) URLs a sign-in may return
	// to: a return_to must have the same scheme, host and port as one of
	// them and a path under its path. Empty: sign-ins never leave twostep.
	AllowedReturnURLs []string
	// SessionTTL is how long a browser sign-in lasts at most (default 12
	// hours).
	SessionTTL time.Duration
	// Name is the service name the pages show (default "twostep").
	Name string
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

// site serves every page.
type site struct {
	logger  *slog.Logger
	svc     *auth.Service
	cookie  webui.Cookie // its Keyring also seals enrolment secrets
	opts    Options
	returns allowList
	pages   map[string]*pageTemplate
	assets  *webui.Assets
}

// New returns the pages' handler, to be mounted by httpapi at /login,
// /login/, /signup, /signup/, /logout and /account/ (see
// httpapi.Options.AccountUI). cookieKey (32 bytes) seals the browser's
// cookie; every instance of a deployment must use the same key. An entry
// of opts.AllowedReturnURLs that is not an absolute http(s) URL is an
// error.
func New(logger *slog.Logger, svc *auth.Service, cookieKey []byte, opts Options) (http.Handler, error) {
	ring, err := seal.New(seal.Key{ID: "acct1", Secret: cookieKey})
	if err != nil {
		return nil, fmt.Errorf("account ui cookie key: %w", err)
	}
	returns, err := parseAllowList(opts.AllowedReturnURLs)
	if err != nil {
		return nil, fmt.Errorf("account ui: %w", err)
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
	if opts.Name == "" {
		opts.Name = "twostep"
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
		return nil, fmt.Errorf("account ui: %w", err)
	}
	assets, err := webui.NewAssets(static, staticPrefix)
	if err != nil {
		return nil, fmt.Errorf("account ui: %w", err)
	}
	s := &site{
		logger: logger, svc: svc, opts: opts, returns: returns, pages: pages, assets: assets,
		cookie: webui.Cookie{
			Name: "twostep-account", What: "account ui state", Keyring: ring,
			// No other sealed value of the server (the admin panel's
			// cookie included) opens as this cookie.
			AAD: []byte("twostep account ui cookie v1"),
			// Lax, not Strict: an application sends the browser to
			// /login?return_to=… by a cross-site link or redirect, and a
			// signed-in browser must arrive with its cookie to be handed
			// back at once. Lax still withholds the cookie from
			// cross-site POSTs, iframes and subresources, and every POST
			// must also pass http.CrossOriginProtection.
			SameSite: http.SameSiteLaxMode,
		},
	}
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(s.crossOriginRefused))
	return webui.SecurityHeaders(csrf.Handler(s.routes())), nil
}

// routes lists every page. GET pages only read (but for /login/continue,
// which spends the pending return_to on a one-time code); every POST
// changes something and passes the cross-origin check that wraps the whole
// mux. user(…) pages need a browser sign-in; user(true, …) ones also serve
// a session that may only enrol a second factor.
func (s *site) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+staticPrefix, s.handleStatic)

	// Signing in, up and out.
	mux.Handle("GET "+pathLogin, s.page(s.handleLoginPage))
	mux.Handle("POST "+pathLogin, s.page(s.handleLogin))
	mux.Handle("GET "+pathLogin+"/verify", s.page(s.handleVerifyPage))
	mux.Handle("POST "+pathLogin+"/verify", s.page(s.handleVerify))
	mux.Handle("POST "+pathLogin+"/send", s.page(s.handleSend))
	mux.Handle("GET "+pathLogin+"/phone", s.page(s.handlePhonePage))
	mux.Handle("POST "+pathLogin+"/phone", s.page(s.handlePhoneSignIn))
	mux.Handle("GET "+pathLogin+"/phone/verify", s.page(s.handlePhoneVerifyPage))
	mux.Handle("POST "+pathLogin+"/phone/verify", s.page(s.handlePhoneVerify))
	mux.Handle("GET "+pathLogin+"/continue", s.user(false, s.handleContinue))
	mux.Handle("GET "+pathSignup, s.page(s.handleSignupPage))
	mux.Handle("POST "+pathSignup, s.page(s.handleSignup))
	mux.Handle("POST "+pathSignup+"/phone", s.page(s.handlePhoneSignup))
	mux.Handle("POST "+pathLogout, s.page(s.handleLogout))

	// Account security.
	mux.Handle("GET /account/{$}", http.RedirectHandler(pathSecurity, http.StatusSeeOther))
	mux.Handle("GET "+pathSecurity, s.user(true, s.handleSecurity))
	mux.Handle("POST "+pathSecurity+"/authenticator", s.user(true, s.sudo(s.handleEnrolAuthenticator)))
	mux.Handle("POST "+pathSecurity+"/authenticator/confirm", s.user(true, s.handleConfirmAuthenticator))
	mux.Handle("POST "+pathSecurity+"/sms", s.user(true, s.sudo(s.handleEnrolSMS)))
	mux.Handle("POST "+pathSecurity+"/sms/confirm", s.user(true, s.handleConfirmSMS))
	mux.Handle("POST "+pathSecurity+"/methods/rename", s.user(false, s.handleRename))
	mux.Handle("POST "+pathSecurity+"/methods/remove", s.user(false, s.sudo(s.handleRemove)))
	mux.Handle("POST "+pathSecurity+"/backup-codes", s.user(false, s.sudo(s.handleBackupCodes)))
	mux.Handle("POST "+pathSecurity+"/disable", s.user(false, s.sudo(s.handleDisable)))
	mux.Handle("POST "+pathSecurity+"/phone", s.user(false, s.sudo(s.handleChangePhone)))
	mux.Handle("POST "+pathSecurity+"/phone/verify", s.user(false, s.handleVerifyPhone))
	mux.Handle("POST "+pathSecurity+"/sessions/revoke", s.user(false, s.handleSignOutOthers))

	mux.HandleFunc("/", s.handleNotFound)
	return mux
}

// handleStatic serves the style sheet and the script.
func (s *site) handleStatic(w http.ResponseWriter, r *http.Request) {
	if !s.assets.Has(r) {
		s.handleNotFound(w, r)
		return
	}
	s.assets.ServeHTTP(w, r)
}

func (s *site) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.renderMessage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
}

func (s *site) crossOriginRefused(w http.ResponseWriter, r *http.Request) {
	s.renderMessage(w, r, http.StatusForbidden, "Request refused",
		"This request came from another site, so it was not carried out. Open this page directly and try again.")
}

func (s *site) now() time.Time { return s.opts.Now() }

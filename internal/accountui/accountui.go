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
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/seal"
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

// contentSecurityPolicy allows only the pages' own style sheet and script,
// and images from the server or data: URIs (the enrolment QR code).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

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
	cookies *seal.Keyring
	opts    Options
	returns allowList
	pages   map[string]*pageTemplate
	assets  map[string]string // file name → versioned URL
	static  http.Handler
	csrf    *http.CrossOriginProtection
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
		opts.Meta = peerMeta
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
	assets := map[string]string{}
	files, err := fs.ReadDir(static, ".")
	if err != nil {
		return nil, fmt.Errorf("account ui: %w", err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(static, f.Name())
		if err != nil {
			return nil, fmt.Errorf("account ui: %w", err)
		}
		sum := sha256.Sum256(b)
		assets[f.Name()] = staticPrefix + f.Name() + "?v=" + hex.EncodeToString(sum[:6])
	}
	s := &site{
		logger: logger, svc: svc, cookies: ring, opts: opts, returns: returns, pages: pages, assets: assets,
		static: http.StripPrefix(staticPrefix, http.FileServerFS(static)),
		csrf:   http.NewCrossOriginProtection(),
	}
	s.csrf.SetDenyHandler(http.HandlerFunc(s.crossOriginRefused))
	return s.securityHeaders(s.csrf.Handler(s.routes())), nil
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

// securityHeaders sets the headers every answer of the pages carries.
func (s *site) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// handleStatic serves the style sheet and the script. A request naming the
// current version may be cached for good; the URL changes with the content.
func (s *site) handleStatic(w http.ResponseWriter, r *http.Request) {
	versioned, ok := s.assets[strings.TrimPrefix(r.URL.Path, staticPrefix)]
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	if v := r.URL.Query().Get("v"); v != "" && versioned == r.URL.Path+"?v="+v {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	s.static.ServeHTTP(w, r)
}

func (s *site) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.renderMessage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
}

func (s *site) crossOriginRefused(w http.ResponseWriter, r *http.Request) {
	s.renderMessage(w, r, http.StatusForbidden, "Request refused",
		"This request came from another site, so it was not carried out. Open this page directly and try again.")
}

func (s *site) now() time.Time { return s.opts.Now() }

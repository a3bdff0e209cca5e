// Package httpapi is twostep's HTTP interface: the routes of the contract
// in shared/api.md, JSON in and out, and the middleware around them. Every
// rule lives in package auth; a handler decodes, calls one Service method
// and encodes.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/token"
)

// Options are the HTTP settings of the server.
type Options struct {
	MaxBodyBytes   int64
	TrustedProxies []netip.Prefix
	AccessLog      bool
	// Ready reports whether the server's dependencies (database, Redis)
	// answer; /readyz fails when it returns an error.
	Ready func(ctx context.Context) error
	// OpenAPI is the document served at /openapi.json.
	OpenAPI []byte
	// PlivoAnswers, when set, serves the one-time answer documents of
	// Plivo voice calls at GET /sms/plivo/answer/{id}.
	PlivoAnswers http.Handler
	// AccountUI, when set, serves the hosted pages (internal/accountui) at
	// /login, /signup, /logout and under /account/.
	AccountUI http.Handler
	// AdminUI, when set, serves the admin panel (internal/adminui) at
	// /admin/ and under /admin/ui/; every other path under /admin/ stays
	// the JSON API's.
	AdminUI http.Handler
}

type server struct {
	logger  *slog.Logger
	opts    Options
	svc     *auth.Service
	tokens  *token.Keyring
	metrics *Metrics
}

// NewServer returns the HTTP handler for the whole API.
func NewServer(logger *slog.Logger, opts Options, svc *auth.Service, tokens *token.Keyring, metrics *Metrics) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	s := &server{logger: logger, opts: opts, svc: svc, tokens: tokens, metrics: metrics}
	return s.observe(s.routes())
}

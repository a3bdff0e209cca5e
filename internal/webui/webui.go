// Package webui holds what twostep's server-rendered pages (the admin
// panel, internal/adminui, and the hosted account pages, internal/accountui)
// share: the sealed session cookie, the security headers every page
// carries, and template parsing and rendering.
package webui

import (
	"net"
	"net/http"

	"github.com/twostep-auth/twostep/internal/auth"
)

// PeerMeta is the pages' default request metadata: the peer address, not
// believing any forwarding header, and the User-Agent header.
func PeerMeta(r *http.Request) auth.RequestMeta {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return auth.RequestMeta{IP: host, UserAgent: r.UserAgent()}
}

// RequestID is the id httpapi gave the request (its X-Request-Id answer
// header), for logs.
func RequestID(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }

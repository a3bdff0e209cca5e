package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	clientIPKey
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func clientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey).(string)
	return ip
}

func meta(r *http.Request) auth.RequestMeta {
	return auth.RequestMeta{IP: clientIP(r.Context()), UserAgent: r.UserAgent()}
}

// RequestMeta returns the client address (as the server's middleware found
// it, believing only trusted proxies) and user agent of a request served by
// NewServer's handler, for the web pages it mounts.
func RequestMeta(r *http.Request) auth.RequestMeta { return meta(r) }

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// validRequestID accepts a caller's X-Request-Id only when it is short and
// plain, so it is safe to log.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe is the outermost middleware: request id, client address, panic
// recovery, body limit, default headers, metrics and the access log.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		ip := s.clientAddr(r)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = context.WithValue(ctx, clientIPKey, ip)
		r = r.WithContext(ctx)

		sw := &statusWriter{ResponseWriter: w}
		h := sw.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxBodyBytes)

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logger.ErrorContext(ctx, "panic", "request_id", id, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					writeError(sw, r, s.logger, fmt.Errorf("panic: %v", p))
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			s.metrics.observe(route, r.Method, status, d)
			if s.opts.AccessLog {
				s.logger.LogAttrs(ctx, slog.LevelInfo, "request",
					slog.String("request_id", id),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("route", route),
					slog.Int("status", status),
					slog.Int("bytes", sw.bytes),
					slog.Duration("duration", d),
					slog.String("ip", ip),
				)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// clientAddr is the address of the client: the peer, unless the peer is a
// trusted proxy, in which case the right-most X-Forwarded-For entry that is
// not itself a trusted proxy.
func (s *server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	xff := r.Header.Values("X-Forwarded-For")
	hops := strings.Split(strings.Join(xff, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a.String()
		}
	}
	return peer.String()
}

func (s *server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// isJWT tells an access token (three dot-separated parts) from an opaque
// challenge token (no dots).
func isJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

// requireAccess lets through only requests with a live access token and
// puts the principal in the context. Sessions that may only enrol a second
// factor are refused unless enrolOK.
func (s *server) requireAccess(enrolOK bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r)
		if tok == "" || !isJWT(tok) {
			writeError(w, r, s.logger, auth.ErrUnauthorized)
			return
		}
		p, err := s.svc.Authenticate(r.Context(), tok)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		if p.Session.EnrollmentOnly && !enrolOK {
			writeError(w, r, s.logger, auth.ErrEnrollmentRequired)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// requireAdmin is requireAccess(false, …) for administrators only. Anyone
// else with a live token gets 403 forbidden before the route's parameters
// are looked at, so the answer is the same whatever the target.
func (s *server) requireAdmin(next http.Handler) http.Handler {
	return s.requireAccess(false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		if err := s.svc.AuthorizeAdmin(r.Context(), p); err != nil {
			s.logger.WarnContext(r.Context(), "admin access refused", "event", "admin_forbidden", "request_id", requestID(r.Context()), "user_id", p.User.ID, "path", r.URL.Path)
			writeError(w, r, s.logger, err)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

func principal(r *http.Request) auth.Principal {
	p, _ := auth.PrincipalFromContext(r.Context())
	return p
}

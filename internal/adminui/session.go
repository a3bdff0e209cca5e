package adminui

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/webui"
)

// state is what the panel's one cookie holds. The browser sees only an
// AES-GCM sealed blob: it can neither read the tokens nor change a field.
// A sign-in is a twostep session like any other (the API's tokens), so
// revoking it through the API or from the panel ends it here too.
type state struct {
	// Signed in: the session's access and refresh tokens.
	Access  string `json:"a,omitempty"`
	Refresh string `json:"r,omitempty"`
	// Between the password and the second factor: the challenge token,
	// the methods it accepts, and the phone method a code went to.
	Challenge string   `json:"c,omitempty"`
	Methods   []string `json:"m,omitempty"`
	SentBy    string   `json:"sb,omitempty"`
	SentTo    string   `json:"st,omitempty"`
	// Enrolling an authenticator: its otpauth URI, to show the same QR
	// code again after a mistyped code.
	EnrolURI string `json:"e,omitempty"`
	// Flash is a message for the next page shown (after a redirect).
	Flash *flash `json:"f,omitempty"`
	// Expires ends the sign-in whatever the tokens say.
	Expires time.Time `json:"x"`
}

// flash is a one-time message: Kind is "ok", "warn" or "error".
type flash = webui.Flash

// readState opens the request's cookie; ok is false when there is none, it
// does not open, or its sign-in has expired.
func (p *panel) readState(r *http.Request) (state, bool) {
	var st state
	if !p.cookie.Read(r, &st) || !p.now().Before(st.Expires) {
		return state{}, false
	}
	return st, true
}

// writeState seals st into the cookie, a browser-session cookie (the
// sign-in's end is sealed inside). It must run before the status is
// written.
func (p *panel) writeState(w http.ResponseWriter, r *http.Request, st state) error {
	return p.cookie.Write(w, r, st, time.Time{})
}

// clearState removes the cookie.
func (p *panel) clearState(w http.ResponseWriter, r *http.Request) {
	p.cookie.Clear(w, r)
}

// errSignedOut means the request carries no live sign-in.
var errSignedOut = errors.New("not signed in")

// principal authenticates the sign-in in st, exchanging the refresh token
// when the access token has expired (st then holds the new pair and
// changed is true). errSignedOut when the sign-in is over.
func (p *panel) principal(ctx context.Context, r *http.Request, st *state) (pr auth.Principal, changed bool, err error) {
	if st.Access == "" {
		return auth.Principal{}, false, errSignedOut
	}
	pr, err = p.svc.Authenticate(ctx, st.Access)
	if err == nil {
		return pr, false, nil
	}
	if !errors.Is(err, auth.ErrUnauthorized) {
		return auth.Principal{}, false, err
	}
	if st.Refresh == "" {
		return auth.Principal{}, false, errSignedOut
	}
	t, err := p.refresh(ctx, r, st.Refresh)
	switch {
	case errors.Is(err, auth.ErrUnauthorized), errors.Is(err, auth.ErrEnrollmentRequired):
		return auth.Principal{}, false, errSignedOut
	case err != nil:
		return auth.Principal{}, false, err
	}
	st.Access, st.Refresh = t.AccessToken, t.RefreshToken
	pr, err = p.svc.Authenticate(ctx, st.Access)
	if errors.Is(err, auth.ErrUnauthorized) {
		return auth.Principal{}, false, errSignedOut
	}
	return pr, true, err
}

// refreshGrace is how long the pair a refresh token was exchanged for is
// handed to other requests that still carry the old token.
const refreshGrace = time.Minute

// refresh exchanges a refresh token once per instance: concurrent or
// closely following requests with the same cookie get the same new pair.
// (Refreshes are rare, one per access-token life per administrator, so one
// lock for all is enough.)
func (p *panel) refresh(ctx context.Context, r *http.Request, token string) (auth.Tokens, error) {
	key := sha256.Sum256([]byte(token))
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	now := p.now()
	for k, v := range p.refreshed {
		if now.Sub(v.at) > refreshGrace {
			delete(p.refreshed, k)
		}
	}
	if v, ok := p.refreshed[key]; ok {
		return v.tokens, nil
	}
	t, err := p.svc.Refresh(ctx, token, p.opts.Meta(r))
	if err != nil {
		return auth.Tokens{}, err
	}
	p.refreshed[key] = refreshedPair{tokens: t, at: now}
	return t, nil
}

// request is a page request of a signed-in administrator.
type request struct {
	*http.Request
	admin auth.Principal
	st    state
	dirty bool // st must be written back
}

// setFlash keeps a message for the next page.
func (q *request) setFlash(kind, text string) {
	q.st.Flash = &flash{Kind: kind, Text: text}
	q.dirty = true
}

// takeFlash returns the pending message, once.
func (q *request) takeFlash() *flash {
	f := q.st.Flash
	if f != nil {
		q.st.Flash = nil
		q.dirty = true
	}
	return f
}

// admin wraps a page that needs a signed-in administrator whose session
// passes auth.AuthorizeAdmin. Anyone else is sent to sign in; a signed-in
// user who is not an administrator is signed out and refused.
func (p *panel) admin(h func(w http.ResponseWriter, q *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, ok := p.readState(r)
		if !ok || st.Access == "" {
			p.toLogin(w, r, ok)
			return
		}
		pr, changed, err := p.principal(r.Context(), r, &st)
		if errors.Is(err, errSignedOut) {
			p.clearState(w, r)
			p.toLogin(w, r, true)
			return
		}
		if err != nil {
			p.renderError(w, r, err)
			return
		}
		if pr.Session.EnrollmentOnly {
			if changed {
				p.save(w, r, st)
			}
			http.Redirect(w, r, Prefix+"enrol", http.StatusSeeOther)
			return
		}
		if err := p.svc.AuthorizeAdmin(r.Context(), pr); err != nil {
			if errors.Is(err, auth.ErrForbidden) {
				p.refuse(w, r, pr)
				return
			}
			p.renderError(w, r, err)
			return
		}
		h(w, &request{Request: r, admin: pr, st: st, dirty: changed})
	})
}

// toLogin sends the browser to the sign-in page; expired says a sign-in
// existed and has ended.
func (p *panel) toLogin(w http.ResponseWriter, r *http.Request, expired bool) {
	target := Prefix + "login"
	if expired {
		target += "?expired=1"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// save writes st back, or logs why it could not (the page still works; the
// next request signs in again).
func (p *panel) save(w http.ResponseWriter, r *http.Request, st state) {
	if err := p.writeState(w, r, st); err != nil {
		p.logger.ErrorContext(r.Context(), "admin ui: write cookie", "request_id", webui.RequestID(w), "err", err)
	}
}

// refuse ends the sign-in of someone who is not an administrator and
// shows them a refusal that names nothing but themself.
func (p *panel) refuse(w http.ResponseWriter, r *http.Request, pr auth.Principal) {
	if err := p.svc.Logout(r.Context(), pr, p.opts.Meta(r)); err != nil {
		p.logger.WarnContext(r.Context(), "admin ui: sign out refused user", "request_id", webui.RequestID(w), "user_id", pr.User.ID, "err", err)
	}
	p.clearState(w, r)
	p.logger.WarnContext(r.Context(), "admin ui: not an administrator", "event", "admin_refused", "request_id", webui.RequestID(w), "user_id", pr.User.ID)
	p.renderPage(w, r, http.StatusForbidden, "refused", view{Title: "Not an administrator", Data: pr.User.Email})
}

package accountui

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/webui"
)

// state is what the pages' one cookie holds. The browser sees only an
// AES-GCM sealed blob: it can neither read a field nor change one. A
// sign-in is a twostep session like any other, referred to by its id (the
// cookie holds no token), so revoking it anywhere ends it here too.
type state struct {
	// Signed in: the browser's twostep session.
	SessionID string `json:"s,omitempty"`
	// Between the password (or phone code) and the second factor: the
	// challenge token and the methods it accepts; SentBy and SentTo say
	// where the last code went (sms or call, a masked number) and
	// ResendAt when another may be asked for.
	Challenge   string    `json:"c,omitempty"`
	ChallengeAt time.Time `json:"ca,omitempty"`
	Methods     []string  `json:"m,omitempty"`
	SentBy      string    `json:"sb,omitempty"`
	SentTo      string    `json:"st,omitempty"`
	ResendAt    time.Time `json:"ra,omitempty"`
	// A phone sign-in or sign-up waiting for its code: the number, and
	// PhoneSignup when the code creates the account.
	Phone       string `json:"p,omitempty"`
	PhoneSignup bool   `json:"ps,omitempty"`
	// PhoneUsername is the username of a phone sign-up, so that "send
	// again" can ask for a new code for the same sign-up.
	PhoneUsername string `json:"pu,omitempty"`
	// ReturnTo is the checked return_to of the sign-in in progress: where
	// /login/continue sends the browser, with a one-time code.
	ReturnTo string `json:"rt,omitempty"`
	// CodeChallenge is the application's S256 PKCE challenge that came
	// with ReturnTo, if any: the one-time code is bound to it.
	CodeChallenge string `json:"cc,omitempty"`
	// Flash is a message for the next page shown (after a redirect).
	Flash *flash `json:"f,omitempty"`
	// Expires ends everything above, whatever the session says.
	Expires time.Time `json:"x"`
}

// flash is a one-time message: Kind is "ok", "warn" or "error".
type flash = webui.Flash

// pendingTTL bounds a cookie that holds no sign-in yet (a challenge, a phone
// code or a return_to): a little over the challenge's and the code's life.
const pendingTTL = 10 * time.Minute

// readState opens the request's cookie; ok is false when there is none, it
// does not open, or it has expired.
func (s *site) readState(r *http.Request) (state, bool) {
	var st state
	if !s.cookie.Read(r, &st) || !s.now().Before(st.Expires) {
		return state{}, false
	}
	return st, true
}

// writeState seals st into the cookie, which expires with st, or removes
// the cookie when st holds nothing. It must run before the status is
// written.
func (s *site) writeState(w http.ResponseWriter, r *http.Request, st state) error {
	if st.empty() {
		s.clearState(w, r)
		return nil
	}
	return s.cookie.Write(w, r, st, st.Expires)
}

// clearState removes the cookie.
func (s *site) clearState(w http.ResponseWriter, r *http.Request) {
	s.cookie.Clear(w, r)
}

func (st state) empty() bool {
	return st.SessionID == "" && st.Challenge == "" && st.Phone == "" && st.ReturnTo == "" && st.CodeChallenge == "" && st.Flash == nil
}

// clearPending drops a half-done sign-in (challenge or phone code).
func (st *state) clearPending() {
	st.Challenge, st.ChallengeAt, st.Methods, st.SentBy, st.SentTo, st.ResendAt = "", time.Time{}, nil, "", "", time.Time{}
	st.Phone, st.PhoneSignup, st.PhoneUsername = "", false, ""
}

// request is one page request with its cookie state, and the principal
// when the page needs a sign-in.
type request struct {
	*http.Request
	st    state
	dirty bool // st must be written back
	p     auth.Principal
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

// page wraps a page that anyone may see, with the cookie's state if any.
func (s *site) page(h func(w http.ResponseWriter, q *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := s.readState(r)
		h(w, &request{Request: r, st: st})
	})
}

// errSignedOut means the request carries no live sign-in.
var errSignedOut = errors.New("not signed in")

// principal returns the principal of the cookie's sign-in; errSignedOut
// when there is none or it has ended.
func (s *site) principal(q *request) (auth.Principal, error) {
	if q.st.SessionID == "" {
		return auth.Principal{}, errSignedOut
	}
	p, err := s.svc.SessionPrincipal(q.Context(), q.st.SessionID)
	if errors.Is(err, auth.ErrUnauthorized) {
		return auth.Principal{}, errSignedOut
	}
	return p, err
}

// user wraps a page that needs a sign-in. Anyone else is sent to sign in;
// a session that may only enrol a second factor reaches only the pages
// marked enrolOK and is sent to the security page from the others.
func (s *site) user(enrolOK bool, h func(w http.ResponseWriter, q *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := s.readState(r)
		q := &request{Request: r, st: st}
		p, err := s.principal(q)
		if errors.Is(err, errSignedOut) {
			if q.st.SessionID != "" {
				q.st = state{}
				q.setFlash("warn", "Your sign-in has ended. Sign in again.")
			}
			s.redirect(w, q, pathLogin)
			return
		}
		if err != nil {
			s.renderError(w, r, err)
			return
		}
		if p.Session.EnrollmentOnly && !enrolOK {
			s.redirect(w, q, pathSecurity)
			return
		}
		q.p = p
		h(w, q)
	})
}

// startSession signs the browser in with the session of tokens (a
// finished login). The pending sign-in is dropped; ReturnTo is kept.
func (s *site) startSession(q *request, tokens auth.Tokens) (auth.Principal, error) {
	p, err := s.svc.Authenticate(q.Context(), tokens.AccessToken)
	if err != nil {
		return auth.Principal{}, fmt.Errorf("account ui: new session: %w", err)
	}
	q.st.clearPending()
	q.st.SessionID = p.Session.ID
	q.st.Expires = s.now().Add(s.opts.SessionTTL)
	q.dirty = true
	return p, nil
}

// save writes st back, or logs why it could not (the page still works; the
// next request signs in again).
func (s *site) save(w http.ResponseWriter, q *request) {
	if !q.dirty {
		return
	}
	if q.st.SessionID == "" && !q.st.empty() {
		// Nothing signed in: only a half-done sign-in, which expires soon.
		if until := s.now().Add(pendingTTL); q.st.Expires.IsZero() || q.st.Expires.After(until) {
			q.st.Expires = until
		}
	}
	if err := s.writeState(w, q.Request, q.st); err != nil {
		s.logger.ErrorContext(q.Context(), "account ui: write cookie", "request_id", webui.RequestID(w), "err", err)
	}
	q.dirty = false
}

// redirect answers with 303 See Other, writing the cookie back first when
// it changed.
func (s *site) redirect(w http.ResponseWriter, q *request, target string) {
	s.save(w, q)
	http.Redirect(w, q.Request, target, http.StatusSeeOther)
}

// meta is the request's client address and user agent.
func (s *site) meta(r *http.Request) auth.RequestMeta { return s.opts.Meta(r) }

package accountui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/webui"
)

// loginView is the sign-in page.
type loginView struct {
	Login string
	// ReturnHost is where the sign-in will go back to; Refused says a
	// return_to was given and is not allowed.
	ReturnHost string
	Refused    bool
	Offer      auth.Offer
}

// handleLoginPage shows the sign-in form. A return_to on the allow-list is
// kept for the end of the sign-in; a browser that is already signed in is
// handed back to it at once.
func (s *site) handleLoginPage(w http.ResponseWriter, q *request) {
	raw := q.URL.Query().Get("return_to")
	target, allowed := s.returns.match(raw)
	refused := raw != "" && !allowed
	if refused {
		s.logger.WarnContext(q.Context(), "return_to refused", "event", "return_to_refused", "request_id", webui.RequestID(w))
	}
	challenge, ok := codeChallenge(q.URL.Query())
	if !ok {
		// A sign-in link with a malformed PKCE challenge is refused like
		// a bad return_to: its code could never be exchanged.
		s.logger.WarnContext(q.Context(), "code_challenge refused", "event", "code_challenge_refused", "request_id", webui.RequestID(w))
		refused, allowed = true, false
	}
	if !allowed {
		challenge = ""
	}
	p, err := s.principal(q)
	switch {
	case err == nil:
		q.p = p
		if refused {
			s.render(w, q, http.StatusBadRequest, "message", view{Title: "This link cannot be used",
				Data: "The page that sent you here asked to continue to an address this server does not allow, so you were not sent anywhere."})
			return
		}
		if allowed && !p.Session.EnrollmentOnly {
			s.handOff(w, q, target, challenge, false)
			return
		}
		if allowed {
			q.st.ReturnTo, q.st.CodeChallenge, q.dirty = target.String(), challenge, true
		}
		s.redirect(w, q, pathSecurity)
		return
	case !errors.Is(err, errSignedOut):
		s.renderError(w, q.Request, err)
		return
	}
	// Signed out: a new sign-in starts here, forgetting any half-done one.
	next := ""
	if allowed {
		next = target.String()
	}
	if q.st.SessionID != "" || q.st.Challenge != "" || q.st.Phone != "" || q.st.ReturnTo != next || q.st.CodeChallenge != challenge {
		f := q.st.Flash
		q.st = state{ReturnTo: next, CodeChallenge: challenge, Flash: f}
		q.dirty = true
	}
	s.renderLogin(w, q, http.StatusOK, loginView{Refused: refused}, "", nil)
}

func (s *site) renderLogin(w http.ResponseWriter, q *request, status int, v loginView, errText string, fields map[string]string) {
	if u, err := url.Parse(q.st.ReturnTo); err == nil && q.st.ReturnTo != "" {
		v.ReturnHost = u.Host
	}
	v.Offer = s.svc.Offer(q.Context())
	s.render(w, q, status, "login", view{Title: "Sign in", Error: errText, Fields: fields, Data: v})
}

// handleLogin checks the password: the browser is signed in, or goes on to
// the second step.
func (s *site) handleLogin(w http.ResponseWriter, q *request) {
	login := strings.TrimSpace(q.PostFormValue("login"))
	res, err := s.svc.Login(q.Context(), auth.LoginInput{Login: login, Password: q.PostFormValue("password")}, s.meta(q.Request))
	if err != nil {
		status, text, fields, ok := userError(err)
		if !ok {
			s.renderError(w, q.Request, err)
			return
		}
		switch {
		case errors.Is(err, auth.ErrRateLimited):
			text = "Too many failed sign-ins. Try again in " + waitText(err) + "."
		case errors.Is(err, auth.ErrInvalidRequest):
			text, fields = "Enter your email or username.", map[string]string{"login": "Enter your email or username."}
		}
		s.renderLogin(w, q, status, loginView{Login: login}, text, fields)
		return
	}
	s.afterFirstStep(w, q, res)
}

// afterFirstStep goes on from a password or phone-code step: to the second
// step when the account has one (sending a text at once when that is its
// first method), or into the account.
func (s *site) afterFirstStep(w http.ResponseWriter, q *request, res auth.LoginResult) {
	if res.Challenge == nil {
		p, err := s.startSession(q, *res.Tokens)
		if err != nil {
			s.renderError(w, q.Request, err)
			return
		}
		s.finish(w, q, p)
		return
	}
	q.st.clearPending()
	q.st.Challenge, q.st.ChallengeAt, q.st.Methods = res.Challenge.Token, s.now(), res.Challenge.Methods
	q.dirty = true
	if len(res.Challenge.Methods) > 0 && res.Challenge.Methods[0] == auth.MethodSMS {
		if err := s.sendCode(q, auth.MethodSMS); err != nil {
			_, text, _, ok := userError(err)
			if !ok {
				s.renderError(w, q.Request, err)
				return
			}
			q.setFlash("error", text)
		}
	}
	s.redirect(w, q, pathLogin+"/verify")
}

// finish ends a sign-in: back to the application when one asked, or to the
// security page, where a session that must enrol a second factor starts.
func (s *site) finish(w http.ResponseWriter, q *request, p auth.Principal) {
	switch {
	case p.Session.EnrollmentOnly:
		q.setFlash("warn", "Your account must use two-step verification. Set up a method to continue.")
		s.redirect(w, q, pathSecurity)
	case q.st.ReturnTo != "":
		// Not straight to the application: a browser enforcing the CSP's
		// form-action 'self' would block a redirect off this site that
		// answers a form. /login/continue is a plain GET.
		s.redirect(w, q, pathLogin+"/continue")
	default:
		s.redirect(w, q, pathSecurity)
	}
}

// continueView is the page that sends the browser back to the application.
type continueView struct {
	Target string
	Host   string
}

// handleContinue spends the sign-in's return_to: a one-time code for the
// application and a page that goes there.
func (s *site) handleContinue(w http.ResponseWriter, q *request) {
	target, ok := s.returns.match(q.st.ReturnTo)
	if !ok {
		s.redirect(w, q, pathSecurity)
		return
	}
	s.handOff(w, q, target, q.st.CodeChallenge, true)
}

// handOff sends the browser to target with a new one-time code, bound to
// the PKCE challenge when there is one: by a redirect, or (page) by a page
// that goes there by itself.
func (s *site) handOff(w http.ResponseWriter, q *request, target *url.URL, challenge string, page bool) {
	code, err := s.svc.CreateHandoff(q.Context(), q.p, challenge)
	if err != nil {
		s.renderError(w, q.Request, err)
		return
	}
	if q.st.ReturnTo != "" || q.st.CodeChallenge != "" {
		q.st.ReturnTo, q.st.CodeChallenge, q.dirty = "", "", true
	}
	dest := withCode(target, code)
	if !page {
		s.redirect(w, q, dest)
		return
	}
	s.render(w, q, http.StatusOK, "continue", view{Title: "Signed in", Data: continueView{Target: dest, Host: target.Host}})
}

// verifyView is the second step.
type verifyView struct {
	Method  string // the method the form is for
	Methods []string
	SentBy  string // sms or call, once a code was sent
	SentTo  string
	// ResendIn is how many seconds until another code may be sent.
	ResendIn  int
	ExpiresIn string
}

// has reports whether the challenge accepts method.
func (v verifyView) Has(method string) bool { return slices.Contains(v.Methods, method) }

// handleVerifyPage shows the second step for ?method= (default: the
// method a code was sent by, or the account's first).
func (s *site) handleVerifyPage(w http.ResponseWriter, q *request) {
	if q.st.Challenge == "" {
		s.challengeGone(w, q, false)
		return
	}
	s.renderVerify(w, q, http.StatusOK, q.URL.Query().Get("method"), "")
}

// verifyFailed shows the code page again with err when it is the user's
// to act on, and the error page otherwise.
func (s *site) verifyFailed(w http.ResponseWriter, q *request, method string, err error) {
	status, text, _, ok := userError(err)
	if !ok {
		s.renderError(w, q.Request, err)
		return
	}
	s.renderVerify(w, q, status, method, text)
}

func (s *site) renderVerify(w http.ResponseWriter, q *request, status int, method, errText string) {
	st := q.st
	if !slices.Contains(st.Methods, method) {
		method = st.SentBy
		if method == "" && len(st.Methods) > 0 {
			method = st.Methods[0]
		}
	}
	v := verifyView{Method: method, Methods: st.Methods, SentBy: st.SentBy, SentTo: st.SentTo}
	if wait := st.ResendAt.Sub(s.now()); wait > 0 {
		v.ResendIn = int((wait + time.Second - 1) / time.Second)
	}
	if left := st.ChallengeAt.Add(s.svc.Config().ChallengeTTL).Sub(s.now()); left > 0 {
		v.ExpiresIn = duration(left)
	}
	var fields map[string]string
	if errText != "" {
		fields = map[string]string{"code": errText}
	}
	s.render(w, q, status, "verify", view{Title: "Two-step verification", Error: errText, Fields: fields, Data: v})
}

// challengeGone sends the browser back to the password step after the
// challenge expired, ran out of attempts or was never there.
func (s *site) challengeGone(w http.ResponseWriter, q *request, died bool) {
	if _, err := s.principal(q); err == nil {
		s.redirect(w, q, pathSecurity)
		return
	}
	switch {
	case !died:
		q.setFlash("warn", "There is no sign-in in progress. Enter your password to start one.")
	case !s.now().Before(q.st.ChallengeAt.Add(s.svc.Config().ChallengeTTL)):
		q.setFlash("warn", "Your sign-in expired after "+duration(s.svc.Config().ChallengeTTL)+". Enter your password again.")
	default:
		q.setFlash("error", "Too many wrong codes for this sign-in. Enter your password again.")
	}
	q.st.clearPending()
	q.dirty = true
	s.redirect(w, q, pathLogin)
}

// sendCode sends a sign-in code by sms or call and notes where it went.
func (s *site) sendCode(q *request, method string) error {
	res, err := s.svc.Authorize(q.Context(), q.st.Challenge, method, s.meta(q.Request))
	if err != nil {
		return err
	}
	again := q.st.SentBy != ""
	q.st.SentBy, q.st.SentTo, q.st.ResendAt = res.Method, res.To, s.now().Add(res.RetryAfter)
	q.dirty = true
	if again {
		// The page says where the code went; say that it is a new one.
		q.setFlash("ok", "We sent a new code. Only the newest code works.")
	}
	return nil
}

// handleSend sends (or sends again) a code by text or call.
func (s *site) handleSend(w http.ResponseWriter, q *request) {
	if q.st.Challenge == "" {
		s.challengeGone(w, q, false)
		return
	}
	method := q.PostFormValue("method")
	if method != auth.MethodSMS && method != auth.MethodCall {
		method = auth.MethodSMS
	}
	err := s.sendCode(q, method)
	switch {
	case err == nil:
		s.redirect(w, q, pathLogin+"/verify?method="+method)
	case errors.Is(err, auth.ErrChallengeExpired), errors.Is(err, auth.ErrUnauthorized):
		s.challengeGone(w, q, true)
	case errors.Is(err, auth.ErrRateLimited):
		var rl *auth.RateLimitError
		errors.As(err, &rl)
		q.st.ResendAt, q.dirty = s.now().Add(rl.RetryAfter), true
		text := "A code was sent moments ago. You can ask for another in " + waitText(err) + "."
		if rl.RetryAfter > time.Minute {
			text = "Too many codes were sent to this phone. Try again in " + waitText(err) + ", or use another method."
		}
		s.renderVerify(w, q, http.StatusTooManyRequests, method, text)
	default:
		s.verifyFailed(w, q, method, err)
	}
}

// handleVerify checks the second-factor code and finishes the sign-in.
func (s *site) handleVerify(w http.ResponseWriter, q *request) {
	if q.st.Challenge == "" {
		s.challengeGone(w, q, false)
		return
	}
	method := q.PostFormValue("method")
	if !slices.Contains(q.st.Methods, method) {
		method = ""
	}
	code := q.PostFormValue("code")
	var tokens auth.Tokens
	remaining := -1
	var err error
	if method == auth.MethodBackup {
		var res auth.RecoverResult
		res, err = s.svc.Recover(q.Context(), q.st.Challenge, code, s.meta(q.Request))
		tokens, remaining = res.Tokens, res.Remaining
	} else {
		tokens, err = s.svc.VerifyChallenge(q.Context(), q.st.Challenge, method, code, s.meta(q.Request))
	}
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrChallengeExpired), errors.Is(err, auth.ErrUnauthorized):
		s.challengeGone(w, q, true)
		return
	case errors.Is(err, auth.ErrRateLimited):
		s.renderVerify(w, q, http.StatusTooManyRequests, method, fmt.Sprintf(codeLocked, waitText(err)))
		return
	case errors.Is(err, auth.ErrInvalidCode):
		text := "That code is not right. Check it and try again."
		if method == auth.MethodBackup {
			text = "That backup code is not right, or it was used already."
		}
		s.renderVerify(w, q, http.StatusUnauthorized, method, text)
		return
	default:
		s.verifyFailed(w, q, method, err)
		return
	}
	p, err := s.startSession(q, tokens)
	if err != nil {
		s.renderError(w, q.Request, err)
		return
	}
	if remaining >= 0 {
		kind := "ok"
		if remaining <= 3 {
			kind = "warn"
		}
		q.setFlash(kind, "You used a backup code: "+plural(remaining, "backup code", "backup codes")+" left.")
	}
	s.finish(w, q, p)
}

// phoneView is the phone sign-in (or sign-up) code page.
type phoneView struct {
	Phone    string // typed number, to show again
	SentTo   string // masked number the code went to
	Signup   bool
	Username string // a phone sign-up's username, for "send again"
}

// handlePhonePage asks for the phone number of a phone sign-in.
func (s *site) handlePhonePage(w http.ResponseWriter, q *request) {
	if !s.svc.Offer(q.Context()).PhoneSignUp {
		s.handleNotFound(w, q.Request)
		return
	}
	s.render(w, q, http.StatusOK, "phone", view{Title: "Sign in with your phone", Data: phoneView{}})
}

// handlePhoneSignIn texts a sign-in code to the number (when it belongs to
// an account; the answer is the same either way).
func (s *site) handlePhoneSignIn(w http.ResponseWriter, q *request) {
	phone := strings.TrimSpace(q.PostFormValue("phone"))
	e164, err := auth.NormalizePhone(phone)
	if err == nil {
		err = s.svc.PhoneSignIn(q.Context(), e164, s.meta(q.Request))
	}
	if err != nil {
		status, text, fields, ok := userError(err)
		if !ok {
			s.renderError(w, q.Request, err)
			return
		}
		if q.st.Phone != "" {
			s.renderPhoneVerify(w, q, status, text)
			return
		}
		s.render(w, q, status, "phone", view{Title: "Sign in with your phone", Error: text, Fields: fields, Data: phoneView{Phone: phone}})
		return
	}
	q.st.clearPending()
	q.st.Phone = e164
	q.setFlash("ok", "If "+auth.MaskPhone(e164)+" belongs to an account, we sent it a code.")
	s.redirect(w, q, pathLogin+"/phone/verify")
}

// handlePhoneVerifyPage asks for the code of a phone sign-in or sign-up.
func (s *site) handlePhoneVerifyPage(w http.ResponseWriter, q *request) {
	if q.st.Phone == "" {
		s.challengeGone(w, q, false)
		return
	}
	s.renderPhoneVerify(w, q, http.StatusOK, "")
}

func (s *site) renderPhoneVerify(w http.ResponseWriter, q *request, status int, errText string) {
	var fields map[string]string
	if errText != "" {
		fields = map[string]string{"code": errText}
	}
	s.render(w, q, status, "phone_verify", view{Title: "Enter the code", Error: errText, Fields: fields,
		Data: phoneView{Phone: q.st.Phone, SentTo: auth.MaskPhone(q.st.Phone), Signup: q.st.PhoneSignup, Username: q.st.PhoneUsername}})
}

// handlePhoneVerify checks the code: the account is confirmed and signed
// in, or goes on to its second step.
func (s *site) handlePhoneVerify(w http.ResponseWriter, q *request) {
	if q.st.Phone == "" {
		s.challengeGone(w, q, false)
		return
	}
	res, err := s.svc.PhoneVerify(q.Context(), q.st.Phone, q.PostFormValue("code"), s.meta(q.Request))
	if err != nil {
		status, text, ok := codeError(err, codeWait)
		if !ok {
			s.renderError(w, q.Request, err)
			return
		}
		s.renderPhoneVerify(w, q, status, text)
		return
	}
	s.afterFirstStep(w, q, res)
}

// handleLogout ends the browser's sign-in.
func (s *site) handleLogout(w http.ResponseWriter, q *request) {
	if p, err := s.principal(q); err == nil {
		if err := s.svc.Logout(q.Context(), p, s.meta(q.Request)); err != nil {
			s.renderError(w, q.Request, err)
			return
		}
	}
	q.st = state{}
	q.setFlash("ok", "You are signed out.")
	s.redirect(w, q, pathLogin)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

package adminui

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/totp"
	"github.com/twostep-auth/twostep/internal/webui"
)

// loginView is the data of the sign-in page.
type loginView struct {
	Email string
	Error string
}

// notices are the messages a redirect to the sign-in page may ask for. Only
// these fixed texts can appear, whatever the query says.
var notices = map[string]string{
	"expired":    "Your sign-in has ended. Sign in again.",
	"signed_out": "You are signed out.",
	"lost": "Sign in again. (The panel keeps your sign-in in a Secure cookie, " +
		"which browsers keep only over HTTPS or on localhost.)",
}

func notice(r *http.Request) string {
	for k, text := range notices {
		if r.URL.Query().Has(k) {
			return text
		}
	}
	return ""
}

func (p *panel) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if st, ok := p.readState(r); ok && st.Access != "" {
		http.Redirect(w, r, Prefix+"users", http.StatusSeeOther)
		return
	}
	p.renderPage(w, r, http.StatusOK, "login", view{Title: "Sign in", Notice: notice(r), Data: loginView{}})
}

// handleLogin is the password step.
func (p *panel) handleLogin(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(r.PostFormValue("email"))
	res, err := p.svc.Login(r.Context(), auth.LoginInput{Login: email, Password: r.PostFormValue("password")}, p.opts.Meta(r))
	if err != nil {
		status, text := http.StatusUnauthorized, "The email or password is not right."
		switch {
		case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrInvalidRequest):
		case errors.Is(err, auth.ErrRateLimited):
			status, text = http.StatusTooManyRequests, "Too many failed attempts. Try again in "+waitText(err)+"."
		case errors.Is(err, auth.ErrForbidden):
			status, text = http.StatusForbidden, "This account is disabled."
		default:
			p.renderError(w, r, err)
			return
		}
		p.renderPage(w, r, status, "login", view{Title: "Sign in", Data: loginView{Email: email, Error: text}})
		return
	}
	st := state{Expires: p.now().Add(p.opts.SessionTTL)}
	if c := res.Challenge; c != nil {
		st.Challenge, st.Methods = c.Token, c.Methods
		if err := p.writeState(w, r, st); err != nil {
			p.renderError(w, r, err)
			return
		}
		http.Redirect(w, r, Prefix+"login/verify", http.StatusSeeOther)
		return
	}
	p.signedIn(w, r, st, *res.Tokens, nil)
}

// signedIn finishes a sign-in that produced tokens: an administrator goes
// on (to enrolment first when they must have a second factor and have
// none); anyone else is signed out again and refused.
func (p *panel) signedIn(w http.ResponseWriter, r *http.Request, st state, t auth.Tokens, f *flash) {
	st.Access, st.Refresh = t.AccessToken, t.RefreshToken
	st.Challenge, st.Methods, st.SentBy, st.SentTo = "", nil, "", ""
	pr, err := p.svc.Authenticate(r.Context(), st.Access)
	if err != nil {
		p.renderError(w, r, err)
		return
	}
	next := Prefix + "users"
	if pr.Session.EnrollmentOnly {
		if !pr.User.HasRole(auth.RoleAdmin) {
			p.refuse(w, r, pr)
			return
		}
		next = Prefix + "enrol"
	} else if err := p.svc.AuthorizeAdmin(r.Context(), pr); err != nil {
		if errors.Is(err, auth.ErrForbidden) {
			p.refuse(w, r, pr)
			return
		}
		p.renderError(w, r, err)
		return
	}
	st.Flash = f
	if err := p.writeState(w, r, st); err != nil {
		p.renderError(w, r, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// verifyView is the data of the second-factor page.
type verifyView struct {
	Authenticator bool // the account has an authenticator app
	Backup        bool // backup codes are accepted
	SMS, Call     bool // a code can be sent by text or call
	SentBy        string
	SentTo        string
	Error         string
}

func (p *panel) verifyView(st state, errText string) verifyView {
	return verifyView{
		Authenticator: slices.Contains(st.Methods, auth.MethodAuthenticator),
		Backup:        slices.Contains(st.Methods, auth.MethodBackup),
		SMS:           slices.Contains(st.Methods, auth.MethodSMS),
		Call:          slices.Contains(st.Methods, auth.MethodCall),
		SentBy:        st.SentBy, SentTo: st.SentTo, Error: errText,
	}
}

// challengeState returns the pending sign-in, or sends the browser back to
// the password step.
func (p *panel) challengeState(w http.ResponseWriter, r *http.Request) (state, bool) {
	st, ok := p.readState(r)
	if !ok || st.Challenge == "" {
		http.Redirect(w, r, Prefix+"login?lost=1", http.StatusSeeOther)
		return state{}, false
	}
	return st, true
}

func (p *panel) handleVerifyPage(w http.ResponseWriter, r *http.Request) {
	st, ok := p.challengeState(w, r)
	if !ok {
		return
	}
	p.renderPage(w, r, http.StatusOK, "verify", view{Title: "Two-step verification", Data: p.verifyView(st, "")})
}

// handleVerify is the second-factor step: an authenticator or phone code,
// or a backup code (anything longer than 8 characters).
func (p *panel) handleVerify(w http.ResponseWriter, r *http.Request) {
	st, ok := p.challengeState(w, r)
	if !ok {
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	compact := strings.NewReplacer(" ", "", "-", "").Replace(code)
	var t auth.Tokens
	var f *flash
	var err error
	if len(compact) > 8 {
		var res auth.RecoverResult
		res, err = p.svc.Recover(r.Context(), st.Challenge, code, p.opts.Meta(r))
		t = res.Tokens
		kind := "ok"
		if res.Remaining <= 3 {
			kind = "warn"
		}
		f = &flash{Kind: kind, Text: "Signed in with a backup code. " + remainingText(res.Remaining)}
	} else {
		method := st.SentBy
		if method == "" {
			method = auth.MethodAuthenticator
			if !slices.Contains(st.Methods, method) && slices.Contains(st.Methods, auth.MethodSMS) {
				method = auth.MethodSMS
			}
		}
		t, err = p.svc.VerifyChallenge(r.Context(), st.Challenge, method, code, p.opts.Meta(r))
	}
	if err == nil {
		p.signedIn(w, r, st, t, f)
		return
	}
	status, text := 0, ""
	switch {
	case errors.Is(err, auth.ErrInvalidCode):
		status, text = http.StatusUnauthorized, "That code is not right. Use the newest code your app shows."
	case errors.Is(err, auth.ErrChallengeExpired), errors.Is(err, auth.ErrUnauthorized):
		p.clearState(w, r)
		p.toLogin(w, r, true)
		return
	case errors.Is(err, auth.ErrRateLimited):
		status, text = http.StatusTooManyRequests, "Too many wrong codes: the second factor is locked. Try again in "+waitText(err)+"."
	case errors.Is(err, auth.ErrInvalidRequest):
		status, text = http.StatusBadRequest, "That code cannot be used here: "+problemText(problems(err))+"."
	case errors.Is(err, auth.ErrForbidden):
		status, text = http.StatusForbidden, "That method is turned off in the settings. Use another one."
	default:
		p.renderError(w, r, err)
		return
	}
	p.renderPage(w, r, status, "verify", view{Title: "Two-step verification", Data: p.verifyView(st, text)})
}

func remainingText(n int) string {
	switch n {
	case 0:
		return "It was your last one: generate a new set."
	case 1:
		return "You have 1 backup code left."
	}
	return "You have " + strconv.Itoa(n) + " backup codes left."
}

// handleSendCode sends a login code by text or call.
func (p *panel) handleSendCode(w http.ResponseWriter, r *http.Request) {
	st, ok := p.challengeState(w, r)
	if !ok {
		return
	}
	method := r.PostFormValue("method")
	if method != auth.MethodSMS && method != auth.MethodCall {
		method = auth.MethodSMS
	}
	res, err := p.svc.Authorize(r.Context(), st.Challenge, method, p.opts.Meta(r))
	if err != nil {
		status, text := 0, ""
		switch {
		case errors.Is(err, auth.ErrChallengeExpired), errors.Is(err, auth.ErrUnauthorized):
			p.clearState(w, r)
			p.toLogin(w, r, true)
			return
		case errors.Is(err, auth.ErrRateLimited):
			status, text = http.StatusTooManyRequests, "A code was sent a moment ago. Wait "+waitText(err)+" before asking for another."
		case errors.Is(err, auth.ErrSMSUnavailable):
			status, text = http.StatusServiceUnavailable, "The code could not be sent. Try again later, or use another method."
		case errors.Is(err, auth.ErrForbidden), errors.Is(err, auth.ErrInvalidRequest):
			status, text = http.StatusBadRequest, "Codes cannot be sent that way for this account."
		default:
			p.renderError(w, r, err)
			return
		}
		p.renderPage(w, r, status, "verify", view{Title: "Two-step verification", Data: p.verifyView(st, text)})
		return
	}
	st.SentBy, st.SentTo = res.Method, res.To
	if err := p.writeState(w, r, st); err != nil {
		p.renderError(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"login/verify", http.StatusSeeOther)
}

// enrolView is the data of the enrolment pages.
type enrolView struct {
	QRCode template.URL // data: URI made here; empty before enrolment starts
	Secret string       // base32, in groups of four
	Error  string
}

// enrolling returns the sign-in of an administrator who must enrol a
// second factor. Anyone else is sent where they belong (and false).
func (p *panel) enrolling(w http.ResponseWriter, r *http.Request) (auth.Principal, state, bool) {
	st, ok := p.readState(r)
	if !ok || st.Access == "" {
		p.toLogin(w, r, ok)
		return auth.Principal{}, state{}, false
	}
	pr, changed, err := p.principal(r.Context(), r, &st)
	if errors.Is(err, errSignedOut) {
		p.clearState(w, r)
		p.toLogin(w, r, true)
		return auth.Principal{}, state{}, false
	}
	if err != nil {
		p.renderError(w, r, err)
		return auth.Principal{}, state{}, false
	}
	if !pr.User.HasRole(auth.RoleAdmin) {
		p.refuse(w, r, pr)
		return auth.Principal{}, state{}, false
	}
	if changed {
		p.save(w, r, st)
	}
	if !pr.Session.EnrollmentOnly {
		http.Redirect(w, r, Prefix+"users", http.StatusSeeOther)
		return auth.Principal{}, state{}, false
	}
	return pr, st, true
}

func (p *panel) handleEnrolPage(w http.ResponseWriter, r *http.Request) {
	_, st, ok := p.enrolling(w, r)
	if !ok {
		return
	}
	p.renderEnrol(w, r, http.StatusOK, st, "")
}

// renderEnrol shows the enrolment intro, or the QR code of the enrolment
// under way.
func (p *panel) renderEnrol(w http.ResponseWriter, r *http.Request, status int, st state, errText string) {
	v := enrolView{Error: errText}
	if st.EnrolURI != "" {
		u, err := url.Parse(st.EnrolURI)
		if err != nil {
			p.renderError(w, r, err)
			return
		}
		png, err := totp.QRCodePNG(st.EnrolURI, 220)
		if err != nil {
			p.renderError(w, r, err)
			return
		}
		v.QRCode, v.Secret = template.URL(totp.DataURI(png)), webui.GroupsOfFour(u.Query().Get("secret"))
	}
	p.renderPage(w, r, status, "enrol", view{Title: "Set up two-step verification", Data: v})
}

// handleEnrolStart makes a new authenticator secret.
func (p *panel) handleEnrolStart(w http.ResponseWriter, r *http.Request) {
	pr, st, ok := p.enrolling(w, r)
	if !ok {
		return
	}
	enr, err := p.svc.EnableAuthenticator(r.Context(), pr, "", "", p.opts.Meta(r))
	if err != nil {
		if errors.Is(err, auth.ErrForbidden) {
			p.renderEnrol(w, r, http.StatusForbidden, st,
				"Authenticator apps are turned off in the settings. Enrol a phone through the API instead, or ask another administrator to turn them on.")
			return
		}
		p.renderError(w, r, err)
		return
	}
	st.EnrolURI = enr.OTPAuthURL
	if err := p.writeState(w, r, st); err != nil {
		p.renderError(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"enrol", http.StatusSeeOther)
}

// backupCodesView is the data of the page that shows new backup codes.
type backupCodesView struct {
	Codes []string
}

// handleEnrolConfirm confirms the authenticator with a code from it and
// shows the backup codes, once.
func (p *panel) handleEnrolConfirm(w http.ResponseWriter, r *http.Request) {
	pr, st, ok := p.enrolling(w, r)
	if !ok {
		return
	}
	res, err := p.svc.ConfirmEnrollment(r.Context(), pr, auth.MethodAuthenticator, strings.TrimSpace(r.PostFormValue("code")), p.opts.Meta(r))
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrInvalidCode):
		p.renderEnrol(w, r, http.StatusUnauthorized, st, "That code is not right. Check that your phone's clock is set automatically and enter the newest code.")
		return
	case errors.Is(err, auth.ErrRateLimited):
		p.renderEnrol(w, r, http.StatusTooManyRequests, st, "Too many wrong codes. Try again in "+waitText(err)+".")
		return
	case errors.Is(err, auth.ErrInvalidRequest):
		st.EnrolURI = ""
		p.save(w, r, st)
		p.renderEnrol(w, r, http.StatusBadRequest, st, "That set-up is no longer in progress. Start again.")
		return
	default:
		p.renderError(w, r, err)
		return
	}
	st.EnrolURI = ""
	if err := p.writeState(w, r, st); err != nil {
		p.renderError(w, r, err)
		return
	}
	p.renderPage(w, r, http.StatusOK, "backup_codes", view{Title: "Save your backup codes", Data: backupCodesView{Codes: res.BackupCodes}})
}

// handleLogout ends the twostep session and removes the cookie.
func (p *panel) handleLogout(w http.ResponseWriter, r *http.Request) {
	if st, ok := p.readState(r); ok && st.Access != "" {
		pr, _, err := p.principal(r.Context(), r, &st)
		if err == nil {
			err = p.svc.Logout(r.Context(), pr, p.opts.Meta(r))
		}
		if err != nil && !errors.Is(err, errSignedOut) {
			p.logger.WarnContext(r.Context(), "admin ui: sign out", "request_id", webui.RequestID(w), "err", err)
		}
	}
	p.clearState(w, r)
	http.Redirect(w, r, Prefix+"login?signed_out=1", http.StatusSeeOther)
}

package accountui

import (
	"errors"
	"net/http"
	"strings"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/password"
)

// signupView is the sign-up page: by email and password, and by username
// and phone when phone sign-up is on.
type signupView struct {
	Email, Username     string
	PhoneUsername       string
	Phone               string
	PhoneSignUp         bool
	MinPasswordLength   int
	PhoneFormHasProblem bool
}

// handleSignupPage shows the sign-up forms.
func (s *site) handleSignupPage(w http.ResponseWriter, q *request) {
	if _, err := s.principal(q); err == nil {
		s.redirect(w, q, pathSecurity)
		return
	}
	s.renderSignup(w, q, http.StatusOK, signupView{}, "", nil)
}

func (s *site) renderSignup(w http.ResponseWriter, q *request, status int, v signupView, errText string, fields map[string]string) {
	v.PhoneSignUp = s.svc.Offer(q.Context()).PhoneSignUp
	v.MinPasswordLength = password.MinLength
	s.render(w, q, status, "signup", view{Title: "Create an account", Error: errText, Fields: fields, Data: v})
}

// handleSignup creates an account with email and password and signs the
// browser in.
func (s *site) handleSignup(w http.ResponseWriter, q *request) {
	v := signupView{Email: strings.TrimSpace(q.PostFormValue("email")), Username: strings.TrimSpace(q.PostFormValue("username"))}
	pw := q.PostFormValue("password")
	_, err := s.svc.Register(q.Context(), auth.RegisterInput{Email: v.Email, Username: v.Username, Password: pw}, s.meta(q.Request))
	if err != nil {
		s.signupFailed(w, q, v, err, "")
		return
	}
	res, err := s.svc.Login(q.Context(), auth.LoginInput{Login: v.Email, Password: pw}, s.meta(q.Request))
	if err != nil {
		s.renderError(w, q.Request, err)
		return
	}
	q.st.clearPending()
	q.setFlash("ok", "Your account is ready. Turn on two-step verification to protect it.")
	s.afterFirstStep(w, q, res)
}

// handlePhoneSignup starts an account with a username and a phone: the
// code texted to the phone confirms it.
func (s *site) handlePhoneSignup(w http.ResponseWriter, q *request) {
	v := signupView{PhoneUsername: strings.TrimSpace(q.PostFormValue("username")), Phone: strings.TrimSpace(q.PostFormValue("phone"))}
	if !s.svc.Offer(q.Context()).PhoneSignUp {
		s.handleNotFound(w, q.Request)
		return
	}
	e164, err := auth.NormalizePhone(v.Phone)
	if err == nil {
		err = s.svc.PhoneSignUp(q.Context(), v.PhoneUsername, e164, s.meta(q.Request))
	}
	resend := q.st.PhoneSignup && q.st.Phone == e164 && q.st.PhoneUsername == v.PhoneUsername
	if err != nil {
		if status, text, _, ok := userError(err); ok && resend {
			// "Send again" from the code page: say why there.
			if errors.Is(err, auth.ErrRateLimited) {
				text = "Wait " + waitText(err) + " before asking for another code."
			}
			s.renderPhoneVerify(w, q, status, text)
			return
		}
		v.PhoneFormHasProblem = true
		s.signupFailed(w, q, v, err, "phone_")
		return
	}
	q.st.clearPending()
	q.st.Phone, q.st.PhoneSignup, q.st.PhoneUsername = e164, true, v.PhoneUsername
	q.setFlash("ok", "We sent a code to "+auth.MaskPhone(e164)+".")
	s.redirect(w, q, pathLogin+"/phone/verify")
}

// signupFailed shows the form again with what was wrong; prefix names the
// phone form's fields apart from the email form's.
func (s *site) signupFailed(w http.ResponseWriter, q *request, v signupView, err error, prefix string) {
	status, text, fields, ok := userError(err)
	if !ok {
		s.renderError(w, q.Request, err)
		return
	}
	if errors.Is(err, auth.ErrConflict) {
		text = "An account with this email or username exists already. Sign in instead, or choose another."
		if prefix != "" {
			text = "This username is taken. Choose another."
		}
		fields = map[string]string{"username": text}
		if prefix == "" && v.Username == "" {
			fields = map[string]string{"email": text}
		}
	}
	if errors.Is(err, auth.ErrRateLimited) {
		text = "Too many attempts from your network. Try again in " + waitText(err) + "."
	}
	prefixed := make(map[string]string, len(fields))
	for k, m := range fields {
		prefixed[prefix+k] = m
	}
	if len(prefixed) > 0 && text == "Check the highlighted fields." {
		text = problemText(prefixed)
	}
	s.renderSignup(w, q, status, v, text, prefixed)
}

package accountui

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/totp"
)

// securityView is the account security page.
type securityView struct {
	User           auth.User
	Status         auth.TwoFaStatus
	Offer          auth.Offer
	EnrollmentOnly bool
	PhoneMasked    string
	SignIns        []eventView
	Events         []eventView
	// ReturnHost is the application a pending sign-in goes back to.
	ReturnHost string
}

// handleSecurity shows the account's second factors, backup codes, phone,
// recent sign-ins and security events.
func (s *site) handleSecurity(w http.ResponseWriter, q *request) {
	st, err := s.svc.TwoFaStatus(q.Context(), q.p)
	if err != nil {
		s.renderError(w, q.Request, err)
		return
	}
	events, err := s.svc.RecentEvents(q.Context(), q.p, 100)
	if err != nil {
		s.renderError(w, q.Request, err)
		return
	}
	v := securityView{
		User: q.p.User, Status: st, Offer: s.svc.Offer(q.Context()), EnrollmentOnly: q.p.Session.EnrollmentOnly,
		PhoneMasked: auth.MaskPhone(q.p.User.Phone),
	}
	v.SignIns, v.Events = describeEvents(events, q.p.Session.ID)
	if u, err := url.Parse(q.st.ReturnTo); err == nil && q.st.ReturnTo != "" {
		v.ReturnHost = u.Host
	}
	s.render(w, q, http.StatusOK, "security", view{Title: "Account security", Wide: true, Data: v})
}

// sudoView is the "confirm it's you" prompt. It posts the original form
// again, with its fields, and a code.
type sudoView struct {
	Action           string // what the user was doing, in words
	Path             string
	Fields           []formField
	HasAuthenticator bool
	HasBackupCodes   bool
}

type formField struct{ Name, Value string }

// sudoActions names the actions that may need sudo, by path.
var sudoActions = map[string]string{
	pathSecurity + "/authenticator":  "add an authenticator app",
	pathSecurity + "/sms":            "add a phone for text messages",
	pathSecurity + "/methods/remove": "remove a verification method",
	pathSecurity + "/backup-codes":   "make new backup codes",
	pathSecurity + "/disable":        "turn off two-step verification",
	pathSecurity + "/phone":          "change your phone number",
}

// sudo wraps an action that may need a recent second factor. A sudo_code in
// the form is checked first (StepUp renews the session's sudo mode); when
// the action still answers ErrSudoRequired the prompt is shown, and it
// posts the same form again with a code. Other errors of the action go back
// to the security page as a message.
func (s *site) sudo(h func(w http.ResponseWriter, q *request) error) func(w http.ResponseWriter, q *request) {
	return func(w http.ResponseWriter, q *request) {
		if code := strings.TrimSpace(q.PostFormValue("sudo_code")); code != "" && !s.stepUp(w, q, code) {
			return
		}
		err := h(w, q)
		switch {
		case err == nil:
		case errors.Is(err, auth.ErrSudoRequired):
			s.renderSudo(w, q, http.StatusForbidden, "")
		default:
			s.actionFailed(w, q, err)
		}
	}
}

// stepUp renews the session's sudo mode with a code typed at the prompt.
// When it cannot, it answers (the prompt again, or an error page) and
// reports false.
func (s *site) stepUp(w http.ResponseWriter, q *request, code string) bool {
	st, err := s.svc.TwoFaStatus(q.Context(), q.p)
	if err != nil {
		s.renderError(w, q.Request, err)
		return false
	}
	method := sudoMethod(code, st)
	if method == "" {
		s.renderSudo(w, q, http.StatusBadRequest, "Codes sent by text message cannot confirm this. Enter one of your backup codes, or sign out and sign in again.")
		return false
	}
	if _, _, err := s.svc.StepUp(q.Context(), q.p, method, code, s.meta(q.Request)); err != nil {
		status, text, ok := codeError(err, codeLocked)
		if !ok {
			s.renderError(w, q.Request, err)
			return false
		}
		s.renderSudo(w, q, status, text)
		return false
	}
	p, err := s.principal(q)
	if err != nil {
		s.renderError(w, q.Request, err)
		return false
	}
	q.p = p
	return true
}

// sudoMethod says how StepUp should read a code typed at the prompt: a long
// one is a backup code, a short one an authenticator code. "" means the
// user has no method that can prove it (codes by text only finish a
// sign-in).
func sudoMethod(code string, st auth.TwoFaStatus) string {
	if len(strings.NewReplacer(" ", "", "-", "").Replace(code)) > 8 {
		return auth.MethodBackup
	}
	for _, m := range st.Methods {
		if m.Method == auth.MethodAuthenticator {
			return auth.MethodAuthenticator
		}
	}
	return ""
}

func (s *site) renderSudo(w http.ResponseWriter, q *request, status int, errText string) {
	st, err := s.svc.TwoFaStatus(q.Context(), q.p)
	if err != nil {
		s.renderError(w, q.Request, err)
		return
	}
	v := sudoView{Action: sudoActions[q.URL.Path], Path: q.URL.Path, HasBackupCodes: st.BackupCodesRemaining > 0}
	if v.Action == "" {
		v.Action = "make this change"
	}
	for _, m := range st.Methods {
		if m.Method == auth.MethodAuthenticator {
			v.HasAuthenticator = true
		}
	}
	_ = q.ParseForm()
	for name, values := range q.PostForm {
		if name == "sudo_code" || len(values) == 0 {
			continue
		}
		v.Fields = append(v.Fields, formField{Name: name, Value: values[0]})
	}
	slices.SortFunc(v.Fields, func(a, b formField) int { return strings.Compare(a.Name, b.Name) })
	var fields map[string]string
	if errText != "" {
		fields = map[string]string{"sudo_code": errText}
	}
	s.render(w, q, status, "sudo", view{Title: "Confirm it is you", Error: errText, Fields: fields, Data: v})
}

// actionFailed reports an action's error on the security page.
func (s *site) actionFailed(w http.ResponseWriter, q *request, err error) {
	_, text, fields, ok := userError(err)
	if !ok {
		s.renderError(w, q.Request, err)
		return
	}
	if len(fields) > 0 && text == "Check the highlighted fields." {
		text = problemText(fields)
	}
	if errors.Is(err, auth.ErrRateLimited) {
		text = "Too many attempts. Try again in " + waitText(err) + "."
	}
	q.setFlash("error", text)
	s.redirect(w, q, pathSecurity)
}

// enrolView is the authenticator enrolment page.
type enrolView struct {
	QRCode template.URL // data:image/png;base64,… made by the server
	Secret string
	Label  string
	// Sealed carries the secret and its otpauth URI through a mistyped
	// code, sealed to the session, so the page can show the same QR code
	// again.
	Sealed string
}

// enrolment is what the sealed field of the enrolment form holds.
type enrolment struct {
	Secret string `json:"s"`
	URI    string `json:"u"`
	Label  string `json:"l"`
}

func enrolAAD(sessionID string) []byte { return []byte("twostep account ui enrolment v1 " + sessionID) }

// handleEnrolAuthenticator starts enrolling an authenticator app: the QR
// code, the secret as text, and a form for the first code.
func (s *site) handleEnrolAuthenticator(w http.ResponseWriter, q *request) error {
	label := strings.TrimSpace(q.PostFormValue("label"))
	en, err := s.svc.EnableAuthenticator(q.Context(), q.p, label, "", s.meta(q.Request))
	if err != nil {
		return err
	}
	if label == "" {
		label = "Authenticator"
	}
	raw, err := json.Marshal(enrolment{Secret: en.Secret, URI: en.OTPAuthURL, Label: label})
	if err != nil {
		return fmt.Errorf("account ui: encode enrolment: %w", err)
	}
	sealed, err := s.cookie.Keyring.Seal(raw, enrolAAD(q.p.Session.ID))
	if err != nil {
		return fmt.Errorf("account ui: seal enrolment: %w", err)
	}
	s.render(w, q, http.StatusOK, "enrol_authenticator", view{Title: "Set up an authenticator app", Data: enrolView{
		QRCode: template.URL(en.QRCode), Secret: en.Secret, Label: label, Sealed: base64.RawURLEncoding.EncodeToString(sealed),
	}})
	return nil
}

// handleConfirmAuthenticator checks the first code of the new
// authenticator; the first method turned on shows the backup codes.
func (s *site) handleConfirmAuthenticator(w http.ResponseWriter, q *request) {
	res, err := s.svc.ConfirmEnrollment(q.Context(), q.p, auth.MethodAuthenticator, q.PostFormValue("code"), s.meta(q.Request))
	if err == nil {
		s.enrolled(w, q, res, "Your authenticator app is set up.")
		return
	}
	status, text, ok := codeError(err, codeWait)
	if !ok {
		s.renderError(w, q.Request, err)
		return
	}
	en, ok := s.openEnrolment(q)
	if !ok || errors.Is(err, auth.ErrInvalidRequest) {
		// No enrolment in progress (or this page is stale): start again.
		s.actionFailed(w, q, err)
		return
	}
	png, qerr := totp.QRCodePNG(en.URI, 256)
	if qerr != nil {
		s.renderError(w, q.Request, qerr)
		return
	}
	s.render(w, q, status, "enrol_authenticator", view{Title: "Set up an authenticator app", Error: text,
		Fields: map[string]string{"code": text}, Data: enrolView{
			QRCode: template.URL(totp.DataURI(png)), Secret: en.Secret, Label: en.Label, Sealed: q.PostFormValue("enrolment"),
		}})
}

func (s *site) openEnrolment(q *request) (enrolment, bool) {
	sealed, err := base64.RawURLEncoding.DecodeString(q.PostFormValue("enrolment"))
	if err != nil {
		return enrolment{}, false
	}
	raw, err := s.cookie.Keyring.Open(sealed, enrolAAD(q.p.Session.ID))
	if err != nil {
		return enrolment{}, false
	}
	var en enrolment
	if err := json.Unmarshal(raw, &en); err != nil || en.URI == "" {
		return enrolment{}, false
	}
	return en, true
}

// enrolled ends an enrolment: the backup codes when this turned 2FA on,
// the security page otherwise.
func (s *site) enrolled(w http.ResponseWriter, q *request, res auth.ConfirmResult, text string) {
	if len(res.BackupCodes) > 0 {
		s.renderBackupCodes(w, q, res.BackupCodes, text+" Two-step verification is on.")
		return
	}
	q.setFlash("ok", text)
	s.redirect(w, q, pathSecurity)
}

// backupView shows a new set of backup codes, once.
type backupView struct {
	Codes []string
	// Download is a data: URL of the codes as a text file.
	Download template.URL
	// ReturnHost is the application a pending sign-in goes back to.
	ReturnHost string
}

func (s *site) renderBackupCodes(w http.ResponseWriter, q *request, codes []string, text string) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s backup codes\r\nEach code works once. Keep them somewhere safe.\r\n\r\n", s.opts.Name)
	for _, c := range codes {
		b.WriteString(c + "\r\n")
	}
	v := backupView{Codes: codes, Download: template.URL("data:text/plain;charset=utf-8," + url.PathEscape(b.String()))}
	if u, err := url.Parse(q.st.ReturnTo); err == nil && q.st.ReturnTo != "" {
		v.ReturnHost = u.Host
	}
	s.render(w, q, http.StatusOK, "backup_codes", view{Title: "Save your backup codes", Flash: &flash{Kind: "ok", Text: text}, Data: v})
}

// smsView is the page that confirms a phone with the code sent to it.
type smsView struct {
	SentTo string
	Phone  string // as typed, to send again
	Label  string
	Action string // where the code goes
}

// handleEnrolSMS sends a code to the phone to enrol for text messages.
func (s *site) handleEnrolSMS(w http.ResponseWriter, q *request) error {
	phone, label := strings.TrimSpace(q.PostFormValue("phone")), strings.TrimSpace(q.PostFormValue("label"))
	to, err := s.svc.EnableSMS(q.Context(), q.p, phone, label, "", s.meta(q.Request))
	if err != nil {
		return err
	}
	s.render(w, q, http.StatusOK, "sms_confirm", view{Title: "Confirm your phone",
		Data: smsView{SentTo: to, Phone: phone, Label: label, Action: pathSecurity + "/sms/confirm"}})
	return nil
}

// handleConfirmSMS checks the code texted to the new phone.
func (s *site) handleConfirmSMS(w http.ResponseWriter, q *request) {
	res, err := s.svc.ConfirmEnrollment(q.Context(), q.p, auth.MethodSMS, q.PostFormValue("code"), s.meta(q.Request))
	if err == nil {
		s.enrolled(w, q, res, "Your phone is set up for codes by text message.")
		return
	}
	s.codeFailed(w, q, err, pathSecurity+"/sms/confirm")
}

// codeFailed shows a phone confirmation page again after a wrong code.
func (s *site) codeFailed(w http.ResponseWriter, q *request, err error, action string) {
	status, text, ok := codeError(err, codeWait)
	if !ok {
		s.renderError(w, q.Request, err)
		return
	}
	if errors.Is(err, auth.ErrInvalidRequest) {
		s.actionFailed(w, q, err)
		return
	}
	if errors.Is(err, auth.ErrInvalidCode) {
		text = "That code is not right, or it has expired. Check it, or send a new one."
	}
	phone, label := q.PostFormValue("phone"), q.PostFormValue("label")
	to := ""
	if e164, err := auth.NormalizePhone(phone); err == nil {
		to = auth.MaskPhone(e164)
	}
	s.render(w, q, status, "sms_confirm", view{Title: "Confirm your phone", Error: text, Fields: map[string]string{"code": text},
		Data: smsView{SentTo: to, Phone: phone, Label: label, Action: action}})
}

// handleRename sets a method's name.
func (s *site) handleRename(w http.ResponseWriter, q *request) {
	if err := s.svc.RenameFactor(q.Context(), q.p, q.PostFormValue("id"), q.PostFormValue("label"), s.meta(q.Request)); err != nil {
		s.actionFailed(w, q, err)
		return
	}
	q.setFlash("ok", "The method was renamed.")
	s.redirect(w, q, pathSecurity)
}

// handleRemove removes one method (sudo).
func (s *site) handleRemove(w http.ResponseWriter, q *request) error {
	off, err := s.svc.RemoveFactor(q.Context(), q.p, q.PostFormValue("id"), "", s.meta(q.Request))
	if err != nil {
		return err
	}
	text := "The method was removed. Your other devices were signed out."
	if off {
		text = "The method was removed, and with it two-step verification is off. Your backup codes no longer work."
	}
	q.setFlash("ok", text)
	s.redirect(w, q, pathSecurity)
	return nil
}

// handleBackupCodes makes a new set of backup codes (sudo).
func (s *site) handleBackupCodes(w http.ResponseWriter, q *request) error {
	codes, err := s.svc.GenerateBackupCodes(q.Context(), q.p, "", s.meta(q.Request))
	if err != nil {
		return err
	}
	s.renderBackupCodes(w, q, codes, "New backup codes are ready. Your old codes no longer work.")
	return nil
}

// handleDisable turns two-step verification off (sudo).
func (s *site) handleDisable(w http.ResponseWriter, q *request) error {
	if _, err := s.svc.Disable(q.Context(), q.p, "", "", s.meta(q.Request)); err != nil {
		return err
	}
	q.setFlash("warn", "Two-step verification is off. Your other devices were signed out.")
	s.redirect(w, q, pathSecurity)
	return nil
}

// handleChangePhone sends a code to a new phone number (sudo when the
// account has a verified phone).
func (s *site) handleChangePhone(w http.ResponseWriter, q *request) error {
	phone := strings.TrimSpace(q.PostFormValue("phone"))
	to, err := s.svc.ChangePhone(q.Context(), q.p, phone, "", s.meta(q.Request))
	if err != nil {
		return err
	}
	s.render(w, q, http.StatusOK, "sms_confirm", view{Title: "Confirm your phone",
		Data: smsView{SentTo: to, Phone: phone, Action: pathSecurity + "/phone/verify"}})
	return nil
}

// handleVerifyPhone checks the code sent to the new phone number.
func (s *site) handleVerifyPhone(w http.ResponseWriter, q *request) {
	if _, err := s.svc.VerifyPhone(q.Context(), q.p, q.PostFormValue("code"), s.meta(q.Request)); err != nil {
		s.codeFailed(w, q, err, pathSecurity+"/phone/verify")
		return
	}
	q.setFlash("ok", "Your phone number is verified. Your other devices were signed out.")
	s.redirect(w, q, pathSecurity)
}

// handleSignOutOthers signs out every other session of the account.
func (s *site) handleSignOutOthers(w http.ResponseWriter, q *request) {
	n, err := s.svc.SignOutOtherSessions(q.Context(), q.p, s.meta(q.Request))
	if err != nil {
		s.actionFailed(w, q, err)
		return
	}
	q.setFlash("ok", "Signed out "+plural(n, "other session", "other sessions")+".")
	s.redirect(w, q, pathSecurity)
}

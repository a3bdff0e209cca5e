package adminui

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/twostep-auth/twostep/internal/auth"
)

// settingsView is the data of the settings page: the settings shown (in
// force, or as submitted when they were refused) and what was wrong.
type settingsView struct {
	S      auth.Settings
	Sudo   string // as typed
	Errors map[string]string
	Error  string
}

// RequiredFor reports whether role must have a second factor.
func (v settingsView) RequiredFor(role string) bool {
	for _, r := range v.S.RequiredForRoles {
		if r == role {
			return true
		}
	}
	return false
}

func (p *panel) handleSettings(w http.ResponseWriter, q *request) {
	st, err := p.svc.Settings(q.Context(), q.admin)
	if err != nil {
		p.renderError(w, q.Request, err)
		return
	}
	p.render(w, q, http.StatusOK, "settings", view{Title: "Settings", Nav: "settings",
		Data: settingsView{S: st, Sudo: strconv.Itoa(st.SudoMinutes)}})
}

// handleSaveSettings saves the whole form: an unticked box is off.
func (p *panel) handleSaveSettings(w http.ResponseWriter, q *request) {
	on := func(name string) bool { return q.PostFormValue(name) == "on" }
	form := auth.Settings{
		TwoFaEnabled: on("enabled"), Authenticator: on("authenticator"), SMS: on("sms"), Call: on("call"),
		BackupCodes: on("backup_codes"), RequiredForRoles: []string{},
	}
	for _, role := range []string{auth.RoleAdmin, auth.RoleUser} {
		if on("required_" + role) {
			form.RequiredForRoles = append(form.RequiredForRoles, role)
		}
	}
	sudo := strings.TrimSpace(q.PostFormValue("sudo_minutes"))
	v := settingsView{S: form, Sudo: sudo}
	minutes, err := strconv.Atoi(sudo)
	if err != nil {
		v.Errors = map[string]string{"twoFa.sudoMinutes": "must be a whole number of minutes, 1 to 1440"}
		p.render(w, q, http.StatusUnprocessableEntity, "settings", view{Title: "Settings", Nav: "settings", Data: v})
		return
	}
	form.SudoMinutes = minutes
	ch := auth.SettingsChange{
		TwoFaEnabled: &form.TwoFaEnabled, Authenticator: &form.Authenticator, SMS: &form.SMS, Call: &form.Call,
		BackupCodes: &form.BackupCodes, RequiredForRoles: &form.RequiredForRoles, SudoMinutes: &form.SudoMinutes,
	}
	res, err := p.svc.UpdateSettings(q.Context(), q.admin, ch, p.opts.Meta(q.Request))
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrInvalidRequest):
		v.Errors = problems(err)
		v.Error = "The settings were not saved: " + problemText(v.Errors) + "."
		p.render(w, q, http.StatusUnprocessableEntity, "settings", view{Title: "Settings", Nav: "settings", Data: v})
		return
	case errors.Is(err, auth.ErrConflict):
		v.Error = "The settings were not saved: they would lock out everyone whose role requires two-step verification. " +
			"Keep two-step verification on with a method those users can set up (an authenticator app, or text messages or calls when an SMS provider is configured)."
		p.render(w, q, http.StatusConflict, "settings", view{Title: "Settings", Nav: "settings", Data: v})
		return
	default:
		p.renderError(w, q.Request, err)
		return
	}
	switch n := res.StrandedUsers; n {
	case 0:
		q.setFlash("ok", "Settings saved. No user is left with only a method that is turned off.")
	case 1:
		q.setFlash("warn", "Settings saved. 1 user has only a method that is now turned off: they keep signing in with it until they set up another.")
	default:
		q.setFlash("warn", fmt.Sprintf("Settings saved. %d users have only a method that is now turned off: they keep signing in with it until they set up another.", n))
	}
	p.redirect(w, q, Prefix+"settings")
}

package accountui

import (
	"fmt"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// eventView is one line of the recent sign-ins or security events.
type eventView struct {
	Time    time.Time
	Title   string
	IP      string
	Device  string
	Current bool // this browser's own sign-in
	Warn    bool // worth a second look (a failure, a lock)
}

// Most lines each list shows.
const (
	maxSignIns = 8
	maxEvents  = 12
)

// describeEvents splits the user's audit events into sign-ins and other
// security events, in words. The password step of a sign-in that went on
// to a second factor, and every code sent, are left out: the sign-in
// itself and any failure say what matters.
func describeEvents(events []auth.AuditEvent, currentSession string) (signIns, others []eventView) {
	for _, e := range events {
		v := eventView{Time: e.Time, IP: e.IP, Device: device(e.UserAgent)}
		str := func(k string) string { s, _ := e.Detail[k].(string); return s }
		num := func(k string) int { f, _ := e.Detail[k].(float64); return int(f) }
		switch e.Type {
		case auth.EventLoginSucceeded:
			if str("second_factor") == "required" {
				continue
			}
			v.Title = "Signed in"
			if amr := fmt.Sprint(e.Detail["amr"]); strings.Contains(amr, "otp") || strings.Contains(amr, "sms") {
				v.Title = "Signed in with two-step verification"
			}
			if str("via") == "handoff" {
				v.Title = "Signed in to an application"
			}
			v.Current = str("session_id") == currentSession && currentSession != ""
			if len(signIns) < maxSignIns {
				signIns = append(signIns, v)
			}
			continue
		case auth.EventChallengeSent:
			continue
		case auth.EventLoginFailed:
			v.Warn = true
			switch str("reason") {
			case "throttled":
				v.Title = "Sign-in refused: too many failed attempts"
			case "disabled":
				v.Title = "Sign-in refused: account disabled"
			default:
				v.Title = "Failed sign-in: wrong password"
			}
		case auth.EventVerifySucceeded:
			if str("purpose") != "sudo" {
				continue // the sign-in it completed is listed
			}
			v.Title = "Confirmed with a " + strings.ToLower(methodName(str("method")))
		case auth.EventVerifyFailed:
			v.Warn = true
			v.Title = "Wrong verification code"
		case auth.EventTwoFaEnabled:
			v.Title = "Added " + strings.ToLower(methodName(str("method")))
			if l := str("label"); l != "" && l != methodName(str("method")) {
				v.Title += " “" + l + "”"
			}
		case auth.EventTwoFaDisabled:
			v.Title = "Removed a verification method"
			if off, _ := e.Detail["twofa_off"].(bool); off {
				v.Title = "Turned off two-step verification"
			}
		case auth.EventTwoFaLocked:
			v.Warn = true
			v.Title = "Two-step verification locked after too many wrong codes"
		case auth.EventBackupGenerated:
			v.Title = "New backup codes made"
		case auth.EventBackupUsed:
			v.Title = fmt.Sprintf("Backup code used (%d left)", num("remaining"))
		case auth.EventPhoneVerified:
			v.Title = "Phone number verified"
			if to := str("to"); to != "" {
				v.Title += ": " + to
			}
		case auth.EventSessionRevoked:
			switch str("reason") {
			case "logout":
				v.Title = "Signed out"
			case "refresh_token_reused":
				v.Warn = true
				v.Title = "A session was ended: its token was used twice"
			default:
				v.Title = "Other sessions signed out"
			}
		case auth.EventUserRegistered:
			v.Title = "Account created"
		case auth.EventAdminTwoFaReset:
			v.Warn = true
			v.Title = "An administrator reset two-step verification"
		case "twofa.renamed":
			v.Title = "Renamed a verification method"
		default:
			v.Title = e.Type
		}
		if len(others) < maxEvents {
			others = append(others, v)
		}
	}
	return signIns, others
}

// device names a browser and system from a User-Agent, roughly ("Firefox
// on Linux"); the raw string when nothing is recognised.
func device(ua string) string {
	if ua == "" {
		return "unknown device"
	}
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"HeadlessChrome/", "Headless Chrome"},
		{"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client", "Go client"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range []struct{ token, name string }{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return system
	}
	if len(ua) > 40 {
		return ua[:40] + "…"
	}
	return ua
}

package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// signIn asks for a phone sign-in code: charged against every send limit
// whether or not the number is known.
func (p *phoneEnv) signInSend(phone, ip string) resp {
	p.t.Helper()
	return p.send(request{method: http.MethodPost, path: "/authentication/phone", body: map[string]any{"phone": phone},
		remoteAddr: ip + ":1234", allow5xx: true})
}

// TestSMSDailyLimits: ten sends per phone a day, a ceiling per client
// address an hour, and a deployment-wide daily ceiling that stops sending
// (503) and says so in the log and in /metrics.
func TestSMSDailyLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine, withConfig(func(c *auth.Config) {
			c.SMS.HourlyLimit = 100
			c.SMS.PhoneDailyLimit = 10
			c.SMS.IPHourlyLimit = 4
			c.SMS.DailyLimit = 30
		}))
		// Per phone per day: ten sends from ten addresses, an hour apart
		// when needed, then the eleventh is refused until the next day.
		for i := 1; i <= 10; i++ {
			p.clock.Advance(31 * time.Second)
			mustStatus(t, fmt.Sprintf("send %d to one phone", i), p.signInSend(adaPhone, fmt.Sprintf("198.51.100.%d", i)), http.StatusAccepted)
		}
		p.clock.Advance(31 * time.Second)
		wantErr(t, "send 11 to one phone in a day", p.signInSend(adaPhone, "198.51.100.99"), http.StatusTooManyRequests, "rate_limited")

		// Per address per hour: four sends to four phones, the fifth refused.
		for i := 1; i <= 4; i++ {
			mustStatus(t, fmt.Sprintf("send %d from one address", i), p.signInSend(fmt.Sprintf("+1415555%04d", 3000+i), "203.0.113.7"), http.StatusAccepted)
		}
		wantErr(t, "send 5 from one address in an hour", p.signInSend("+14155554000", "203.0.113.7"), http.StatusTooManyRequests, "rate_limited")

		// The deployment's ceiling counts sends that passed every other
		// limit: 10 + 4 so far; 16 more from fresh phones and addresses
		// reach 30, and the next is refused with 503 and nothing is sent.
		for i := 1; i <= 16; i++ {
			mustStatus(t, fmt.Sprintf("deployment send %d", i), p.signInSend(fmt.Sprintf("+1415556%04d", i), fmt.Sprintf("192.0.2.%d", 100+i)), http.StatusAccepted)
		}
		m := p.mark()
		r := p.signInSend("+14155557000", "192.0.2.200")
		wantErr(t, "a send past the daily ceiling", r, http.StatusServiceUnavailable, "sms_unavailable")
		p.none("a send past the daily ceiling", m)
		if !strings.Contains(p.logs.String(), "sms_daily_limit_reached") {
			t.Errorf("log does not say the daily SMS limit was reached")
		}
		metrics := p.get("/metrics", "")
		if !strings.Contains(string(metrics.Body), `twostep_sms_refused_total{reason="daily_limit"}`) {
			t.Errorf("/metrics has no daily_limit refusal counter")
		}
		// The next day everything sends again.
		p.clock.Advance(24 * time.Hour)
		mustStatus(t, "a send the next day", p.signInSend("+14155557000", "192.0.2.200"), http.StatusAccepted)
	})
}

// TestSMSNumbersRefused: premium-rate and shared-cost numbers are refused
// at the door, and numbers outside TWOSTEP_SMS_ALLOWED_COUNTRIES are
// refused without sending.
func TestSMSNumbersRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		p := newPhoneEnv(t, engine, withConfig(func(c *auth.Config) { c.SMS.AllowedCountries = []string{"US", "CA"} }))
		u := p.newUser("ada@example.com", nil)
		m := p.mark()
		for _, phone := range []string{
			"+19005550100",  // US premium rate (900)
			"+448700123456", // UK shared cost (0870)
			"+33899123456",  // FR premium rate (0899)
		} {
			wantErr(t, "enable sms for "+phone, p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": phone}), http.StatusBadRequest, "invalid_phone")
		}
		// A German mobile is a fine number, but not in the allowed list.
		wantErr(t, "a number outside the allowed countries", p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": "+4915112345678"}), http.StatusBadRequest, "invalid_phone")
		wantErr(t, "phone sign-in outside the allowed countries", p.signInSend("+4915112345678", "192.0.2.9"), http.StatusBadRequest, "invalid_phone")
		p.none("refused numbers", m)
		mustStatus(t, "a US number", p.post(pathEnable, u.access, map[string]any{"method": "sms", "phone": adaPhone}), http.StatusOK)
	})
}

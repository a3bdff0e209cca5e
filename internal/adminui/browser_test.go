package adminui_test

import (
	"context"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/totp"
	"github.com/twostep-auth/twostep/internal/webui/webuitest"
)

var updateScreenshots = flag.Bool("screenshots", false, "write the browser test's screenshots to docs/screenshots")

// TestBrowser drives the panel in chromium: sign in with a TOTP code,
// find a user and reset their 2FA, change a setting, see the events in the
// audit log; then enrol a new administrator and refuse a non-admin. It
// takes a screenshot of each page (written to docs/screenshots with
// -screenshots).
func TestBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	bctx := webuitest.Browser(t, ctx)

	e := newEnv(t, "sqlite", false)
	e.register("ada@example.com", auth.RoleAdmin)
	adaSecret := e.enrolTOTP("ada@example.com")
	e.register("ops@example.com", auth.RoleAdmin)
	seed := []struct {
		email, username, phone string
		totp                   bool
	}{
		{"bob@example.com", "bob", "+14155552671", true},
		{"grace@example.com", "ghopper", "", true},
		{"linus@example.com", "", "+358401234567", true},
		{"carol@example.com", "carol", "", false},
		{"dennis@example.com", "", "", false},
		{"margaret@example.com", "mhamilton", "+442079460958", false},
		{"ken@example.com", "ken", "", false},
	}
	for _, u := range seed {
		in := auth.RegisterInput{Email: u.email, Username: u.username, Phone: u.phone, Password: testPassword}
		if _, err := e.svc.Register(ctx, in, auth.RequestMeta{IP: "203.0.113.9", UserAgent: "seed"}); err != nil {
			t.Fatalf("Register(%s) = %v", u.email, err)
		}
		if u.totp {
			e.enrolTOTP(u.email)
		}
	}
	// A few failures, so the audit log shows some.
	for _, email := range []string{"bob@example.com", "ken@example.com"} {
		_, _ = e.svc.Login(ctx, auth.LoginInput{Login: email, Password: "not the password"}, auth.RequestMeta{IP: "198.51.100.23", UserAgent: "curl/8.5.0"})
	}
	srv := httptest.NewServer(e.h)
	defer srv.Close()

	dir := webuitest.ScreenshotDir(t, *updateScreenshots)

	// A CSP violation or a script error on any page fails the test; the
	// refusal page itself answers 403, as it should.
	webuitest.WatchConsole(t, bctx, func(m chromedp.ConsoleMessage) bool {
		return strings.Contains(m.Text, "status of 403") && strings.HasSuffix(m.URL, "/admin/ui/login")
	})

	tab := webuitest.Tab{T: t, Ctx: bctx}
	do, text, wantText := tab.Do, tab.Text, tab.WantText
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "admin-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(email string) {
		t.Helper()
		do("sign-in page of "+email,
			chromedp.Navigate(srv.URL+"/admin/"),
			chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), testPassword),
		)
	}
	submit := chromedp.Click(chromedp.CSS(`form button[type="submit"].btn-primary`))

	do("viewport", chromedp.EmulateViewport(1280, 800))

	// Sign in with a TOTP code.
	signIn("ada@example.com")
	shot("login")
	do("password", submit, chromedp.WaitVisible(chromedp.CSS(`input[name="code"]`)))
	shot("verify")
	do("TOTP code",
		chromedp.SendKeys(chromedp.CSS(`input[name="code"]`), e.code(adaSecret)),
		submit,
		chromedp.WaitVisible(chromedp.CSS(`input[name="query"]`)),
	)
	wantText("users page", "table", "bob@example.com", "margaret@example.com")
	shot("users")

	// Find a user and reset their 2FA.
	do("search",
		chromedp.SendKeys(chromedp.CSS(`input[name="query"]`), "bob"),
		chromedp.Click(chromedp.CSS(`form.search button`)),
		chromedp.WaitVisible(chromedp.CSS(`a.btn-quiet[href="/admin/ui/users"]`)), // "Clear" shows once searched
	)
	if got := text("tbody"); !strings.Contains(got, "bob@example.com") || strings.Contains(got, "grace@example.com") {
		t.Fatalf("search for bob lists %q", got)
	}
	do("open bob", chromedp.Click(chromedp.CSS(`a.row-link`)), chromedp.WaitVisible(chromedp.CSS(`.actions`)))
	wantText("bob's page", "main", "Authenticator app", "Two-step on")
	shot("user")
	do("reset", chromedp.Click(chromedp.CSS(`a[href$="/reset-2fa"]`)), chromedp.WaitVisible(chromedp.CSS(`.confirm`)))
	shot("confirm")
	do("confirm reset", chromedp.Click(chromedp.CSS(`.confirm button.btn-danger`)), chromedp.WaitVisible(chromedp.CSS(`.flash-ok`)))
	wantText("after reset", ".flash-ok", "Two-step verification reset for bob@example.com")
	wantText("after reset", "main", "No second factor is set up", "Two-step off")

	// Change a setting.
	do("settings",
		chromedp.Click(chromedp.CSS(`nav a[href="/admin/ui/settings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.settings`)),
		chromedp.Click(chromedp.CSS(`input[name="call"]`)),
		chromedp.SetValue(chromedp.CSS(`input[name="sudo_minutes"]`), "15"),
		chromedp.Click(chromedp.CSS(`form.settings button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	wantText("after saving", ".flash", "Settings saved", "No user is left")
	shot("settings")

	// See the events in the audit log.
	do("audit", chromedp.Click(chromedp.CSS(`nav a[href="/admin/ui/audit"]`)), chromedp.WaitVisible(chromedp.CSS(`form.filters`)))
	wantText("audit log", "tbody", "settings.changed", "admin.twofa.reset", "twofa.verify.succeeded", "login.failed", "methods.call: on → off")
	shot("audit")
	do("filter",
		chromedp.SetValue(chromedp.CSS(`select[name="type"]`), auth.EventAdminTwoFaReset),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)),
		// Only the answer to the filter has the option selected in its HTML.
		chromedp.WaitReady(chromedp.CSS(`option[selected][value="`+auth.EventAdminTwoFaReset+`"]`)),
	)
	if got := text("tbody"); !strings.Contains(got, "bob@example.com") || strings.Contains(got, "settings.changed") {
		t.Fatalf("audit filtered to admin.twofa.reset shows %q", got)
	}

	// Sign out; a new administrator is walked through enrolment.
	do("sign out", chromedp.Click(chromedp.CSS(`.who button`)), chromedp.WaitVisible(chromedp.CSS(`.flash-info`)))
	signIn("ops@example.com")
	do("password", submit, chromedp.WaitVisible(chromedp.CSS(`form[action="/admin/ui/enrol"]`)))
	do("start enrolment", submit, chromedp.WaitVisible(chromedp.CSS(`img.qr`)))
	shot("enrol")
	secret, err := totp.Decode(strings.ReplaceAll(text(".secret code"), " ", ""))
	if err != nil {
		t.Fatalf("secret on the enrolment page: %v", err)
	}
	do("confirm enrolment",
		chromedp.SendKeys(chromedp.CSS(`input[name="code"]`), e.code(secret)),
		submit,
		chromedp.WaitVisible(chromedp.CSS(`ol.codes`)),
	)
	shot("backup-codes")
	do("continue", chromedp.Click(chromedp.CSS(`a.btn-primary`)), chromedp.WaitVisible(chromedp.CSS(`input[name="query"]`)))
	do("sign out", chromedp.Click(chromedp.CSS(`.who button`)), chromedp.WaitVisible(chromedp.CSS(`.flash-info`)))

	// A user who is not an administrator is refused.
	signIn("carol@example.com")
	do("non-admin", submit, chromedp.WaitVisible(chromedp.CSS(`.alert-error`)))
	wantText("refusal", "main", "Not an administrator", "carol@example.com")
	shot("refused")
}

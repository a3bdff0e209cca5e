package accountui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/twostep-auth/twostep/internal/totp"
	"github.com/twostep-auth/twostep/internal/webui/webuitest"
)

var updateScreenshots = flag.Bool("screenshots", false, "write the browser test's screenshots to docs/screenshots")

// demoApp is an application that sends its users to twostep's /login and
// exchanges the code it gets back, server-side, as the README shows.
type demoApp struct {
	srv      *httptest.Server
	twostep  string // twostep's base URL
	mu       sync.Mutex
	signedIn []string
}

func newDemoApp(t *testing.T) *demoApp {
	a := &demoApp{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(map[string]string{"code": r.URL.Query().Get("code")})
		res, err := http.Post(a.twostep+"/authentication/exchange", "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		var out struct {
			AccessToken string `json:"accessToken"`
			User        struct {
				Email string `json:"email"`
			} `json:"user"`
		}
		if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&out) != nil || out.AccessToken == "" {
			http.Error(w, "exchange refused", http.StatusUnauthorized)
			return
		}
		a.mu.Lock()
		a.signedIn = append(a.signedIn, out.User.Email)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>Demo app</title><p id=\"who\">Welcome, %s</p>", out.User.Email)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// TestBrowser walks the hosted pages in chromium: sign up, turn on an
// authenticator by reading the QR code off the page, sign out, sign in
// with a code, sign in with a backup code, add SMS (recorded by the fake
// provider) and sign in with a texted code, turn 2FA off through the sudo
// prompt, be refused an open redirect, and be handed back to an allowed
// application. It takes a screenshot of each page at laptop and phone
// widths (written to docs/screenshots with -screenshots).
func TestBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	bctx := webuitest.Browser(t, ctx)

	app := newDemoApp(t)
	e := newEnv(t, withReturnURL(app.srv.URL+"/auth/"))
	app.twostep = e.srv.URL
	base := e.srv.URL

	dir := webuitest.ScreenshotDir(t, *updateScreenshots)

	// A CSP violation or a script error on any page fails the test. Pages
	// that answer a 4xx on purpose log it; nothing else may.
	webuitest.WatchConsole(t, bctx, func(m chromedp.ConsoleMessage) bool {
		return strings.Contains(m.Text, "Failed to load resource: the server responded with a status of 4")
	})

	tab := webuitest.Tab{T: t, Ctx: bctx}
	do, text, wantText := tab.Do, tab.Text, tab.WantText
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	laptop := chromedp.EmulateViewport(1280, 800)
	shot := func(name string) {
		t.Helper()
		for _, v := range []struct {
			suffix string
			size   chromedp.Action[chromedp.Void]
		}{
			{"laptop", laptop},
			{"phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch)},
		} {
			do("viewport "+v.suffix, v.size, chromedp.Sleep(100*time.Millisecond))
			img, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(dir, "account-"+name+"-"+v.suffix+".png"), img, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		do("viewport back", laptop)
	}
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
	visible := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	typ := func(sel, v string) chromedp.Action[chromedp.Void] { return chromedp.SendKeys(chromedp.CSS(sel), v) }
	nextCode := func(secret []byte) string {
		// Each sign-in needs a time step the factor has not used yet.
		e.clock.Advance(30 * time.Second)
		return totp.Code(secret, e.clock.Now(), totp.Options{})
	}
	signOut := func() {
		t.Helper()
		do("sign out", click(`.signout button`), visible(`input[name="login"]`))
		wantText("after sign-out", ".flash", "You are signed out")
	}
	signIn := func() {
		t.Helper()
		do("password",
			typ(`input[name="login"]`, "ada@example.com"),
			typ(`input[name="password"]`, "correct horse battery"),
			click(`form[action="/login"] button[type="submit"]`),
		)
	}

	do("viewport", laptop)

	// Sign up.
	do("sign-up page", chromedp.Navigate(base+"/signup"), visible(`input[name="email"]`))
	shot("signup")
	do("sign up",
		typ(`#email`, "ada@example.com"),
		typ(`#password`, "correct horse battery"),
		click(`form[action="/signup"] button[type="submit"]`),
		visible(`#auth-label`),
	)
	wantText("after sign-up", "main", "Your account is ready", "Off")

	// Turn on an authenticator, reading the QR code off the page.
	do("start authenticator", typ(`#auth-label`, "Phone"), click(`form[action="/account/security/authenticator"] button`), visible(`img#qr`))
	shot("enrol")
	qr, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.CSS(`img#qr`)))
	if err != nil {
		t.Fatalf("screenshot of the QR code: %v", err)
	}
	secret := secretFromQR(t, qr)
	if shown := strings.ReplaceAll(text(`#secret`), " ", ""); shown != totp.Encode(secret) {
		t.Fatalf("key shown as text %q, QR code holds %q", shown, totp.Encode(secret))
	}
	do("confirm authenticator",
		typ(`#code`, totp.Code(secret, e.clock.Now(), totp.Options{})),
		click(`form[action="/account/security/authenticator/confirm"] button`),
		visible(`ol.codes`),
		visible(`button[data-copy-codes]`), // the script shows the copy button
	)
	codesText := text(`ol.codes`)
	codes := strings.Fields(codesText)
	if len(codes) != 10 {
		t.Fatalf("backup codes page lists %q, want 10 codes", codesText)
	}
	href, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(`a[download]`), "href"))
	if err != nil || !strings.HasPrefix(href.Value, "data:text/plain") {
		t.Fatalf("download link href = %q, %v; want a data:text/plain URL", href.Value, err)
	}
	if txt, _ := url.PathUnescape(strings.TrimPrefix(href.Value, "data:text/plain;charset=utf-8,")); !strings.Contains(txt, codes[9]) {
		t.Fatalf("downloaded file %q does not hold the codes", txt)
	}
	shot("backup-codes")
	do("saved codes", click(`a.btn-primary[href="/account/security"]`), visible(`.methods`))
	wantText("security page", ".methods", "Phone", "Authenticator app")

	// Sign out; sign in with a code from the app.
	signOut()
	shot("login")
	signIn()
	do("second step", visible(`input[name="code"][autocomplete="one-time-code"]`))
	shot("verify")
	do("authenticator code", typ(`#code`, nextCode(secret)), click(`form[action="/login/verify"] button`), visible(`.methods`))

	// Sign out; sign in with a backup code.
	signOut()
	signIn()
	do("use a backup code", visible(`a[href="/login/verify?method=backup"]`), click(`a[href="/login/verify?method=backup"]`), visible(`input[placeholder="XXXX-XXXX-XXXX-XXXX"]`))
	do("backup code", typ(`#code`, codes[0]), click(`form[action="/login/verify"] button`), visible(`.methods`))
	wantText("after backup code", ".flash", "9 backup codes left")

	// Add SMS; the fake provider records the text.
	do("add sms", typ(`#sms-phone`, "+1 415 555 2671"), click(`form[action="/account/security/sms"] button`), visible(`input[name="code"]`))
	shot("sms")
	msg, ok := e.sms.Last("+14155552671")
	if !ok {
		t.Fatal("no text was sent to +14155552671")
	}
	do("confirm sms", typ(`#code`, msg.Code), click(`form[action="/account/security/sms/confirm"] button`), visible(`.methods`))
	wantText("after sms", ".methods", "Text message", "+1******2671")
	shot("security")

	// Sign in with a texted code, trying "send again" during the cooldown.
	signOut()
	e.clock.Advance(31 * time.Second)
	signIn()
	do("text me", visible(`a[href="/login/verify?method=sms"]`), click(`a[href="/login/verify?method=sms"]`),
		click(`form[action="/login/send"] button.btn-primary`), visible(`input[name="code"]`))
	wantText("sms step", "main", "+1******2671", "Call me instead")
	shot("verify-sms")
	disabled, err := chromedp.Run(bctx, chromedp.JavascriptAttribute[bool](chromedp.CSS(`button[data-resend-in]`), "disabled"))
	if err != nil || !disabled {
		t.Fatalf("send again during the cooldown: disabled = %v, %v; want true", disabled, err)
	}
	msg, _ = e.sms.Last("+14155552671")
	do("texted code", typ(`#code`, msg.Code), click(`form[action="/login/verify"] button`), visible(`.methods`))

	// Turn 2FA off: sudo has lapsed, so the prompt asks for a code.
	e.clock.Advance(11 * time.Minute)
	do("turn off", click(`form[action="/account/security/disable"] button`), visible(`#sudo_code`))
	wantText("sudo prompt", "main", "Confirm it is you", "turn off two-step verification")
	shot("sudo")
	do("sudo code", typ(`#sudo_code`, nextCode(secret)), click(`form[action="/account/security/disable"] button`), visible(`.badge-off`))
	wantText("after turning off", ".flash", "Two-step verification is off")

	// An open redirect is refused, before and after signing in.
	signOut()
	do("evil return_to", chromedp.Navigate(base+"/login?return_to="+url.QueryEscape("https://evil.example/steal")), visible(`input[name="login"]`))
	wantText("refused return_to", "main", "does not allow")
	signIn()
	do("signed in", visible(`.methods, #auth-label`))
	if loc := location(); loc != base+"/account/security" {
		t.Fatalf("sign-in with a refused return_to ended at %q, want the security page", loc)
	}
	do("evil return_to signed in", chromedp.Navigate(base+"/login?return_to="+url.QueryEscape("//evil.example/")), visible(`h1`))
	wantText("refused when signed in", "h1", "cannot be used")

	// An allowed application gets the browser back with a code it
	// exchanges: straight away when signed in, and after a sign-in.
	cb := app.srv.URL + "/auth/callback?state=abc"
	do("allowed return_to", chromedp.Navigate(base+"/login?return_to="+url.QueryEscape(cb)), visible(`#who`))
	wantText("app", "#who", "Welcome, ada@example.com")
	do("back to twostep", chromedp.Navigate(base+"/account/security"), visible(`.signout`))
	signOut()
	do("return_to", chromedp.Navigate(base+"/login?return_to="+url.QueryEscape(cb)), visible(`input[name="login"]`))
	wantText("sign-in for app", "main", strings.TrimPrefix(app.srv.URL, "http://"))
	signIn()
	do("continue to app", visible(`#who`))
	if loc := location(); !strings.HasPrefix(loc, app.srv.URL+"/auth/callback?state=abc&code=") {
		t.Fatalf("after sign-in the browser is at %q, want the app's callback with a code", loc)
	}
	app.mu.Lock()
	if len(app.signedIn) != 2 {
		t.Errorf("the app exchanged %d codes, want 2", len(app.signedIn))
	}
	app.mu.Unlock()
}

// secretFromQR decodes a screenshot of the enrolment QR code with gozxing
// and returns the secret of the otpauth URL it holds.
func secretFromQR(t *testing.T, shot []byte) []byte {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("QR screenshot: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode the QR code on the page: %v", err)
	}
	u, err := url.Parse(res.GetText())
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("QR code holds %q, want an otpauth://totp URL", res.GetText())
	}
	if !strings.Contains(u.Path, "ada@example.com") {
		t.Errorf("QR code label %q does not name the account", u.Path)
	}
	secret, err := totp.Decode(u.Query().Get("secret"))
	if err != nil {
		t.Fatalf("secret in the QR code: %v", err)
	}
	return secret
}

// Package webuitest holds what the pages' tests (internal/adminui,
// internal/accountui) share: a headless browser for the browser tests, and
// the check of the security headers every page carries.
package webuitest

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's chromium, which .ci/run installs.
const ChromiumPath = "/usr/bin/chromium"

// Browser starts a headless chromium with a fresh profile and a 1280×800
// window, and returns its tab's context; the test's cleanup stops it. The
// test skips when chromium is missing, unless TWOSTEP_TEST_REQUIRE_ALL=1.
func Browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("TWOSTEP_TEST_REQUIRE_ALL") == "1" {
			t.Fatalf("%s is missing (TWOSTEP_TEST_REQUIRE_ALL=1): apt-get install chromium", ChromiumPath)
		}
		t.Skipf("%s is missing: apt-get install chromium to run the browser tests", ChromiumPath)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	return bctx
}

// ScreenshotDir is where a browser test writes its screenshots: the
// repository's docs/screenshots when update is set (the -screenshots flag
// of the test, run from internal/<pkg>), a temporary folder otherwise.
func ScreenshotDir(t *testing.T, update bool) string {
	t.Helper()
	if !update {
		return t.TempDir()
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// WatchConsole collects what the pages of the browser ctx write to the
// console and, when the test ends, fails it for every exception, console
// error or Content-Security-Policy report that expected does not excuse.
func WatchConsole(t *testing.T, ctx context.Context, expected func(chromedp.ConsoleMessage) bool) {
	t.Helper()
	var mu sync.Mutex
	var console []chromedp.ConsoleMessage
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range console {
			if m.IsException() || m.Type == chromedp.ConsoleError || strings.Contains(m.Text, "Content Security Policy") {
				if !expected(m) {
					t.Errorf("console: %s (%s)", m.Text, m.URL)
				}
			}
		}
	})
}

// Tab drives a browser tab for a test, failing it at the first error.
type Tab struct {
	T   *testing.T
	Ctx context.Context
}

// Do runs steps; what names them in a failure.
func (b Tab) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.T.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.T.Fatalf("%s: %v", what, err)
	}
}

// Text is the text of the first element sel selects.
func (b Tab) Text(sel string) string {
	b.T.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.T.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// WantText fails the test unless the text of sel holds every one of wants.
func (b Tab) WantText(what, sel string, wants ...string) {
	b.T.Helper()
	got := b.Text(sel)
	for _, w := range wants {
		if !strings.Contains(got, w) {
			b.T.Fatalf("%s: %s says %q, want %q in it", what, sel, got, w)
		}
	}
}

// WantCSP is the Content-Security-Policy every page must carry, spelled
// out rather than taken from webui, so that a change to it shows in a test.
const WantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// CheckSecurityHeaders fails the test, and goes on, for each of the
// Content-Security-Policy, X-Frame-Options and X-Content-Type-Options
// headers of h that is not what every page must carry; what names the
// answer.
func CheckSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	if got := h.Get("Content-Security-Policy"); got != WantCSP {
		t.Errorf("%s: Content-Security-Policy = %q, want %q", what, got, WantCSP)
	}
	if got := h.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("%s: X-Frame-Options = %q, want DENY", what, got)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", what, got)
	}
}

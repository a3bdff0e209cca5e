package webui

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/seal"
)

// maxCookieBytes keeps a cookie under browsers' 4 KiB limit.
const maxCookieBytes = 3800

// Cookie is a page's one cookie: a JSON value sealed with AES-GCM, so that
// the browser can neither read a field nor change one. It is HttpOnly,
// has Path=/, and is Secure with the __Host- name prefix except on a
// developer's machine (see Secure).
type Cookie struct {
	// Name is the cookie's name without the __Host- prefix.
	Name string
	// What names the value in errors ("admin ui state").
	What string
	// Keyring seals and opens the value.
	Keyring *seal.Keyring
	// AAD binds the sealed value to its purpose: no other sealed value of
	// the server opens as this cookie.
	AAD []byte
	// SameSite is the cookie's SameSite mode.
	SameSite http.SameSite
}

// name is __Host- prefixed when the cookie is Secure, so that the browser
// refuses it from a sibling subdomain or with another path.
func (c *Cookie) name(r *http.Request) string {
	if Secure(r) {
		return "__Host-" + c.Name
	}
	return c.Name
}

// Read opens the request's cookie into v (a pointer); it reports false
// when there is none or it does not open. Checking the value's own expiry
// is the caller's.
func (c *Cookie) Read(r *http.Request, v any) bool {
	ck, err := r.Cookie(c.name(r))
	if err != nil || len(ck.Value) > maxCookieBytes {
		return false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return false
	}
	raw, err := c.Keyring.Open(sealed, c.AAD)
	if err != nil {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}

// Write seals v into the cookie; expires is its Expires attribute (zero:
// a browser-session cookie). It must run before the status is written.
func (c *Cookie) Write(w http.ResponseWriter, r *http.Request, v any, expires time.Time) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", c.What, err)
	}
	sealed, err := c.Keyring.Seal(raw, c.AAD)
	if err != nil {
		return fmt.Errorf("seal %s: %w", c.What, err)
	}
	value := base64.RawURLEncoding.EncodeToString(sealed)
	if len(value) > maxCookieBytes {
		return fmt.Errorf("%s is %d bytes, more than a cookie holds", c.What, len(value))
	}
	http.SetCookie(w, &http.Cookie{
		Name: c.name(r), Value: value, Path: "/", Expires: expires,
		HttpOnly: true, Secure: Secure(r), SameSite: c.SameSite,
	})
	return nil
}

// Clear removes the cookie.
func (c *Cookie) Clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: Secure(r), SameSite: c.SameSite,
	})
}

// Secure reports whether a cookie set in answer to r gets the Secure
// attribute: always, except for plain HTTP to a loopback name straight from
// a loopback peer (a developer's machine), where some clients drop a Secure
// cookie sent over http. A request that came through a proxy always gets
// it.
func Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "Forwarded"} {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return !(loopbackName(r.Host) && loopbackPeer(r.RemoteAddr))
}

func loopbackName(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func loopbackPeer(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

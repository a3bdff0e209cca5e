package accountui

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/twostep-auth/twostep/internal/auth"
)

// allowList is the parsed TWOSTEP_ALLOWED_RETURN_URLS.
type allowList []allowedURL

// allowedURL is one entry: a return_to must have exactly this scheme and
// host:port (ports made explicit) and a path at or under path.
type allowedURL struct {
	scheme   string
	hostPort string
	path     string // always starts with "/"
}

// parseAllowList checks and normalises the configured return URLs.
func parseAllowList(urls []string) (allowList, error) {
	var out allowList
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
			return nil, fmt.Errorf("allowed return URL %q: must be an absolute http or https URL without user info", raw)
		}
		p := u.Path
		if p == "" {
			p = "/"
		}
		out = append(out, allowedURL{scheme: u.Scheme, hostPort: hostPort(u), path: p})
	}
	return out, nil
}

// hostPort is u's lower-case host with its port, the scheme's default when
// u has none.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + port
}

// maxReturnToBytes bounds a return_to: it travels in a cookie.
const maxReturnToBytes = 1024

// match returns raw, parsed, when it is a URL a sign-in may return to: an
// absolute http(s) URL with the scheme, host and port of an allowed URL and
// a path at or under its path (whole segments: /app does not allow
// /apple). Anything a browser might read differently from Go is refused
// rather than normalised: backslashes, control characters and spaces, user
// info, a scheme-relative or relative URL, dot segments or encoded slashes
// and dots in the path, a fragment, and a query that already has a code
// parameter (the one-time code is appended as code=…).
func (a allowList) match(raw string) (*url.URL, bool) {
	if raw == "" || len(raw) > maxReturnToBytes {
		return nil, false
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return nil, false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" || u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || !strings.HasPrefix(strings.ToLower(raw), scheme+"://") {
		return nil, false
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	lower := strings.ToLower(p)
	if strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(p, "//") {
		return nil, false
	}
	if clean := path.Clean(p); clean != p && clean+"/" != p {
		return nil, false
	}
	if u.Query().Has("code") {
		return nil, false
	}
	hp := hostPort(u)
	for _, al := range a {
		if al.scheme == scheme && al.hostPort == hp && underPath(p, al.path) {
			return u, true
		}
	}
	return nil, false
}

// underPath reports whether p is base or below it, by whole segments.
func underPath(p, base string) bool {
	if strings.HasSuffix(base, "/") {
		return strings.HasPrefix(p, base) || p == strings.TrimSuffix(base, "/")
	}
	return p == base || strings.HasPrefix(p, base+"/")
}

// withCode returns u with code=… added to its query.
func withCode(u *url.URL, code string) string {
	v := *u
	add := "code=" + url.QueryEscape(code)
	if v.RawQuery == "" {
		v.RawQuery = add
	} else {
		v.RawQuery += "&" + add
	}
	return v.String()
}

// codeChallenge reads the PKCE parameters of a sign-in link: ("", true)
// when there are none, the challenge and true when code_challenge is a
// well-formed S256 challenge with code_challenge_method=S256, and false
// otherwise ("plain" is not supported: it protects nothing that a
// challenge in the clear would not give away).
func codeChallenge(q url.Values) (string, bool) {
	if !q.Has("code_challenge") && !q.Has("code_challenge_method") {
		return "", true
	}
	c, m := q.Get("code_challenge"), q.Get("code_challenge_method")
	if m != "S256" || !auth.ValidCodeChallenge(c) {
		return "", false
	}
	return c, true
}

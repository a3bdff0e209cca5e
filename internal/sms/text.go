package sms

import (
	"net/url"
	"strings"
)

// DefaultTemplate is the SMS text used when the configured template is
// empty. {issuer} and {code} are replaced.
const DefaultTemplate = "Your {issuer} code is {code}"

// Text returns the body of an SMS carrying code: template (DefaultTemplate
// when empty) with {issuer} and {code} replaced, then a blank line and the
// WebOTP line "@host #code" that lets browsers and phones fill the code in
// on that site. host is a bare host name ("auth.example.com"); a URL is
// reduced to its host name, and an empty host leaves the WebOTP line out.
func Text(template, issuer, code, host string) string {
	if template == "" {
		template = DefaultTemplate
	}
	text := strings.NewReplacer("{issuer}", issuer, "{code}", code).Replace(template)
	host = webOTPHost(host)
	if host == "" {
		return text
	}
	return text + "\n\n@" + host + " #" + code
}

// webOTPHost reduces "https://auth.example.com:8443/x" to
// "auth.example.com": the WebOTP line names the origin's host only.
func webOTPHost(host string) string {
	host = strings.TrimSpace(host)
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil {
			return ""
		}
		return u.Hostname()
	}
	if h, _, ok := strings.Cut(host, "/"); ok {
		host = h
	}
	if u, err := url.Parse("//" + host); err == nil {
		return u.Hostname()
	}
	return host
}

// SpeakCode returns what a voice call says: the code digit by digit, each
// followed by a full stop so that text-to-speech pauses between them, and
// then all of it again:
//
//	Your twostep code is: 1. 2. 3. 4. 5. 6. Again: 1. 2. 3. 4. 5. 6.
//
// An empty issuer gives "Your code is: …".
func SpeakCode(issuer, code string) string {
	var digits strings.Builder
	for i, r := range code {
		if i > 0 {
			digits.WriteByte(' ')
		}
		digits.WriteRune(r)
		digits.WriteByte('.')
	}
	intro := "Your code is: "
	if issuer != "" {
		intro = "Your " + issuer + " code is: "
	}
	return intro + digits.String() + " Again: " + digits.String()
}

package sms

import (
	"regexp"
	"strings"
)

// ValidNumber reports whether s is a strict E.164 number: "+", a first
// digit 1-9, and 7 to 14 more digits, nothing else. Providers refuse
// anything else with ErrInvalidNumber before any request, so that no
// vendor-specific syntax (Plivo's "<" list separator, a SIP URI) can ride
// in on a number.
func ValidNumber(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// twoDigitCodes are the ITU country calling codes of two digits; "1" and
// "7" are the only one-digit codes, and every other code has three.
var twoDigitCodes = map[string]bool{
	"20": true, "27": true, "30": true, "31": true, "32": true, "33": true, "34": true, "36": true, "39": true,
	"40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true, "48": true, "49": true,
	"51": true, "52": true, "53": true, "54": true, "55": true, "56": true, "57": true, "58": true,
	"60": true, "61": true, "62": true, "63": true, "64": true, "65": true, "66": true,
	"81": true, "82": true, "84": true, "86": true,
	"90": true, "91": true, "92": true, "93": true, "94": true, "95": true, "98": true,
}

// MaskPhone shows an E.164 number with only its country code and its last
// four digits, for logs: "+14155552671" becomes "+1******2671". Anything
// that is not "+" and digits is shown as "[invalid number]" (never echoed),
// and an empty string stays empty.
func MaskPhone(e164 string) string {
	if e164 == "" {
		return ""
	}
	if len(e164) < 2 || e164[0] != '+' || strings.Trim(e164[1:], "0123456789") != "" {
		return "[invalid number]"
	}
	digits := e164[1:]
	cc := 3
	switch {
	case digits[0] == '1' || digits[0] == '7':
		cc = 1
	case len(digits) >= 2 && twoDigitCodes[digits[:2]]:
		cc = 2
	}
	if cc+4 >= len(digits) {
		return "+" + strings.Repeat("*", len(digits))
	}
	return "+" + digits[:cc] + strings.Repeat("*", len(digits)-cc-4) + digits[len(digits)-4:]
}

// digitRun matches what Redact hides: six or more digits, which may be a
// one-time code or a phone number, with or without "+".
var digitRun = regexp.MustCompile(`\+?[0-9]{6,}`)

// Redact hides codes and phone numbers in text a provider sent back (an
// error message such as "The 'To' number +15005550001 is not a valid phone
// number."), so that it can go into an error or a log line: a run of seven
// or more digits is masked like a phone number, a run of six becomes
// "******". The result is cut to 300 bytes.
func Redact(text string) string {
	text = digitRun.ReplaceAllStringFunc(text, func(run string) string {
		digits := strings.TrimPrefix(run, "+")
		if len(digits) < 7 {
			return strings.Repeat("*", len(run))
		}
		return MaskPhone("+" + digits)
	})
	const max = 300
	if len(text) > max {
		text = text[:max] + "…"
	}
	return strings.ToValidUTF8(text, "")
}

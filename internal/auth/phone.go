package auth

import (
	"fmt"
	"strings"
)

// NormalizePhone turns a phone number typed by a person ("+1 (415)
// 555-2671") into E.164 ("+14155552671"). A number without "+" and a
// country code is refused: there is no default region. The error matches
// ErrInvalidPhone.
func NormalizePhone(in string) (string, error) {
	in = strings.TrimSpace(in)
	if len(in) > 32 || !strings.HasPrefix(in, "+") {
		return "", fmt.Errorf("%w: use international format with + and the country code, like +14155552671", ErrInvalidPhone)
	}
	var b strings.Builder
	b.WriteByte('+')
	for _, r := range in[1:] {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("%w: unexpected character", ErrInvalidPhone)
		}
	}
	out := b.String()
	digits := len(out) - 1
	if digits < 8 || digits > 15 || out[1] == '0' {
		return "", fmt.Errorf("%w: an E.164 number has 8 to 15 digits and a country code", ErrInvalidPhone)
	}
	return out, nil
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

// countryCodeLen returns how many digits of the E.164 number e (without
// "+") are its country calling code.
func countryCodeLen(digits string) int {
	switch {
	case digits[0] == '1' || digits[0] == '7':
		return 1
	case twoDigitCodes[digits[:2]]:
		return 2
	default:
		return 3
	}
}

// MaskPhone shows an E.164 number with only its country code and last four
// digits: "+1******2671". An empty number stays empty.
func MaskPhone(e164 string) string {
	if len(e164) < 6 || e164[0] != '+' {
		return ""
	}
	digits := e164[1:]
	cc := countryCodeLen(digits)
	if cc+4 > len(digits) {
		return "+" + strings.Repeat("*", len(digits))
	}
	return "+" + digits[:cc] + strings.Repeat("*", len(digits)-cc-4) + digits[len(digits)-4:]
}

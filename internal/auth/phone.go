package auth

import (
	"fmt"
	"strings"

	"github.com/twostep-auth/twostep/internal/sms"
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

// MaskPhone shows an E.164 number with only its country code and last four
// digits: "+1******2671". An empty number stays empty.
func MaskPhone(e164 string) string { return sms.MaskPhone(e164) }

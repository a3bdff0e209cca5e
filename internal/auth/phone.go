package auth

import (
	"fmt"
	"strings"

	"github.com/ttacon/libphonenumber"

	"github.com/twostep-auth/twostep/internal/sms"
)

// NormalizePhone turns a phone number typed by a person ("+1 (415)
// 555-2671") into E.164 ("+14155552671"). A number without "+" and a
// country code is refused: there is no default region. The number must be
// possible for its country (its length), and premium-rate and shared-cost
// numbers are refused, by libphonenumber's metadata. Validity by number
// range is deliberately not required: the metadata served here dates from
// 2021, and newly allocated mobile ranges would be refused; premium-rate
// and shared-cost ranges change rarely. The error matches ErrInvalidPhone.
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
	num, err := libphonenumber.Parse(out, "")
	if err != nil || !libphonenumber.IsPossibleNumber(num) {
		return "", fmt.Errorf("%w: not a possible number for its country", ErrInvalidPhone)
	}
	switch libphonenumber.GetNumberType(num) {
	case libphonenumber.PREMIUM_RATE, libphonenumber.SHARED_COST:
		return "", fmt.Errorf("%w: premium-rate and shared-cost numbers are not accepted", ErrInvalidPhone)
	}
	return out, nil
}

// PhoneCountry returns the ISO 3166 region of an E.164 number ("US",
// "GB"), or "" when the metadata cannot tell.
func PhoneCountry(e164 string) string {
	num, err := libphonenumber.Parse(e164, "")
	if err != nil {
		return ""
	}
	return libphonenumber.GetRegionCodeForNumber(num)
}

// MaskPhone shows an E.164 number with only its country code and last four
// digits: "+1******2671". An empty number stays empty.
func MaskPhone(e164 string) string { return sms.MaskPhone(e164) }

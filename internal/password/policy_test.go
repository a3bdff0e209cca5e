package password

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pw   string
		want PolicyReason // 0: allowed
	}{
		{"", TooShort},
		{"1234567", TooShort},
		{"12345678", 0},
		{"ééé", TooShort}, // 3 characters, 6 bytes
		{"éééé", 0},       // 4 characters, 8 bytes: the bound is in bytes
		{"🔑🔑", 0},         // 2 characters, 8 bytes
		{"       1", 0},   // spaces count
		{strings.Repeat("a", MaxLength), 0},
		{strings.Repeat("a", MaxLength+1), TooLong},
		{strings.Repeat("é", MaxLength/2), 0},
		{strings.Repeat("é", MaxLength/2) + "a", TooLong},
		{strings.Repeat("a", 10_000_000), TooLong},
		{"password\xff", InvalidUTF8},
		{"pass\xc3word", InvalidUTF8},         // truncated sequence
		{"\xed\xa0\x80password", InvalidUTF8}, // encoded surrogate
		{"pass\x00word", ContainsNUL},
		{"password\x00", ContainsNUL},
		{"pass\tword\n", 0}, // other control characters are the user's business
	}
	for _, tt := range tests {
		err := CheckPolicy(tt.pw)
		var pe *PolicyError
		switch {
		case tt.want == 0 && err != nil:
			t.Errorf("CheckPolicy(%.40q) = %v, want nil", tt.pw, err)
		case tt.want != 0 && !errors.As(err, &pe):
			t.Errorf("CheckPolicy(%.40q) = %v, want *PolicyError %d", tt.pw, err, tt.want)
		case tt.want != 0 && pe.Reason != tt.want:
			t.Errorf("CheckPolicy(%.40q) = reason %d (%v), want %d", tt.pw, pe.Reason, err, tt.want)
		case err != nil && tt.pw != "" && strings.Contains(err.Error(), tt.pw):
			t.Errorf("CheckPolicy(%.40q) = %q, echoes the password", tt.pw, err)
		}
	}
}

func TestPolicyErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason PolicyReason
		want   string
	}{
		{TooShort, "password must be at least 8 bytes long"},
		{TooLong, "password must be at most 1024 bytes long"},
		{InvalidUTF8, "password must be valid UTF-8 text"},
		{ContainsNUL, "password must not contain a NUL character"},
	}
	for _, tt := range tests {
		if got := (&PolicyError{Reason: tt.reason}).Error(); got != tt.want {
			t.Errorf("PolicyError{%d}.Error() = %q, want %q", tt.reason, got, tt.want)
		}
	}
}

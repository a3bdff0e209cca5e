package totp

import (
	"strings"
	"testing"
	"time"
)

// FuzzNormalize checks that Normalize accepts exactly "six ASCII digits
// once spaces are gone", and that Verify never panics on raw input and only
// ever accepts a code of six ASCII digits.
func FuzzNormalize(f *testing.F) {
	f.Add("123 456")
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := Normalize(in)
		stripped := strings.ReplaceAll(in, " ", "")
		want := len(in) <= 64 && len(stripped) == 6 && strings.Trim(stripped, "0123456789") == ""
		if ok != want || ok && got != stripped || !ok && got != "" {
			t.Errorf("Normalize(%q) = %q, %v, want ok %v", in, got, ok, want)
		}
		now := time.Unix(1_700_000_000, 0)
		if _, ok := Verify(seed20, in, now, 1, Options{}); ok && (len(in) != 6 || strings.Trim(in, "0123456789") != "") {
			t.Errorf("Verify(%q) = true, want false for anything but 6 ASCII digits", in)
		}
	})
}

package backupcode

import (
	"errors"
	"strings"
	"testing"
)

// FuzzNormalize checks that Normalize never panics, fails only with
// ErrMalformed, and returns only canonical codes it maps to themselves.
func FuzzNormalize(f *testing.F) {
	f.Add("abcd-o123-efgh-4567")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Normalize(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || got != "" {
				t.Fatalf("Normalize(%q) = %q, %v, want \"\", ErrMalformed", in, got, err)
			}
			return
		}
		if len(in) > maxInput {
			t.Errorf("Normalize(%d bytes) = %q, want ErrMalformed past %d bytes", len(in), got, maxInput)
		}
		if len(got) != Length || strings.Trim(got, Alphabet) != "" {
			t.Errorf("Normalize(%q) = %q, want %d characters of %s", in, got, Length, Alphabet)
		}
		if again, err := Normalize(got); err != nil || again != got {
			t.Errorf("Normalize(%q) = %q, %v, want it unchanged", got, again, err)
		}
		formatted := got[:4] + "-" + got[4:8] + "-" + got[8:12] + "-" + got[12:]
		if again, err := Normalize(strings.ToLower(formatted)); err != nil || again != got {
			t.Errorf("Normalize(%q) = %q, %v, want %q", strings.ToLower(formatted), again, err, got)
		}
	})
}

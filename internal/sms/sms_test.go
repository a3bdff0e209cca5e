package sms

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	tests := []struct {
		template, issuer, code, host, want string
	}{
		{"", "twostep", "123456", "auth.example.com", "Your twostep code is 123456\n\n@auth.example.com #123456"},
		{"{code} is your {issuer} code", "Acme", "000042", "https://login.acme.test:8443/path", "000042 is your Acme code\n\n@login.acme.test #000042"},
		{"", "twostep", "123456", "auth.example.com:443", "Your twostep code is 123456\n\n@auth.example.com #123456"},
		{"", "twostep", "123456", "", "Your twostep code is 123456"},
		{"Code: {code}. {code}", "", "1", "h.test", "Code: 1. 1\n\n@h.test #1"},
	}
	for _, tt := range tests {
		if got := Text(tt.template, tt.issuer, tt.code, tt.host); got != tt.want {
			t.Errorf("Text(%q, %q, %q, %q) = %q, want %q", tt.template, tt.issuer, tt.code, tt.host, got, tt.want)
		}
	}
}

func TestSpeakCode(t *testing.T) {
	tests := []struct{ issuer, code, want string }{
		{"twostep", "123456", "Your twostep code is: 1. 2. 3. 4. 5. 6. Again: 1. 2. 3. 4. 5. 6."},
		{"", "090", "Your code is: 0. 9. 0. Again: 0. 9. 0."},
	}
	for _, tt := range tests {
		if got := SpeakCode(tt.issuer, tt.code); got != tt.want {
			t.Errorf("SpeakCode(%q, %q) = %q, want %q", tt.issuer, tt.code, got, tt.want)
		}
	}
}

func TestValidNumber(t *testing.T) {
	tests := map[string]bool{
		"+14155552671":      true,
		"+442071838750":     true,
		"+12345678":         true,  // 8 digits, the shortest accepted
		"+123456789012345":  true,  // 15 digits, E.164's longest
		"+1234567":          false, // 7 digits
		"+1234567890123456": false, // 16 digits
		"14155552671":       false,
		"+04155552671":      false,
		"+1 4155552671":     false,
		"+1415555267a":      false,
		"+14155552671<1415": false,
		"":                  false,
		"+":                 false,
		"+１4155552671":      false, // a full-width digit
	}
	for in, want := range tests {
		if got := ValidNumber(in); got != want {
			t.Errorf("ValidNumber(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	tests := map[string]string{
		"+14155552671":  "+1******2671",
		"+442071838750": "+44******8750",
		"+79161234567":  "+7******4567",
		"+35312345678":  "+353****5678",
		"+861012345678": "+86******5678",
		"+12345":        "+*****",
		"":              "",
		"4155552671":    "[invalid number]",
		"+1415 5552671": "[invalid number]",
	}
	for in, want := range tests {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"The 'To' number +15005550001 is not a valid phone number.": "The 'To' number +1******0001 is not a valid phone number.",
		"'14155552671' is not a valid phone number.":                "'+1******2671' is not a valid phone number.",
		"your code 123456 expired":                                  "your code ****** expired",
		"error 21211":                                               "error 21211",
	}
	for in, want := range tests {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Redact(strings.Repeat("é", 400)); len(got) > 310 || !strings.HasSuffix(got, "…") {
		t.Errorf("Redact(long) = %d bytes, want it cut", len(got))
	}
}

// TestMessageHidesSecrets checks every way a Message may reach a log.
func TestMessageHidesSecrets(t *testing.T) {
	m := Message{To: "+14155552671", Channel: ChannelCall, Body: "Your code is 987654", Code: "987654", Purpose: "login"}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("sending", "message", m)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("sending", "m", m)
	for _, s := range []string{fmt.Sprint(m), fmt.Sprintf("%v %+v %#v %s", m, m, m, m), buf.String()} {
		if strings.Contains(s, "987654") || strings.Contains(s, "4155552671") {
			t.Errorf("%q shows the code or the full number", s)
		}
		if !strings.Contains(s, "+1******2671") {
			t.Errorf("%q lacks the masked number", s)
		}
	}
	if got, want := m.String(), "call to +1******2671 (login)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		status  int
		invalid bool
		want    error // nil: no error
	}{
		{200, false, nil},
		{202, true, nil},
		{429, true, ErrUnavailable},
		{500, false, ErrUnavailable},
		{503, true, ErrUnavailable},
		{400, true, ErrInvalidNumber},
		{404, true, ErrInvalidNumber},
		{400, false, ErrRejected},
		{401, false, ErrRejected},
		{302, true, ErrUnavailable},
		{100, false, ErrUnavailable},
	}
	for _, tt := range tests {
		err := StatusError("p: status", tt.status, tt.invalid)
		if tt.want == nil {
			if err != nil {
				t.Errorf("StatusError(%d, %v) = %v, want nil", tt.status, tt.invalid, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "p: status: ") {
			t.Errorf("StatusError(%d, %v) = %v, want %v after the description", tt.status, tt.invalid, err, tt.want)
		}
	}
}

package totp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	seed20 = []byte("12345678901234567890")
	seed32 = []byte("12345678901234567890123456789012")
	seed64 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

// TestHOTPRFC4226 checks RFC 4226 Appendix D.
func TestHOTPRFC4226(t *testing.T) {
	t.Parallel()
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter, w := range want {
		if got := HOTP(seed20, uint64(counter), 6, SHA1); got != w {
			t.Errorf("HOTP(%q, %d, 6, SHA1) = %q, want %q", seed20, counter, got, w)
		}
	}
}

// TestCodeRFC6238 checks every row of RFC 6238 Appendix B (8 digits), and
// Step against the table's T column.
func TestCodeRFC6238(t *testing.T) {
	t.Parallel()
	tests := []struct {
		unix     int64
		step     int64
		sha1     string
		sha256   string
		sha512   string
		utcLabel string
	}{
		{59, 0x1, "94287082", "46119246", "90693936", "1970-01-01 00:00:59"},
		{1111111109, 0x23523EC, "07081804", "68084774", "25091201", "2005-03-18 01:58:29"},
		{1111111111, 0x23523ED, "14050471", "67062674", "99943326", "2005-03-18 01:58:31"},
		{1234567890, 0x273EF07, "89005924", "91819424", "93441116", "2009-02-13 23:31:30"},
		{2000000000, 0x3F940AA, "69279037", "90698825", "38618901", "2033-05-18 03:33:20"},
		{20000000000, 0x27BC86AA, "65353130", "77737706", "47863826", "2603-10-11 11:33:20"},
	}
	for _, tt := range tests {
		now := time.Unix(tt.unix, 0)
		if got := now.UTC().Format(time.DateTime); got != tt.utcLabel {
			t.Fatalf("time.Unix(%d) = %s, want %s", tt.unix, got, tt.utcLabel)
		}
		if got := Step(now, 30*time.Second); got != tt.step {
			t.Errorf("Step(%s, 30s) = %#x, want %#x", tt.utcLabel, got, tt.step)
		}
		for _, c := range []struct {
			seed []byte
			alg  Algorithm
			want string
		}{{seed20, SHA1, tt.sha1}, {seed32, SHA256, tt.sha256}, {seed64, SHA512, tt.sha512}} {
			opts := Options{Period: 30 * time.Second, Digits: 8, Algorithm: c.alg}
			if got := Code(c.seed, now, opts); got != c.want {
				t.Errorf("Code(%v seed, %s, 8 digits) = %q, want %q", c.alg, tt.utcLabel, got, c.want)
			}
			step, ok := Verify(c.seed, c.want, now, 1, opts)
			if !ok || step != tt.step {
				t.Errorf("Verify(%v seed, %q, %s) = %#x, %v, want %#x, true", c.alg, c.want, tt.utcLabel, step, ok, tt.step)
			}
		}
	}
}

func TestCodeDefaults(t *testing.T) {
	t.Parallel()
	// The 6-digit code is the last 6 digits of the 8-digit RFC vector.
	if got := Code(seed20, time.Unix(59, 0), Options{}); got != "287082" {
		t.Errorf("Code(seed, 59, Options{}) = %q, want %q", got, "287082")
	}
	if got := Code(seed20, time.Unix(1111111109, 0), Options{}); got != "081804" {
		t.Errorf("Code(seed, 1111111109, Options{}) = %q, want %q (leading zero kept)", got, "081804")
	}
	// A 60-second period halves the step.
	if got, want := Code(seed20, time.Unix(119, 0), Options{Period: time.Minute}), HOTP(seed20, 1, 6, SHA1); got != want {
		t.Errorf("Code(seed, 119, 60s) = %q, want %q", got, want)
	}
}

func TestStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		t      time.Time
		period time.Duration
		want   int64
	}{
		{time.Unix(0, 0), 30 * time.Second, 0},
		{time.Unix(29, 999_999_999), 30 * time.Second, 0},
		{time.Unix(30, 0), 30 * time.Second, 1},
		{time.Unix(-1, 0), 30 * time.Second, -1},
		{time.Unix(-30, 0), 30 * time.Second, -1},
		{time.Unix(-31, 0), 30 * time.Second, -2},
		{time.Unix(1_700_000_000, 0), time.Second, 1_700_000_000},
		{time.Unix(1_700_000_000, 0), time.Minute, 28_333_333},
		{time.Unix(119, 0), 60*time.Second + 500*time.Millisecond, 1}, // whole seconds only
	}
	for _, tt := range tests {
		if got := Step(tt.t, tt.period); got != tt.want {
			t.Errorf("Step(%d, %v) = %d, want %d", tt.t.Unix(), tt.period, got, tt.want)
		}
	}
}

func TestVerifyWindow(t *testing.T) {
	t.Parallel()
	secret := []byte("an example twenty b.")
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	current := Step(now, DefaultPeriod)
	tests := []struct {
		offset int64
		skew   int
		wantOK bool
	}{
		{-2, 1, false},
		{-1, 1, true},
		{0, 1, true},
		{1, 1, true},
		{2, 1, false},
		{-1, 0, false},
		{0, 0, true},
		{1, 0, false},
		{-2, 2, true},
		{2, 2, true},
		{3, 2, false},
		{1, -5, false}, // negative skew is 0
		{0, -5, true},
		{10, 1000, true}, // huge skew is 10
		{11, 1000, false},
	}
	for _, tt := range tests {
		code := HOTP(secret, uint64(current+tt.offset), 6, SHA1)
		step, ok := Verify(secret, code, now, tt.skew, Options{})
		if ok != tt.wantOK || ok && step != current+tt.offset {
			t.Errorf("Verify(code of step %+d, skew %d) = %d, %v, want %d, %v", tt.offset, tt.skew, step-current, ok, tt.offset, tt.wantOK)
		}
	}
	// On the last second of a step, the next step's code is within skew 1.
	edge := time.Unix((current+1)*30-1, 0)
	if step, ok := Verify(secret, HOTP(secret, uint64(current+1), 6, SHA1), edge, 1, Options{}); !ok || step != current+1 {
		t.Errorf("Verify(next code, last second of step) = %d, %v, want %d, true", step, ok, current+1)
	}
	// Near the epoch no negative step is tried.
	if step, ok := Verify(secret, HOTP(secret, 0, 6, SHA1), time.Unix(5, 0), 1, Options{}); !ok || step != 0 {
		t.Errorf("Verify(step 0 code at t=5) = %d, %v, want 0, true", step, ok)
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	code := Code(seed20, now, Options{})
	tests := []struct {
		name   string
		secret []byte
		code   string
	}{
		{"empty", seed20, ""},
		{"5 digits", seed20, code[:5]},
		{"7 digits", seed20, code + "0"},
		{"leading space", seed20, " " + code},
		{"inner space", seed20, code[:3] + " " + code[3:]},
		{"trailing newline", seed20, code + "\n"},
		{"letter", seed20, code[:5] + "a"},
		{"sign", seed20, "+" + code[1:]},
		{"minus", seed20, "-" + code[1:]},
		{"NUL", seed20, code[:5] + "\x00"},
		{"Arabic-Indic digits", seed20, toScript(code, '٠')},
		{"fullwidth digits", seed20, toScript(code, '０')},
		{"10 kB of digits", seed20, strings.Repeat(code, 10_000/6)},
		{"wrong code", seed20, HOTP(seed20, uint64(Step(now, DefaultPeriod)+5), 6, SHA1)},
		{"empty secret", nil, HOTP(nil, uint64(Step(now, DefaultPeriod)), 6, SHA1)},
		{"8 digits for 6-digit options", seed20, Code(seed20, now, Options{Digits: 8})},
	}
	for _, tt := range tests {
		if step, ok := Verify(tt.secret, tt.code, now, 1, Options{}); ok {
			t.Errorf("Verify(%s: %.20q) = %d, true, want false", tt.name, tt.code, step)
		}
	}
	if _, ok := Verify(seed20, code, now, 1, Options{}); !ok {
		t.Errorf("Verify(%q) = false, want true (control)", code)
	}
}

// toScript rewrites ASCII digits in s as the digits of another script whose
// zero is zero.
func toScript(s string, zero rune) string {
	return strings.Map(func(r rune) rune { return zero + (r - '0') }, s)
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"123456", "123456", true},
		{"012345", "012345", true},
		{"123 456", "123456", true},
		{" 123456 ", "123456", true},
		{"1 2 3 4 5 6", "123456", true},
		{"", "", false},
		{"      ", "", false},
		{"12345", "", false},
		{"1234567", "", false},
		{"123-456", "", false},
		{"123\t456", "", false},
		{"123456\n", "", false},
		{"\u00a0123456", "", false}, // no-break space is not ASCII
		{"12345a", "", false},
		{"١٢٣٤٥٦", "", false},
		{"１２３４５６", "", false},
		{"12345６", "", false},
		{strings.Repeat(" ", 59) + "123456", "", false}, // over 64 bytes
		{strings.Repeat(" ", 58) + "123456", "123456", true},
		{strings.Repeat("1", 10_000), "", false},
	}
	for _, tt := range tests {
		got, ok := Normalize(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Normalize(%.20q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts    Options
		wantErr bool
	}{
		{Options{}, false},
		{Options{Period: 30 * time.Second, Digits: 6, Algorithm: SHA1}, false},
		{Options{Period: time.Minute, Digits: 8, Algorithm: SHA512}, false},
		{Options{Period: time.Second, Digits: 7, Algorithm: SHA256}, false},
		{Options{Period: 500 * time.Millisecond}, true},
		{Options{Period: 1500 * time.Millisecond}, true},
		{Options{Period: -30 * time.Second}, true},
		{Options{Digits: 5}, true},
		{Options{Digits: 9}, true},
		{Options{Digits: -6}, true},
		{Options{Algorithm: Algorithm(3)}, true},
		{Options{Algorithm: Algorithm(-1)}, true},
	}
	for _, tt := range tests {
		if err := tt.opts.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tt.opts, err, tt.wantErr)
		}
	}
}

func TestPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    func()
	}{
		{"HOTP 5 digits", func() { HOTP(seed20, 0, 5, SHA1) }},
		{"HOTP 9 digits", func() { HOTP(seed20, 0, 9, SHA1) }},
		{"HOTP unknown algorithm", func() { HOTP(seed20, 0, 6, Algorithm(7)) }},
		{"Step zero period", func() { Step(time.Unix(0, 0), 0) }},
		{"Step sub-second period", func() { Step(time.Unix(0, 0), time.Millisecond) }},
		{"Code bad options", func() { Code(seed20, time.Unix(0, 0), Options{Digits: 4}) }},
		{"Verify bad options", func() { Verify(seed20, "123456", time.Unix(0, 0), 1, Options{Period: time.Millisecond}) }},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic, want panic", tt.name)
				}
			}()
			tt.f()
		}()
	}
}

func TestAlgorithmString(t *testing.T) {
	t.Parallel()
	for alg, want := range map[Algorithm]string{SHA1: "SHA1", SHA256: "SHA256", SHA512: "SHA512", 9: "Algorithm(9)"} {
		if got := alg.String(); got != want {
			t.Errorf("Algorithm(%d).String() = %q, want %q", int(alg), got, want)
		}
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	src := bytes.Repeat([]byte{0xab}, 32)
	got, err := NewSecret(bytes.NewReader(src))
	if err != nil || !bytes.Equal(got, src[:20]) {
		t.Errorf("NewSecret(reader) = %x, %v, want %x, nil", got, err, src[:20])
	}
	if _, err := NewSecret(bytes.NewReader(src[:19])); err == nil {
		t.Errorf("NewSecret(19-byte reader) = nil error, want error")
	}
	if _, err := NewSecret(iotest.ErrReader(errors.New("boom"))); err == nil {
		t.Errorf("NewSecret(failing reader) = nil error, want error")
	}
}

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	// RFC 4648 section 10, without padding.
	tests := []struct{ plain, enc string }{
		{"f", "MY"}, {"fo", "MZXQ"}, {"foo", "MZXW6"}, {"foob", "MZXW6YQ"},
		{"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"},
		{"12345678901234567890", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"},
	}
	for _, tt := range tests {
		if got := Encode([]byte(tt.plain)); got != tt.enc {
			t.Errorf("Encode(%q) = %q, want %q", tt.plain, got, tt.enc)
		}
		got, err := Decode(tt.enc)
		if err != nil || string(got) != tt.plain {
			t.Errorf("Decode(%q) = %q, %v, want %q, nil", tt.enc, got, err, tt.plain)
		}
	}
	lenient := []string{"mzxw6ytboi", "MZXW 6YTB OI", "MZXW6YTBOI======", "mzxw6ytboi======"}
	for _, in := range lenient {
		got, err := Decode(in)
		if err != nil || string(got) != "foobar" {
			t.Errorf("Decode(%q) = %q, %v, want %q, nil", in, got, err, "foobar")
		}
	}
	for _, in := range []string{"", "   ", "====", "MZXW1", "MZXW6YTBO!", "MZXW6YTBOI=A", "M"} {
		if got, err := Decode(in); err == nil {
			t.Errorf("Decode(%q) = %x, nil, want error", in, got)
		}
	}
}

func TestEncodeNoPadding(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 64; n++ {
		enc := Encode(bytes.Repeat([]byte{0xff}, n))
		if strings.Contains(enc, "=") {
			t.Errorf("Encode(%d bytes) = %q, want no padding", n, enc)
		}
		dec, err := Decode(enc)
		if diff := cmp.Diff(bytes.Repeat([]byte{0xff}, n), dec); err != nil || diff != "" {
			t.Errorf("Decode(Encode(%d bytes)) = %v, mismatch (-want +got):\n%s", n, err, diff)
		}
	}
}

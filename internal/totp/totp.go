// Package totp implements one-time passwords for authenticator apps: HOTP
// (RFC 4226) and TOTP (RFC 6238), secrets and their base32 form, the
// otpauth:// key URI and its QR code. It keeps no state: replay protection
// (refusing a step not later than the last one accepted) is the caller's,
// using the step Verify returns.
package totp

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
)

// Algorithm is the HMAC hash function of HOTP and TOTP.
type Algorithm int

// The algorithms RFC 6238 allows. SHA1, the zero value, is the only one
// every authenticator app supports.
const (
	SHA1 Algorithm = iota
	SHA256
	SHA512
)

// String returns the name used in key URIs: "SHA1", "SHA256" or "SHA512".
func (a Algorithm) String() string {
	switch a {
	case SHA1:
		return "SHA1"
	case SHA256:
		return "SHA256"
	case SHA512:
		return "SHA512"
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

func (a Algorithm) hash() func() hash.Hash {
	switch a {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	panic("totp: unknown " + a.String())
}

// Defaults, which are what KeyURI advertises and what apps assume.
const (
	DefaultPeriod = 30 * time.Second
	DefaultDigits = 6
)

// SecretSize is the length of a NewSecret secret in bytes: 160 bits, as
// RFC 4226 recommends for HMAC-SHA1.
const SecretSize = 20

// maxSkew caps Verify's window, so a bad argument cannot make it loop.
const maxSkew = 10

// Options are the TOTP parameters. The zero value means SHA1, 6 digits and
// a 30-second period; a zero field takes its default.
type Options struct {
	Period    time.Duration // whole seconds, at least 1s
	Digits    int           // 6 to 8
	Algorithm Algorithm
}

// Validate reports whether o, after defaults, is usable. Code and Verify
// panic on options that fail it, so check configured options once at
// startup.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Period < time.Second || o.Period%time.Second != 0 {
		errs = append(errs, fmt.Errorf("totp period %v is not a whole number of seconds", o.Period))
	}
	if o.Digits < 6 || o.Digits > 8 {
		errs = append(errs, fmt.Errorf("totp digits %d outside 6 to 8", o.Digits))
	}
	if o.Algorithm < SHA1 || o.Algorithm > SHA512 {
		errs = append(errs, fmt.Errorf("totp: unknown %v", o.Algorithm))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Period == 0 {
		o.Period = DefaultPeriod
	}
	if o.Digits == 0 {
		o.Digits = DefaultDigits
	}
	return o
}

func (o Options) mustValid() Options {
	if err := o.Validate(); err != nil {
		panic(err)
	}
	return o.withDefaults()
}

// HOTP returns the RFC 4226 code for counter: dynamic truncation of
// HMAC(secret, counter), as digits decimal digits with leading zeros. It
// panics if digits is not 6 to 8 or alg is unknown.
func HOTP(secret []byte, counter uint64, digits int, alg Algorithm) string {
	if digits < 6 || digits > 8 {
		panic(fmt.Sprintf("totp: digits %d outside 6 to 8", digits))
	}
	mac := hmac.New(alg.hash(), secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	offset := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[offset:]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// Step returns the RFC 6238 time step of t: the number of whole periods
// since the Unix epoch, rounded down (negative before 1970). period is used
// in whole seconds; Step panics if it is under one second.
func Step(t time.Time, period time.Duration) int64 {
	p := int64(period / time.Second)
	if p < 1 {
		panic(fmt.Sprintf("totp: period %v under one second", period))
	}
	s := t.Unix()
	step := s / p
	if s%p < 0 {
		step--
	}
	return step
}

// Code returns the TOTP code for time t. It panics if opts fail Validate.
func Code(secret []byte, t time.Time, opts Options) string {
	opts = opts.mustValid()
	return HOTP(secret, uint64(Step(t, opts.Period)), opts.Digits, opts.Algorithm)
}

// Verify reports whether code is the TOTP code for a step from
// Step(now)-skew to Step(now)+skew, and returns that step so the caller
// can refuse any step not later than the last one it accepted. If several
// steps match (a code collision), the latest is returned. code must be
// exactly opts.Digits ASCII digits (see Normalize); anything else, or an
// empty secret, is refused without computing. Every candidate step is
// computed and compared in constant time, whichever matches. skew is
// clamped to 0 to 10; steps before the epoch are never candidates. It
// panics if opts fail Validate.
func Verify(secret []byte, code string, now time.Time, skew int, opts Options) (step int64, ok bool) {
	opts = opts.mustValid()
	if len(secret) == 0 || len(code) != opts.Digits || !asciiDigits(code) {
		return 0, false
	}
	skew = min(max(skew, 0), maxSkew)
	current := Step(now, opts.Period)
	var found int
	var matched uint64
	for s := current - int64(skew); s <= current+int64(skew); s++ {
		if s < 0 {
			continue
		}
		eq := subtle.ConstantTimeCompare([]byte(HOTP(secret, uint64(s), opts.Digits, opts.Algorithm)), []byte(code))
		// Branch-free: matched = s if eq == 1, else unchanged.
		mask := -uint64(eq)
		matched = matched&^mask | uint64(s)&mask
		found |= eq
	}
	if found == 0 {
		return 0, false
	}
	return int64(matched), true
}

// Normalize prepares a code typed by a user for Verify with the default 6
// digits: it removes ASCII spaces ("123 456") and reports ok only if exactly
// 6 ASCII digits '0'-'9' remain. Other digits (Arabic-Indic, fullwidth) and
// any other character are refused, as is input longer than 64 bytes.
func Normalize(code string) (string, bool) {
	if len(code) > 64 {
		return "", false
	}
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != DefaultDigits || !asciiDigits(code) {
		return "", false
	}
	return code, true
}

func asciiDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NewSecret reads a SecretSize-byte secret from r, which should be
// crypto/rand.Reader. It fails only if r does.
func NewSecret(r io.Reader) ([]byte, error) {
	secret := make([]byte, SecretSize)
	if _, err := io.ReadFull(r, secret); err != nil {
		return nil, fmt.Errorf("totp: new secret: %w", err)
	}
	return secret, nil
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Encode returns secret in the form users type into authenticator apps and
// key URIs carry: RFC 4648 base32, upper case, without padding.
func Encode(secret []byte) string {
	return b32.EncodeToString(secret)
}

// Decode is the inverse of Encode. It is lenient with what people copy:
// lower case, spaces and trailing '=' padding are accepted. An empty or
// invalid input is an error.
func Decode(s string) ([]byte, error) {
	s = strings.TrimRight(strings.ToUpper(strings.ReplaceAll(s, " ", "")), "=")
	secret, err := b32.DecodeString(s)
	if err != nil || len(secret) == 0 {
		return nil, errors.New("totp: secret is not valid base32")
	}
	return secret, nil
}

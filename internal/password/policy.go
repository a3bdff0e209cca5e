package password

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Length bounds of CheckPolicy, in bytes. The upper bound keeps the input
// to argon2 and to request parsing small; it is far above any passphrase.
const (
	MinLength = 8
	MaxLength = 1024
)

// PolicyReason says which rule a password broke.
type PolicyReason int

// The rules of CheckPolicy, in the order it checks them.
const (
	TooShort    PolicyReason = iota + 1 // fewer than MinLength bytes
	TooLong                             // more than MaxLength bytes
	InvalidUTF8                         // not valid UTF-8
	ContainsNUL                         // holds a NUL byte
)

// PolicyError is the error CheckPolicy returns; its message is fit to show
// to the user and never contains the password.
type PolicyError struct {
	Reason PolicyReason
}

// Error describes the broken rule in words fit for the user.
func (e *PolicyError) Error() string {
	switch e.Reason {
	case TooShort:
		return fmt.Sprintf("password must be at least %d bytes long", MinLength)
	case TooLong:
		return fmt.Sprintf("password must be at most %d bytes long", MaxLength)
	case InvalidUTF8:
		return "password must be valid UTF-8 text"
	case ContainsNUL:
		return "password must not contain a NUL character"
	}
	return "password not allowed"
}

// CheckPolicy returns a *PolicyError if pw is not MinLength to MaxLength
// bytes (bytes, not characters, so the bound is what argon2 and storage
// see), is not valid UTF-8, or contains a NUL byte, which some clients and
// C libraries would silently truncate at. Any other character, spaces and
// emoji included, is allowed, and pw is not Unicode-normalised: it is hashed
// byte for byte. Length is checked first, so a huge input is rejected
// without being scanned.
func CheckPolicy(pw string) error {
	switch {
	case len(pw) < MinLength:
		return &PolicyError{Reason: TooShort}
	case len(pw) > MaxLength:
		return &PolicyError{Reason: TooLong}
	case !utf8.ValidString(pw):
		return &PolicyError{Reason: InvalidUTF8}
	case strings.IndexByte(pw, 0) >= 0:
		return &PolicyError{Reason: ContainsNUL}
	}
	return nil
}

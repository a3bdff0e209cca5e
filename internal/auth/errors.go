package auth

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sentinel errors. httpapi maps each to a status and a contract code.
var (
	ErrInvalidRequest     = errors.New("invalid request")
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrUnauthorized       = errors.New("unauthorized")
	ErrInvalidCode        = errors.New("invalid code")
	ErrChallengeExpired   = errors.New("challenge expired")
	ErrSudoRequired       = errors.New("sudo required")
	ErrForbidden          = errors.New("forbidden")
	ErrEnrollmentRequired = errors.New("enrollment required")
	ErrNotFound           = errors.New("not found")
	ErrConflict           = errors.New("conflict")
	ErrInvalidPhone       = errors.New("invalid phone")
	ErrSMSUnavailable     = errors.New("sms unavailable")
	// ErrUnavailable means a store twostep needs (the database, Redis) did
	// not answer; the request failed closed and changed nothing.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// ValidationError reports which request fields are wrong. It matches
// ErrInvalidRequest with errors.Is.
type ValidationError struct {
	Problems map[string]string // field name → what is wrong
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Problems))
	for k := range e.Problems {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e.Problems[k])
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalidRequest) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

func invalid(field, problem string) error {
	return &ValidationError{Problems: map[string]string{field: problem}}
}

// RateLimitError says an action is refused until RetryAfter has passed.
type RateLimitError struct {
	RetryAfter time.Duration
	Reason     string
}

// ErrRateLimited matches every *RateLimitError with errors.Is.
var ErrRateLimited = errors.New("rate limited")

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited: %s (retry after %s)", e.Reason, e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

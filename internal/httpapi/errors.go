package httpapi

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/twostep-auth/twostep/internal/auth"
)

// errorMapping is the one table from domain errors to the contract's
// statuses and codes. The first entry that errors.Is matches wins.
var errorMapping = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{auth.ErrInvalidPhone, http.StatusBadRequest, "invalid_phone", "The phone number must be in international format, like +14155552671"},
	{auth.ErrInvalidRequest, http.StatusBadRequest, "invalid_request", "The request is not valid"},
	{auth.ErrInvalidCredentials, http.StatusUnauthorized, "invalid_credentials", "Wrong email, username or password"},
	{auth.ErrUnauthorized, http.StatusUnauthorized, "unauthorized", "A valid token is required"},
	{auth.ErrInvalidCode, http.StatusUnauthorized, "invalid_code", "The code is not valid"},
	{auth.ErrChallengeExpired, http.StatusUnauthorized, "challenge_expired", "The sign-in attempt has expired; sign in again"},
	{auth.ErrSudoRequired, http.StatusForbidden, "sudo_required", "Confirm with a second-factor code first"},
	{auth.ErrEnrollmentRequired, http.StatusForbidden, "enrollment_required", "Set up two-factor authentication first"},
	{auth.ErrForbidden, http.StatusForbidden, "forbidden", "You are not allowed to do this"},
	{auth.ErrNotFound, http.StatusNotFound, "not_found", "Not found"},
	{auth.ErrConflict, http.StatusConflict, "conflict", "This conflicts with the current state"},
	{auth.ErrRateLimited, http.StatusTooManyRequests, "rate_limited", "Too many attempts; try again later"},
	{auth.ErrSMSUnavailable, http.StatusServiceUnavailable, "sms_unavailable", "The code could not be sent; try again later"},
	{auth.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "The service is temporarily unavailable; try again later"},
}

// apiError is an error the HTTP layer itself raises (bad JSON, huge body,
// unknown route).
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

// errorBody is the contract's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// writeError answers err in the contract's shape. Anything unmapped is a
// 500 "internal error", logged once with the request id.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		encode(w, ae.status, errorBody{Error: errorDetail{Code: ae.code, Message: ae.message}})
		return
	}
	for _, m := range errorMapping {
		if !errors.Is(err, m.err) {
			continue
		}
		detail := errorDetail{Code: m.code, Message: m.message}
		var ve *auth.ValidationError
		if errors.As(err, &ve) {
			detail.Message = ve.Error()
			detail.Fields = ve.Problems
		}
		var rl *auth.RateLimitError
		if errors.As(err, &rl) {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(rl)))
			detail.Message = "Too many attempts; try again later (" + rl.Reason + ")"
		}
		encode(w, m.status, errorBody{Error: detail})
		return
	}
	logger.ErrorContext(r.Context(), "internal error", "request_id", requestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
	encode(w, http.StatusInternalServerError, errorBody{Error: errorDetail{Code: "internal_error", Message: "internal error"}})
}

func retryAfterSeconds(rl *auth.RateLimitError) int {
	s := int(math.Ceil(rl.RetryAfter.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

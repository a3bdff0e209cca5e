package httpapi

import (
	"cmp"
	"net/http"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// methodJSON is one confirmed second factor in a 2FA status.
type methodJSON struct {
	ID         string  `json:"id"`
	Method     string  `json:"method"`
	Label      string  `json:"label"`
	To         *string `json:"to"`
	CreatedAt  string  `json:"createdAt"`
	LastUsedAt *string `json:"lastUsedAt"`
}

// twoFaStatusJSON is the answer of GET /twoFa, also shown in the admin
// view of a user.
type twoFaStatusJSON struct {
	Enabled              bool         `json:"enabled"`
	Methods              []methodJSON `json:"methods"`
	BackupCodesRemaining int          `json:"backupCodesRemaining"`
	SudoUntil            *string      `json:"sudoUntil"`
	Warning              string       `json:"warning,omitempty"`
}

func toTwoFaStatusJSON(st auth.TwoFaStatus) twoFaStatusJSON {
	out := twoFaStatusJSON{Enabled: st.Enabled, Methods: []methodJSON{}, BackupCodesRemaining: st.BackupCodesRemaining, SudoUntil: timePtr(st.SudoUntil), Warning: st.Warning}
	for _, m := range st.Methods {
		out.Methods = append(out.Methods, methodJSON{ID: m.ID, Method: m.Method, Label: m.Label, To: nullable(m.To), CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339), LastUsedAt: timePtr(m.LastUsedAt)})
	}
	return out
}

func (s *server) handleTwoFaStatus() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := s.svc.TwoFaStatus(r.Context(), principal(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, toTwoFaStatusJSON(st))
	})
}

func timePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func (s *server) handleEnable() http.Handler {
	type request struct {
		Method      string `json:"method"`
		Phone       string `json:"phone"`
		PhoneNumber string `json:"phoneNumber"`
		Label       string `json:"label"`
		Code        string `json:"code"`
	}
	type authenticatorResponse struct {
		Method     string `json:"method"`
		Secret     string `json:"secret"`
		OTPAuthURL string `json:"otpauthUrl"`
		QRCode     string `json:"qrCode"`
		Result     string `json:"result"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		switch req.Method {
		case auth.MethodAuthenticator:
			e, err := s.svc.EnableAuthenticator(r.Context(), principal(r), req.Label, req.Code, meta(r))
			if err != nil {
				writeError(w, r, s.logger, err)
				return
			}
			encode(w, http.StatusOK, authenticatorResponse{Method: auth.MethodAuthenticator, Secret: e.Secret, OTPAuthURL: e.OTPAuthURL, QRCode: e.QRCode, Result: e.QRCode})
		case "":
			writeError(w, r, s.logger, &auth.ValidationError{Problems: map[string]string{"method": "is required: authenticator or sms"}})
		case auth.MethodSMS:
			to, err := s.svc.EnableSMS(r.Context(), principal(r), cmp.Or(req.Phone, req.PhoneNumber), req.Label, req.Code, meta(r))
			if err != nil {
				writeError(w, r, s.logger, err)
				return
			}
			encode(w, http.StatusOK, smsEnrollResponse{Method: auth.MethodSMS, Message: "Verification code sent", To: to})
		default:
			writeError(w, r, s.logger, &auth.ValidationError{Problems: map[string]string{"method": "must be authenticator or sms"}})
		}
	})
}

// smsEnrollResponse answers /twoFa/enable for sms.
type smsEnrollResponse struct {
	Method  string `json:"method"`
	Message string `json:"message"`
	To      string `json:"to"`
}

func (s *server) handleEnableVerify() http.Handler {
	type request struct {
		Code   string `json:"code"`
		Method string `json:"method"`
	}
	type response struct {
		Message     string   `json:"message"`
		Method      string   `json:"method"`
		BackupCodes []string `json:"backupCodes,omitempty"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		res, err := s.svc.ConfirmEnrollment(r.Context(), principal(r), req.Method, req.Code, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, response{Message: "2FA enabled", Method: res.Method, BackupCodes: res.BackupCodes})
	})
}

// challengeToken returns the opaque challenge token of the request, or
// false when the bearer is missing or is an access token.
func challengeToken(r *http.Request) (string, bool) {
	tok := bearer(r)
	if tok == "" || isJWT(tok) {
		return "", false
	}
	return tok, true
}

// handleAuthorize takes a challenge token (the second step of a login) or
// an access token (a step-up to sudo: an SMS or voice code bound to the
// session, for /twoFa/verify or a sudo action's code).
func (s *server) handleAuthorize() http.Handler {
	type request struct {
		Method string `json:"method"`
	}
	type response struct {
		Method     string `json:"method"`
		Message    string `json:"message"`
		RetryAfter int    `json:"retryAfter,omitempty"`
	}
	serve := func(w http.ResponseWriter, r *http.Request, authorize func(method string) (auth.AuthorizeResult, error)) {
		req, err := decodeOptional[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		res, err := authorize(req.Method)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, response{Method: res.Method, Message: res.Message, RetryAfter: int(res.RetryAfter / time.Second)})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := challengeToken(r); ok {
			serve(w, r, func(method string) (auth.AuthorizeResult, error) {
				return s.svc.Authorize(r.Context(), tok, method, meta(r))
			})
			return
		}
		s.requireAccess(false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			serve(w, r, func(method string) (auth.AuthorizeResult, error) {
				return s.svc.AuthorizeStepUp(r.Context(), principal(r), method, meta(r))
			})
		})).ServeHTTP(w, r)
	})
}

// handleVerify takes a challenge token (finish a login) or an access token
// (step up: sudo renewed, fresh pair for the same session).
func (s *server) handleVerify() http.Handler {
	type request struct {
		Code   string `json:"code"`
		Method string `json:"method"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		if tok, ok := challengeToken(r); ok {
			t, err := s.svc.VerifyChallenge(r.Context(), tok, req.Method, req.Code, meta(r))
			if err != nil {
				s.metrics.login("second_factor", loginOutcome(err))
				writeError(w, r, s.logger, err)
				return
			}
			s.metrics.login("second_factor", "succeeded")
			encode(w, http.StatusOK, toTokensJSON(t))
			return
		}
		s.requireAccess(false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, _, err := s.svc.StepUp(r.Context(), principal(r), req.Method, req.Code, meta(r))
			if err != nil {
				writeError(w, r, s.logger, err)
				return
			}
			encode(w, http.StatusOK, toTokensJSON(t))
		})).ServeHTTP(w, r)
	})
}

func (s *server) handleRecover() http.Handler {
	type request struct {
		Code string `json:"code"`
	}
	type response struct {
		tokensJSON
		Message   string `json:"message"`
		Remaining int    `json:"remaining"`
	}
	answer := func(w http.ResponseWriter, t auth.Tokens, remaining int) {
		encode(w, http.StatusOK, response{tokensJSON: toTokensJSON(t), Message: backupLeftMessage(remaining), Remaining: remaining})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		if tok, ok := challengeToken(r); ok {
			res, err := s.svc.Recover(r.Context(), tok, req.Code, meta(r))
			if err != nil {
				s.metrics.login("second_factor", loginOutcome(err))
				writeError(w, r, s.logger, err)
				return
			}
			s.metrics.login("second_factor", "succeeded")
			answer(w, res.Tokens, res.Remaining)
			return
		}
		s.requireAccess(false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, remaining, err := s.svc.StepUp(r.Context(), principal(r), auth.MethodBackup, req.Code, meta(r))
			if err != nil {
				writeError(w, r, s.logger, err)
				return
			}
			answer(w, t, remaining)
		})).ServeHTTP(w, r)
	})
}

func backupLeftMessage(n int) string {
	if n == 1 {
		return "You have 1 back up code left"
	}
	return "You have " + itoa(n) + " back up codes left"
}

func (s *server) handleBackupCodes() http.Handler {
	type request struct {
		Code string `json:"code"`
	}
	type response struct {
		Codes       []string `json:"codes"`
		BackupCodes []string `json:"backupCodes"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var code string
		if r.Method == http.MethodPost {
			req, err := decodeOptional[request](r)
			if err != nil {
				writeError(w, r, s.logger, err)
				return
			}
			code = req.Code
		}
		codes, err := s.svc.GenerateBackupCodes(r.Context(), principal(r), code, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, response{Codes: codes, BackupCodes: codes})
	})
}

func (s *server) handleDisable() http.Handler {
	type request struct {
		Method string `json:"method"`
		Code   string `json:"code"`
	}
	type response struct {
		Message string `json:"message"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeOptional[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		off, err := s.svc.Disable(r.Context(), principal(r), req.Method, req.Code, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		msg := "2FA disabled"
		if !off {
			msg = req.Method + " removed"
		}
		encode(w, http.StatusOK, response{Message: msg})
	})
}

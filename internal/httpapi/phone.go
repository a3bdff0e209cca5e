package httpapi

import (
	"cmp"
	"net/http"

	"github.com/twostep-auth/twostep/internal/auth"
)

type messageJSON struct {
	Message string `json:"message"`
}

func (s *server) handleChangePhone() http.Handler {
	type request struct {
		Phone       string `json:"phone"`
		PhoneNumber string `json:"phoneNumber"`
		Code        string `json:"code"`
	}
	type response struct {
		Message string `json:"message"`
		To      string `json:"to"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		to, err := s.svc.ChangePhone(r.Context(), principal(r), cmp.Or(req.Phone, req.PhoneNumber), req.Code, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, response{Message: "Verification code sent", To: to})
	})
}

func (s *server) handleVerifyPhone() http.Handler {
	type request struct {
		Code string `json:"code"`
	}
	type response struct {
		User userJSON `json:"user"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		u, err := s.svc.VerifyPhone(r.Context(), principal(r), req.Code, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, response{User: toUserJSON(u)})
	})
}

func (s *server) handlePhoneSignUp() http.Handler {
	type request struct {
		Username string `json:"username"`
		Phone    string `json:"phone"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		if err := s.svc.PhoneSignUp(r.Context(), req.Username, req.Phone, meta(r)); err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusAccepted, messageJSON{Message: "Verification code sent"})
	})
}

func (s *server) handlePhoneSignIn() http.Handler {
	type request struct {
		Phone string `json:"phone"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		if err := s.svc.PhoneSignIn(r.Context(), req.Phone, meta(r)); err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusAccepted, messageJSON{Message: "Verification code sent"})
	})
}

func (s *server) handlePhoneVerify() http.Handler {
	type request struct {
		Phone string `json:"phone"`
		Code  string `json:"code"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		res, err := s.svc.PhoneVerify(r.Context(), req.Phone, req.Code, meta(r))
		if err != nil {
			s.metrics.login("phone", loginOutcome(err))
			writeError(w, r, s.logger, err)
			return
		}
		s.writeLoginResult(w, "phone", res)
	})
}

// writeLoginResult answers a first-factor login: tokens and user, or the
// 2FA-required challenge.
func (s *server) writeLoginResult(w http.ResponseWriter, step string, res auth.LoginResult) {
	type challenge struct {
		Message        string   `json:"message"`
		TwoFaRequired  bool     `json:"twoFaRequired"`
		ChallengeToken string   `json:"challengeToken"`
		Methods        []string `json:"methods"`
		ExpiresIn      int      `json:"expiresIn"`
	}
	if res.Challenge != nil {
		s.metrics.login(step, "twofa_required")
		encode(w, http.StatusOK, challenge{
			Message: "2FA required", TwoFaRequired: true, ChallengeToken: res.Challenge.Token,
			Methods: res.Challenge.Methods, ExpiresIn: res.Challenge.ExpiresIn,
		})
		return
	}
	s.metrics.login(step, "succeeded")
	out := toTokensJSON(*res.Tokens)
	u := toUserJSON(res.User)
	out.User = &u
	out.TwoFaEnrollmentRequired = res.EnrollmentRequired
	encode(w, http.StatusOK, out)
}

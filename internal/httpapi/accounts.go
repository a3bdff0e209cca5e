package httpapi

import (
	"cmp"
	"errors"
	"net/http"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// userJSON is the contract's User.
type userJSON struct {
	ID            string   `json:"id"`
	Email         *string  `json:"email"`
	Username      *string  `json:"username"`
	Phone         *string  `json:"phone"`
	PhoneVerified bool     `json:"phoneVerified"`
	TwoFaEnabled  bool     `json:"twoFaEnabled"`
	Roles         []string `json:"roles"`
	CreatedAt     string   `json:"createdAt"`
}

func toUserJSON(u auth.User) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userJSON{
		ID:            u.ID,
		Email:         nullable(u.Email),
		Username:      nullable(u.Username),
		Phone:         nullable(u.Phone),
		PhoneVerified: u.PhoneVerified,
		TwoFaEnabled:  u.TwoFaEnabled,
		Roles:         roles,
		CreatedAt:     u.CreatedAt.UTC().Format(time.RFC3339),
	}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// tokensJSON is the contract's Tokens, optionally with the user.
type tokensJSON struct {
	AccessToken             string    `json:"accessToken"`
	RefreshToken            string    `json:"refreshToken"`
	ExpiresIn               int       `json:"expiresIn"`
	TokenType               string    `json:"tokenType"`
	User                    *userJSON `json:"user,omitempty"`
	TwoFaEnrollmentRequired bool      `json:"twoFaEnrollmentRequired,omitempty"`
}

func toTokensJSON(t auth.Tokens) tokensJSON {
	return tokensJSON{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresIn: t.ExpiresIn, TokenType: "Bearer"}
}

func (s *server) handleRegister() http.Handler {
	type request struct {
		Email    string `json:"email"`
		Username string `json:"username"`
		Password string `json:"password"`
		Phone    string `json:"phone"`
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
		u, err := s.svc.Register(r.Context(), auth.RegisterInput{Email: req.Email, Username: req.Username, Password: req.Password, Phone: req.Phone}, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusCreated, response{User: toUserJSON(u)})
	})
}

func (s *server) handleLogin() http.Handler {
	type request struct {
		Email    string `json:"email"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		res, err := s.svc.Login(r.Context(), auth.LoginInput{Login: cmp.Or(req.Email, req.Username), Password: req.Password}, meta(r))
		if err != nil {
			s.metrics.login("password", loginOutcome(err))
			writeError(w, r, s.logger, err)
			return
		}
		s.writeLoginResult(w, "password", res)
	})
}

func loginOutcome(err error) string {
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, auth.ErrRateLimited):
		return "throttled"
	case errors.Is(err, auth.ErrInvalidCode):
		return "invalid_code"
	case errors.Is(err, auth.ErrInvalidRequest):
		return "invalid_request"
	case errors.Is(err, auth.ErrForbidden):
		return "forbidden"
	case errors.Is(err, auth.ErrChallengeExpired), errors.Is(err, auth.ErrUnauthorized):
		return "expired"
	default:
		return "error"
	}
}

func (s *server) handleRenew() http.Handler {
	type request struct {
		RefreshToken string `json:"refreshToken"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		if req.RefreshToken == "" {
			writeError(w, r, s.logger, &auth.ValidationError{Problems: map[string]string{"refreshToken": "is required"}})
			return
		}
		t, err := s.svc.Refresh(r.Context(), req.RefreshToken, meta(r))
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, toTokensJSON(t))
	})
}

func (s *server) handleLogout() http.Handler {
	type response struct {
		Message string `json:"message"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.svc.Logout(r.Context(), principal(r), meta(r)); err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		encode(w, http.StatusOK, response{Message: "Logged out"})
	})
}

func (s *server) handleUser() http.Handler {
	type response struct {
		User userJSON `json:"user"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, response{User: toUserJSON(principal(r).User)})
	})
}

package httpapi

import (
	"net/http"

	"github.com/twostep-auth/twostep/internal/auth"
)

// handleExchange redeems a one-time code that the hosted sign-in page
// (internal/accountui) put in the query of an application's return_to URL:
// the application's server posts it here and gets tokens for a new session
// of the user who signed in. A code works once and for 60 seconds; one made
// for a sign-in link with a PKCE code_challenge needs codeVerifier.
func (s *server) handleExchange() http.Handler {
	type request struct {
		Code         string `json:"code"`
		CodeVerifier string `json:"codeVerifier"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[request](r)
		if err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		if req.Code == "" {
			writeError(w, r, s.logger, &auth.ValidationError{Problems: map[string]string{"code": "is required"}})
			return
		}
		u, t, err := s.svc.ExchangeHandoff(r.Context(), req.Code, req.CodeVerifier, meta(r))
		if err != nil {
			s.metrics.login("handoff", loginOutcome(err))
			writeError(w, r, s.logger, err)
			return
		}
		s.metrics.login("handoff", "succeeded")
		out := toTokensJSON(t)
		uj := toUserJSON(u)
		out.User = &uj
		encode(w, http.StatusOK, out)
	})
}

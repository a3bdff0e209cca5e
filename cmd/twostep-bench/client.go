package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Contract paths (api.md).
const (
	pathRegister     = "/authentication/local/new"
	pathLogin        = "/authentication/local"
	pathRenew        = "/authentication/renew"
	pathUser         = "/authentication/user"
	pathJWKS         = "/.well-known/jwks.json"
	pathEnable       = "/authentication/twoFa/enable"
	pathEnableVerify = "/authentication/twoFa/enable/verify"
	pathAuthorize    = "/authentication/twoFa/authorize"
	pathVerify       = "/authentication/twoFa/verify"
	pathRecover      = "/authentication/twoFa/recover"
	pathHealth       = "/healthz"
)

// newHTTPClient returns a client tuned for many keep-alive connections to a few local hosts:
// clients concurrent requests never wait for, or close, a connection.
func newHTTPClient(clients int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // targets are local; never go through a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no overall limit
		MaxIdleConnsPerHost: clients + 8,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// api sends the contract's requests to the targets. It is safe for concurrent use; the buffer
// passed to each call belongs to the calling client.
type api struct {
	hc    *http.Client
	bases []string // base URLs, no trailing slash; requests round-robin across them
}

// base returns the target for a client's n-th request.
func (a *api) base(client, n int) string {
	return a.bases[(client+n)%len(a.bases)]
}

// do sends one request to url and reads the whole answer into buf, so that the connection is
// reused. body may be nil; bearer may be empty. It returns the HTTP status, or statusTransport with
// the error when there was no answer.
func (a *api) do(ctx context.Context, method, url string, body []byte, bearer string, buf *bytes.Buffer) (int, error) {
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	} else {
		req, err = http.NewRequestWithContext(ctx, method, url, nil)
	}
	if err != nil {
		return statusTransport, err
	}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	if bearer != "" {
		req.Header["Authorization"] = []string{"Bearer " + bearer}
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return statusTransport, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return statusTransport, err
	}
	return resp.StatusCode, nil
}

// call is do for set-up requests: it marshals in, wants a 2xx answer and unmarshals it into out
// (which may be nil). Any other answer is an error that quotes the start of the body.
func (a *api) call(ctx context.Context, client int, method, path string, in any, bearer string, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	status, err := a.do(ctx, method, a.base(client, 0)+path, body, bearer, &buf)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if !isOK(status) {
		return fmt.Errorf("%s %s: status %d: %s", method, path, status, excerpt(buf.Bytes()))
	}
	if out != nil {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// excerpt returns the start of an answer body for an error message.
func excerpt(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// Shapes of the contract's bodies, as far as the harness reads them.
type (
	credentials struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	tokens struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
	}
	// loginAnswer is a password login's answer: tokens, or a second-factor challenge.
	loginAnswer struct {
		tokens
		TwoFaRequired  bool   `json:"twoFaRequired"`
		ChallengeToken string `json:"challengeToken"`
	}
	enableAnswer struct {
		Secret     string `json:"secret"`
		OtpauthURL string `json:"otpauthUrl"`
	}
	enableVerifyAnswer struct {
		BackupCodes []string `json:"backupCodes"`
		Codes       []string `json:"codes"` // Conduit's other spelling
	}
	codeBody struct {
		Code string `json:"code"`
	}
)

// register creates an account.
func (a *api) register(ctx context.Context, client int, c credentials) error {
	return a.call(ctx, client, http.MethodPost, pathRegister, c, "", nil)
}

// login does a password login and wants tokens (no second factor).
func (a *api) login(ctx context.Context, client int, c credentials) (tokens, error) {
	var ans loginAnswer
	if err := a.call(ctx, client, http.MethodPost, pathLogin, c, "", &ans); err != nil {
		return tokens{}, err
	}
	if ans.TwoFaRequired || ans.AccessToken == "" || ans.RefreshToken == "" {
		return tokens{}, fmt.Errorf("POST %s: no tokens in the answer", pathLogin)
	}
	return ans.tokens, nil
}

// challenge does a password login for a user with a second factor and returns the challenge token.
func (a *api) challenge(ctx context.Context, client int, c credentials) (string, error) {
	var ans loginAnswer
	if err := a.call(ctx, client, http.MethodPost, pathLogin, c, "", &ans); err != nil {
		return "", err
	}
	if !ans.TwoFaRequired || ans.ChallengeToken == "" {
		return "", fmt.Errorf("POST %s: want twoFaRequired and a challengeToken", pathLogin)
	}
	return ans.ChallengeToken, nil
}

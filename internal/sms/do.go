package sms

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultTimeout bounds a provider request when the provider's client has
// none of its own (Failover gives each attempt its share of its budget
// through the context as well).
const DefaultTimeout = 10 * time.Second

// maxReply is the most of a provider's answer that is read.
const maxReply = 64 << 10

// Do sends req with hc (a client with DefaultTimeout when nil) and returns
// the status and up to 64 KiB of the body. A request that gets no answer,
// or a non-2xx answer whose body cannot be read, is ErrUnavailable; the
// error never names the URL, which may carry a credential. A 2xx answer
// cut short is still a 2xx: the provider has taken the message.
func Do(hc *http.Client, req *http.Request) (int, []byte, error) {
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil && (resp.StatusCode < 200 || resp.StatusCode >= 300) {
		return 0, nil, fmt.Errorf("status %d: read body: %w: %w", resp.StatusCode, ErrUnavailable, err)
	}
	return resp.StatusCode, body, nil
}

// StatusError classifies a provider's HTTP status, with desc (what was
// sent and the status, for the message) leading the error: nil for a 2xx;
// ErrUnavailable for a 429 or a 5xx; ErrInvalidNumber for a 4xx when
// invalidNumber (the provider's answer blames the destination);
// ErrRejected for any other 4xx; and ErrUnavailable, as unexpected, for
// anything else.
func StatusError(desc string, status int, invalidNumber bool) error {
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("%s: %w", desc, ErrUnavailable)
	case status >= 400 && invalidNumber:
		return fmt.Errorf("%s: %w", desc, ErrInvalidNumber)
	case status >= 400:
		return fmt.Errorf("%s: %w", desc, ErrRejected)
	default:
		return fmt.Errorf("%s: unexpected status: %w", desc, ErrUnavailable)
	}
}

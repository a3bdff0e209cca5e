package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// encode writes v as JSON with status. Headers must be set before.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// decode reads one JSON object of type T from the body. A missing or
// non-JSON body, JSON that is not an object (null included), a field of
// the wrong type or trailing data is a 400
// invalid_request; a body over the size limit a 413. Unknown fields are
// ignored.
func decode[T any](r *http.Request) (T, error) {
	var v T
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/problem+json") {
			return v, &apiError{http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/json"}
		}
	}
	body, err := io.ReadAll(r.Body) // bounded by the body limit
	if err != nil {
		return v, decodeError(err)
	}
	// null, arrays and scalars are JSON but not an object; null would even
	// decode into T without an error, leaving every field empty.
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] != '{' {
		return v, &apiError{http.StatusBadRequest, "invalid_request", "The body must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		return v, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return v, &apiError{http.StatusBadRequest, "invalid_request", "The body must hold exactly one JSON object"}
	}
	return v, nil
}

func decodeError(err error) error {
	var maxErr *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &maxErr):
		return &apiError{http.StatusRequestEntityTooLarge, "invalid_request", fmt.Sprintf("The body is larger than %d bytes", maxErr.Limit)}
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return &apiError{http.StatusBadRequest, "invalid_request", "The body must be a JSON object"}
		}
		return &apiError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("Field %q must be a %s", field, typeErr.Type.String())}
	case errors.Is(err, io.EOF):
		return &apiError{http.StatusBadRequest, "invalid_request", "The body must be a JSON object"}
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{http.StatusBadRequest, "invalid_request", "The body is not valid JSON"}
	default:
		return &apiError{http.StatusBadRequest, "invalid_request", "The body could not be read"}
	}
}

// decodeOptional is decode for endpoints whose body may be empty.
func decodeOptional[T any](r *http.Request) (T, error) {
	var zero T
	if r.ContentLength == 0 {
		return zero, nil
	}
	return decode[T](r)
}

func itoa(n int) string { return strconv.Itoa(n) }

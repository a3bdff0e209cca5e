// Package apispec owns twostep's OpenAPI 3.1 document, the machine-readable
// form of the HTTP contract (shared/api.md), and a validator that checks real
// requests and responses against it, for other packages' tests.
package apispec

import (
	"bytes"
	_ "embed"
)

//go:embed openapi.json
var document []byte

// Document returns the OpenAPI 3.1 document as JSON, the body served at
// GET /openapi.json. Each call returns a fresh copy that the caller may keep
// or change.
func Document() []byte {
	return bytes.Clone(document)
}

package apispec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Errors wrapped by ValidateRequest and ValidateResponse; check them with
// errors.Is.
var (
	// ErrUnknownPath means no path template of the document matches the path.
	ErrUnknownPath = errors.New("path is not in the OpenAPI document")
	// ErrUnknownMethod means the path exists but has no operation for the
	// method.
	ErrUnknownMethod = errors.New("method is not documented for this path")
	// ErrUndocumentedStatus means the operation does not document the status.
	ErrUndocumentedStatus = errors.New("status is not documented for this operation")
	// ErrMismatch means a body, header, parameter or credential does not match
	// what the document says.
	ErrMismatch = errors.New("does not match the OpenAPI document")
)

// docURL names the document inside the JSON Schema compiler. It is never
// fetched: every $ref in the document is local.
const docURL = "urn:twostep:openapi.json"

// Validator checks HTTP requests and responses against the OpenAPI document
// returned by Document. It is built once, never changes afterwards, and is
// safe for concurrent use.
//
// Schemas are JSON Schema 2020-12 (the OpenAPI 3.1 dialect) with "format"
// asserted (date-time, email), so a missing required field, a field of the
// wrong type, a value outside an enum or a malformed timestamp all fail.
// Fields the document does not name are allowed, as the contract says.
type Validator struct {
	paths []*pathItem
}

type pathItem struct {
	template string
	segments []string // "{name}" marks a path parameter
	ops      map[string]*operation
}

type operation struct {
	bearer    bool // needs Authorization: Bearer
	params    []*parameter
	body      *requestBody // nil: the operation takes no body
	responses map[string]*response
}

type parameter struct {
	name     string
	in       string // "path" or "query"
	required bool
	kind     string // JSON type of the schema: integer, number, boolean or string
	schema   *jsonschema.Schema
}

type requestBody struct {
	required bool
	content  map[string]*jsonschema.Schema // nil schema: any body of that type
}

type response struct {
	headers []*header
	content map[string]*jsonschema.Schema // nil schema: any body of that type
}

type header struct {
	name     string
	required bool
	kind     string
	schema   *jsonschema.Schema
}

// NewValidator parses the document and compiles every schema it uses. An
// error means the document itself is broken.
func NewValidator() (*Validator, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(document))
	if err != nil {
		return nil, fmt.Errorf("parse openapi.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, doc); err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	b := &builder{doc: doc, compiler: c}
	v, err := b.validator()
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	return v, nil
}

// ValidateRequest checks a request a client sends: the path and method are
// documented (path templates such as /admin/users/{id} match), the path and
// query parameters match their schemas (an empty query value counts as
// absent), an operation that needs a token has "Authorization: Bearer …" in
// header, and body matches the request body schema for header's
// Content-Type. path may carry a query string. A non-empty body for an
// operation that takes none is an error. The error wraps ErrUnknownPath,
// ErrUnknownMethod or ErrMismatch.
func (v *Validator) ValidateRequest(method, path string, header http.Header, body []byte) error {
	op, pathParams, query, err := v.find(method, path)
	if err != nil {
		return err
	}
	var errs []error
	if op.bearer && !hasBearer(header) {
		errs = append(errs, fmt.Errorf("%w: no Authorization: Bearer token", ErrMismatch))
	}
	for _, p := range op.params {
		var raw string
		switch p.in {
		case "path":
			raw = pathParams[p.name]
		case "query":
			vals := query[p.name]
			if len(vals) > 1 {
				errs = append(errs, fmt.Errorf("%w: query parameter %q given %d times", ErrMismatch, p.name, len(vals)))
				continue
			}
			if len(vals) == 1 {
				raw = vals[0]
			}
		}
		if raw == "" {
			if p.required {
				errs = append(errs, fmt.Errorf("%w: %s parameter %q is required", ErrMismatch, p.in, p.name))
			}
			continue
		}
		if err := check(p.schema, p.kind, raw); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s parameter %q: %w", ErrMismatch, p.in, p.name, err))
		}
	}
	switch {
	case op.body == nil:
		if len(bytes.TrimSpace(body)) > 0 {
			errs = append(errs, fmt.Errorf("%w: the operation takes no body", ErrMismatch))
		}
	case len(bytes.TrimSpace(body)) == 0:
		if op.body.required {
			errs = append(errs, fmt.Errorf("%w: a request body is required", ErrMismatch))
		}
	default:
		if err := checkBody(op.body.content, header, body); err != nil {
			errs = append(errs, fmt.Errorf("%w: request body: %w", ErrMismatch, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: %w", method, path, errors.Join(errs...))
	}
	return nil
}

// ValidateResponse checks a response the server gave to method and path
// (query strings are ignored): the path and method are documented, status
// is documented for that operation, every required response header is
// present and matches its schema (Retry-After on 429, Cache-Control:
// no-store on answers that carry a token, a secret or a code), and body
// matches the schema for that status and header's Content-Type. The error
// wraps ErrUnknownPath, ErrUnknownMethod, ErrUndocumentedStatus or
// ErrMismatch.
func (v *Validator) ValidateResponse(method, path string, status int, header http.Header, body []byte) error {
	op, _, _, err := v.find(method, path)
	if err != nil {
		return err
	}
	resp := op.response(status)
	if resp == nil {
		return fmt.Errorf("%s %s: %d: %w", method, path, status, ErrUndocumentedStatus)
	}
	var errs []error
	for _, h := range resp.headers {
		vals := header.Values(h.name)
		if len(vals) == 0 {
			if h.required {
				errs = append(errs, fmt.Errorf("%w: header %s is required", ErrMismatch, h.name))
			}
			continue
		}
		if err := check(h.schema, h.kind, strings.Join(vals, ", ")); err != nil {
			errs = append(errs, fmt.Errorf("%w: header %s: %w", ErrMismatch, h.name, err))
		}
	}
	switch {
	case len(resp.content) == 0:
		if len(body) > 0 {
			errs = append(errs, fmt.Errorf("%w: no body is documented", ErrMismatch))
		}
	case len(body) == 0:
		errs = append(errs, fmt.Errorf("%w: the body is empty", ErrMismatch))
	default:
		if err := checkBody(resp.content, header, body); err != nil {
			errs = append(errs, fmt.Errorf("%w: response body: %w", ErrMismatch, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: %d: %w", method, path, status, errors.Join(errs...))
	}
	return nil
}

// find returns the operation for method and path, the path parameters and
// the query. When several templates match, the one with the most literal
// segments wins, as in net/http's ServeMux.
func (v *Validator) find(method, path string) (*operation, map[string]string, url.Values, error) {
	u, err := url.Parse(path)
	if err != nil || !strings.HasPrefix(u.EscapedPath(), "/") {
		return nil, nil, nil, fmt.Errorf("%s %s: %w", method, path, ErrUnknownPath)
	}
	raw := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		if segs[i], err = url.PathUnescape(s); err != nil {
			return nil, nil, nil, fmt.Errorf("%s %s: %w", method, path, ErrUnknownPath)
		}
	}
	var best *pathItem
	bestScore := -1
	for _, p := range v.paths {
		if score, ok := p.match(segs); ok && score > bestScore {
			best, bestScore = p, score
		}
	}
	if best == nil {
		return nil, nil, nil, fmt.Errorf("%s %s: %w", method, path, ErrUnknownPath)
	}
	op := best.ops[strings.ToLower(method)]
	if op == nil {
		return nil, nil, nil, fmt.Errorf("%s %s (%s): %w", method, path, best.template, ErrUnknownMethod)
	}
	params := map[string]string{}
	for i, s := range best.segments {
		if name, ok := paramName(s); ok {
			params[name] = segs[i]
		}
	}
	return op, params, u.Query(), nil
}

// match reports whether segs fits the template and how many of its
// segments are literal.
func (p *pathItem) match(segs []string) (int, bool) {
	if len(segs) != len(p.segments) {
		return 0, false
	}
	literal := 0
	for i, s := range p.segments {
		if _, ok := paramName(s); ok {
			if segs[i] == "" {
				return 0, false
			}
			continue
		}
		if s != segs[i] {
			return 0, false
		}
		literal++
	}
	return literal, true
}

func paramName(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// response finds the documented response for status: the exact code, then
// its range ("4XX"), then "default".
func (op *operation) response(status int) *response {
	for _, key := range []string{strconv.Itoa(status), fmt.Sprintf("%dXX", status/100), "default"} {
		if r := op.responses[key]; r != nil {
			return r
		}
	}
	return nil
}

func hasBearer(h http.Header) bool {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) != ""
}

// check validates a parameter or header value, a string on the wire,
// against schema after reading it as kind.
func check(schema *jsonschema.Schema, kind, raw string) error {
	var value any = raw
	switch kind {
	case "integer":
		if _, err := strconv.ParseInt(raw, 10, 64); err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		value = json.Number(raw)
	case "number":
		if _, err := strconv.ParseFloat(raw, 64); err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		value = json.Number(raw)
	case "boolean":
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", raw)
		}
		value = b
	}
	if schema == nil {
		return nil
	}
	return schema.Validate(value)
}

// checkBody validates body against the schema documented for header's
// Content-Type. JSON media types are parsed; others are validated as a
// string.
func checkBody(content map[string]*jsonschema.Schema, header http.Header, body []byte) error {
	ct := header.Get("Content-Type")
	if ct == "" {
		return errors.New("no content type")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	schema, ok := lookupContent(content, mt)
	if !ok {
		keys := make([]string, 0, len(content))
		for k := range content {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return fmt.Errorf("content type %q is not one of %s", mt, strings.Join(keys, ", "))
	}
	var value any = string(body)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		if value, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("not JSON: %w", err)
		}
	}
	if schema == nil {
		return nil
	}
	return schema.Validate(value)
}

func lookupContent(content map[string]*jsonschema.Schema, mt string) (*jsonschema.Schema, bool) {
	typ, _, _ := strings.Cut(mt, "/")
	for _, key := range []string{mt, typ + "/*", "*/*"} {
		if s, ok := content[key]; ok {
			return s, true
		}
	}
	return nil, false
}

// builder turns the parsed document into a Validator.
type builder struct {
	doc      any
	compiler *jsonschema.Compiler
}

func (b *builder) validator() (*Validator, error) {
	root, ok := b.doc.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	paths, ok := root["paths"].(map[string]any)
	if !ok {
		return nil, errors.New("no paths")
	}
	templates := make([]string, 0, len(paths))
	for t := range paths {
		templates = append(templates, t)
	}
	slices.Sort(templates)
	v := &Validator{}
	for _, t := range templates {
		if !strings.HasPrefix(t, "/") {
			return nil, fmt.Errorf("path %q does not start with /", t)
		}
		ptr, item, err := b.resolve("/paths/"+escape(t), paths[t])
		if err != nil {
			return nil, err
		}
		p := &pathItem{template: t, segments: strings.Split(t[1:], "/"), ops: map[string]*operation{}}
		for _, m := range []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
			if _, ok := item[m]; !ok {
				continue
			}
			op, err := b.operation(ptr, item, m, root["security"])
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", strings.ToUpper(m), t, err)
			}
			p.ops[m] = op
		}
		v.paths = append(v.paths, p)
	}
	return v, nil
}

func (b *builder) operation(itemPtr string, item map[string]any, method string, docSecurity any) (*operation, error) {
	opPtr := itemPtr + "/" + method
	obj, ok := item[method].(map[string]any)
	if !ok {
		return nil, errors.New("operation is not an object")
	}
	op := &operation{responses: map[string]*response{}}

	security, ok := obj["security"]
	if !ok {
		security = docSecurity
	}
	var err error
	if op.bearer, err = b.needsBearer(security); err != nil {
		return nil, err
	}

	// Operation parameters override path-item ones with the same name and
	// location.
	byKey := map[string]*parameter{}
	var order []string
	for _, src := range []struct {
		ptr string
		obj map[string]any
	}{{itemPtr, item}, {opPtr, obj}} {
		list, _ := src.obj["parameters"].([]any)
		for i, raw := range list {
			p, err := b.parameter(fmt.Sprintf("%s/parameters/%d", src.ptr, i), raw)
			if err != nil {
				return nil, err
			}
			if p == nil {
				continue
			}
			key := p.in + " " + p.name
			if _, seen := byKey[key]; !seen {
				order = append(order, key)
			}
			byKey[key] = p
		}
	}
	for _, k := range order {
		op.params = append(op.params, byKey[k])
	}

	if raw, ok := obj["requestBody"]; ok {
		ptr, rb, err := b.resolve(opPtr+"/requestBody", raw)
		if err != nil {
			return nil, err
		}
		required, _ := rb["required"].(bool)
		content, err := b.content(ptr, rb)
		if err != nil {
			return nil, err
		}
		op.body = &requestBody{required: required, content: content}
	}

	responses, _ := obj["responses"].(map[string]any)
	for status, raw := range responses {
		r, err := b.response(opPtr+"/responses/"+escape(status), raw)
		if err != nil {
			return nil, fmt.Errorf("response %s: %w", status, err)
		}
		op.responses[strings.ToUpper(status)] = r
	}
	return op, nil
}

// needsBearer reads a security requirement list. Every scheme the document
// defines must be an HTTP bearer scheme: the validator checks only that a
// bearer token is present, not which kind it is.
func (b *builder) needsBearer(security any) (bool, error) {
	reqs, _ := security.([]any)
	if len(reqs) == 0 {
		return false, nil
	}
	for _, r := range reqs {
		names, _ := r.(map[string]any)
		if len(names) == 0 {
			return false, nil // {} makes authentication optional
		}
		for name := range names {
			ptr := "/components/securitySchemes/" + escape(name)
			node, err := lookup(b.doc, ptr)
			if err != nil {
				return false, fmt.Errorf("security scheme %q: %w", name, err)
			}
			_, scheme, err := b.resolve(ptr, node)
			if err != nil {
				return false, fmt.Errorf("security scheme %q: %w", name, err)
			}
			if scheme["type"] != "http" || !strings.EqualFold(fmt.Sprint(scheme["scheme"]), "bearer") {
				return false, fmt.Errorf("security scheme %q: only HTTP bearer schemes are supported", name)
			}
		}
	}
	return true, nil
}

func (b *builder) parameter(ptr string, raw any) (*parameter, error) {
	ptr, obj, err := b.resolve(ptr, raw)
	if err != nil {
		return nil, err
	}
	p := &parameter{}
	p.name, _ = obj["name"].(string)
	p.in, _ = obj["in"].(string)
	p.required, _ = obj["required"].(bool)
	switch p.in {
	case "path", "query":
	case "header", "cookie":
		return nil, nil // twostep documents none; nothing to check
	default:
		return nil, fmt.Errorf("%s: parameter %q: unknown location %q", ptr, p.name, p.in)
	}
	if _, ok := obj["schema"]; ok {
		if p.schema, err = b.compile(ptr + "/schema"); err != nil {
			return nil, err
		}
		p.kind = b.kind(ptr+"/schema", obj["schema"])
	}
	return p, nil
}

func (b *builder) response(ptr string, raw any) (*response, error) {
	ptr, obj, err := b.resolve(ptr, raw)
	if err != nil {
		return nil, err
	}
	r := &response{}
	headers, _ := obj["headers"].(map[string]any)
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.EqualFold(name, "Content-Type") {
			continue // ignored by OpenAPI: the content map decides
		}
		hptr, hobj, err := b.resolve(ptr+"/headers/"+escape(name), headers[name])
		if err != nil {
			return nil, err
		}
		h := &header{name: name}
		h.required, _ = hobj["required"].(bool)
		if _, ok := hobj["schema"]; ok {
			if h.schema, err = b.compile(hptr + "/schema"); err != nil {
				return nil, err
			}
			h.kind = b.kind(hptr+"/schema", hobj["schema"])
		}
		r.headers = append(r.headers, h)
	}
	if r.content, err = b.content(ptr, obj); err != nil {
		return nil, err
	}
	return r, nil
}

// content compiles the schema of each media type of a request body or
// response object at ptr.
func (b *builder) content(ptr string, obj map[string]any) (map[string]*jsonschema.Schema, error) {
	content, _ := obj["content"].(map[string]any)
	out := make(map[string]*jsonschema.Schema, len(content))
	for mt, raw := range content {
		media, _ := raw.(map[string]any)
		var s *jsonschema.Schema
		if _, ok := media["schema"]; ok {
			var err error
			if s, err = b.compile(ptr + "/content/" + escape(mt) + "/schema"); err != nil {
				return nil, err
			}
		}
		out[strings.ToLower(mt)] = s
	}
	return out, nil
}

func (b *builder) compile(ptr string) (*jsonschema.Schema, error) {
	s, err := b.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", ptr, err)
	}
	return s, nil
}

// kind is the JSON type a parameter or header schema asks for, which decides
// how its string value on the wire is read.
func (b *builder) kind(ptr string, raw any) string {
	_, obj, err := b.resolve(ptr, raw)
	if err != nil {
		return "string"
	}
	var types []any
	switch t := obj["type"].(type) {
	case string:
		types = []any{t}
	case []any:
		types = t
	}
	for _, t := range types {
		switch t {
		case "integer", "number", "boolean":
			return t.(string)
		}
	}
	return "string"
}

// resolve follows $ref (local JSON pointers only) from node, found at ptr,
// to an object, and returns that object and where it is.
func (b *builder) resolve(ptr string, node any) (string, map[string]any, error) {
	for range 16 {
		obj, ok := node.(map[string]any)
		if !ok {
			return "", nil, fmt.Errorf("%s: not an object", ptr)
		}
		ref, ok := obj["$ref"].(string)
		if !ok {
			return ptr, obj, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return "", nil, fmt.Errorf("%s: $ref %q: only local references are supported", ptr, ref)
		}
		ptr = ref[1:]
		var err error
		if node, err = lookup(b.doc, ptr); err != nil {
			return "", nil, err
		}
	}
	return "", nil, fmt.Errorf("%s: $ref chain too long", ptr)
}

// lookup finds the value at JSON pointer ptr (RFC 6901) in doc.
func lookup(doc any, ptr string) (any, error) {
	node := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := node.(type) {
		case map[string]any:
			v, ok := n[tok]
			if !ok {
				return nil, fmt.Errorf("%s: not found", ptr)
			}
			node = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil, fmt.Errorf("%s: not found", ptr)
			}
			node = n[i]
		default:
			return nil, fmt.Errorf("%s: not found", ptr)
		}
	}
	return node, nil
}

// escape makes s one JSON pointer token.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/totp"
)

// testUA is the User-Agent of every request these helpers send, so audit
// rows can be checked for it.
const testUA = "twostep-test/1.0"

// testIP is the client address env sends from (env.remoteAddr).
const testIP = "192.0.2.1"

// backupCodeFormat is how the contract shows a backup code.
var backupCodeFormat = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)

// call sends a request with the test User-Agent.
func (e *env) call(method, path, token string, body any) resp {
	e.t.Helper()
	return e.do(request{method: method, path: path, token: token, body: body, header: http.Header{"User-Agent": {testUA}}})
}

// code is the authenticator code for secret at the env's current time.
func (e *env) code(secret []byte) string {
	return totp.Code(secret, e.clock.Now(), totp.Options{})
}

// nextStep moves the clock to the next TOTP time step, so a new code is
// due.
func (e *env) nextStep() { e.clock.Advance(30 * time.Second) }

// rawRows runs a query written with ? placeholders directly on the
// database, bypassing the store, and returns every row's values.
func (e *env) rawRows(query string, args ...any) [][]any {
	e.t.Helper()
	if e.engine == sqlstore.EnginePostgres {
		n := 0
		query = regexp.MustCompile(`\?`).ReplaceAllStringFunc(query, func(string) string {
			n++
			return fmt.Sprintf("$%d", n)
		})
	}
	rows, err := e.db.SQL().QueryContext(e.t.Context(), query, args...)
	if err != nil {
		e.t.Fatalf("raw query %q: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		e.t.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// rawBytes flattens raw rows into one byte string per value.
func rawBytes(rows [][]any) [][]byte {
	var out [][]byte
	for _, r := range rows {
		for _, v := range r {
			switch v := v.(type) {
			case []byte:
				out = append(out, v)
			case string:
				out = append(out, []byte(v))
			case nil:
			default:
				out = append(out, []byte(fmt.Sprint(v)))
			}
		}
	}
	return out
}

// decodeQRDataURI decodes a data:image/png;base64 QR code with gozxing, a
// decoder independent of the one the server encodes with.
func decodeQRDataURI(t *testing.T, uri string) string {
	t.Helper()
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(uri, prefix) {
		t.Fatalf("qrCode = %.40q…, want a %s data URI", uri, prefix)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(uri, prefix))
	if err != nil {
		t.Fatalf("qrCode base64: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("qrCode is not a PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("gozxing.NewBinaryBitmapFromImage() = %v", err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		// gozxing's finder-pattern detector misses about 1 in 100 of these
		// perfect, axis-aligned symbols (wrong dimension or a finder found
		// outside the image); reading the image as a pure barcode skips the
		// detector but still checks format, version and Reed-Solomon data.
		var err2 error
		res, err2 = qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
		if err2 != nil {
			t.Fatalf("gozxing decode = %v; as a pure barcode = %v", err, err2)
		}
	}
	return res.GetText()
}

// secretFromOTPAuth returns the secret of an otpauth URL.
func secretFromOTPAuth(t *testing.T, u string) []byte {
	t.Helper()
	i := strings.Index(u, "secret=")
	if i < 0 {
		t.Fatalf("otpauth URL %q has no secret", u)
	}
	s := u[i+len("secret="):]
	if j := strings.IndexByte(s, '&'); j >= 0 {
		s = s[:j]
	}
	secret, err := totp.Decode(s)
	if err != nil {
		t.Fatalf("otpauth secret %q: %v", s, err)
	}
	return secret
}

// startEnrol starts enrolling an authenticator and returns the secret read
// back out of the decoded QR code, and the answer.
func (e *env) startEnrol(access string, body map[string]any) ([]byte, resp) {
	e.t.Helper()
	r := e.call(http.MethodPost, "/authentication/twoFa/enable", access, body)
	mustStatus(e.t, "enable authenticator", r, http.StatusOK)
	m := r.JSON(e.t)
	url, _ := m["otpauthUrl"].(string)
	got := decodeQRDataURI(e.t, m["qrCode"].(string))
	if got != url {
		e.t.Fatalf("QR code holds %q, want otpauthUrl %q", got, url)
	}
	return secretFromOTPAuth(e.t, got), r
}

// confirmEnrol confirms the pending authenticator with a current code and
// returns the backup codes of the answer (none when 2FA was already on).
func (e *env) confirmEnrol(access string, secret []byte) []string {
	e.t.Helper()
	r := e.call(http.MethodPost, "/authentication/twoFa/enable/verify", access, map[string]any{"code": e.code(secret)})
	mustStatus(e.t, "enable/verify", r, http.StatusOK)
	var out struct {
		BackupCodes []string `json:"backupCodes"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.BackupCodes
}

// tfUser is an account with an authenticator.
type tfUser struct {
	email, pw string
	id        string
	secret    []byte
	backup    []string
	// access and refresh belong to the session that enrolled (in sudo).
	access, refresh string
}

// twoFaUser registers email, enrols and confirms an authenticator, and
// moves the clock to the next step, so the user's next code is fresh.
func (e *env) twoFaUser(email string) *tfUser {
	e.t.Helper()
	pw := e.register(email)
	m := e.login(email, pw)
	u := &tfUser{email: email, pw: pw, access: m["accessToken"].(string), refresh: m["refreshToken"].(string)}
	u.id = jwtClaims(e.t, u.access)["sub"].(string)
	u.secret, _ = e.startEnrol(u.access, map[string]any{"method": "authenticator"})
	u.backup = e.confirmEnrol(u.access, u.secret)
	if len(u.backup) != 10 {
		e.t.Fatalf("enable/verify backupCodes = %q, want 10", u.backup)
	}
	e.nextStep()
	return u
}

// challenge signs in with the password and returns the challenge token.
func (e *env) challenge(u *tfUser) string {
	e.t.Helper()
	r := e.call(http.MethodPost, "/authentication/local", "", map[string]any{"email": u.email, "password": u.pw})
	mustStatus(e.t, "password login "+u.email, r, http.StatusOK)
	m := r.JSON(e.t)
	tok, _ := m["challengeToken"].(string)
	if m["twoFaRequired"] != true || tok == "" {
		e.t.Fatalf("password login of a 2FA user = %s, want twoFaRequired and a challengeToken", r.Body)
	}
	if _, ok := m["accessToken"]; ok {
		e.t.Fatalf("password login of a 2FA user = %s, want no accessToken", r.Body)
	}
	return tok
}

// verify posts a code to /twoFa/verify.
func (e *env) verify(token string, body any) resp {
	e.t.Helper()
	return e.call(http.MethodPost, "/authentication/twoFa/verify", token, body)
}

// recoverWith posts a backup code to /twoFa/recover.
func (e *env) recoverWith(token, code string) resp {
	e.t.Helper()
	return e.call(http.MethodPost, "/authentication/twoFa/recover", token, map[string]any{"code": code})
}

// signIn does a full 2FA login with a fresh code and returns the tokens.
// It moves the clock one step first so the code was never used.
func (e *env) signIn(u *tfUser) (access, refresh string) {
	e.t.Helper()
	e.nextStep()
	tok := e.challenge(u)
	r := e.verify(tok, map[string]any{"code": e.code(u.secret)})
	mustStatus(e.t, "2FA login "+u.email, r, http.StatusOK)
	m := r.JSON(e.t)
	return m["accessToken"].(string), m["refreshToken"].(string)
}

// twoFaStatus reads GET /twoFa.
func (e *env) twoFaStatus(access string) map[string]any {
	e.t.Helper()
	r := e.call(http.MethodGet, "/authentication/twoFa", access, nil)
	mustStatus(e.t, "GET /twoFa", r, http.StatusOK)
	return r.JSON(e.t)
}

// remaining is backupCodesRemaining of GET /twoFa.
func (e *env) remaining(access string) int {
	e.t.Helper()
	return int(e.twoFaStatus(access)["backupCodesRemaining"].(float64))
}

// sessionWorks reports whether an access token is accepted.
func (e *env) sessionWorks(access string) bool {
	e.t.Helper()
	r := e.call(http.MethodGet, "/authentication/user", access, nil)
	if r.Status != http.StatusOK && r.Status != http.StatusUnauthorized {
		e.t.Fatalf("GET /authentication/user = %d %s, want 200 or 401", r.Status, r.Body)
	}
	return r.Status == http.StatusOK
}

// renew exchanges a refresh token.
func (e *env) renew(refresh string) resp {
	e.t.Helper()
	return e.call(http.MethodPost, "/authentication/renew", "", map[string]any{"refreshToken": refresh})
}

// jwtClaims decodes (without checking) the claims of a JWT.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %.20q… is not a JWT", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

// amr returns the amr claim of an access token.
func amr(t *testing.T, tok string) []string {
	t.Helper()
	var out []string
	list, _ := jwtClaims(t, tok)["amr"].([]any)
	for _, a := range list {
		s, _ := a.(string)
		out = append(out, s)
	}
	return out
}

// wantErr fails unless r is an error answer with status and code.
func wantErr(t *testing.T, what string, r resp, status int, code string) {
	t.Helper()
	if r.Status != status || r.ErrCode(t) != code {
		t.Fatalf("%s = %d %s, want %d %s", what, r.Status, r.Body, status, code)
	}
}

// wrongCode is a well-formed authenticator code that is not secret's
// current one (nor one of the skew window).
func (e *env) wrongCode(secret []byte) string {
	now := e.clock.Now()
	bad := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		bad[totp.Code(secret, now.Add(d), totp.Options{})] = true
	}
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", (123456+i*7919)%1000000)
		if !bad[c] {
			return c
		}
	}
}

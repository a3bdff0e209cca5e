package config

import (
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Var is the environment variable of the setting at fault, or the
	// config file's path for a problem with the file itself (a syntax error
	// or an unknown key).
	Var string
	// Msg says what is wrong and what is expected. It never holds the
	// value of a secret.
	Msg string
}

// Problems is every problem found in a configuration. Load and Validate
// return it as their error; use errors.As to get at the list.
type Problems []Problem

// Error lists the problems one per line, each as "VAR: message".
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Var + ": " + p.Msg
	}
	return strings.Join(lines, "\n")
}

// Validate reports every problem with c at once, as Problems, or returns
// nil. Problems name environment variables even when the value came from a
// file or from code.
func (c Config) Validate() error {
	if ps := c.problems(); len(ps) > 0 {
		return ps
	}
	return nil
}

func (c Config) problems() Problems {
	var v validator
	v.http(c)
	v.db(c)
	v.redis(c)
	v.tokens(c)
	v.argon2(c)
	v.login(c)
	v.twoFA(c)
	v.sms(c)
	v.log(c)
	return v.ps
}

// validator collects problems.
type validator struct {
	ps Problems
}

func (v *validator) add(name, format string, args ...any) {
	v.ps = append(v.ps, Problem{Var: name, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) durationBetween(name string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.add(name, "must be between %s and %s, got %s", formatDuration(lo), formatDuration(hi), formatDuration(d))
	}
}

func (v *validator) positive(name string, d time.Duration) {
	if d <= 0 {
		v.add(name, "must be a positive duration like 30s, got %s", formatDuration(d))
	}
}

func (v *validator) intBetween(name string, n, lo, hi int64) {
	if n < lo || n > hi {
		v.add(name, "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (v *validator) atLeast(name string, n, lo int) {
	if n < lo {
		v.add(name, "must be at least %d, got %d", lo, n)
	}
}

// httpURL checks that a non-secret setting is an absolute http(s) URL.
func (v *validator) httpURL(name, raw string) {
	if !isHTTPURL(raw) {
		v.add(name, "must be an absolute http or https URL like https://example.com, got %q", raw)
	}
}

// baseURL checks a URL to which paths are appended.
func (v *validator) baseURL(name, raw string) {
	u, err := url.Parse(raw)
	switch {
	case !isHTTPURL(raw):
		v.httpURL(name, raw)
	case err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#"):
		v.add(name, "must be a plain URL without credentials, query or fragment, got %q", raw)
	case strings.HasSuffix(raw, "/"):
		v.add(name, "must not end with /, got %q", raw)
	}
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (v *validator) http(c Config) {
	h := c.HTTP
	host, port, err := net.SplitHostPort(h.Addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
		v.add("TWOSTEP_ADDR", "must be host:port like 127.0.0.1:3000 or :3000, got %q", h.Addr)
	}
	if h.PublicURL != "" {
		v.baseURL("TWOSTEP_PUBLIC_URL", h.PublicURL)
	}
	v.intBetween("TWOSTEP_MAX_BODY_BYTES", h.MaxBodyBytes, 1<<10, 10<<20)
	v.positive("TWOSTEP_READ_TIMEOUT", h.ReadTimeout)
	v.positive("TWOSTEP_WRITE_TIMEOUT", h.WriteTimeout)
	v.positive("TWOSTEP_IDLE_TIMEOUT", h.IdleTimeout)
	v.positive("TWOSTEP_SHUTDOWN_TIMEOUT", h.ShutdownTimeout)
	for _, p := range h.TrustedProxies {
		if !p.IsValid() || p != p.Masked() {
			v.add("TWOSTEP_TRUSTED_PROXIES", "must hold valid prefixes with no bits set beyond their length, got %q", p.String())
		}
	}
	var bad []string
	for _, u := range h.AllowedReturnURLs {
		if !isHTTPURL(u) {
			bad = append(bad, strconv.Quote(u))
		}
	}
	if len(bad) > 0 {
		v.add("TWOSTEP_ALLOWED_RETURN_URLS", "must hold absolute http or https URLs, got %s", strings.Join(bad, ", "))
	}
}

// db never quotes the URL: it may hold a password.
func (v *validator) db(c Config) {
	const name = "TWOSTEP_DATABASE_URL"
	switch c.DB.Engine() {
	case "sqlite":
		switch path := c.DB.SQLitePath(); {
		case path == "":
			v.add(name, "needs a file path after sqlite://, like sqlite://twostep.db or sqlite:///var/lib/twostep/twostep.db")
		case path == ":memory:" || strings.Contains(path, "mode=memory"):
			// Each connection in database/sql's pool would get its own
			// empty database, and a restart would lose every account
			// and the encryption key.
			v.add(name, "must name a file: an in-memory SQLite database exists once per connection, so the pool would see several empty databases, and a restart would lose every account; use a file (in tests, one under a temporary directory)")
		case strings.Contains(path, "?"):
			v.add(name, "must not have a query string: twostep sets the SQLite options it needs")
		}
	case "postgres":
		if u, err := url.Parse(c.DB.URL); err != nil || u.Opaque != "" {
			v.add(name, "is not a valid postgres:// URL")
		}
		if c.Secrets.EncryptionKey == "" {
			v.add("TWOSTEP_ENCRYPTION_KEY", "is required with PostgreSQL: every instance must encrypt and decrypt secrets at rest with the same key, so it cannot be generated into a local file; set TWOSTEP_ENCRYPTION_KEY or TWOSTEP_ENCRYPTION_KEY_FILE")
		}
	default:
		v.add(name, "must start with sqlite://, postgres:// or postgresql://")
	}
	v.intBetween("TWOSTEP_DATABASE_MAX_CONNS", int64(c.DB.MaxConns), 1, 1000)
}

// redis never quotes the URL: it may hold a password.
func (v *validator) redis(c Config) {
	switch p := c.Redis.Prefix; {
	case p == "":
		v.add("TWOSTEP_REDIS_PREFIX", "must not be empty: twostep's keys would mix with every other key in the Redis database")
	case len(p) > 64:
		v.add("TWOSTEP_REDIS_PREFIX", "must be at most 64 bytes long, got %d", len(p))
	case !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		v.add("TWOSTEP_REDIS_PREFIX", "must be UTF-8 without spaces or control characters, got %q", p)
	}
	if c.Redis.URL == "" {
		return
	}
	u, err := url.Parse(c.Redis.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		v.add("TWOSTEP_REDIS_URL", "must be a URL like redis://host:6379/0 or rediss://host:6380/0")
	}
}

func (v *validator) tokens(c Config) {
	t := c.Tokens
	switch {
	case t.Issuer == "":
		v.add("TWOSTEP_ISSUER", "must not be empty")
	case strings.Contains(t.Issuer, ":"):
		v.add("TWOSTEP_ISSUER", "must not contain a colon: authenticator apps read the otpauth label issuer:account up to the first colon, got %q", t.Issuer)
	}
	if t.Audience == "" {
		v.add("TWOSTEP_AUDIENCE", "must not be empty")
	}
	v.durationBetween("TWOSTEP_ACCESS_TOKEN_TTL", t.AccessTokenTTL, time.Minute, 24*time.Hour)
	switch {
	case t.RefreshTokenTTL <= t.AccessTokenTTL:
		v.add("TWOSTEP_REFRESH_TOKEN_TTL", "must be longer than TWOSTEP_ACCESS_TOKEN_TTL (%s), got %s", formatDuration(t.AccessTokenTTL), formatDuration(t.RefreshTokenTTL))
	case t.RefreshTokenTTL > 8760*time.Hour:
		v.add("TWOSTEP_REFRESH_TOKEN_TTL", "must be at most 8760h (a year), got %s", formatDuration(t.RefreshTokenTTL))
	}
	v.durationBetween("TWOSTEP_CHALLENGE_TTL", t.ChallengeTTL, time.Minute, 30*time.Minute)
	switch r := t.SigningKeyRotation; {
	case r == 0:
	case r < time.Hour:
		v.add("TWOSTEP_SIGNING_KEY_ROTATION", "must be 0 (no automatic rotation) or at least 1h, got %s", formatDuration(r))
	case r <= t.AccessTokenTTL:
		v.add("TWOSTEP_SIGNING_KEY_ROTATION", "must be longer than TWOSTEP_ACCESS_TOKEN_TTL (%s), got %s", formatDuration(t.AccessTokenTTL), formatDuration(r))
	}
}

// The OWASP minimum for argon2id.
const (
	minArgon2MemoryKiB  = 19456
	minArgon2Iterations = 2
)

func (v *validator) argon2(c Config) {
	a := c.Argon2
	const weak = "set TWOSTEP_ARGON2_ALLOW_WEAK=true only for tests and benchmarks"
	switch {
	case a.MemoryKiB < 8*max(a.Parallelism, 1):
		v.add("TWOSTEP_ARGON2_MEMORY_KIB", "must be at least 8 KiB per lane (TWOSTEP_ARGON2_PARALLELISM), got %d", a.MemoryKiB)
	case a.MemoryKiB > 4<<20:
		v.add("TWOSTEP_ARGON2_MEMORY_KIB", "must be at most 4194304 (4 GiB), got %d", a.MemoryKiB)
	case a.MemoryKiB < minArgon2MemoryKiB && !a.AllowWeak:
		v.add("TWOSTEP_ARGON2_MEMORY_KIB", "must be at least %d (the OWASP minimum), got %d; %s", minArgon2MemoryKiB, a.MemoryKiB, weak)
	}
	switch {
	case a.Iterations < 1:
		v.add("TWOSTEP_ARGON2_ITERATIONS", "must be at least 1, got %d", a.Iterations)
	case a.Iterations < minArgon2Iterations && !a.AllowWeak:
		v.add("TWOSTEP_ARGON2_ITERATIONS", "must be at least %d (the OWASP minimum), got %d; %s", minArgon2Iterations, a.Iterations, weak)
	}
	v.intBetween("TWOSTEP_ARGON2_PARALLELISM", int64(a.Parallelism), 1, 255)
	v.atLeast("TWOSTEP_ARGON2_MAX_CONCURRENT", a.MaxConcurrent, 0)
}

func (v *validator) login(c Config) {
	l := c.Login
	v.atLeast("TWOSTEP_LOGIN_FREE_FAILURES", l.FreeFailures, 0)
	if l.MaxFailures <= l.FreeFailures {
		v.add("TWOSTEP_LOGIN_MAX_FAILURES", "must be greater than TWOSTEP_LOGIN_FREE_FAILURES (%d), got %d", l.FreeFailures, l.MaxFailures)
	}
	v.positive("TWOSTEP_LOGIN_MAX_DELAY", l.MaxDelay)
	v.atLeast("TWOSTEP_LOGIN_IP_LIMIT", l.IPLimit, 0)
}

func (v *validator) twoFA(c Config) {
	f := c.TwoFA
	v.positive("TWOSTEP_SUDO_TTL", f.SudoTTL)
	v.positive("TWOSTEP_LOCKOUT_DURATION", f.LockoutDuration)
	v.atLeast("TWOSTEP_LOCKOUT_THRESHOLD", f.LockoutThreshold, 1)
	v.positive("TWOSTEP_SMS_CODE_TTL", f.SMSCodeTTL)
	if f.SMSResendCooldown < 0 {
		v.add("TWOSTEP_SMS_RESEND_COOLDOWN", "must not be negative, got %s", formatDuration(f.SMSResendCooldown))
	}
	v.atLeast("TWOSTEP_SMS_HOURLY_LIMIT", f.SMSHourlyLimit, 1)
	v.atLeast("TWOSTEP_SMS_PHONE_DAILY_LIMIT", f.SMSPhoneDailyLimit, 1)
	v.atLeast("TWOSTEP_SMS_IP_HOURLY_LIMIT", f.SMSIPHourlyLimit, 0)
	v.atLeast("TWOSTEP_SMS_DAILY_LIMIT", f.SMSDailyLimit, 0)
	for _, c := range f.SMSAllowedCountries {
		if len(c) != 2 || strings.ToUpper(c) != c || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			v.add("TWOSTEP_SMS_ALLOWED_COUNTRIES", "%q is not a two-letter ISO 3166 code in capitals, like US", c)
		}
	}
	if !strings.Contains(f.SMSTemplate, "{code}") {
		v.add("TWOSTEP_SMS_TEMPLATE", "must contain {code}, got %q", f.SMSTemplate)
	}
	for rest := f.SMSTemplate; ; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			break
		}
		if p := rest[open : open+end+1]; p != "{code}" && p != "{issuer}" {
			v.add("TWOSTEP_SMS_TEMPLATE", "has unknown placeholder %s; only {code} and {issuer} are replaced", p)
		}
		rest = rest[open+end+1:]
	}
}

func (v *validator) sms(c Config) {
	s := c.SMS
	if len(s.Providers) == 0 {
		v.add("TWOSTEP_SMS_PROVIDER", "must name at least one of console, twilio, plivo, vonage, webhook")
	}
	for i, p := range s.Providers {
		switch {
		case !slices.Contains([]string{"console", "twilio", "plivo", "vonage", "webhook"}, p):
			v.add("TWOSTEP_SMS_PROVIDER", "has unknown provider %q; known: console, twilio, plivo, vonage, webhook", p)
		case slices.Index(s.Providers, p) < i:
			v.add("TWOSTEP_SMS_PROVIDER", "lists %q twice", p)
		}
	}
	v.durationBetween("TWOSTEP_SMS_TIMEOUT", s.Timeout, time.Millisecond, 10*time.Second)

	// required reports an empty setting that a listed provider needs.
	required := func(provider, name, val string) bool {
		if val == "" {
			v.add(name, "is required when TWOSTEP_SMS_PROVIDER includes %s", provider)
			return false
		}
		return true
	}
	if slices.Contains(s.Providers, "twilio") {
		t := s.Twilio
		if required("twilio", "TWOSTEP_TWILIO_ACCOUNT_SID", t.AccountSID) && !isSID(t.AccountSID, "AC") {
			v.add("TWOSTEP_TWILIO_ACCOUNT_SID", "must be AC followed by 32 characters, got %q", t.AccountSID)
		}
		required("twilio", "TWOSTEP_TWILIO_AUTH_TOKEN", t.AuthToken)
		if required("twilio", "TWOSTEP_TWILIO_FROM", t.From) && !isE164(t.From) && !isSID(t.From, "MG") {
			v.add("TWOSTEP_TWILIO_FROM", "must be an E.164 number like +14155552671 or a messaging service SID (MG…), got %q", t.From)
		}
		v.baseURL("TWOSTEP_TWILIO_BASE_URL", t.BaseURL)
	}
	if slices.Contains(s.Providers, "plivo") {
		p := s.Plivo
		required("plivo", "TWOSTEP_PLIVO_AUTH_ID", p.AuthID)
		required("plivo", "TWOSTEP_PLIVO_AUTH_TOKEN", p.AuthToken)
		required("plivo", "TWOSTEP_PLIVO_FROM", p.From)
		v.baseURL("TWOSTEP_PLIVO_BASE_URL", p.BaseURL)
		if c.HTTP.PublicURL == "" {
			v.add("TWOSTEP_PUBLIC_URL", "is required when TWOSTEP_SMS_PROVIDER includes plivo: Plivo fetches the script of a voice call from this server")
		}
	}
	if slices.Contains(s.Providers, "vonage") {
		vo := s.Vonage
		required("vonage", "TWOSTEP_VONAGE_API_KEY", vo.APIKey)
		required("vonage", "TWOSTEP_VONAGE_API_SECRET", vo.APISecret)
		required("vonage", "TWOSTEP_VONAGE_FROM", vo.From)
		switch {
		case vo.ApplicationID != "" && vo.PrivateKey == "":
			v.add("TWOSTEP_VONAGE_PRIVATE_KEY", "is required with TWOSTEP_VONAGE_APPLICATION_ID: voice calls need both")
		case vo.ApplicationID == "" && vo.PrivateKey != "":
			v.add("TWOSTEP_VONAGE_APPLICATION_ID", "is required with TWOSTEP_VONAGE_PRIVATE_KEY: voice calls need both")
		}
		if vo.PrivateKey != "" {
			if block, _ := pem.Decode([]byte(vo.PrivateKey)); block == nil || !strings.HasSuffix(block.Type, "PRIVATE KEY") {
				v.add("TWOSTEP_VONAGE_PRIVATE_KEY", "must be a PEM private key (-----BEGIN PRIVATE KEY-----…); pass the file with TWOSTEP_VONAGE_PRIVATE_KEY_FILE to keep its newlines")
			}
		}
		v.baseURL("TWOSTEP_VONAGE_BASE_URL", vo.BaseURL)
		v.baseURL("TWOSTEP_VONAGE_API_URL", vo.APIURL)
	}
	if slices.Contains(s.Providers, "webhook") {
		w := s.Webhook
		if required("webhook", "TWOSTEP_WEBHOOK_URL", w.URL) {
			v.httpURL("TWOSTEP_WEBHOOK_URL", w.URL)
		}
		if required("webhook", "TWOSTEP_WEBHOOK_SECRET", w.Secret) && len(w.Secret) < 32 {
			v.add("TWOSTEP_WEBHOOK_SECRET", "must be at least 32 bytes long (try: openssl rand -hex 32)")
		}
	}
}

// isSID reports whether s is a Twilio SID: prefix and 32 more characters.
func isSID(s, prefix string) bool {
	return len(s) == 34 && strings.HasPrefix(s, prefix)
}

// isE164 reports whether s is an E.164 phone number: +, then 2 to 15
// digits, the first not 0.
func isE164(s string) bool {
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || len(digits) < 2 || len(digits) > 15 || digits[0] == '0' {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (v *validator) log(c Config) {
	if c.Log.Format != "json" && c.Log.Format != "text" {
		v.add("TWOSTEP_LOG_FORMAT", "must be json or text, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("TWOSTEP_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
}

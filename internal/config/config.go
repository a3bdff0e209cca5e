// Package config owns twostep's settings: the Config struct and its
// defaults, loading it from an optional TOML file and TWOSTEP_* environment
// variables, and validating the result. The table in vars.go is the one
// place that ties each setting to its environment variable, its TOML key and
// its help text.
package config

import (
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Config holds every setting of a twostep server, nested by concern. Build
// one with Default or Load. It is a plain value: pass it (or the part a
// package needs) to constructors, and treat it as read-only once shared
// between goroutines, since copies share the backing arrays of its slices.
type Config struct {
	HTTP    HTTP    `toml:"http"`
	DB      DB      `toml:"db"`
	Redis   Redis   `toml:"redis"`
	Tokens  Tokens  `toml:"tokens"`
	Secrets Secrets `toml:"secrets"`
	Argon2  Argon2  `toml:"argon2"`
	Login   Login   `toml:"login"`
	TwoFA   TwoFA   `toml:"twofa"`
	SMS     SMS     `toml:"sms"`
	Log     Log     `toml:"log"`
}

// HTTP configures the listener and the http.Server.
type HTTP struct {
	// Addr is the listen address, host:port; an empty host listens on
	// every interface and port 0 picks a free port.
	Addr string `toml:"addr"`
	// PublicURL is the absolute http(s) URL at which clients (and SMS
	// providers' callbacks) reach the server, without a trailing slash;
	// empty if unknown. Load removes a trailing slash.
	PublicURL string `toml:"public_url"`
	// MaxBodyBytes caps the size of a request body, in bytes.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// ReadTimeout, WriteTimeout and IdleTimeout are the http.Server fields
	// of the same names.
	ReadTimeout  time.Duration `toml:"read_timeout"`
	WriteTimeout time.Duration `toml:"write_timeout"`
	IdleTimeout  time.Duration `toml:"idle_timeout"`
	// ShutdownTimeout is how long a graceful shutdown waits for in-flight
	// requests.
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
	// TrustedProxies lists the peers whose X-Forwarded-For header is
	// believed. A single address is stored as a full-length prefix (/32 or
	// /128). Empty means the client address is always the TCP peer.
	TrustedProxies []netip.Prefix `toml:"trusted_proxies"`
	// AllowedReturnURLs lists the absolute URLs a flow may redirect back to.
	AllowedReturnURLs []string `toml:"allowed_return_urls"`
}

// DB configures the SQL database.
type DB struct {
	// URL is sqlite://PATH (sqlite:///abs/path.db for an absolute path) or
	// a postgres:// or postgresql:// connection URL. It may hold a password,
	// so it is treated as a secret.
	URL string `toml:"url"`
	// MaxConns caps the number of open connections.
	MaxConns int `toml:"max_conns"`
}

// Engine reports which database engine URL names: "sqlite", "postgres", or
// "" for any other URL.
func (d DB) Engine() string {
	switch {
	case strings.HasPrefix(d.URL, sqliteScheme):
		return "sqlite"
	case strings.HasPrefix(d.URL, "postgres://"), strings.HasPrefix(d.URL, "postgresql://"):
		return "postgres"
	}
	return ""
}

// SQLitePath returns the file path of a sqlite:// URL: "twostep.db" for
// sqlite://twostep.db and "/abs/path.db" for sqlite:///abs/path.db. It
// returns "" when the engine is not SQLite.
func (d DB) SQLitePath() string {
	if d.Engine() != "sqlite" {
		return ""
	}
	return strings.TrimPrefix(d.URL, sqliteScheme)
}

const sqliteScheme = "sqlite://"

// Redis configures the optional Redis server that shares rate limits and
// one-time state between instances.
type Redis struct {
	// URL is a redis:// or rediss:// URL, or empty for none. It may hold a
	// password, so it is treated as a secret.
	URL string `toml:"url"`
	// Prefix starts every key twostep keeps in Redis. Instances that share
	// limits must use the same prefix; different deployments (or tests)
	// sharing one Redis use different ones.
	Prefix string `toml:"prefix"`
}

// Tokens configures access, refresh and challenge tokens and JWT signing.
type Tokens struct {
	// Issuer is the JWT iss claim and the issuer label shown by
	// authenticator apps.
	Issuer string `toml:"issuer"`
	// Audience is the JWT aud claim.
	Audience string `toml:"audience"`
	// AccessTokenTTL is the life of an access token (JWT).
	AccessTokenTTL time.Duration `toml:"access_token_ttl"`
	// RefreshTokenTTL is the life of a refresh token; longer than
	// AccessTokenTTL.
	RefreshTokenTTL time.Duration `toml:"refresh_token_ttl"`
	// ChallengeTTL is the life of a second-factor challenge token.
	ChallengeTTL time.Duration `toml:"challenge_ttl"`
	// SigningKeyRotation is how often a new JWT signing key is made; 0
	// disables automatic rotation.
	SigningKeyRotation time.Duration `toml:"signing_key_rotation"`
}

// Secrets configures the key that encrypts secrets at rest.
type Secrets struct {
	// EncryptionKey is the key for secrets at rest; its format is parsed by
	// the package that uses it. Empty means the key is read from, or
	// generated into, KeyFilePath (SQLite only).
	EncryptionKey string `toml:"encryption_key"`
	// KeyFile is where the generated key is kept when EncryptionKey is
	// empty; empty means beside the SQLite database. Use Config.KeyFilePath
	// for the effective path.
	KeyFile string `toml:"key_file"`
}

// KeyFilePath returns the file that holds the generated encryption key when
// Secrets.EncryptionKey is empty: Secrets.KeyFile if set, else the SQLite
// database path plus ".key". It returns "" for PostgreSQL without KeyFile,
// where Validate requires an EncryptionKey instead.
func (c Config) KeyFilePath() string {
	if c.Secrets.KeyFile != "" {
		return c.Secrets.KeyFile
	}
	if p := c.DB.SQLitePath(); p != "" {
		return p + ".key"
	}
	return ""
}

// Argon2 configures password hashing with argon2id.
type Argon2 struct {
	// MemoryKiB is the memory cost, in KiB.
	MemoryKiB int `toml:"memory_kib"`
	// Iterations is the time cost.
	Iterations int `toml:"iterations"`
	// Parallelism is the number of lanes (threads).
	Parallelism int `toml:"parallelism"`
	// MaxConcurrent caps the number of hashes computed at once, bounding
	// memory use; 0 means runtime.NumCPU().
	MaxConcurrent int `toml:"max_concurrent"`
	// AllowWeak permits parameters below the OWASP minimum (19456 KiB, 2
	// iterations, 1 lane). Only for tests and benchmarks.
	AllowWeak bool `toml:"allow_weak"`
}

// Login configures password-login throttling per account and per IP.
type Login struct {
	// FreeFailures is the number of consecutive failures on one account
	// before delays begin.
	FreeFailures int `toml:"free_failures"`
	// MaxFailures caps the consecutive failures on one account that are
	// let through; attempts beyond it are refused.
	MaxFailures int `toml:"max_failures"`
	// MaxDelay caps the growing delay between attempts.
	MaxDelay time.Duration `toml:"max_delay"`
	// IPLimit is the number of login attempts allowed per client IP per
	// minute; 0 disables the limit.
	IPLimit int `toml:"ip_limit"`
}

// TwoFA configures second factors: sudo mode, lockout and SMS codes.
type TwoFA struct {
	// SudoTTL is how long a session stays in sudo mode after it last
	// passed a second factor.
	SudoTTL time.Duration `toml:"sudo_ttl"`
	// LockoutDuration is how long an account's second factor stays locked
	// after LockoutThreshold wrong codes in a row.
	LockoutDuration time.Duration `toml:"lockout_duration"`
	// LockoutThreshold is the number of wrong second-factor codes in a row
	// that locks the account's second factor.
	LockoutThreshold int `toml:"lockout_threshold"`
	// SMSCodeTTL is the life of an SMS or voice code.
	SMSCodeTTL time.Duration `toml:"sms_code_ttl"`
	// SMSResendCooldown is the minimum time between two sends to one
	// challenge or phone; 0 disables it.
	SMSResendCooldown time.Duration `toml:"sms_resend_cooldown"`
	// SMSHourlyLimit is the maximum number of codes sent to one phone per
	// hour.
	SMSHourlyLimit int `toml:"sms_hourly_limit"`
	// SMSPhoneDailyLimit is the maximum number of codes sent to one phone
	// per day.
	SMSPhoneDailyLimit int `toml:"sms_phone_daily_limit"`
	// SMSIPHourlyLimit is the maximum number of codes one client address
	// may have sent per hour; 0 disables the ceiling.
	SMSIPHourlyLimit int `toml:"sms_ip_hourly_limit"`
	// SMSDailyLimit is the most codes the whole deployment sends per day
	// (a cost ceiling); 0 disables it.
	SMSDailyLimit int `toml:"sms_daily_limit"`
	// SMSAllowedCountries are ISO 3166 region codes that codes may be sent
	// to; empty allows every country.
	SMSAllowedCountries []string `toml:"sms_allowed_countries"`
	// SMSTemplate is the SMS text; {code} is replaced by the code and
	// {issuer} by Tokens.Issuer. The WebOTP line is appended elsewhere.
	SMSTemplate string `toml:"sms_template"`
}

// SMS configures the SMS and voice providers.
type SMS struct {
	// Providers lists the providers to use, in order of preference: any of
	// "console", "twilio", "plivo", "vonage" and "webhook". In TOML and the
	// environment it is called provider and may be one name.
	Providers []string `toml:"provider"`
	// Timeout bounds each request to a provider.
	Timeout time.Duration `toml:"timeout"`
	// Twilio, Plivo, Vonage and Webhook hold each provider's settings;
	// only those of listed providers are validated.
	Twilio  Twilio  `toml:"twilio"`
	Plivo   Plivo   `toml:"plivo"`
	Vonage  Vonage  `toml:"vonage"`
	Webhook Webhook `toml:"webhook"`
}

// Twilio configures the Twilio provider; required when SMS.Providers lists
// "twilio".
type Twilio struct {
	// AccountSID is the account SID, "AC" and 32 more characters.
	AccountSID string `toml:"account_sid"`
	// AuthToken is the account's auth token (secret).
	AuthToken string `toml:"auth_token"`
	// From is the sender: an E.164 number or a messaging service SID
	// ("MG…").
	From string `toml:"from"`
	// BaseURL is the API root, without a trailing slash.
	BaseURL string `toml:"base_url"`
}

// Plivo configures the Plivo provider; required when SMS.Providers lists
// "plivo".
type Plivo struct {
	// AuthID is the account's auth ID.
	AuthID string `toml:"auth_id"`
	// AuthToken is the account's auth token (secret).
	AuthToken string `toml:"auth_token"`
	// From is the sender number or ID.
	From string `toml:"from"`
	// BaseURL is the API root, without a trailing slash.
	BaseURL string `toml:"base_url"`
}

// Vonage configures the Vonage provider; required when SMS.Providers lists
// "vonage".
type Vonage struct {
	// APIKey is the account's API key.
	APIKey string `toml:"api_key"`
	// APISecret is the account's API secret (secret).
	APISecret string `toml:"api_secret"`
	// From is the sender number or ID.
	From string `toml:"from"`
	// ApplicationID and PrivateKey (PEM, secret) identify the Voice API
	// application; both or neither. Voice calls need them.
	ApplicationID string `toml:"application_id"`
	PrivateKey    string `toml:"private_key"`
	// BaseURL is the SMS API root and APIURL the Voice API root, without a
	// trailing slash.
	BaseURL string `toml:"base_url"`
	APIURL  string `toml:"api_url"`
}

// VoiceEnabled reports whether the Voice API credentials are set.
func (v Vonage) VoiceEnabled() bool {
	return v.ApplicationID != "" && v.PrivateKey != ""
}

// Webhook configures the webhook provider, which POSTs each message to URL
// signed with Secret; required when SMS.Providers lists "webhook".
type Webhook struct {
	// URL receives the messages.
	URL string `toml:"url"`
	// Secret keys the request signature (secret, at least 32 bytes).
	Secret string `toml:"secret"`
}

// Log configures logging.
type Log struct {
	// Format is "json" or "text".
	Format string `toml:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `toml:"level"`
	// AccessLog turns on one log line per HTTP request.
	AccessLog bool `toml:"access_log"`
}

// SlogLevel returns Level as a slog.Level; an unknown level (which Validate
// reports) gives slog.LevelInfo.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Default returns the built-in settings, which validate clean. Each call
// returns fresh slices.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Addr:            "127.0.0.1:3000",
			MaxBodyBytes:    64 << 10,
			ReadTimeout:     10 * time.Second,
			WriteTimeout:    30 * time.Second,
			IdleTimeout:     120 * time.Second,
			ShutdownTimeout: 15 * time.Second,
		},
		DB: DB{
			URL:      "sqlite://twostep.db",
			MaxConns: 10,
		},
		Redis: Redis{
			Prefix: "twostep:",
		},
		Tokens: Tokens{
			Issuer:             "twostep",
			Audience:           "twostep",
			AccessTokenTTL:     15 * time.Minute,
			RefreshTokenTTL:    720 * time.Hour,
			ChallengeTTL:       5 * time.Minute,
			SigningKeyRotation: 720 * time.Hour,
		},
		Argon2: Argon2{
			MemoryKiB:   19456,
			Iterations:  2,
			Parallelism: 1,
		},
		Login: Login{
			FreeFailures: 5,
			MaxFailures:  100,
			MaxDelay:     15 * time.Minute,
			IPLimit:      300,
		},
		TwoFA: TwoFA{
			SudoTTL:            10 * time.Minute,
			LockoutDuration:    15 * time.Minute,
			LockoutThreshold:   10,
			SMSCodeTTL:         5 * time.Minute,
			SMSResendCooldown:  30 * time.Second,
			SMSHourlyLimit:     5,
			SMSPhoneDailyLimit: 10,
			SMSIPHourlyLimit:   20,
			SMSDailyLimit:      10000,
			SMSTemplate:        "Your {issuer} code is {code}",
		},
		SMS: SMS{
			Providers: []string{"console"},
			Timeout:   10 * time.Second,
			Twilio:    Twilio{BaseURL: "https://api.twilio.com"},
			Plivo:     Plivo{BaseURL: "https://api.plivo.com"},
			Vonage:    Vonage{BaseURL: "https://rest.nexmo.com", APIURL: "https://api.nexmo.com"},
		},
		Log: Log{
			Format:    "json",
			Level:     "info",
			AccessLog: true,
		},
	}
}

package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // the Var of every problem, sorted
	}{
		{"defaults", func(*Config) {}, nil},

		{"addr without port", func(c *Config) { c.HTTP.Addr = "3000" }, []string{"TWOSTEP_ADDR"}},
		{"addr with named port", func(c *Config) { c.HTTP.Addr = "localhost:http" }, []string{"TWOSTEP_ADDR"}},
		{"addr any interface", func(c *Config) { c.HTTP.Addr = ":0" }, nil},
		{"addr ipv6", func(c *Config) { c.HTTP.Addr = "[::1]:3000" }, nil},
		{"public url not http", func(c *Config) { c.HTTP.PublicURL = "ftp://auth.example.com" }, []string{"TWOSTEP_PUBLIC_URL"}},
		{"public url relative", func(c *Config) { c.HTTP.PublicURL = "/auth" }, []string{"TWOSTEP_PUBLIC_URL"}},
		{"public url with query", func(c *Config) { c.HTTP.PublicURL = "https://auth.example.com?x=1" }, []string{"TWOSTEP_PUBLIC_URL"}},
		{"public url trailing slash", func(c *Config) { c.HTTP.PublicURL = "https://auth.example.com/" }, []string{"TWOSTEP_PUBLIC_URL"}},
		{"public url with path", func(c *Config) { c.HTTP.PublicURL = "https://example.com/auth" }, nil},
		{"body too small", func(c *Config) { c.HTTP.MaxBodyBytes = 512 }, []string{"TWOSTEP_MAX_BODY_BYTES"}},
		{"body too large", func(c *Config) { c.HTTP.MaxBodyBytes = 11 << 20 }, []string{"TWOSTEP_MAX_BODY_BYTES"}},
		{"timeouts zero", func(c *Config) {
			c.HTTP.ReadTimeout, c.HTTP.WriteTimeout, c.HTTP.IdleTimeout, c.HTTP.ShutdownTimeout = 0, 0, -time.Second, 0
		}, []string{"TWOSTEP_IDLE_TIMEOUT", "TWOSTEP_READ_TIMEOUT", "TWOSTEP_SHUTDOWN_TIMEOUT", "TWOSTEP_WRITE_TIMEOUT"}},
		{"zero prefix", func(c *Config) { c.HTTP.TrustedProxies = []netip.Prefix{{}} }, []string{"TWOSTEP_TRUSTED_PROXIES"}},
		{"relative return url", func(c *Config) { c.HTTP.AllowedReturnURLs = []string{"https://ok.example.com", "/done"} }, []string{"TWOSTEP_ALLOWED_RETURN_URLS"}},

		{"sqlite in memory", func(c *Config) { c.DB.URL = "sqlite://:memory:" }, []string{"TWOSTEP_DATABASE_URL"}},
		{"sqlite memory mode", func(c *Config) { c.DB.URL = "sqlite://file:x?mode=memory" }, []string{"TWOSTEP_DATABASE_URL"}},
		{"sqlite without path", func(c *Config) { c.DB.URL = "sqlite://" }, []string{"TWOSTEP_DATABASE_URL"}},
		{"sqlite with query", func(c *Config) { c.DB.URL = "sqlite://x.db?_pragma=foreign_keys(1)" }, []string{"TWOSTEP_DATABASE_URL"}},
		{"mysql", func(c *Config) { c.DB.URL = "mysql://localhost/twostep" }, []string{"TWOSTEP_DATABASE_URL"}},
		{"postgres without key", func(c *Config) { c.DB.URL = "postgres://localhost/twostep" }, []string{"TWOSTEP_ENCRYPTION_KEY"}},
		{"postgresql with key", func(c *Config) {
			c.DB.URL = "postgresql://localhost/twostep"
			c.Secrets.EncryptionKey = "k"
		}, nil},
		{"max conns", func(c *Config) { c.DB.MaxConns = 1001 }, []string{"TWOSTEP_DATABASE_MAX_CONNS"}},
		{"redis wrong scheme", func(c *Config) { c.Redis.URL = "tcp://localhost:6379" }, []string{"TWOSTEP_REDIS_URL"}},
		{"redis without host", func(c *Config) { c.Redis.URL = "redis://" }, []string{"TWOSTEP_REDIS_URL"}},
		{"rediss", func(c *Config) { c.Redis.URL = "rediss://cache:6380/0" }, nil},
		{"redis prefix empty", func(c *Config) { c.Redis.Prefix = "" }, []string{"TWOSTEP_REDIS_PREFIX"}},
		{"redis prefix too long", func(c *Config) { c.Redis.Prefix = strings.Repeat("p", 65) }, []string{"TWOSTEP_REDIS_PREFIX"}},
		{"redis prefix with space", func(c *Config) { c.Redis.Prefix = "two step:" }, []string{"TWOSTEP_REDIS_PREFIX"}},
		{"redis prefix with newline", func(c *Config) { c.Redis.Prefix = "twostep:\n" }, []string{"TWOSTEP_REDIS_PREFIX"}},
		{"redis prefix not utf-8", func(c *Config) { c.Redis.Prefix = "twostep\xff:" }, []string{"TWOSTEP_REDIS_PREFIX"}},
		{"redis prefix 64 bytes", func(c *Config) { c.Redis.Prefix = strings.Repeat("p", 64) }, nil},
		{"redis prefix other", func(c *Config) { c.Redis.Prefix = "acme:auth:" }, nil},

		{"issuer empty", func(c *Config) { c.Tokens.Issuer = "" }, []string{"TWOSTEP_ISSUER"}},
		{"issuer with colon", func(c *Config) { c.Tokens.Issuer = "Example: Auth" }, []string{"TWOSTEP_ISSUER"}},
		{"audience empty", func(c *Config) { c.Tokens.Audience = "" }, []string{"TWOSTEP_AUDIENCE"}},
		{"access ttl too short", func(c *Config) { c.Tokens.AccessTokenTTL = 30 * time.Second }, []string{"TWOSTEP_ACCESS_TOKEN_TTL"}},
		{"access ttl too long", func(c *Config) { c.Tokens.AccessTokenTTL = 25 * time.Hour }, []string{"TWOSTEP_ACCESS_TOKEN_TTL"}},
		{"refresh not longer than access", func(c *Config) { c.Tokens.RefreshTokenTTL = 15 * time.Minute }, []string{"TWOSTEP_REFRESH_TOKEN_TTL"}},
		{"refresh over a year", func(c *Config) { c.Tokens.RefreshTokenTTL = 8761 * time.Hour }, []string{"TWOSTEP_REFRESH_TOKEN_TTL"}},
		{"challenge too long", func(c *Config) { c.Tokens.ChallengeTTL = 31 * time.Minute }, []string{"TWOSTEP_CHALLENGE_TTL"}},
		{"challenge too short", func(c *Config) { c.Tokens.ChallengeTTL = 59 * time.Second }, []string{"TWOSTEP_CHALLENGE_TTL"}},
		{"rotation disabled", func(c *Config) { c.Tokens.SigningKeyRotation = 0 }, nil},
		{"rotation under an hour", func(c *Config) { c.Tokens.SigningKeyRotation = 30 * time.Minute }, []string{"TWOSTEP_SIGNING_KEY_ROTATION"}},
		{"rotation negative", func(c *Config) { c.Tokens.SigningKeyRotation = -time.Hour }, []string{"TWOSTEP_SIGNING_KEY_ROTATION"}},
		{"rotation not longer than access", func(c *Config) {
			c.Tokens.AccessTokenTTL = 2 * time.Hour
			c.Tokens.SigningKeyRotation = time.Hour
		}, []string{"TWOSTEP_SIGNING_KEY_ROTATION"}},

		{"argon2 weak memory", func(c *Config) { c.Argon2.MemoryKiB = 1024 }, []string{"TWOSTEP_ARGON2_MEMORY_KIB"}},
		{"argon2 weak iterations", func(c *Config) { c.Argon2.Iterations = 1 }, []string{"TWOSTEP_ARGON2_ITERATIONS"}},
		{"argon2 weak allowed", func(c *Config) {
			c.Argon2 = Argon2{MemoryKiB: 64, Iterations: 1, Parallelism: 1, AllowWeak: true}
		}, nil},
		{"argon2 no lanes", func(c *Config) { c.Argon2.Parallelism = 0 }, []string{"TWOSTEP_ARGON2_PARALLELISM"}},
		{"argon2 no lanes even when weak", func(c *Config) {
			c.Argon2.Parallelism = 0
			c.Argon2.AllowWeak = true
		}, []string{"TWOSTEP_ARGON2_PARALLELISM"}},
		{"argon2 memory below 8 KiB per lane", func(c *Config) {
			c.Argon2 = Argon2{MemoryKiB: 31, Iterations: 1, Parallelism: 4, AllowWeak: true}
		}, []string{"TWOSTEP_ARGON2_MEMORY_KIB"}},
		{"argon2 zero iterations even when weak", func(c *Config) {
			c.Argon2.Iterations = 0
			c.Argon2.AllowWeak = true
		}, []string{"TWOSTEP_ARGON2_ITERATIONS"}},
		{"argon2 memory huge", func(c *Config) { c.Argon2.MemoryKiB = 8 << 20 }, []string{"TWOSTEP_ARGON2_MEMORY_KIB"}},
		{"argon2 negative concurrency", func(c *Config) { c.Argon2.MaxConcurrent = -1 }, []string{"TWOSTEP_ARGON2_MAX_CONCURRENT"}},

		{"login max not above free", func(c *Config) { c.Login.MaxFailures = 5 }, []string{"TWOSTEP_LOGIN_MAX_FAILURES"}},
		{"login negatives", func(c *Config) {
			c.Login = Login{FreeFailures: -1, MaxFailures: 10, MaxDelay: 0, IPLimit: -1}
		}, []string{"TWOSTEP_LOGIN_FREE_FAILURES", "TWOSTEP_LOGIN_IP_LIMIT", "TWOSTEP_LOGIN_MAX_DELAY"}},

		{"twofa zeros", func(c *Config) {
			c.TwoFA.SudoTTL, c.TwoFA.LockoutDuration, c.TwoFA.SMSCodeTTL = 0, 0, 0
			c.TwoFA.LockoutThreshold, c.TwoFA.SMSHourlyLimit = 0, 0
			c.TwoFA.SMSResendCooldown = -time.Second
		}, []string{
			"TWOSTEP_LOCKOUT_DURATION", "TWOSTEP_LOCKOUT_THRESHOLD", "TWOSTEP_SMS_CODE_TTL",
			"TWOSTEP_SMS_HOURLY_LIMIT", "TWOSTEP_SMS_RESEND_COOLDOWN", "TWOSTEP_SUDO_TTL",
		}},
		{"short durations for tests", func(c *Config) {
			c.TwoFA.SudoTTL, c.TwoFA.LockoutDuration, c.TwoFA.SMSCodeTTL = time.Second, time.Second, time.Second
			c.TwoFA.SMSResendCooldown = 0
		}, nil},
		{"template without code", func(c *Config) { c.TwoFA.SMSTemplate = "Hello from {issuer}" }, []string{"TWOSTEP_SMS_TEMPLATE"}},
		{"template with unknown placeholder", func(c *Config) { c.TwoFA.SMSTemplate = "{code} for {user}" }, []string{"TWOSTEP_SMS_TEMPLATE"}},

		{"no provider", func(c *Config) { c.SMS.Providers = nil }, []string{"TWOSTEP_SMS_PROVIDER"}},
		{"unknown provider", func(c *Config) { c.SMS.Providers = []string{"pigeon"} }, []string{"TWOSTEP_SMS_PROVIDER"}},
		{"duplicate provider", func(c *Config) { c.SMS.Providers = []string{"console", "console"} }, []string{"TWOSTEP_SMS_PROVIDER"}},
		{"sms timeout too long", func(c *Config) { c.SMS.Timeout = 11 * time.Second }, []string{"TWOSTEP_SMS_TIMEOUT"}},
		{"twilio unset", func(c *Config) { c.SMS.Providers = []string{"twilio"} },
			[]string{"TWOSTEP_TWILIO_ACCOUNT_SID", "TWOSTEP_TWILIO_AUTH_TOKEN", "TWOSTEP_TWILIO_FROM"}},
		{"twilio malformed", func(c *Config) {
			c.SMS.Providers = []string{"twilio"}
			c.SMS.Twilio = Twilio{AccountSID: "SK123", AuthToken: "t", From: "4155552671", BaseURL: "api.twilio.com"}
		}, []string{"TWOSTEP_TWILIO_ACCOUNT_SID", "TWOSTEP_TWILIO_BASE_URL", "TWOSTEP_TWILIO_FROM"}},
		{"twilio settings ignored when not listed", func(c *Config) { c.SMS.Twilio.AccountSID = "bogus" }, nil},
		{"plivo unset", func(c *Config) { c.SMS.Providers = []string{"console", "plivo"} },
			[]string{"TWOSTEP_PLIVO_AUTH_ID", "TWOSTEP_PLIVO_AUTH_TOKEN", "TWOSTEP_PLIVO_FROM", "TWOSTEP_PUBLIC_URL"}},
		{"vonage unset", func(c *Config) { c.SMS.Providers = []string{"vonage"} },
			[]string{"TWOSTEP_VONAGE_API_KEY", "TWOSTEP_VONAGE_API_SECRET", "TWOSTEP_VONAGE_FROM"}},
		{"vonage application without key", func(c *Config) {
			c.SMS.Providers = []string{"vonage"}
			c.SMS.Vonage.APIKey, c.SMS.Vonage.APISecret, c.SMS.Vonage.From = "k", "s", "Twostep"
			c.SMS.Vonage.ApplicationID = "app"
		}, []string{"TWOSTEP_VONAGE_PRIVATE_KEY"}},
		{"vonage key without application", func(c *Config) {
			c.SMS.Providers = []string{"vonage"}
			c.SMS.Vonage.APIKey, c.SMS.Vonage.APISecret, c.SMS.Vonage.From = "k", "s", "Twostep"
			c.SMS.Vonage.PrivateKey = testPEM
		}, []string{"TWOSTEP_VONAGE_APPLICATION_ID"}},
		{"vonage sms only", func(c *Config) {
			c.SMS.Providers = []string{"vonage"}
			c.SMS.Vonage.APIKey, c.SMS.Vonage.APISecret, c.SMS.Vonage.From = "k", "s", "Twostep"
		}, nil},
		{"webhook unset", func(c *Config) { c.SMS.Providers = []string{"webhook"} },
			[]string{"TWOSTEP_WEBHOOK_SECRET", "TWOSTEP_WEBHOOK_URL"}},
		{"webhook bad", func(c *Config) {
			c.SMS.Providers = []string{"webhook"}
			c.SMS.Webhook = Webhook{URL: "hooks.example.com", Secret: "short"}
		}, []string{"TWOSTEP_WEBHOOK_SECRET", "TWOSTEP_WEBHOOK_URL"}},

		{"log format", func(c *Config) { c.Log.Format = "xml" }, []string{"TWOSTEP_LOG_FORMAT"}},
		{"log level", func(c *Config) { c.Log.Level = "INFO" }, []string{"TWOSTEP_LOG_LEVEL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.modify(&c)
			err := c.Validate()
			var got []string
			if err != nil {
				got = problemVars(t, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate() = %v, want problems for %v", err, tc.want)
			}
		})
	}
}

package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// envOf returns a getenv that serves m.
func envOf(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

func diffConfig(want, got Config) string {
	return cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{}))
}

// writeFile writes content to a new file in a temporary directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problemVars returns the sorted Var of every problem in err, failing the
// test if err is not Problems.
func problemVars(t *testing.T, err error) []string {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v (%T) is not Problems", err, err)
	}
	var vars []string
	for _, p := range ps {
		vars = append(vars, p.Var)
	}
	slices.Sort(vars)
	return vars
}

const (
	// testPEM is a PEM block of the right type; Validate does not parse
	// the key inside.
	testPEM       = "-----BEGIN PRIVATE KEY-----\nbm90IHJlYWxseSBhIGtleQ==\n-----END PRIVATE KEY-----\n"
	testTwilioSID = "AC0123456789abcdef0123456789abcdef"
	testSecret32  = "0123456789abcdef0123456789abcdef"
)

// TestLoadEnv checks that each variable parses into its field.
func TestLoadEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want func(*Config)
	}{
		{"addr", map[string]string{"TWOSTEP_ADDR": ":8080"},
			func(c *Config) { c.HTTP.Addr = ":8080" }},
		{"public url loses trailing slash", map[string]string{"TWOSTEP_PUBLIC_URL": "https://auth.example.com/"},
			func(c *Config) { c.HTTP.PublicURL = "https://auth.example.com" }},
		{"max body", map[string]string{"TWOSTEP_MAX_BODY_BYTES": "1048576"},
			func(c *Config) { c.HTTP.MaxBodyBytes = 1 << 20 }},
		{"timeouts", map[string]string{
			"TWOSTEP_READ_TIMEOUT":     "5s",
			"TWOSTEP_WRITE_TIMEOUT":    "1m",
			"TWOSTEP_IDLE_TIMEOUT":     "90s",
			"TWOSTEP_SHUTDOWN_TIMEOUT": " 30s ",
		}, func(c *Config) {
			c.HTTP.ReadTimeout = 5 * time.Second
			c.HTTP.WriteTimeout = time.Minute
			c.HTTP.IdleTimeout = 90 * time.Second
			c.HTTP.ShutdownTimeout = 30 * time.Second
		}},
		{"trusted proxies", map[string]string{"TWOSTEP_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1,::1,,2001:db8::/32"},
			func(c *Config) {
				c.HTTP.TrustedProxies = []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"),
					netip.MustParsePrefix("192.168.1.1/32"),
					netip.MustParsePrefix("::1/128"),
					netip.MustParsePrefix("2001:db8::/32"),
				}
			}},
		{"allowed return urls", map[string]string{"TWOSTEP_ALLOWED_RETURN_URLS": "https://app.example.com/done, http://localhost:5173/"},
			func(c *Config) {
				c.HTTP.AllowedReturnURLs = []string{"https://app.example.com/done", "http://localhost:5173/"}
			}},
		{"sqlite absolute", map[string]string{"TWOSTEP_DATABASE_URL": "sqlite:///var/lib/twostep/twostep.db"},
			func(c *Config) { c.DB.URL = "sqlite:///var/lib/twostep/twostep.db" }},
		{"postgres", map[string]string{
			"TWOSTEP_DATABASE_URL":   "postgres://twostep:pw@127.0.0.1:5432/twostep?sslmode=disable",
			"TWOSTEP_ENCRYPTION_KEY": "shared-key",
		}, func(c *Config) {
			c.DB.URL = "postgres://twostep:pw@127.0.0.1:5432/twostep?sslmode=disable"
			c.Secrets.EncryptionKey = "shared-key"
		}},
		{"max conns", map[string]string{"TWOSTEP_DATABASE_MAX_CONNS": "50"},
			func(c *Config) { c.DB.MaxConns = 50 }},
		{"redis", map[string]string{"TWOSTEP_REDIS_URL": "rediss://:pw@cache:6380/1"},
			func(c *Config) { c.Redis.URL = "rediss://:pw@cache:6380/1" }},
		{"redis prefix", map[string]string{"TWOSTEP_REDIS_PREFIX": "acme:twostep:"},
			func(c *Config) { c.Redis.Prefix = "acme:twostep:" }},
		{"issuer and audience", map[string]string{"TWOSTEP_ISSUER": "Example Corp", "TWOSTEP_AUDIENCE": "api"},
			func(c *Config) { c.Tokens.Issuer, c.Tokens.Audience = "Example Corp", "api" }},
		{"token ttls", map[string]string{
			"TWOSTEP_ACCESS_TOKEN_TTL":     "5m",
			"TWOSTEP_REFRESH_TOKEN_TTL":    "24h",
			"TWOSTEP_CHALLENGE_TTL":        "10m",
			"TWOSTEP_SIGNING_KEY_ROTATION": "168h",
		}, func(c *Config) {
			c.Tokens.AccessTokenTTL = 5 * time.Minute
			c.Tokens.RefreshTokenTTL = 24 * time.Hour
			c.Tokens.ChallengeTTL = 10 * time.Minute
			c.Tokens.SigningKeyRotation = 168 * time.Hour
		}},
		{"rotation off", map[string]string{"TWOSTEP_SIGNING_KEY_ROTATION": "0"},
			func(c *Config) { c.Tokens.SigningKeyRotation = 0 }},
		{"encryption key and key file", map[string]string{"TWOSTEP_ENCRYPTION_KEY": "k", "TWOSTEP_KEY_FILE": "/etc/twostep/key"},
			func(c *Config) { c.Secrets.EncryptionKey, c.Secrets.KeyFile = "k", "/etc/twostep/key" }},
		{"argon2", map[string]string{
			"TWOSTEP_ARGON2_MEMORY_KIB":     "65536",
			"TWOSTEP_ARGON2_ITERATIONS":     "3",
			"TWOSTEP_ARGON2_PARALLELISM":    "4",
			"TWOSTEP_ARGON2_MAX_CONCURRENT": "8",
		}, func(c *Config) { c.Argon2 = Argon2{MemoryKiB: 65536, Iterations: 3, Parallelism: 4, MaxConcurrent: 8} }},
		{"argon2 weak", map[string]string{
			"TWOSTEP_ARGON2_MEMORY_KIB": "64",
			"TWOSTEP_ARGON2_ITERATIONS": "1",
			"TWOSTEP_ARGON2_ALLOW_WEAK": "true",
		}, func(c *Config) { c.Argon2 = Argon2{MemoryKiB: 64, Iterations: 1, Parallelism: 1, AllowWeak: true} }},
		{"login", map[string]string{
			"TWOSTEP_LOGIN_FREE_FAILURES": "3",
			"TWOSTEP_LOGIN_MAX_FAILURES":  "50",
			"TWOSTEP_LOGIN_MAX_DELAY":     "1m",
			"TWOSTEP_LOGIN_IP_LIMIT":      "0",
		}, func(c *Config) { c.Login = Login{FreeFailures: 3, MaxFailures: 50, MaxDelay: time.Minute} }},
		{"twofa", map[string]string{
			"TWOSTEP_SUDO_TTL":              "5m",
			"TWOSTEP_LOCKOUT_DURATION":      "1h",
			"TWOSTEP_LOCKOUT_THRESHOLD":     "5",
			"TWOSTEP_SMS_CODE_TTL":          "2m",
			"TWOSTEP_SMS_RESEND_COOLDOWN":   "1m",
			"TWOSTEP_SMS_HOURLY_LIMIT":      "10",
			"TWOSTEP_SMS_PHONE_DAILY_LIMIT": "12",
			"TWOSTEP_SMS_IP_HOURLY_LIMIT":   "0",
			"TWOSTEP_SMS_DAILY_LIMIT":       "500",
			"TWOSTEP_SMS_ALLOWED_COUNTRIES": "US, GB",
			"TWOSTEP_SMS_TEMPLATE":          "{code} is your {issuer} code",
		}, func(c *Config) {
			c.TwoFA = TwoFA{
				SudoTTL:             5 * time.Minute,
				LockoutDuration:     time.Hour,
				LockoutThreshold:    5,
				SMSCodeTTL:          2 * time.Minute,
				SMSResendCooldown:   time.Minute,
				SMSHourlyLimit:      10,
				SMSPhoneDailyLimit:  12,
				SMSIPHourlyLimit:    0,
				SMSDailyLimit:       500,
				SMSAllowedCountries: []string{"US", "GB"},
				SMSTemplate:         "{code} is your {issuer} code",
			}
		}},
		{"twilio and vonage", map[string]string{
			"TWOSTEP_SMS_PROVIDER":          "twilio, vonage",
			"TWOSTEP_SMS_TIMEOUT":           "5s",
			"TWOSTEP_TWILIO_ACCOUNT_SID":    testTwilioSID,
			"TWOSTEP_TWILIO_AUTH_TOKEN":     "twilio-token",
			"TWOSTEP_TWILIO_FROM":           "+14155552671",
			"TWOSTEP_TWILIO_BASE_URL":       "http://127.0.0.1:9999/",
			"TWOSTEP_VONAGE_API_KEY":        "vkey",
			"TWOSTEP_VONAGE_API_SECRET":     "vsecret",
			"TWOSTEP_VONAGE_FROM":           "Twostep",
			"TWOSTEP_VONAGE_APPLICATION_ID": "app-id",
			"TWOSTEP_VONAGE_PRIVATE_KEY":    testPEM,
			"TWOSTEP_VONAGE_BASE_URL":       "http://127.0.0.1:9998",
			"TWOSTEP_VONAGE_API_URL":        "http://127.0.0.1:9997",
		}, func(c *Config) {
			c.SMS.Providers = []string{"twilio", "vonage"}
			c.SMS.Timeout = 5 * time.Second
			c.SMS.Twilio = Twilio{AccountSID: testTwilioSID, AuthToken: "twilio-token", From: "+14155552671", BaseURL: "http://127.0.0.1:9999"}
			c.SMS.Vonage = Vonage{APIKey: "vkey", APISecret: "vsecret", From: "Twostep", ApplicationID: "app-id", PrivateKey: testPEM,
				BaseURL: "http://127.0.0.1:9998", APIURL: "http://127.0.0.1:9997"}
		}},
		{"twilio messaging service", map[string]string{
			"TWOSTEP_SMS_PROVIDER":       "twilio",
			"TWOSTEP_TWILIO_ACCOUNT_SID": testTwilioSID,
			"TWOSTEP_TWILIO_AUTH_TOKEN":  "twilio-token",
			"TWOSTEP_TWILIO_FROM":        "MG0123456789abcdef0123456789abcdef",
		}, func(c *Config) {
			c.SMS.Providers = []string{"twilio"}
			c.SMS.Twilio.AccountSID = testTwilioSID
			c.SMS.Twilio.AuthToken = "twilio-token"
			c.SMS.Twilio.From = "MG0123456789abcdef0123456789abcdef"
		}},
		{"plivo", map[string]string{
			"TWOSTEP_SMS_PROVIDER":     "plivo",
			"TWOSTEP_PUBLIC_URL":       "https://auth.example.com",
			"TWOSTEP_PLIVO_AUTH_ID":    "MAXXXXXXXXXXXXXXXXXX",
			"TWOSTEP_PLIVO_AUTH_TOKEN": "plivo-token",
			"TWOSTEP_PLIVO_FROM":       "+14155550100",
			"TWOSTEP_PLIVO_BASE_URL":   "http://127.0.0.1:9996",
		}, func(c *Config) {
			c.SMS.Providers = []string{"plivo"}
			c.HTTP.PublicURL = "https://auth.example.com"
			c.SMS.Plivo = Plivo{AuthID: "MAXXXXXXXXXXXXXXXXXX", AuthToken: "plivo-token", From: "+14155550100", BaseURL: "http://127.0.0.1:9996"}
		}},
		{"webhook", map[string]string{
			"TWOSTEP_SMS_PROVIDER":   "webhook",
			"TWOSTEP_WEBHOOK_URL":    "https://hooks.example.com/sms",
			"TWOSTEP_WEBHOOK_SECRET": testSecret32,
		}, func(c *Config) {
			c.SMS.Providers = []string{"webhook"}
			c.SMS.Webhook = Webhook{URL: "https://hooks.example.com/sms", Secret: testSecret32}
		}},
		{"log", map[string]string{"TWOSTEP_LOG_FORMAT": "text", "TWOSTEP_LOG_LEVEL": "debug", "TWOSTEP_ACCESS_LOG": "false"},
			func(c *Config) { c.Log = Log{Format: "text", Level: "debug", AccessLog: false} }},
		{"empty means unset", map[string]string{"TWOSTEP_ADDR": "", "TWOSTEP_ACCESS_TOKEN_TTL": ""},
			func(*Config) {}},
	}

	covered := make(map[string]bool)
	for _, tc := range tests {
		for name := range tc.env {
			covered[name] = true
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := Default()
			tc.want(&want)
			got, err := Load("", envOf(tc.env))
			if err != nil {
				t.Fatalf("Load(%q) with %v = %v, want nil error", "", tc.env, err)
			}
			if diff := diffConfig(want, got); diff != "" {
				t.Errorf("Load(%q) with %v mismatch (-want +got):\n%s", "", tc.env, diff)
			}
		})
	}
	for _, v := range Vars() {
		if !covered[v.Name] {
			t.Errorf("no TestLoadEnv case sets %s", v.Name)
		}
	}
}

func TestLoadNilGetenv(t *testing.T) {
	t.Parallel()
	got, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load(%q, nil) = %v, want nil error", "", err)
	}
	if diff := diffConfig(Default(), got); diff != "" {
		t.Errorf("Load(%q, nil) mismatch (-want +got):\n%s", "", diff)
	}
}

const testTOML = `
[http]
addr = "0.0.0.0:8080"
public_url = "https://auth.example.com/"
max_body_bytes = 131072
read_timeout = "20s"
trusted_proxies = ["10.0.0.0/8", "192.168.0.1"]
allowed_return_urls = ["https://app.example.com/a,b"]

[db]
url = "sqlite:///var/lib/twostep/twostep.db"

[redis]
prefix = "acme:"

[tokens]
issuer = "Example"
access_token_ttl = "10m"

[argon2]
allow_weak = true
memory_kib = 1024

[twofa]
lockout_threshold = 3

[sms]
provider = ["webhook", "console"]

[sms.webhook]
url = "https://hooks.example.com/sms"
secret = "0123456789abcdef0123456789abcdef"

[log]
format = "text"
`

// TestLoadFile checks that the file is read and that the environment
// overrides it.
func TestLoadFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "twostep.toml", testTOML)
	env := map[string]string{
		"TWOSTEP_ADDR":             "127.0.0.1:9000",
		"TWOSTEP_ACCESS_TOKEN_TTL": "20m",
		"TWOSTEP_SMS_PROVIDER":     "console",
	}
	got, err := Load(path, envOf(env))
	if err != nil {
		t.Fatalf("Load(%q) = %v, want nil error", path, err)
	}
	want := Default()
	want.HTTP.Addr = "127.0.0.1:9000" // env wins
	want.HTTP.PublicURL = "https://auth.example.com"
	want.HTTP.MaxBodyBytes = 131072
	want.HTTP.ReadTimeout = 20 * time.Second
	want.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.1/32")}
	want.HTTP.AllowedReturnURLs = []string{"https://app.example.com/a,b"}
	want.DB.URL = "sqlite:///var/lib/twostep/twostep.db"
	want.Redis.Prefix = "acme:"
	want.Tokens.Issuer = "Example"
	want.Tokens.AccessTokenTTL = 20 * time.Minute // env wins
	want.Argon2.AllowWeak = true
	want.Argon2.MemoryKiB = 1024
	want.TwoFA.LockoutThreshold = 3
	want.SMS.Providers = []string{"console"} // env wins
	want.SMS.Webhook = Webhook{URL: "https://hooks.example.com/sms", Secret: testSecret32}
	want.Log.Format = "text"
	if diff := diffConfig(want, got); diff != "" {
		t.Errorf("Load(%q) mismatch (-want +got):\n%s", path, diff)
	}
}

func TestLoadFileMissing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.toml")
	_, err := Load(path, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%q) = %v, want fs.ErrNotExist", path, err)
	}
}

func TestLoadFileProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		toml     string
		wantVar  string // "" means the file's path
		wantText string
	}{
		{"unknown top-level key", "colour = \"red\"\n", "", "unknown key colour"},
		{"unknown table", "[htp]\naddr = \":1\"\n", "", "unknown key htp"},
		{"unknown key in table", "[http]\nadress = \":1\"\n", "", "unknown key http.adress"},
		{"unknown nested key", "[sms.twilio]\nacount_sid = \"AC\"\n", "", "unknown key sms.twilio.acount_sid"},
		{"scalar for a table", "http = \"x\"\n", "", "http must be a table"},
		{"syntax error", "[http\naddr = 1\n", "", "line 1"},
		{"duration as integer", "[tokens]\naccess_token_ttl = 900\n", "TWOSTEP_ACCESS_TOKEN_TTL", `must be a duration string like "15m", got an integer (key tokens.access_token_ttl in `},
		{"bad duration", "[tokens]\naccess_token_ttl = \"fifteen\"\n", "TWOSTEP_ACCESS_TOKEN_TTL", `must be a Go duration like 15m, got "fifteen"`},
		{"string for integer", "[db]\nmax_conns = \"10\"\n", "TWOSTEP_DATABASE_MAX_CONNS", "must be an integer, got a string"},
		{"string for bool", "[log]\naccess_log = \"yes\"\n", "TWOSTEP_ACCESS_LOG", "must be true or false, got a string"},
		{"array of numbers", "[http]\ntrusted_proxies = [1]\n", "TWOSTEP_TRUSTED_PROXIES", "must be an array of strings"},
		{"bad prefix", "[http]\ntrusted_proxies = \"10.0.0.1/8\"\n", "TWOSTEP_TRUSTED_PROXIES", "did you mean 10.0.0.0/8?"},
		{"validation of a file value", "[log]\nlevel = \"loud\"\n", "TWOSTEP_LOG_LEVEL", `must be debug, info, warn or error, got "loud"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "twostep.toml", tc.toml)
			_, err := Load(path, nil)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load(%q) = %v, want Problems", path, err)
			}
			wantVar := tc.wantVar
			if wantVar == "" {
				wantVar = path
			}
			found := false
			for _, p := range ps {
				if p.Var == wantVar && strings.Contains(p.Msg, tc.wantText) {
					found = true
				}
			}
			if !found {
				t.Errorf("Load(%q) = %v, want a problem %s: …%s…", path, err, wantVar, tc.wantText)
			}
		})
	}
}

// TestLoadReportsEveryProblem checks that Load does not stop at the first
// problem, and collects problems from the file, the environment and
// Validate together.
func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "twostep.toml", "[http]\nadress = \":1\"\n[tokens]\nchallenge_ttl = \"1h\"\n")
	env := map[string]string{
		"TWOSTEP_ACCESS_TOKEN_TTL":   "fifteen",
		"TWOSTEP_MAX_BODY_BYTES":     "lots",
		"TWOSTEP_ACCESS_LOG":         "maybe",
		"TWOSTEP_LOG_LEVEL":          "loud",
		"TWOSTEP_TRUSTED_PROXIES":    "10.0.0.1/8,proxy.local",
		"TWOSTEP_DATABASE_MAX_CONNS": "0",
	}
	_, err := Load(path, envOf(env))
	got := problemVars(t, err)
	want := []string{
		path,
		"TWOSTEP_ACCESS_LOG",
		"TWOSTEP_ACCESS_TOKEN_TTL",
		"TWOSTEP_CHALLENGE_TTL",
		"TWOSTEP_DATABASE_MAX_CONNS",
		"TWOSTEP_LOG_LEVEL",
		"TWOSTEP_MAX_BODY_BYTES",
		"TWOSTEP_TRUSTED_PROXIES",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Load(%q) = %v, want problems for %v", path, err, want)
	}
	for _, line := range []string{
		`TWOSTEP_ACCESS_TOKEN_TTL: must be a Go duration like 15m, got "fifteen"`,
		`TWOSTEP_TRUSTED_PROXIES: "10.0.0.1/8" has bits set beyond its length; did you mean 10.0.0.0/8?; "proxy.local" is not an IP address or CIDR prefix`,
		`TWOSTEP_DATABASE_MAX_CONNS: must be between 1 and 1000, got 0`,
	} {
		if !slices.Contains(strings.Split(err.Error(), "\n"), line) {
			t.Errorf("Load(%q) = %v, want a line %q", path, err, line)
		}
	}
}

// TestLoadNeverEchoesSecrets checks that no error repeats a secret's value.
func TestLoadNeverEchoesSecrets(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-Sup3rS3cret"
	keyFile := writeFile(t, "key", secret+"\n")
	tests := []struct {
		name string
		toml string
		env  map[string]string
	}{
		{"database url with unknown scheme", "", map[string]string{"TWOSTEP_DATABASE_URL": "mysql://root:" + secret + "@db/twostep"}},
		{"database url unparseable", "", map[string]string{
			"TWOSTEP_DATABASE_URL":   "postgres://u:" + secret + "@%zz/db",
			"TWOSTEP_ENCRYPTION_KEY": "k",
		}},
		{"sqlite in memory", "", map[string]string{"TWOSTEP_DATABASE_URL": "sqlite://:memory:?" + secret}},
		{"redis url with wrong scheme", "", map[string]string{"TWOSTEP_REDIS_URL": "http://:" + secret + "@cache:6379"}},
		{"redis url unparseable", "", map[string]string{"TWOSTEP_REDIS_URL": "redis://:" + secret + "@%zz"}},
		{"short webhook secret", "", map[string]string{
			"TWOSTEP_SMS_PROVIDER":   "webhook",
			"TWOSTEP_WEBHOOK_URL":    "https://hooks.example.com",
			"TWOSTEP_WEBHOOK_SECRET": secret,
		}},
		{"vonage key not PEM", "", map[string]string{
			"TWOSTEP_SMS_PROVIDER":          "vonage",
			"TWOSTEP_VONAGE_API_KEY":        "k",
			"TWOSTEP_VONAGE_API_SECRET":     "s",
			"TWOSTEP_VONAGE_FROM":           "Twostep",
			"TWOSTEP_VONAGE_APPLICATION_ID": "app",
			"TWOSTEP_VONAGE_PRIVATE_KEY":    secret,
		}},
		{"value and file both set", "", map[string]string{
			"TWOSTEP_ENCRYPTION_KEY":      secret,
			"TWOSTEP_ENCRYPTION_KEY_FILE": keyFile,
		}},
		{"secret of the wrong type in file", "[secrets]\nencryption_key = 8675309\n", nil},
		{"bad secret url in file", "[db]\nurl = \"mysql://u:" + secret + "@h/db\"\n", nil},
		{"unterminated secret in file", "[secrets]\nencryption_key = \"" + secret + "\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tc.toml != "" {
				path = writeFile(t, "twostep.toml", tc.toml)
			}
			_, err := Load(path, envOf(tc.env))
			if err == nil {
				t.Fatalf("Load(%q) = nil error, want problems", path)
			}
			for _, s := range []string{secret, "8675309"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("Load(%q) = %v, want no mention of the secret", path, err)
				}
			}
		})
	}
}

func TestLoadSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	keyPath := write("key", "s3cret-key\n")
	crlfPath := write("crlf", "twilio-token\r\n")
	dbPath := write("db", "postgres://u:p@localhost/twostep\n")
	pemPath := write("pem", testPEM+"\n\n")
	webhookPath := write("webhook", testSecret32)
	emptyPath := write("empty", "\n")

	got, err := Load("", envOf(map[string]string{
		"TWOSTEP_ENCRYPTION_KEY_FILE":     keyPath,
		"TWOSTEP_DATABASE_URL_FILE":       dbPath,
		"TWOSTEP_REDIS_URL_FILE":          write("redis", "redis://localhost:6379/0\n"),
		"TWOSTEP_SMS_PROVIDER":            "twilio,plivo,vonage,webhook",
		"TWOSTEP_PUBLIC_URL":              "https://auth.example.com",
		"TWOSTEP_TWILIO_ACCOUNT_SID":      testTwilioSID,
		"TWOSTEP_TWILIO_AUTH_TOKEN_FILE":  crlfPath,
		"TWOSTEP_TWILIO_FROM":             "+14155552671",
		"TWOSTEP_PLIVO_AUTH_ID":           "MAXXXXXXXXXXXXXXXXXX",
		"TWOSTEP_PLIVO_AUTH_TOKEN_FILE":   write("plivo", "plivo-token\n"),
		"TWOSTEP_PLIVO_FROM":              "+14155550100",
		"TWOSTEP_VONAGE_API_KEY":          "vkey",
		"TWOSTEP_VONAGE_API_SECRET_FILE":  write("vonage", "vsecret\n"),
		"TWOSTEP_VONAGE_FROM":             "Twostep",
		"TWOSTEP_VONAGE_APPLICATION_ID":   "app-id",
		"TWOSTEP_VONAGE_PRIVATE_KEY_FILE": pemPath,
		"TWOSTEP_WEBHOOK_URL":             "https://hooks.example.com/sms",
		"TWOSTEP_WEBHOOK_SECRET_FILE":     webhookPath,
	}))
	if err != nil {
		t.Fatalf("Load(%q) with _FILE variables = %v, want nil error", "", err)
	}
	want := map[string]string{
		"encryption key":     "s3cret-key",
		"database url":       "postgres://u:p@localhost/twostep",
		"redis url":          "redis://localhost:6379/0",
		"twilio auth token":  "twilio-token",
		"plivo auth token":   "plivo-token",
		"vonage api secret":  "vsecret",
		"vonage private key": strings.TrimSuffix(testPEM, "\n"),
		"webhook secret":     testSecret32,
	}
	gotValues := map[string]string{
		"encryption key":     got.Secrets.EncryptionKey,
		"database url":       got.DB.URL,
		"redis url":          got.Redis.URL,
		"twilio auth token":  got.SMS.Twilio.AuthToken,
		"plivo auth token":   got.SMS.Plivo.AuthToken,
		"vonage api secret":  got.SMS.Vonage.APISecret,
		"vonage private key": got.SMS.Vonage.PrivateKey,
		"webhook secret":     got.SMS.Webhook.Secret,
	}
	if diff := cmp.Diff(want, gotValues); diff != "" {
		t.Errorf("Load(%q) with _FILE variables mismatch (-want +got):\n%s", "", diff)
	}

	problems := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"both set", map[string]string{"TWOSTEP_ENCRYPTION_KEY": "k", "TWOSTEP_ENCRYPTION_KEY_FILE": keyPath}, "TWOSTEP_ENCRYPTION_KEY"},
		{"missing file", map[string]string{"TWOSTEP_ENCRYPTION_KEY_FILE": filepath.Join(dir, "absent")}, "TWOSTEP_ENCRYPTION_KEY_FILE"},
		{"empty file", map[string]string{"TWOSTEP_WEBHOOK_SECRET_FILE": emptyPath}, "TWOSTEP_WEBHOOK_SECRET_FILE"},
	}
	for _, tc := range problems {
		_, err := Load("", envOf(tc.env))
		if got, want := problemVars(t, err), []string{tc.wantVar}; !slices.Equal(got, want) {
			t.Errorf("Load(%q) with %s = %v, want problems for %v", "", tc.name, err, want)
		}
	}
}

func TestLoadPostgresNeedsEncryptionKey(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TWOSTEP_DATABASE_URL": "postgres://localhost/twostep"}
	_, err := Load("", envOf(env))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Var != "TWOSTEP_ENCRYPTION_KEY" || !strings.Contains(ps[0].Msg, "same key") {
		t.Errorf("Load(%q) with %v = %v, want one TWOSTEP_ENCRYPTION_KEY problem explaining instances share the key", "", env, err)
	}
}

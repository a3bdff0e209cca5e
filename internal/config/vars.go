package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// VarDoc describes one setting for help output and the README.
type VarDoc struct {
	// Name is the environment variable, e.g. "TWOSTEP_ADDR". When Secret is
	// true, Name+"_FILE" may instead name a file holding the value.
	Name string
	// Key is the dotted TOML key in the config file, e.g. "http.addr".
	Key string
	// Default is the default value as it would be written in the
	// environment ("15m", "true", "a,b"); "" when there is none.
	Default string
	// Description is one line of help text.
	Description string
	// Secret marks a value that is never printed or echoed in errors.
	Secret bool
}

// Vars returns one VarDoc for every setting, in the order of the Config
// struct.
func Vars() []VarDoc {
	def := Default()
	var docs []VarDoc
	for _, s := range settings() {
		d := VarDoc{Name: s.env, Key: s.key, Description: s.desc, Secret: s.secret}
		if !s.secret {
			d.Default = format(s.field(&def))
		}
		docs = append(docs, d)
	}
	return docs
}

// setting ties one Config field to its environment variable and TOML key.
type setting struct {
	env    string
	key    string
	field  func(*Config) any // a pointer to the field; see parse for the types
	secret bool
	desc   string
}

// settings is the one table of every setting. It is a function, not a
// variable, so that nothing can change it.
func settings() []setting {
	return []setting{
		{env: "TWOSTEP_ADDR", key: "http.addr", field: func(c *Config) any { return &c.HTTP.Addr },
			desc: "listen address, host:port (port 0 picks a free port)"},
		{env: "TWOSTEP_PUBLIC_URL", key: "http.public_url", field: func(c *Config) any { return &c.HTTP.PublicURL },
			desc: "absolute http(s) URL at which clients reach the server; needed for Plivo voice calls"},
		{env: "TWOSTEP_MAX_BODY_BYTES", key: "http.max_body_bytes", field: func(c *Config) any { return &c.HTTP.MaxBodyBytes },
			desc: "largest request body accepted, in bytes (1024 to 10485760)"},
		{env: "TWOSTEP_READ_TIMEOUT", key: "http.read_timeout", field: func(c *Config) any { return &c.HTTP.ReadTimeout },
			desc: "time allowed to read a whole request"},
		{env: "TWOSTEP_WRITE_TIMEOUT", key: "http.write_timeout", field: func(c *Config) any { return &c.HTTP.WriteTimeout },
			desc: "time allowed to write a response"},
		{env: "TWOSTEP_IDLE_TIMEOUT", key: "http.idle_timeout", field: func(c *Config) any { return &c.HTTP.IdleTimeout },
			desc: "how long an idle keep-alive connection stays open"},
		{env: "TWOSTEP_SHUTDOWN_TIMEOUT", key: "http.shutdown_timeout", field: func(c *Config) any { return &c.HTTP.ShutdownTimeout },
			desc: "how long a graceful shutdown waits for requests in flight"},
		{env: "TWOSTEP_TRUSTED_PROXIES", key: "http.trusted_proxies", field: func(c *Config) any { return &c.HTTP.TrustedProxies },
			desc: "comma-separated IPs or CIDR prefixes whose X-Forwarded-For is believed"},
		{env: "TWOSTEP_ALLOWED_RETURN_URLS", key: "http.allowed_return_urls", field: func(c *Config) any { return &c.HTTP.AllowedReturnURLs },
			desc: "comma-separated absolute URLs that flows may redirect back to"},

		{env: "TWOSTEP_DATABASE_URL", key: "db.url", field: func(c *Config) any { return &c.DB.URL }, secret: true,
			desc: "sqlite://PATH (sqlite:///abs/path.db) or postgres://… (default sqlite://twostep.db)"},
		{env: "TWOSTEP_DATABASE_MAX_CONNS", key: "db.max_conns", field: func(c *Config) any { return &c.DB.MaxConns },
			desc: "most open database connections (1 to 1000)"},

		{env: "TWOSTEP_REDIS_URL", key: "redis.url", field: func(c *Config) any { return &c.Redis.URL }, secret: true,
			desc: "redis:// or rediss:// URL to share limits and one-time state across instances (optional)"},
		{env: "TWOSTEP_REDIS_PREFIX", key: "redis.prefix", field: func(c *Config) any { return &c.Redis.Prefix },
			desc: "start of every Redis key; the same on every instance of one deployment"},

		{env: "TWOSTEP_ISSUER", key: "tokens.issuer", field: func(c *Config) any { return &c.Tokens.Issuer },
			desc: "JWT issuer, also the issuer shown in authenticator apps"},
		{env: "TWOSTEP_AUDIENCE", key: "tokens.audience", field: func(c *Config) any { return &c.Tokens.Audience },
			desc: "JWT audience"},
		{env: "TWOSTEP_ACCESS_TOKEN_TTL", key: "tokens.access_token_ttl", field: func(c *Config) any { return &c.Tokens.AccessTokenTTL },
			desc: "life of an access token (1m to 24h)"},
		{env: "TWOSTEP_REFRESH_TOKEN_TTL", key: "tokens.refresh_token_ttl", field: func(c *Config) any { return &c.Tokens.RefreshTokenTTL },
			desc: "life of a refresh token (longer than the access token, at most 8760h)"},
		{env: "TWOSTEP_CHALLENGE_TTL", key: "tokens.challenge_ttl", field: func(c *Config) any { return &c.Tokens.ChallengeTTL },
			desc: "life of a second-factor challenge token (1m to 30m)"},
		{env: "TWOSTEP_SIGNING_KEY_ROTATION", key: "tokens.signing_key_rotation", field: func(c *Config) any { return &c.Tokens.SigningKeyRotation },
			desc: "how often a new JWT signing key is made; 0 disables automatic rotation"},

		{env: "TWOSTEP_ENCRYPTION_KEY", key: "secrets.encryption_key", field: func(c *Config) any { return &c.Secrets.EncryptionKey }, secret: true,
			desc: "key for secrets at rest; required with PostgreSQL (not to be confused with TWOSTEP_KEY_FILE)"},
		{env: "TWOSTEP_KEY_FILE", key: "secrets.key_file", field: func(c *Config) any { return &c.Secrets.KeyFile },
			desc: "where the generated key is kept when TWOSTEP_ENCRYPTION_KEY is unset (default: the SQLite path plus .key)"},

		{env: "TWOSTEP_ARGON2_MEMORY_KIB", key: "argon2.memory_kib", field: func(c *Config) any { return &c.Argon2.MemoryKiB },
			desc: "argon2id memory cost, in KiB"},
		{env: "TWOSTEP_ARGON2_ITERATIONS", key: "argon2.iterations", field: func(c *Config) any { return &c.Argon2.Iterations },
			desc: "argon2id time cost"},
		{env: "TWOSTEP_ARGON2_PARALLELISM", key: "argon2.parallelism", field: func(c *Config) any { return &c.Argon2.Parallelism },
			desc: "argon2id lanes (1 to 255)"},
		{env: "TWOSTEP_ARGON2_MAX_CONCURRENT", key: "argon2.max_concurrent", field: func(c *Config) any { return &c.Argon2.MaxConcurrent },
			desc: "most password hashes computed at once; 0 means the number of CPUs"},
		{env: "TWOSTEP_ARGON2_ALLOW_WEAK", key: "argon2.allow_weak", field: func(c *Config) any { return &c.Argon2.AllowWeak },
			desc: "allow argon2id parameters below 19456 KiB, 2 iterations (tests and benchmarks only)"},

		{env: "TWOSTEP_LOGIN_FREE_FAILURES", key: "login.free_failures", field: func(c *Config) any { return &c.Login.FreeFailures },
			desc: "failed logins in a row on one account before delays begin"},
		{env: "TWOSTEP_LOGIN_MAX_FAILURES", key: "login.max_failures", field: func(c *Config) any { return &c.Login.MaxFailures },
			desc: "most failed logins in a row let through on one account"},
		{env: "TWOSTEP_LOGIN_MAX_DELAY", key: "login.max_delay", field: func(c *Config) any { return &c.Login.MaxDelay },
			desc: "longest delay imposed between login attempts on one account"},
		{env: "TWOSTEP_LOGIN_IP_LIMIT", key: "login.ip_limit", field: func(c *Config) any { return &c.Login.IPLimit },
			desc: "login attempts allowed per client IP per minute; 0 disables the limit"},

		{env: "TWOSTEP_SUDO_TTL", key: "twofa.sudo_ttl", field: func(c *Config) any { return &c.TwoFA.SudoTTL },
			desc: "how long a session stays in sudo mode after passing a second factor"},
		{env: "TWOSTEP_LOCKOUT_DURATION", key: "twofa.lockout_duration", field: func(c *Config) any { return &c.TwoFA.LockoutDuration },
			desc: "how long a second factor stays locked after too many wrong codes"},
		{env: "TWOSTEP_LOCKOUT_THRESHOLD", key: "twofa.lockout_threshold", field: func(c *Config) any { return &c.TwoFA.LockoutThreshold },
			desc: "wrong second-factor codes in a row that lock the account's second factor"},
		{env: "TWOSTEP_SMS_CODE_TTL", key: "twofa.sms_code_ttl", field: func(c *Config) any { return &c.TwoFA.SMSCodeTTL },
			desc: "life of an SMS or voice code"},
		{env: "TWOSTEP_SMS_RESEND_COOLDOWN", key: "twofa.sms_resend_cooldown", field: func(c *Config) any { return &c.TwoFA.SMSResendCooldown },
			desc: "shortest time between two codes sent to one challenge or phone"},
		{env: "TWOSTEP_SMS_HOURLY_LIMIT", key: "twofa.sms_hourly_limit", field: func(c *Config) any { return &c.TwoFA.SMSHourlyLimit },
			desc: "most codes sent to one phone per hour"},
		{env: "TWOSTEP_SMS_PHONE_DAILY_LIMIT", key: "twofa.sms_phone_daily_limit", field: func(c *Config) any { return &c.TwoFA.SMSPhoneDailyLimit },
			desc: "most codes sent to one phone per day"},
		{env: "TWOSTEP_SMS_IP_HOURLY_LIMIT", key: "twofa.sms_ip_hourly_limit", field: func(c *Config) any { return &c.TwoFA.SMSIPHourlyLimit },
			desc: "most codes one client address may have sent per hour; 0 disables the ceiling"},
		{env: "TWOSTEP_SMS_DAILY_LIMIT", key: "twofa.sms_daily_limit", field: func(c *Config) any { return &c.TwoFA.SMSDailyLimit },
			desc: "most codes the whole deployment sends per day (a cost ceiling; logged and counted in /metrics when reached); 0 disables it"},
		{env: "TWOSTEP_SMS_ALLOWED_COUNTRIES", key: "twofa.sms_allowed_countries", field: func(c *Config) any { return &c.TwoFA.SMSAllowedCountries },
			desc: "comma-separated ISO 3166 country codes that codes may be sent to (e.g. US,CA,GB); empty allows all"},
		{env: "TWOSTEP_SMS_TEMPLATE", key: "twofa.sms_template", field: func(c *Config) any { return &c.TwoFA.SMSTemplate },
			desc: "SMS text; {code} is the code, {issuer} the issuer"},

		{env: "TWOSTEP_SMS_PROVIDER", key: "sms.provider", field: func(c *Config) any { return &c.SMS.Providers },
			desc: "SMS provider, or a comma-separated list in order of preference: console, twilio, plivo, vonage, webhook"},
		{env: "TWOSTEP_SMS_TIMEOUT", key: "sms.timeout", field: func(c *Config) any { return &c.SMS.Timeout },
			desc: "time allowed for each request to an SMS provider (at most 10s)"},
		{env: "TWOSTEP_TWILIO_ACCOUNT_SID", key: "sms.twilio.account_sid", field: func(c *Config) any { return &c.SMS.Twilio.AccountSID },
			desc: "Twilio account SID (AC…)"},
		{env: "TWOSTEP_TWILIO_AUTH_TOKEN", key: "sms.twilio.auth_token", field: func(c *Config) any { return &c.SMS.Twilio.AuthToken }, secret: true,
			desc: "Twilio auth token"},
		{env: "TWOSTEP_TWILIO_FROM", key: "sms.twilio.from", field: func(c *Config) any { return &c.SMS.Twilio.From },
			desc: "Twilio sender: an E.164 number or a messaging service SID (MG…)"},
		{env: "TWOSTEP_TWILIO_BASE_URL", key: "sms.twilio.base_url", field: func(c *Config) any { return &c.SMS.Twilio.BaseURL },
			desc: "Twilio API root"},
		{env: "TWOSTEP_PLIVO_AUTH_ID", key: "sms.plivo.auth_id", field: func(c *Config) any { return &c.SMS.Plivo.AuthID },
			desc: "Plivo auth ID"},
		{env: "TWOSTEP_PLIVO_AUTH_TOKEN", key: "sms.plivo.auth_token", field: func(c *Config) any { return &c.SMS.Plivo.AuthToken }, secret: true,
			desc: "Plivo auth token"},
		{env: "TWOSTEP_PLIVO_FROM", key: "sms.plivo.from", field: func(c *Config) any { return &c.SMS.Plivo.From },
			desc: "Plivo sender number or ID"},
		{env: "TWOSTEP_PLIVO_BASE_URL", key: "sms.plivo.base_url", field: func(c *Config) any { return &c.SMS.Plivo.BaseURL },
			desc: "Plivo API root"},
		{env: "TWOSTEP_VONAGE_API_KEY", key: "sms.vonage.api_key", field: func(c *Config) any { return &c.SMS.Vonage.APIKey },
			desc: "Vonage API key"},
		{env: "TWOSTEP_VONAGE_API_SECRET", key: "sms.vonage.api_secret", field: func(c *Config) any { return &c.SMS.Vonage.APISecret }, secret: true,
			desc: "Vonage API secret"},
		{env: "TWOSTEP_VONAGE_FROM", key: "sms.vonage.from", field: func(c *Config) any { return &c.SMS.Vonage.From },
			desc: "Vonage sender number or ID"},
		{env: "TWOSTEP_VONAGE_APPLICATION_ID", key: "sms.vonage.application_id", field: func(c *Config) any { return &c.SMS.Vonage.ApplicationID },
			desc: "Vonage Voice API application ID (needed for voice calls)"},
		{env: "TWOSTEP_VONAGE_PRIVATE_KEY", key: "sms.vonage.private_key", field: func(c *Config) any { return &c.SMS.Vonage.PrivateKey }, secret: true,
			desc: "Vonage Voice API application private key, PEM (needed for voice calls)"},
		{env: "TWOSTEP_VONAGE_BASE_URL", key: "sms.vonage.base_url", field: func(c *Config) any { return &c.SMS.Vonage.BaseURL },
			desc: "Vonage SMS API root"},
		{env: "TWOSTEP_VONAGE_API_URL", key: "sms.vonage.api_url", field: func(c *Config) any { return &c.SMS.Vonage.APIURL },
			desc: "Vonage Voice API root"},
		{env: "TWOSTEP_WEBHOOK_URL", key: "sms.webhook.url", field: func(c *Config) any { return &c.SMS.Webhook.URL },
			desc: "URL that the webhook provider POSTs each message to"},
		{env: "TWOSTEP_WEBHOOK_SECRET", key: "sms.webhook.secret", field: func(c *Config) any { return &c.SMS.Webhook.Secret }, secret: true,
			desc: "key that signs webhook requests (at least 32 bytes)"},

		{env: "TWOSTEP_LOG_FORMAT", key: "log.format", field: func(c *Config) any { return &c.Log.Format },
			desc: "log format: json or text"},
		{env: "TWOSTEP_LOG_LEVEL", key: "log.level", field: func(c *Config) any { return &c.Log.Level },
			desc: "log level: debug, info, warn or error"},
		{env: "TWOSTEP_ACCESS_LOG", key: "log.access_log", field: func(c *Config) any { return &c.Log.AccessLog },
			desc: "log one line per HTTP request"},
	}
}

// parse sets the field that p points to from its environment form s. An
// error may quote s, so callers must not pass on the error of a secret.
func parse(p any, s string) error {
	switch p := p.(type) {
	case *string:
		*p = s
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("must be a whole number, got %q", s)
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("must be a whole number, got %q", s)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", s)
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("must be a Go duration like 15m, got %q", s)
		}
		*p = d
	case *[]string:
		*p = splitList(s)
	case *[]netip.Prefix:
		prefixes, err := parsePrefixes(splitList(s))
		if err != nil {
			return err
		}
		*p = prefixes
	default:
		panic(fmt.Sprintf("config: no parser for %T", p))
	}
	return nil
}

// format returns the environment form of the field that p points to.
func format(p any) string {
	switch p := p.(type) {
	case *string:
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *bool:
		return strconv.FormatBool(*p)
	case *time.Duration:
		return formatDuration(*p)
	case *[]string:
		return strings.Join(*p, ",")
	case *[]netip.Prefix:
		var items []string
		for _, pr := range *p {
			items = append(items, formatPrefix(pr))
		}
		return strings.Join(items, ",")
	}
	panic(fmt.Sprintf("config: no formatter for %T", p))
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// parsePrefixes parses IP addresses and CIDR prefixes, reporting every bad
// item at once. A single address becomes a full-length prefix.
func parsePrefixes(items []string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	var bad []string
	for _, item := range items {
		if !strings.Contains(item, "/") {
			addr, err := netip.ParseAddr(item)
			if err != nil || addr.Zone() != "" {
				bad = append(bad, strconv.Quote(item)+" is not an IP address or CIDR prefix")
				continue
			}
			addr = addr.Unmap()
			prefixes = append(prefixes, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			bad = append(bad, strconv.Quote(item)+" is not an IP address or CIDR prefix")
			continue
		}
		if p != p.Masked() {
			bad = append(bad, strconv.Quote(item)+" has bits set beyond its length; did you mean "+p.Masked().String()+"?")
			continue
		}
		prefixes = append(prefixes, p)
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	return prefixes, nil
}

// formatPrefix writes a full-length prefix as its bare address, the form
// in which it was most likely given.
func formatPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// formatDuration writes d the way a person would: 15m rather than 15m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

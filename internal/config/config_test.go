package config

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultValidates(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
}

func TestDBHelpers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url        string
		engine     string
		sqlitePath string
		keyFile    string
	}{
		{"sqlite://twostep.db", "sqlite", "twostep.db", "twostep.db.key"},
		{"sqlite:///var/lib/twostep/twostep.db", "sqlite", "/var/lib/twostep/twostep.db", "/var/lib/twostep/twostep.db.key"},
		{"sqlite://./data/app.db", "sqlite", "./data/app.db", "./data/app.db.key"},
		{"postgres://u:p@localhost:5432/twostep", "postgres", "", ""},
		{"postgresql://localhost/twostep", "postgres", "", ""},
		{"mysql://localhost/twostep", "", "", ""},
		{"", "", "", ""},
	}
	for _, tc := range tests {
		db := DB{URL: tc.url}
		if got := db.Engine(); got != tc.engine {
			t.Errorf("DB{URL: %q}.Engine() = %q, want %q", tc.url, got, tc.engine)
		}
		if got := db.SQLitePath(); got != tc.sqlitePath {
			t.Errorf("DB{URL: %q}.SQLitePath() = %q, want %q", tc.url, got, tc.sqlitePath)
		}
		if got := (Config{DB: db}).KeyFilePath(); got != tc.keyFile {
			t.Errorf("Config{DB: %q}.KeyFilePath() = %q, want %q", tc.url, got, tc.keyFile)
		}
	}

	c := Config{DB: DB{URL: "postgres://localhost/twostep"}, Secrets: Secrets{KeyFile: "/etc/twostep/key"}}
	if got, want := c.KeyFilePath(), "/etc/twostep/key"; got != want {
		t.Errorf("KeyFilePath() with KeyFile set = %q, want %q", got, want)
	}
}

func TestSlogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
		{"bogus", slog.LevelInfo},
	}
	for _, tc := range tests {
		if got := (Log{Level: tc.level}).SlogLevel(); got != tc.want {
			t.Errorf("Log{Level: %q}.SlogLevel() = %v, want %v", tc.level, got, tc.want)
		}
	}
}

func TestVarsWellFormed(t *testing.T) {
	t.Parallel()
	names := make(map[string]bool)
	keys := make(map[string]bool)
	vars := Vars()
	for _, v := range vars {
		if !strings.HasPrefix(v.Name, "TWOSTEP_") {
			t.Errorf("Vars(): %s does not start with TWOSTEP_", v.Name)
		}
		if names[v.Name] {
			t.Errorf("Vars(): %s listed twice", v.Name)
		}
		if keys[v.Key] {
			t.Errorf("Vars(): key %s listed twice", v.Key)
		}
		names[v.Name], keys[v.Key] = true, true
		if v.Description == "" {
			t.Errorf("Vars(): %s has no description", v.Name)
		}
		if v.Secret && v.Default != "" {
			t.Errorf("Vars(): secret %s has default %q, want none", v.Name, v.Default)
		}
	}
	for _, v := range vars {
		if v.Secret && names[v.Name+"_FILE"] {
			t.Errorf("Vars(): %s_FILE is both a setting and the file form of secret %s", v.Name, v.Name)
		}
	}
}

func TestVarsDefaults(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"TWOSTEP_ADDR":                "127.0.0.1:3000",
		"TWOSTEP_MAX_BODY_BYTES":      "65536",
		"TWOSTEP_IDLE_TIMEOUT":        "2m",
		"TWOSTEP_TRUSTED_PROXIES":     "",
		"TWOSTEP_ACCESS_TOKEN_TTL":    "15m",
		"TWOSTEP_REFRESH_TOKEN_TTL":   "720h",
		"TWOSTEP_SMS_RESEND_COOLDOWN": "30s",
		"TWOSTEP_SMS_PROVIDER":        "console",
		"TWOSTEP_SMS_TEMPLATE":        "Your {issuer} code is {code}",
		"TWOSTEP_ARGON2_ALLOW_WEAK":   "false",
		"TWOSTEP_ACCESS_LOG":          "true",
		"TWOSTEP_DATABASE_URL":        "", // secret: never printed
		"TWOSTEP_TWILIO_BASE_URL":     "https://api.twilio.com",
		"TWOSTEP_REDIS_PREFIX":        "twostep:",
	}
	got := make(map[string]string)
	for _, v := range Vars() {
		got[v.Name] = v.Default
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("Vars() default of %s = %q, want %q", name, g, w)
		}
	}
}

// TestVarsDefaultsRoundTrip checks that every printed default parses back
// to the default.
func TestVarsDefaultsRoundTrip(t *testing.T) {
	t.Parallel()
	env := make(map[string]string)
	for _, v := range Vars() {
		env[v.Name] = v.Default
	}
	got, err := Load("", envOf(env))
	if err != nil {
		t.Fatalf("Load(%q) with every default = %v, want nil", "", err)
	}
	if diff := diffConfig(Default(), got); diff != "" {
		t.Errorf("Load(%q) with every default mismatch (-want +got):\n%s", "", diff)
	}
}

// TestTableMatchesStruct checks that the settings table covers every field
// of Config exactly once, with the TOML key that the struct tags give.
func TestTableMatchesStruct(t *testing.T) {
	t.Parallel()
	var c Config
	paths := make(map[uintptr]string) // field address → dotted tag path
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" {
				t.Errorf("field %s%s has no toml tag", prefix, f.Name)
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(v.Field(i), prefix+tag+".")
				continue
			}
			paths[v.Field(i).Addr().Pointer()] = prefix + tag
		}
	}
	walk(reflect.ValueOf(&c).Elem(), "")

	seen := make(map[uintptr]bool)
	for _, s := range settings() {
		addr := reflect.ValueOf(s.field(&c)).Pointer()
		path, ok := paths[addr]
		switch {
		case !ok:
			t.Errorf("%s points at no leaf field of Config", s.env)
		case path != s.key:
			t.Errorf("%s has key %q, but its field's tags say %q", s.env, s.key, path)
		case seen[addr]:
			t.Errorf("%s points at a field that another setting also sets", s.env)
		}
		seen[addr] = true
	}
	for addr, path := range paths {
		if !seen[addr] {
			t.Errorf("field %s has no setting", path)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{10 * time.Second, "10s"},
		{90 * time.Second, "1m30s"},
		{15 * time.Minute, "15m"},
		{720 * time.Hour, "720h"},
		{time.Hour + 30*time.Minute, "1h30m"},
		{time.Hour + 10*time.Second, "1h0m10s"},
		{500 * time.Millisecond, "500ms"},
	}
	for _, tc := range tests {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestProblemsError(t *testing.T) {
	t.Parallel()
	ps := Problems{
		{Var: "TWOSTEP_A", Msg: "must be x"},
		{Var: "TWOSTEP_B", Msg: "must be y"},
	}
	want := "TWOSTEP_A: must be x\nTWOSTEP_B: must be y"
	if got := ps.Error(); got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}

package config

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Load returns the settings: the defaults, overridden by the TOML file at
// path (none if path is empty), overridden by the TWOSTEP_* environment
// variables that getenv returns (none if getenv is nil). An empty variable
// counts as unset. For a secret setting TWOSTEP_X, TWOSTEP_X_FILE may instead
// name a file whose content, less trailing newlines, is the value.
//
// If the file cannot be read, Load returns the wrapped os error. Otherwise
// every problem, in the file, the environment and from Validate, is
// returned at once as Problems, and the Config is then the zero value.
func Load(path string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg := Default()
	var ps Problems
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config file: %w", err)
		}
		ps = append(ps, applyFile(&cfg, path, data)...)
	}
	ps = append(ps, applyEnv(&cfg, getenv)...)
	normalize(&cfg)

	// A variable that failed to parse kept its previous value, so what
	// Validate says about it would only confuse.
	reported := make(map[string]bool)
	for _, p := range ps {
		reported[p.Var] = true
	}
	for _, p := range cfg.problems() {
		if !reported[p.Var] {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		return Config{}, ps
	}
	return cfg, nil
}

// applyFile sets cfg from the TOML document data, read from path. Each
// problem names the setting's environment variable, or the file for keys
// that match no setting.
func applyFile(cfg *Config, path string, data []byte) Problems {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return Problems{{Var: path, Msg: fmt.Sprintf("line %d, column %d: %v", row, col, err)}}
		}
		return Problems{{Var: path, Msg: err.Error()}}
	}

	byKey := make(map[string]setting)
	tables := make(map[string]bool)
	for _, s := range settings() {
		byKey[s.key] = s
		parts := strings.Split(s.key, ".")
		for i := 1; i < len(parts); i++ {
			tables[strings.Join(parts[:i], ".")] = true
		}
	}

	var ps Problems
	var walk func(m map[string]any, prefix string)
	walk = func(m map[string]any, prefix string) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			key := prefix + k
			v := m[k]
			if s, ok := byKey[key]; ok {
				if err := setFromTOML(s.field(cfg), v); err != nil {
					msg := err.Error()
					if s.secret {
						msg = "has an invalid value"
					}
					ps = append(ps, Problem{Var: s.env, Msg: fmt.Sprintf("%s (key %s in %s)", msg, key, path)})
				}
				continue
			}
			if !tables[key] {
				ps = append(ps, Problem{Var: path, Msg: "unknown key " + key})
				continue
			}
			sub, ok := v.(map[string]any)
			if !ok {
				ps = append(ps, Problem{Var: path, Msg: fmt.Sprintf("%s must be a table ([%s]), got %s", key, key, tomlType(v))})
				continue
			}
			walk(sub, key+".")
		}
	}
	walk(doc, "")
	return ps
}

// setFromTOML sets the field that p points to from the decoded TOML value v.
// Durations are strings ("15m"); lists are arrays of strings or one
// comma-separated string.
func setFromTOML(p any, v any) error {
	switch p.(type) {
	case *[]string, *[]netip.Prefix:
		switch v := v.(type) {
		case string:
			return parse(p, v)
		case []any:
			items := make([]string, 0, len(v))
			for _, item := range v {
				s, ok := item.(string)
				if !ok {
					return fmt.Errorf("must be an array of strings, got an array holding %s", tomlType(item))
				}
				items = append(items, s)
			}
			return setList(p, items)
		}
		return fmt.Errorf("must be an array of strings, got %s", tomlType(v))
	case *string:
		if s, ok := v.(string); ok {
			return parse(p, s)
		}
		return fmt.Errorf("must be a string, got %s", tomlType(v))
	case *time.Duration:
		if s, ok := v.(string); ok {
			return parse(p, s)
		}
		return fmt.Errorf("must be a duration string like \"15m\", got %s", tomlType(v))
	case *int, *int64:
		if n, ok := v.(int64); ok {
			return parse(p, strconv.FormatInt(n, 10))
		}
		return fmt.Errorf("must be an integer, got %s", tomlType(v))
	case *bool:
		if b, ok := v.(bool); ok {
			return parse(p, strconv.FormatBool(b))
		}
		return fmt.Errorf("must be true or false, got %s", tomlType(v))
	}
	panic(fmt.Sprintf("config: no TOML decoder for %T", p))
}

// setList sets the list that p points to from items, one TOML array
// element each, so that an element may hold a comma.
func setList(p any, items []string) error {
	var trimmed []string
	for _, item := range items {
		if item = strings.TrimSpace(item); item != "" {
			trimmed = append(trimmed, item)
		}
	}
	switch p := p.(type) {
	case *[]string:
		*p = trimmed
	case *[]netip.Prefix:
		prefixes, err := parsePrefixes(trimmed)
		if err != nil {
			return err
		}
		*p = prefixes
	}
	return nil
}

// tomlType names the TOML type of a decoded value, for error messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// applyEnv sets cfg from the environment.
func applyEnv(cfg *Config, getenv func(string) string) Problems {
	var ps Problems
	for _, s := range settings() {
		raw := getenv(s.env)
		if s.secret {
			fileVar := s.env + "_FILE"
			if path := getenv(fileVar); path != "" {
				if raw != "" {
					ps = append(ps, Problem{Var: s.env, Msg: fmt.Sprintf("set either %s or %s, not both", s.env, fileVar)})
					continue
				}
				data, err := os.ReadFile(path)
				if err != nil {
					ps = append(ps, Problem{Var: fileVar, Msg: fmt.Sprintf("cannot read the secret: %v", err)})
					continue
				}
				raw = strings.TrimRight(string(data), "\r\n")
				if raw == "" {
					ps = append(ps, Problem{Var: fileVar, Msg: fmt.Sprintf("%s is empty", path)})
					continue
				}
			}
		}
		if raw == "" {
			continue
		}
		if err := parse(s.field(cfg), raw); err != nil {
			msg := err.Error()
			if s.secret {
				msg = "has an invalid value"
			}
			ps = append(ps, Problem{Var: s.env, Msg: msg})
		}
	}
	return ps
}

// normalize removes the trailing slash from URLs to which paths are
// appended, so that callers can write base + "/path".
func normalize(cfg *Config) {
	for _, u := range []*string{
		&cfg.HTTP.PublicURL,
		&cfg.SMS.Twilio.BaseURL,
		&cfg.SMS.Plivo.BaseURL,
		&cfg.SMS.Vonage.BaseURL,
		&cfg.SMS.Vonage.APIURL,
	} {
		*u = strings.TrimRight(*u, "/")
	}
}

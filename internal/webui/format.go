package webui

import (
	"sort"
	"strings"
	"time"
)

// Flash is a one-time message a page keeps in its cookie for the next
// page shown (after a redirect): Kind is "ok", "warn" or "error".
type Flash struct {
	Kind string `json:"k"`
	Text string `json:"t"`
}

// FormatTime shows t in UTC with layout, or "—" for the zero time.
func FormatTime(t time.Time, layout string) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(layout)
}

// GroupsOfFour spaces a secret (a base32 TOTP key) in groups of four, for
// reading aloud or typing by hand.
func GroupsOfFour(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// JoinProblems joins field problems into one text with sep, in the order
// of the field names.
func JoinProblems(m map[string]string, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, m[k])
	}
	return strings.Join(parts, sep)
}

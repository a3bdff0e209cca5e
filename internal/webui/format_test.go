package webui

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	if got := FormatTime(at, "2006-01-02 15:04 UTC"); got != "2030-01-02 02:04 UTC" {
		t.Errorf("FormatTime = %q, want the time in UTC", got)
	}
	if got := FormatTime(time.Time{}, "2006"); got != "—" {
		t.Errorf("FormatTime of the zero time = %q", got)
	}
	if got := GroupsOfFour("ABCDEFGHIJ"); got != "ABCD EFGH IJ" {
		t.Errorf("GroupsOfFour = %q", got)
	}
	if got := JoinProblems(map[string]string{"b": "B is bad.", "a": "A is bad."}, " "); got != "A is bad. B is bad." {
		t.Errorf("JoinProblems = %q, want field order", got)
	}
	if got := JoinProblems(nil, "; "); got != "" {
		t.Errorf("JoinProblems(nil) = %q", got)
	}
}

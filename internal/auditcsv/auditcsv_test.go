package auditcsv

import (
	"encoding/csv"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

func TestWrite(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	pages := map[string]auth.AuditPage{
		"": {Events: []auth.AuditEvent{
			{ID: "1", Time: at, Type: "login_failed", UserID: "u1", IP: "192.0.2.1", UserAgent: "=HYPERLINK(\"x\")", Detail: map[string]any{"n": 1.0}},
		}, NextCursor: "c2"},
		"c2": {Events: []auth.AuditEvent{
			{ID: "2", Time: at, Type: "+cmd", ActorID: "@a", UserAgent: "-1"},
			{ID: "3", Time: at, Type: "t", UserAgent: "\tx"},
		}},
	}
	var cursors []string
	rec := httptest.NewRecorder()
	err := Write(rec, pages[""], func(cursor string) (auth.AuditPage, error) {
		cursors = append(cursors, cursor)
		return pages[cursor], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
		rec.Header().Get("Content-Disposition") != `attachment; filename="twostep-audit.csv"` {
		t.Errorf("answer %d %v", rec.Code, rec.Header())
	}
	if len(cursors) != 1 || cursors[0] != "c2" {
		t.Errorf("next called with %q, want [c2]", cursors)
	}
	if !strings.Contains(rec.Body.String(), "\r\n") {
		t.Error("rows do not end in CRLF")
	}
	rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"id", "time", "type", "userId", "actorId", "ip", "userAgent", "detail"},
		{"1", "2026-01-02T02:04:05.000000006Z", "login_failed", "u1", "", "192.0.2.1", "'=HYPERLINK(\"x\")", `{"n":1}`},
		{"2", "2026-01-02T02:04:05.000000006Z", "'+cmd", "", "'@a", "", "'-1", ""},
		{"3", "2026-01-02T02:04:05.000000006Z", "t", "", "", "", "'\tx", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %q", len(rows), len(want), rows)
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d: %q, want %q", i, rows[i], want[i])
		}
	}
}

func TestWriteNextFails(t *testing.T) {
	boom := errors.New("boom")
	rec := httptest.NewRecorder()
	err := Write(rec, auth.AuditPage{Events: []auth.AuditEvent{{ID: "1"}}, NextCursor: "c"}, func(string) (auth.AuditPage, error) {
		return auth.AuditPage{}, boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("err %v, want next's error", err)
	}
	if !strings.Contains(rec.Body.String(), "\r\n1,") {
		t.Errorf("the first page was not written before the failure: %q", rec.Body)
	}
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "plain": "plain", "=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "\rx": "'\rx", "a=b": "a=b",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

// Package auditcsv writes the audit log as a CSV download, for the admin
// API's export (internal/httpapi) and the admin panel's (internal/adminui).
package auditcsv

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

// Write answers with status 200 and the events of page and of every page
// after it, as CSV: one header row, then one row an event. next returns the
// page at a cursor.
//
// The status is sent before the first row, so an error cannot be reported
// to the client any more: when the client goes away Write returns nil (there
// is nothing left to do), and when next fails it returns next's error, and
// the caller should log it and cut the connection (panic with
// http.ErrAbortHandler) rather than end the file as if it were complete.
func Write(w http.ResponseWriter, page auth.AuditPage, next func(cursor string) (auth.AuditPage, error)) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="twostep-audit.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	_ = cw.Write([]string{"id", "time", "type", "userId", "actorId", "ip", "userAgent", "detail"})
	for {
		for _, e := range page.Events {
			detail := ""
			if len(e.Detail) > 0 {
				b, _ := json.Marshal(e.Detail) // decoded from JSON: it encodes again
				detail = string(b)
			}
			row := []string{e.ID, e.Time.UTC().Format(time.RFC3339Nano), e.Type, e.UserID, e.ActorID, e.IP, e.UserAgent, detail}
			for i := range row {
				row[i] = cell(row[i])
			}
			_ = cw.Write(row)
		}
		cw.Flush()
		if err := cw.Error(); err != nil || page.NextCursor == "" {
			return nil // done, or the client went away
		}
		var err error
		if page, err = next(page.NextCursor); err != nil {
			return err
		}
	}
}

// cell neutralises a cell that a spreadsheet would run as a formula
// (OWASP's CSV injection advice): one starting with =, +, -, @, a tab or a
// carriage return gets a leading apostrophe. encoding/csv quotes the rest.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/twostep-auth/twostep/internal/auth"
)

// defaultAuditLimit is how many events AuditEvents returns when asked for
// none or fewer.
const defaultAuditLimit = 100

// AppendAudit inserts e. An empty ID is replaced by a random UUID; an empty
// UserID or ActorID is stored as NULL and a nil or empty Detail as NULL.
func (s store) AppendAudit(ctx context.Context, events ...auth.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO audit_events (id, time, type, user_id, actor_id, ip, user_agent, detail) VALUES `)
	args := make([]any, 0, 8*len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = uuid.NewString()
		}
		var detail any
		if len(e.Detail) > 0 {
			b, err := json.Marshal(e.Detail)
			if err != nil {
				return fmt.Errorf("append audit event %s: encode detail: %w", e.Type, err)
			}
			detail = string(b)
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, e.ID, micros(e.Time), e.Type, nullString(e.UserID), nullString(e.ActorID), e.IP, e.UserAgent, detail)
	}
	if _, err := s.exec(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("append audit event %s: %w", events[0].Type, mapErr(err))
	}
	return nil
}

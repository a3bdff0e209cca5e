package sqlstore

import (
	"context"
	"database/sql"
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

// auditEvents returns up to limit events, newest first (ties by id,
// descending), of one user or, when userID is empty, of everyone.
func (s store) auditEvents(ctx context.Context, userID string, limit int) ([]auth.AuditEvent, error) {
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	const columns = `id, time, type, user_id, actor_id, ip, user_agent, detail`
	var rows *sql.Rows
	var err error
	if userID == "" {
		rows, err = s.query(ctx, `SELECT `+columns+` FROM audit_events
			ORDER BY time DESC, id DESC LIMIT ?`, limit)
	} else {
		rows, err = s.query(ctx, `SELECT `+columns+` FROM audit_events WHERE user_id = ?
			ORDER BY time DESC, id DESC LIMIT ?`, userID, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", mapErr(err))
	}
	defer rows.Close()
	var events []auth.AuditEvent
	for rows.Next() {
		var e auth.AuditEvent
		var at int64
		var user, actor, detail sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.Type, &user, &actor, &e.IP, &e.UserAgent, &detail); err != nil {
			return nil, fmt.Errorf("audit events: %w", err)
		}
		e.Time = fromMicros(at)
		e.UserID = user.String
		e.ActorID = actor.String
		if detail.Valid {
			if err := json.Unmarshal([]byte(detail.String), &e.Detail); err != nil {
				return nil, fmt.Errorf("audit event %s: decode detail: %w", e.ID, err)
			}
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return events, nil
}

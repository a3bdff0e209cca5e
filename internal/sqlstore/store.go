package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/twostep-auth/twostep/internal/auth"
)

// querier is what *sql.DB and *sql.Tx have in common: store's statements
// run over either.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// store is the one implementation of every statement, over a pool or a
// transaction. Its exported methods are single statements, safe on a pool;
// its unexported multi-statement methods must run inside a transaction.
// Queries are written with ? placeholders and rebound for PostgreSQL.
type store struct {
	q  querier
	pg bool
	// stmts caches prepared statements of the pool the store runs on
	// (SQLite only: its parser is most of a simple query's cost, while pgx
	// already caches prepared statements per connection). tx is set when
	// the store runs inside a transaction of that pool.
	stmts *stmtCache
	tx    *sql.Tx
	// detached makes statements ignore their context's cancellation: set
	// inside a SQLite commit group, where an interrupted statement would
	// roll back the other transactions of the group too.
	detached bool
}

// prepared returns the cached statement for query, bound to the
// transaction when there is one; nil when there is no cache or preparing
// failed (the caller then runs the query unprepared, which reports the
// error).
func (s store) prepared(ctx context.Context, query string) *sql.Stmt {
	if s.stmts == nil {
		return nil
	}
	if s.tx == nil {
		return s.stmts.get(ctx, query)
	}
	if st := s.stmts.lookup(query); st != nil {
		return s.tx.StmtContext(ctx, st)
	}
	return nil
}

func (s store) bind(query string) string {
	if s.pg {
		return rebind(query)
	}
	return query
}

func (s store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.detached {
		ctx = context.WithoutCancel(ctx)
	}
	if st := s.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.q.ExecContext(ctx, s.bind(query), args...)
}

func (s store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s.detached {
		ctx = context.WithoutCancel(ctx)
	}
	if st := s.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.q.QueryContext(ctx, s.bind(query), args...)
}

func (s store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s.detached {
		ctx = context.WithoutCancel(ctx)
	}
	if st := s.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.q.QueryRowContext(ctx, s.bind(query), args...)
}

// affected runs a statement and returns how many rows it changed.
func (s store) affected(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// changed runs a conditional update and reports whether it changed a row.
func (s store) changed(ctx context.Context, query string, args ...any) (bool, error) {
	n, err := s.affected(ctx, query, args...)
	return n > 0, err
}

// updateOne runs an update that must find its row: none is auth.ErrNotFound.
func (s store) updateOne(ctx context.Context, query string, args ...any) error {
	n, err := s.affected(ctx, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// rebind turns ? placeholders into PostgreSQL's $1, $2, …, leaving any ?
// inside a single-quoted string literal alone.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	inString := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inString = !inString // '' inside a literal toggles twice
		case c == '?' && !inString:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// mapErr turns driver errors into auth's sentinels: no row is
// auth.ErrNotFound, a unique violation auth.ErrConflict, and a foreign key
// violation auth.ErrNotFound (the row it refers to does not exist). The
// driver's text is kept in the message, not in the chain.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return auth.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %s", auth.ErrConflict, se.Error())
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %s", auth.ErrNotFound, se.Error())
		}
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s (%s)", auth.ErrConflict, pe.Message, pe.ConstraintName)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %s (%s)", auth.ErrNotFound, pe.Message, pe.ConstraintName)
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return fmt.Errorf("%w: %s", auth.ErrUnavailable, pe.Message)
		}
		if strings.HasPrefix(pe.Code, "08") { // connection exception class
			return fmt.Errorf("%w: %s", auth.ErrUnavailable, pe.Message)
		}
	}
	// The database went away (PostgreSQL restarting, network gone): the
	// request fails closed with 503 and the pool reconnects on its own.
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	}
	return err
}

// Timestamps are stored as BIGINT microseconds since the Unix epoch, UTC,
// on both engines; nil pointers are NULL. Finer precision is truncated.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// nullString stores "" (auth's "none") as NULL, which unique indexes do not
// count.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// joinList stores roles and amr values as comma-joined text.
func joinList(field string, vs []string) (string, error) {
	for _, v := range vs {
		if v == "" || strings.Contains(v, ",") {
			return "", fmt.Errorf("%s value %q: empty or contains a comma", field, v)
		}
	}
	return strings.Join(vs, ","), nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanRows reads every row of a query with scan and closes rows. None is
// an empty, non-nil slice.
func scanRows[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

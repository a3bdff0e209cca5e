package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
)

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT * FROM t WHERE a = ? AND b = ?`, `SELECT * FROM t WHERE a = $1 AND b = $2`},
		{`INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, `INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`},
		{`SELECT '?' || ? FROM t WHERE c = 'it''s ?' AND d = ?`, `SELECT '?' || $1 FROM t WHERE c = 'it''s ?' AND d = $2`},
	}
	for _, tt := range tests {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMigrationFiles(t *testing.T) {
	var versions [][]int
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		ms, err := migrations(engine)
		if err != nil {
			t.Fatalf("migrations(%s) = %v", engine, err)
		}
		var vs []int
		for _, m := range ms {
			vs = append(vs, m.version)
		}
		versions = append(versions, vs)
	}
	if !slices.Equal(versions[0], versions[1]) {
		t.Errorf("migration versions differ: sqlite %v, postgres %v", versions[0], versions[1])
	}
}

func openSQLiteTest(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(t.Context(), "sqlite://"+path, Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestSQLitePragmas checks that every pooled connection, not only the
// first, runs with the pragmas twostep relies on.
func TestSQLitePragmas(t *testing.T) {
	ctx := t.Context()
	db := openSQLiteTest(t, filepath.Join(t.TempDir(), "p.db"))

	check := func(name string, conn *sql.Conn, queryOnly int) {
		t.Helper()
		want := map[string]string{
			"journal_mode": "wal",
			"busy_timeout": "5000",
			"foreign_keys": "1",
			"synchronous":  "1", // NORMAL
			"query_only":   fmt.Sprint(queryOnly),
		}
		for pragma, w := range want {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s = %v", name, pragma, err)
			}
			if got != w {
				t.Errorf("%s: PRAGMA %s = %s, want %s", name, pragma, got, w)
			}
		}
	}

	w, err := db.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("writer", w, 0)
	w.Close()

	// Hold several reader connections at once so that each is a new one.
	var readers []*sql.Conn
	for i := range 4 {
		c, err := db.read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, c)
		check(fmt.Sprintf("reader %d", i+1), c, 1)
	}
	for _, c := range readers {
		c.Close()
	}
	if st := db.read.Stats(); st.OpenConnections != 4 {
		t.Errorf("reader pool has %d connections, want 4 distinct ones checked", st.OpenConnections)
	}
	if st := db.write.Stats(); st.MaxOpenConnections != 1 {
		t.Errorf("writer MaxOpenConnections = %d, want 1", st.MaxOpenConnections)
	}

	// The reader pool refuses writes.
	if _, err := db.read.ExecContext(ctx, `CREATE TABLE x (a INTEGER)`); err == nil {
		t.Errorf("write on the reader pool succeeded, want query_only to refuse it")
	}
}

// TestSQLiteTwoProcesses has two DBs (as two processes would) write to one
// file at once through read-then-write transactions. With deferred
// transactions the lock upgrade fails with SQLITE_BUSY at once; with BEGIN
// IMMEDIATE they queue.
func TestSQLiteTwoProcesses(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "two.db")
	a := openSQLiteTest(t, path)
	b := openSQLiteTest(t, path)
	if _, err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		for _, db := range []*DB{a, b} {
			wg.Go(func() {
				err := db.WithTx(ctx, func(tx auth.Tx) error {
					if _, err := tx.AttemptState(ctx, "k"); err != nil {
						return err
					}
					_, err := tx.HitWindow(ctx, "k", time.Unix(int64(i%3)*60, 0))
					return err
				})
				if err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("WithTx = %v", err)
	}
	var total int
	if err := a.SQL().QueryRowContext(ctx, `SELECT coalesce(sum(count), 0) FROM rate_windows`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != 2*n {
		t.Errorf("hits recorded = %d, want %d", total, 2*n)
	}
}

// TestSQLiteIndexes checks that lookups use the indexes meant for them.
func TestSQLiteIndexes(t *testing.T) {
	ctx := t.Context()
	db := openSQLiteTest(t, filepath.Join(t.TempDir(), "i.db"))
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		args  []any
		index string
	}{
		{`SELECT id FROM users u WHERE lower(u.email) = lower(?)`, []any{"a"}, "users_email"},
		{`SELECT id FROM users u WHERE lower(u.username) = lower(?)`, []any{"a"}, "users_username"},
		{`SELECT id FROM sessions WHERE user_id = ? AND id <> ? AND revoked_at IS NULL`, []any{"u", "s"}, "sessions_user_id"},
		{`SELECT id FROM factors WHERE user_id = ? ORDER BY created_at, id`, []any{"u"}, "factors_user_id"},
		{`SELECT count(*) FROM backup_codes WHERE user_id = ? AND used_at IS NULL`, []any{"u"}, "backup_codes_user_id"},
		{`SELECT id FROM audit_events WHERE user_id = ? ORDER BY time DESC, id DESC LIMIT 10`, []any{"u"}, "audit_events_user_id"},
		{`SELECT id FROM audit_events ORDER BY time DESC, id DESC LIMIT 10`, nil, "audit_events_time"},
	}
	for _, tt := range tests {
		rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+tt.query, tt.args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", tt.query, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "\n"), "INDEX "+tt.index) {
			t.Errorf("plan for %s:\n%s\nwant it to use index %s", tt.query, strings.Join(plan, "\n"), tt.index)
		}
	}
}

func TestMapErr(t *testing.T) {
	if err := mapErr(sql.ErrNoRows); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("mapErr(sql.ErrNoRows) = %v, want ErrNotFound", err)
	}
	other := errors.New("other")
	if err := mapErr(other); err != other {
		t.Errorf("mapErr(other) = %v, want it unchanged", err)
	}
	if err := mapErr(nil); err != nil {
		t.Errorf("mapErr(nil) = %v, want nil", err)
	}
}

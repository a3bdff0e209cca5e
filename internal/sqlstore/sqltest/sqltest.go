// Package sqltest gives tests a fresh, migrated sqlstore database on every
// engine: SQLite in a temporary directory always, and PostgreSQL when
// TWOSTEP_TEST_POSTGRES_URL names a server (each test gets its own
// database there, so tests may run in parallel). With
// TWOSTEP_TEST_REQUIRE_ALL=1 a missing PostgreSQL fails the test instead of
// skipping it.
package sqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/twostep-auth/twostep/internal/sqlstore"
)

// Environment variables the helpers read.
const (
	PostgresURLEnv = "TWOSTEP_TEST_POSTGRES_URL"
	RequireAllEnv  = "TWOSTEP_TEST_REQUIRE_ALL"
)

// poolSize is the pool of each test database: enough for concurrency tests,
// small enough that parallel tests stay under PostgreSQL's connection limit.
const poolSize = 8

// Engines lists the engines a test should run against: always
// sqlstore.EngineSQLite and sqlstore.EnginePostgres. Open and URL skip (or
// fail) the PostgreSQL run when no server is configured.
func Engines(t testing.TB) []string {
	t.Helper()
	return []string{sqlstore.EngineSQLite, sqlstore.EnginePostgres}
}

// Open returns a fresh database on engine with every migration applied. It
// is closed, and on PostgreSQL dropped, when the test ends.
func Open(t testing.TB, engine string) *sqlstore.DB {
	t.Helper()
	db := OpenEmpty(t, engine)
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate %s: %v", engine, err)
	}
	return db
}

// OpenEmpty is Open without migrations: the database has no tables.
func OpenEmpty(t testing.TB, engine string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(t.Context(), URL(t, engine), sqlstore.Options{MaxOpenConns: poolSize})
	if err != nil {
		t.Fatalf("open %s: %v", engine, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close %s: %v", engine, err)
		}
	})
	return db
}

// URL creates a fresh, empty database on engine and returns its URL for
// sqlstore.Open; several DBs may open it. A PostgreSQL database is dropped
// (WITH (FORCE), closing what still uses it) when the test ends. Without
// TWOSTEP_TEST_POSTGRES_URL the test is skipped, or failed when
// TWOSTEP_TEST_REQUIRE_ALL=1.
func URL(t testing.TB, engine string) string {
	t.Helper()
	switch engine {
	case sqlstore.EngineSQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), "twostep.db")
	case sqlstore.EnginePostgres:
		return postgresURL(t)
	default:
		t.Fatalf("sqltest: unknown engine %q", engine)
		return ""
	}
}

func postgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresURLEnv)
	if base == "" {
		if os.Getenv(RequireAllEnv) == "1" {
			t.Fatalf("%s is not set and %s=1", PostgresURLEnv, RequireAllEnv)
		}
		t.Skipf("%s is not set", PostgresURLEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresURLEnv, err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random database name: %v", err)
	}
	name := "twostep_test_" + hex.EncodeToString(b)

	// CREATE DATABASE cannot take parameters; name is ours and safe.
	admin(t, base, "CREATE DATABASE "+name)
	t.Cleanup(func() { admin(t, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })

	u.Path = "/" + name
	return u.String()
}

// admin runs one statement on the server's maintenance database (the one in
// TWOSTEP_TEST_POSTGRES_URL), outside any test database.
func admin(t testing.TB, base, stmt string) {
	t.Helper()
	// Background, not t.Context: this also runs in Cleanup, after
	// t.Context is cancelled.
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, base, sqlstore.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(base), err)
	}
	defer db.Close()
	if _, err := db.SQL().ExecContext(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// redact drops a password from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

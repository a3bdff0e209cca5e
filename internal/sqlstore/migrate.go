package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
)

// migrationFiles holds migrations/<engine>/NNNN_name.sql: numbered from 1
// without gaps, forward only, the same numbers for every engine.
//
//go:embed migrations
var migrationFiles embed.FS

// migrationLockKey is the pg_advisory_xact_lock key that serialises
// twostep migrations on PostgreSQL ("twostep" in ASCII).
const migrationLockKey = 0x74776f73746570

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns engine's migrations in order.
func migrations(engine string) ([]migration, error) {
	dir := path.Join("migrations", engine)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations for %s: %w", engine, err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s/%s: name is not NNNN_name.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s/%s: want version %d", dir, e.Name(), len(ms)+1)
		}
		b, err := migrationFiles.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s/%s: %w", dir, e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations for %s", engine)
	}
	return ms, nil
}

// OutdatedSchemaError says the database lacks migrations this binary needs.
type OutdatedSchemaError struct {
	Current int // highest applied version; 0 for an empty database
	Latest  int // highest version this binary knows
}

func (e *OutdatedSchemaError) Error() string {
	return fmt.Sprintf(`database schema is at version %d but this twostep needs version %d: `+
		`run "twostep migrate" (or start with "twostep serve -migrate")`, e.Current, e.Latest)
}

// Engine-specific twins: does schema_migrations exist yet?
const (
	migrationsTableExistsSQLite = `SELECT count(*) FROM sqlite_master
		WHERE type = 'table' AND name = 'schema_migrations'`
	migrationsTableExistsPostgres = `SELECT count(*) FROM pg_catalog.pg_tables
		WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`
)

// Engine-specific twins: record a migration, stamped by the database's clock
// (Migrate takes no time, and store code never reads the clock itself).
const (
	recordMigrationSQLite = `INSERT INTO schema_migrations (version, applied_at)
		VALUES (?, CAST(unixepoch('subsec') * 1000000 AS INTEGER))`
	recordMigrationPostgres = `INSERT INTO schema_migrations (version, applied_at)
		VALUES (?, CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS BIGINT))`
)

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`

// schemaVersion returns the highest applied migration, 0 when none.
func (s store) schemaVersion(ctx context.Context) (int, error) {
	exists := migrationsTableExistsSQLite
	if s.pg {
		exists = migrationsTableExistsPostgres
	}
	var n int
	if err := s.queryRow(ctx, exists).Scan(&n); err != nil {
		return 0, fmt.Errorf("find schema_migrations: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	if err := s.queryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// lockMigrations serialises migrators until the transaction ends. On SQLite
// the transaction's BEGIN IMMEDIATE already holds the database's write lock.
func (s store) lockMigrations(ctx context.Context) error {
	if !s.pg {
		return nil
	}
	if _, err := s.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(migrationLockKey)); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	return nil
}

// Migrate applies the migrations the database lacks, each in its own
// transaction recorded in schema_migrations, and returns the versions it
// applied (none when up to date). Several processes may migrate one
// database at once: they serialise, and each migration is applied once. A
// database newer than this binary is an error.
func (db *DB) Migrate(ctx context.Context) (applied []int, err error) {
	ms, err := migrations(db.engine)
	if err != nil {
		return nil, err
	}
	latest := ms[len(ms)-1].version
	err = db.inTx(ctx, func(s store) error {
		if err := s.lockMigrations(ctx); err != nil {
			return err
		}
		if _, err := s.exec(ctx, createMigrationsTable); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		current, err := s.schemaVersion(ctx)
		if err != nil {
			return err
		}
		if current > latest {
			return newerSchemaError(current, latest)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", db.engine, err)
	}

	record := recordMigrationSQLite
	if db.w.pg {
		record = recordMigrationPostgres
	}
	for _, m := range ms {
		done := false
		err := db.inTx(ctx, func(s store) error {
			if err := s.lockMigrations(ctx); err != nil {
				return err
			}
			var n int
			if err := s.queryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			if n > 0 {
				return nil // applied earlier, or by a concurrent migrator
			}
			// No arguments: both drivers then run every statement in the file.
			if _, err := s.q.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if _, err := s.exec(ctx, record, m.version); err != nil {
				return fmt.Errorf("record: %w", err)
			}
			done = true
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("migrate %s: apply %s: %w", db.engine, m.name, err)
		}
		if done {
			applied = append(applied, m.version)
			db.logger.InfoContext(ctx, "applied migration", "engine", db.engine, "version", m.version, "name", m.name)
		}
	}
	return applied, nil
}

// CheckSchema returns nil when the database has every migration this binary
// knows, an *OutdatedSchemaError when it lacks some, and another error when
// it is newer than this binary or cannot be read.
func (db *DB) CheckSchema(ctx context.Context) error {
	ms, err := migrations(db.engine)
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
	current, err := db.r.schemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	switch {
	case current < latest:
		return &OutdatedSchemaError{Current: current, Latest: latest}
	case current > latest:
		return fmt.Errorf("check schema: %w", newerSchemaError(current, latest))
	}
	return nil
}

func newerSchemaError(current, latest int) error {
	return fmt.Errorf("database schema is at version %d, newer than this twostep knows (%d): upgrade twostep", current, latest)
}

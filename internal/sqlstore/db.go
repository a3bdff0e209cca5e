// Package sqlstore is twostep's storage over database/sql: it implements
// auth.Store and token.KeyStore on SQLite (the default, pure Go) and
// PostgreSQL, owns the schema and its embedded migrations, and turns driver
// errors into auth errors so that no other package imports a driver.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver

	"github.com/twostep-auth/twostep/internal/auth"
)

// Engine names as (*DB).Engine reports them.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// defaultMaxOpenConns is the pool size when Options.MaxOpenConns is not set.
const defaultMaxOpenConns = 10

// sqliteBusyTimeoutMS is how long a SQLite connection waits for another
// process's lock before failing with SQLITE_BUSY.
const sqliteBusyTimeoutMS = 5000

// Options tunes Open.
type Options struct {
	// MaxOpenConns caps the PostgreSQL pool, or the SQLite reader pool (the
	// SQLite writer always has one connection). Zero means 10.
	MaxOpenConns int
	// Logger receives migration progress. Nil discards.
	Logger *slog.Logger
}

// DB is an open database. It implements auth.Store and token.KeyStore and is
// safe for concurrent use.
//
// On SQLite it holds two pools over one file: a single-connection writer
// that runs every write and every transaction (begun with BEGIN IMMEDIATE,
// so that several processes on one file queue for the lock instead of
// failing when a reader upgrades), and a read-only pool for plain reads
// outside a transaction. On PostgreSQL both are the same pool.
type DB struct {
	engine string
	write  *sql.DB
	read   *sql.DB         // == write on PostgreSQL
	w, r   store           // statements over write and read
	group  *groupCommitter // SQLite: runs the writer's transactions
	ckpt   *checkpointer   // SQLite: checkpoints the WAL in the background
	logger *slog.Logger
}

// Open connects to the database named by rawURL and checks that it answers.
// It does not migrate: call Migrate or CheckSchema.
//
// rawURL is sqlite://path (relative, or sqlite:///abs/path) or
// postgres://… / postgresql://… in libpq URL form. SQLite's in-memory
// database is refused because the reader and writer pools must share a file.
func Open(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	if opts.MaxOpenConns <= 0 {
		opts.MaxOpenConns = defaultMaxOpenConns
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		return openSQLite(ctx, strings.TrimPrefix(rawURL, "sqlite://"), opts)
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return openPostgres(ctx, rawURL, opts)
	default:
		scheme, _, _ := strings.Cut(rawURL, ":")
		return nil, fmt.Errorf("open database: unsupported scheme %q: want sqlite:// or postgres://", scheme)
	}
}

// sqliteRole is what a SQLite connection is for.
type sqliteRole int

const (
	roleWriter       sqliteRole = iota // the one connection that writes
	roleReader                         // the read-only pool
	roleCheckpointer                   // the background checkpoint's connection
)

// sqliteDSN is the modernc DSN for path. The pragmas go in the DSN so that
// the driver applies them to every connection it opens, not only the first.
func sqliteDSN(path string, role sqliteRole) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// No memory map: under a steady stream of writes every read
	// transaction sees a changed WAL and SQLite then unmaps the whole file,
	// which cost more than the reads it saved (measured on totp-verify:
	// 0.57 ms of server CPU per request with a 256 MB map, 0.46 without).
	q.Add("_pragma", "mmap_size(0)")
	q.Add("_pragma", "temp_store(MEMORY)")
	switch role {
	case roleReader:
		q.Add("_pragma", "query_only(1)")
		q.Add("_pragma", "cache_size(-8000)")
	case roleWriter:
		q.Set("_txlock", "immediate")
		// The writer keeps more pages (32 MB). Checkpoints are the
		// checkpointer's; the writer runs one itself only if the WAL
		// reaches 8000 pages (about 32 MB) because that one fell behind.
		q.Add("_pragma", "cache_size(-32000)")
		q.Add("_pragma", "wal_autocheckpoint(8000)")
	case roleCheckpointer:
		q.Add("_pragma", "wal_autocheckpoint(0)")
	}
	return path + "?" + q.Encode()
}

func openSQLite(ctx context.Context, path string, opts Options) (*DB, error) {
	switch {
	case path == "":
		return nil, errors.New("open sqlite: empty path in sqlite:// url")
	case path == ":memory:" || strings.HasPrefix(path, "file::memory:"):
		return nil, errors.New("open sqlite: in-memory databases are not supported: use a file")
	case strings.ContainsAny(path, "?#"):
		return nil, fmt.Errorf("open sqlite %s: the path may not contain ? or # (parameters are set by twostep)", path)
	}

	write, err := sql.Open("sqlite", sqliteDSN(path, roleWriter))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	// Ping the writer first: it creates the file and switches it to WAL
	// before any reader opens it.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", sqliteDSN(path, roleReader))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	read.SetMaxOpenConns(opts.MaxOpenConns)
	read.SetMaxIdleConns(opts.MaxOpenConns)
	if err := read.PingContext(ctx); err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ckpt, err := sql.Open("sqlite", sqliteDSN(path, roleCheckpointer))
	if err != nil {
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	ckpt.SetMaxIdleConns(1)
	db := newDB(EngineSQLite, write, read, opts.Logger)
	db.ckpt = startCheckpointer(ckpt, opts.Logger)
	return db, nil
}

func openPostgres(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	pool, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool.SetMaxOpenConns(opts.MaxOpenConns)
	pool.SetMaxIdleConns(opts.MaxOpenConns)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return newDB(EnginePostgres, pool, pool, opts.Logger), nil
}

func newDB(engine string, write, read *sql.DB, logger *slog.Logger) *DB {
	pg := engine == EnginePostgres
	db := &DB{
		engine: engine,
		write:  write,
		read:   read,
		w:      store{q: write, pg: pg},
		r:      store{q: read, pg: pg},
		logger: logger,
	}
	if !pg {
		db.w.stmts = newStmtCache(write)
		db.r.stmts = newStmtCache(read)
		db.group = newGroupCommitter(write, db.w.stmts)
	}
	return db
}

// Engine reports EngineSQLite or EnginePostgres.
func (db *DB) Engine() string { return db.engine }

// SQL returns the main pool (on SQLite, the writer). It is for tests that
// read raw rows and for tools; twostep's own code goes through DB's methods.
func (db *DB) SQL() *sql.DB { return db.write }

// Ping checks that the database answers (every pool, on SQLite).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.engine, err)
	}
	if db.read != db.write {
		if err := db.read.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s reader: %w", db.engine, err)
		}
	}
	return nil
}

// Close closes every pool. Calls in flight fail.
func (db *DB) Close() error {
	for _, c := range []*stmtCache{db.w.stmts, db.r.stmts} {
		if c != nil {
			c.close()
		}
	}
	var errs []error
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.close())
	}
	if db.read != db.write {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.write.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close %s: %w", db.engine, err)
	}
	return nil
}

// WithTx runs fn in one transaction on the writer. It commits when fn returns
// nil and rolls back otherwise, returning fn's error. fn must use tx, not
// db: on SQLite the writer has one connection, which fn's transaction holds,
// so a write through db inside fn waits until ctx ends.
func (db *DB) WithTx(ctx context.Context, fn func(tx auth.Tx) error) error {
	return db.inTx(ctx, func(s store) error { return fn(txStore{s}) })
}

// inTx runs fn over a transaction on the writer, committing when it returns
// nil. A panic in fn rolls back and goes on panicking. On SQLite the
// transaction commits with a group of others (see groupCommitter).
func (db *DB) inTx(ctx context.Context, fn func(s store) error) (err error) {
	if db.group != nil {
		return db.group.run(ctx, fn)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", mapErr(err))
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(store{q: tx, pg: db.w.pg, stmts: db.w.stmts, tx: tx}); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	if db.w.stmts != nil {
		db.w.stmts.prepareMissed(ctx)
	}
	return nil
}

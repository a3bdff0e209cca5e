package sqlstore_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/twostep-auth/twostep/internal/sqlstore"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := sqltest.OpenEmpty(t, engine)
			if got := db.Engine(); got != engine {
				t.Errorf("Engine() = %q, want %q", got, engine)
			}

			err := db.CheckSchema(ctx)
			var outdated *sqlstore.OutdatedSchemaError
			if !errors.As(err, &outdated) {
				t.Fatalf("CheckSchema(empty) = %v, want *OutdatedSchemaError", err)
			}
			if outdated.Current != 0 || outdated.Latest < 1 {
				t.Errorf("CheckSchema(empty) = %+v, want Current 0, Latest >= 1", outdated)
			}
			if msg := err.Error(); !strings.Contains(msg, `run "twostep migrate" (or start with "twostep serve -migrate")`) {
				t.Errorf("CheckSchema(empty).Error() = %q, want it to say what to run", msg)
			}

			applied, err := db.Migrate(ctx)
			if err != nil {
				t.Fatalf("Migrate = %v", err)
			}
			want := versions(outdated.Latest)
			if diff := cmp.Diff(want, applied); diff != "" {
				t.Errorf("Migrate applied (-want +got):\n%s", diff)
			}
			if err := db.CheckSchema(ctx); err != nil {
				t.Errorf("CheckSchema after Migrate = %v, want nil", err)
			}

			applied, err = db.Migrate(ctx)
			if err != nil || len(applied) != 0 {
				t.Errorf("Migrate(again) = %v, %v; want none, nil", applied, err)
			}
			var rows, stamped int
			err = db.SQL().QueryRowContext(ctx, `SELECT count(*), count(CASE WHEN applied_at > 0 THEN 1 END) FROM schema_migrations`).Scan(&rows, &stamped)
			if err != nil {
				t.Fatal(err)
			}
			if rows != outdated.Latest || stamped != rows {
				t.Errorf("schema_migrations: %d rows (%d with applied_at), want %d with applied_at", rows, stamped, outdated.Latest)
			}

			// A database migrated by a newer twostep.
			if _, err := db.SQL().ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 1)`); err != nil {
				t.Fatal(err)
			}
			err = db.CheckSchema(ctx)
			if err == nil || errors.As(err, &outdated) {
				t.Errorf("CheckSchema(newer database) = %v, want an error that is not *OutdatedSchemaError", err)
			}
			if _, err := db.Migrate(ctx); err == nil {
				t.Errorf("Migrate(newer database) = nil, want error")
			}
		})
	}
}

// TestMigrateConcurrent has two instances migrate one database at once:
// neither fails and each migration is applied once.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			url := sqltest.URL(t, engine)
			var dbs [2]*sqlstore.DB
			for i := range dbs {
				db, err := sqlstore.Open(ctx, url, sqlstore.Options{MaxOpenConns: 4})
				if err != nil {
					t.Fatalf("Open = %v", err)
				}
				t.Cleanup(func() { db.Close() })
				dbs[i] = db
			}
			var outdated *sqlstore.OutdatedSchemaError
			if err := dbs[0].CheckSchema(ctx); !errors.As(err, &outdated) {
				t.Fatalf("CheckSchema(empty) = %v, want *OutdatedSchemaError", err)
			}
			want := versions(outdated.Latest)

			var applied [2][]int
			var errs [2]error
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() { applied[i], errs[i] = db.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Migrate #%d = %v", i+1, err)
				}
			}
			all := append(slices.Clone(applied[0]), applied[1]...)
			slices.Sort(all)
			if diff := cmp.Diff(want, all); diff != "" {
				t.Errorf("Migrate applied %v and %v, want every version exactly once (-want +got):\n%s", applied[0], applied[1], diff)
			}
			var rows int
			if err := dbs[0].SQL().QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != len(want) {
				t.Errorf("schema_migrations has %d rows, want %d", rows, len(want))
			}
			for i, db := range dbs {
				if err := db.CheckSchema(ctx); err != nil {
					t.Errorf("CheckSchema #%d = %v", i+1, err)
				}
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"mysql://localhost/db",
		"twostep.db",
		"sqlite://",
		"sqlite://:memory:",
		"sqlite://file.db?_pragma=foo",
	} {
		db, err := sqlstore.Open(t.Context(), url, sqlstore.Options{})
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) = nil error, want one", url)
		}
	}
}

// versions returns 1, 2, …, latest.
func versions(latest int) []int {
	v := make([]int, latest)
	for i := range v {
		v[i] = i + 1
	}
	return v
}

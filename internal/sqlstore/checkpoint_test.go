package sqlstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckpointerCopiesWAL shows that the WAL reaches the database file
// without the writer checkpointing: the writes stay far below the writer's
// own threshold (8000 pages), so only the background checkpointer can have
// copied them.
func TestCheckpointerCopiesWAL(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "c.db")
	db := openSQLiteTest(t, path)
	if err := db.inTx(ctx, func(s store) error {
		_, err := s.exec(ctx, "CREATE TABLE scratch (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Let the checkpointer copy the table's creation, then measure.
	deadline := time.Now().Add(5 * time.Second)
	before := size()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if s := size(); s != before {
			before = s
			break
		}
	}
	row := strings.Repeat("x", 2000)
	for i := range 200 { // about 100 pages: far below the writer's threshold
		if err := db.inTx(ctx, func(s store) error {
			_, err := s.exec(ctx, "INSERT INTO scratch (id, v) VALUES (?, ?)", i, row)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for size() < before+100*4096 {
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes, was %d before 400 kB of writes: the WAL was not checkpointed", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCheckpointerStopsOnClose checks that Close ends the background loop.
func TestCheckpointerStopsOnClose(t *testing.T) {
	db, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "s.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := db.ckpt
	if c == nil {
		t.Fatal("SQLite database has no checkpointer")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("checkpointer still running after Close")
	}
}

package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/twostep-auth/twostep/internal/auth"
)

// Group commit tests. Each one opens a SQLite file of its own with a scratch
// table and forces several transactions into one group: it holds the
// writer's slot itself so that nobody can lead, queues the transactions one
// by one (so the queue's order is known), then lets go of the slot; one of
// the callers takes the slot and runs everything queued as one group.

// groupWait bounds every poll in these tests.
const groupWait = 10 * time.Second

// openGroupTest opens a SQLite database with a scratch table
// g (k TEXT PRIMARY KEY, v INTEGER).
func openGroupTest(t *testing.T) *DB {
	t.Helper()
	db := openSQLiteTest(t, filepath.Join(t.TempDir(), "group.db"))
	if db.group == nil {
		t.Fatal("SQLite DB has no group committer")
	}
	err := db.inTx(t.Context(), func(s store) error {
		_, err := s.exec(t.Context(), `CREATE TABLE g (k TEXT PRIMARY KEY, v INTEGER NOT NULL DEFAULT 0)`)
		return err
	})
	if err != nil {
		t.Fatalf("create scratch table: %v", err)
	}
	return db
}

// txResult is how one inTx call ended.
type txResult struct {
	err      error
	panicked bool
	pv       any
}

// startTx calls db.inTx(ctx, fn) on a goroutine of its own, recovering a
// panic, and reports how the call ended on the returned channel.
func startTx(db *DB, ctx context.Context, fn func(s store) error) <-chan txResult {
	ch := make(chan txResult, 1)
	go func() {
		var res txResult
		defer func() {
			if p := recover(); p != nil {
				res.panicked, res.pv = true, p
			}
			ch <- res
		}()
		res.err = db.inTx(ctx, fn)
	}()
	return ch
}

// queueLen is how many requests wait in db's group queue.
func queueLen(db *DB) int {
	db.group.mu.Lock()
	defer db.group.mu.Unlock()
	return len(db.group.queue)
}

// waitQueue waits until exactly n requests are queued.
func waitQueue(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(groupWait)
	for {
		got := queueLen(db)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d requests after %v, want %d", got, groupWait, n)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// holdWriter takes the writer's slot so that no caller can run a group, and
// returns the function that lets go of it (once; a test that fails first
// lets go of it in its cleanup).
func holdWriter(t *testing.T, db *DB) (release func()) {
	t.Helper()
	select {
	case db.group.slot <- struct{}{}:
	case <-time.After(groupWait):
		t.Fatal("writer slot still held")
	}
	var once sync.Once
	release = func() { once.Do(func() { <-db.group.slot }) }
	t.Cleanup(release)
	return release
}

// groupsRun reports how many groups db has run, once the group running now
// (if any) has finished: the caller that leads a group counts it after its
// callers are woken, and lets go of the slot after counting.
func groupsRun(t *testing.T, db *DB) int64 {
	t.Helper()
	select {
	case db.group.slot <- struct{}{}:
	case <-time.After(groupWait):
		t.Fatal("writer slot still held")
	}
	n := db.group.groups.Load()
	<-db.group.slot
	return n
}

// onCommit has SQLite call hook on the writer's connection each time it
// commits a transaction, until the test ends. It counts SQLite's commits,
// which the group's own counter cannot show.
func onCommit(t *testing.T, db *DB, hook func()) {
	t.Helper()
	register := func(ctx context.Context, hook sqlite.CommitHookFn) error {
		conn, err := db.write.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Raw(func(dc any) error {
			h, ok := dc.(sqlite.HookRegisterer)
			if !ok {
				return fmt.Errorf("%T is not a sqlite.HookRegisterer", dc)
			}
			h.RegisterCommitHook(hook)
			return nil
		})
	}
	if err := register(t.Context(), func() int32 { hook(); return 0 }); err != nil {
		t.Fatalf("register commit hook: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), groupWait)
		defer cancel()
		if err := register(ctx, nil); err != nil {
			t.Errorf("unregister commit hook: %v", err)
		}
	})
}

// countCommits counts the writer's commits from now on.
func countCommits(t *testing.T, db *DB) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	onCommit(t, db, func() { n.Add(1) })
	return &n
}

// txCall is one transaction of a group.
type txCall struct {
	ctx context.Context // nil: the test's
	fn  func(s store) error
}

// runGroup queues calls in order while holding the writer, lets them run,
// and returns how each ended and how many groups ran them.
func runGroup(t *testing.T, db *DB, calls []txCall) ([]txResult, int64) {
	t.Helper()
	before := groupsRun(t, db)
	release := holdWriter(t, db)
	chans := make([]<-chan txResult, len(calls))
	for i, c := range calls {
		ctx := c.ctx
		if ctx == nil {
			ctx = t.Context()
		}
		chans[i] = startTx(db, ctx, c.fn)
		waitQueue(t, db, i+1)
	}
	release()
	return collect(t, chans), groupsRun(t, db) - before
}

// collect waits for every call to end.
func collect(t *testing.T, chans []<-chan txResult) []txResult {
	t.Helper()
	results := make([]txResult, len(chans))
	timeout := time.After(groupWait)
	for i, ch := range chans {
		select {
		case results[i] = <-ch:
		case <-timeout:
			t.Fatalf("transaction %d did not end within %v", i, groupWait)
		}
	}
	return results
}

// runOneGroup is runGroup for calls that must all run in one group.
func runOneGroup(t *testing.T, db *DB, calls []txCall) []txResult {
	t.Helper()
	results, groups := runGroup(t, db, calls)
	wantGroups(t, fmt.Sprintf("%d transactions", len(calls)), groups, 1)
	return results
}

// wantGroups checks that what ran in want groups.
func wantGroups(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s ran in %d groups, want %d", what, got, want)
	}
}

// wantSuccess checks that the transactions at idx (every one if idx is
// empty) succeeded.
func wantSuccess(t *testing.T, results []txResult, idx ...int) {
	t.Helper()
	if len(idx) == 0 {
		for i := range results {
			idx = append(idx, i)
		}
	}
	for _, i := range idx {
		if res := results[i]; res.err != nil || res.panicked {
			t.Errorf("transaction %d = %+v, want success", i, res)
		}
	}
}

// insert returns a transaction that inserts key.
func insert(key string) func(s store) error {
	return func(s store) error {
		_, err := s.exec(context.Background(), `INSERT INTO g (k) VALUES (?)`, key)
		return mapErr(err)
	}
}

// committed reports whether key is in g, read through the reader pool (so
// only what has been committed).
func committed(t *testing.T, db *DB, key string) bool {
	t.Helper()
	var n int
	if err := db.r.queryRow(t.Context(), `SELECT count(*) FROM g WHERE k = ?`, key).Scan(&n); err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return n == 1
}

// rowCount is how many rows g holds, read through the reader pool.
func rowCount(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.r.queryRow(t.Context(), `SELECT count(*) FROM g`).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// checkWriterFree checks that the writer still runs transactions: a test's
// failure path must not leave the slot held or the connection inside a
// transaction.
func checkWriterFree(t *testing.T, db *DB) {
	t.Helper()
	key := fmt.Sprintf("after-%d", time.Now().UnixNano())
	done := startTx(db, t.Context(), insert(key))
	select {
	case res := <-done:
		if res.err != nil || res.panicked {
			t.Fatalf("transaction after the group = %+v, want success", res)
		}
	case <-time.After(groupWait):
		t.Fatal("transaction after the group did not end: writer stuck")
	}
	if !committed(t, db, key) {
		t.Errorf("row %s of the transaction after the group is missing", key)
	}
}

// TestGroupCommitAll has 20 transactions run in one group: each inserts a
// row; every call succeeds and every row is there.
func TestGroupCommitAll(t *testing.T) {
	db := openGroupTest(t)
	const n = 20
	calls := make([]txCall, n)
	for i := range calls {
		calls[i] = txCall{fn: insert(fmt.Sprintf("k%d", i))}
	}
	commits := countCommits(t, db)
	results := runOneGroup(t, db, calls)
	if got := commits.Load(); got != 1 {
		t.Errorf("%d transactions took %d SQLite commits, want 1", n, got)
	}
	wantSuccess(t, results)
	for i := range results {
		if !committed(t, db, fmt.Sprintf("k%d", i)) {
			t.Errorf("row k%d missing", i)
		}
	}
	if got := rowCount(t, db); got != n {
		t.Errorf("g holds %d rows, want %d", got, n)
	}
	if got := queueLen(db); got != 0 {
		t.Errorf("queue holds %d requests after the group, want 0", got)
	}
	checkWriterFree(t, db)
}

// TestGroupCommitFailures has some transactions of a group fail after
// writing: their writes are rolled back, their callers get their own error,
// and the others commit.
func TestGroupCommitFailures(t *testing.T) {
	db := openGroupTest(t)
	const n = 20
	failing := func(i int) bool { return i%3 == 1 }
	sentinels := make([]error, n)
	calls := make([]txCall, n)
	for i := range calls {
		sentinels[i] = fmt.Errorf("transaction %d failed", i)
		key := fmt.Sprintf("k%d", i)
		calls[i] = txCall{fn: func(s store) error {
			// Two writes, so that a failure must undo more than its
			// last statement.
			if err := insert(key)(s); err != nil {
				return err
			}
			if _, err := s.exec(context.Background(), `UPDATE g SET v = v + 1 WHERE k = ?`, key); err != nil {
				return err
			}
			if failing(i) {
				return fmt.Errorf("wrapped: %w", sentinels[i])
			}
			return nil
		}}
	}
	commits := countCommits(t, db)
	results := runOneGroup(t, db, calls)
	if got := commits.Load(); got != 1 {
		t.Errorf("%d transactions took %d SQLite commits, want 1", n, got)
	}
	want := 0
	for i, res := range results {
		key := fmt.Sprintf("k%d", i)
		if res.panicked {
			t.Errorf("transaction %d panicked: %v", i, res.pv)
		}
		if !failing(i) {
			want++
			if res.err != nil {
				t.Errorf("transaction %d = %v, want nil", i, res.err)
			}
			if !committed(t, db, key) {
				t.Errorf("row %s of a successful transaction missing", key)
			}
			continue
		}
		if !errors.Is(res.err, sentinels[i]) {
			t.Errorf("failing transaction %d = %v, want its own error", i, res.err)
		}
		for j, other := range sentinels {
			if j != i && errors.Is(res.err, other) {
				t.Errorf("failing transaction %d = %v, which carries transaction %d's error", i, res.err, j)
			}
		}
		if committed(t, db, key) {
			t.Errorf("row %s of a failed transaction committed", key)
		}
	}
	if got := rowCount(t, db); got != want {
		t.Errorf("g holds %d rows, want %d", got, want)
	}
	var sum int
	if err := db.r.queryRow(t.Context(), `SELECT coalesce(sum(v), 0) FROM g`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != want {
		t.Errorf("sum(v) = %d, want %d (one update per committed row)", sum, want)
	}
	checkWriterFree(t, db)
}

// TestGroupCommitConflict has a transaction in a group insert a duplicate
// key after another write: it gets auth.ErrConflict and both its writes are
// undone; the others, before and after it, commit.
func TestGroupCommitConflict(t *testing.T) {
	db := openGroupTest(t)
	if err := db.inTx(t.Context(), insert("dup")); err != nil {
		t.Fatal(err)
	}
	calls := []txCall{
		{fn: insert("a")},
		{fn: func(s store) error {
			if err := insert("b")(s); err != nil {
				return err
			}
			return insert("dup")(s)
		}},
		{fn: insert("c")},
	}
	results := runOneGroup(t, db, calls)
	if res := results[1]; !errors.Is(res.err, auth.ErrConflict) || res.panicked {
		t.Errorf("duplicate insert = %+v, want auth.ErrConflict", res)
	}
	if committed(t, db, "b") {
		t.Error("row b of the conflicting transaction committed")
	}
	wantSuccess(t, results, 0, 2)
	for _, k := range []string{"a", "c", "dup"} {
		if !committed(t, db, k) {
			t.Errorf("row %s missing", k)
		}
	}
	if got := rowCount(t, db); got != 3 {
		t.Errorf("g holds %d rows, want 3", got)
	}
	checkWriterFree(t, db)
}

// groupPanic is what the panicking transactions panic with.
type groupPanic struct{ i int }

// TestGroupCommitPanic has a transaction of a group panic after writing, at
// the start, in the middle and at the end of the group: the panic goes on
// in its caller's goroutine with its value, its write is undone, the others
// commit. Which caller leads the group is up to the scheduler, so each case
// runs a few times.
func TestGroupCommitPanic(t *testing.T) {
	const n = 5
	for _, at := range []int{0, 2, n - 1} {
		t.Run(fmt.Sprintf("at%d", at), func(t *testing.T) {
			db := openGroupTest(t)
			for round := range 4 {
				key := func(i int) string { return fmt.Sprintf("r%d-k%d", round, i) }
				calls := make([]txCall, n)
				for i := range calls {
					calls[i] = txCall{fn: func(s store) error {
						if err := insert(key(i))(s); err != nil {
							return err
						}
						if i == at {
							panic(&groupPanic{i})
						}
						return nil
					}}
				}
				results, groups := runGroup(t, db, calls)
				wantGroups(t, fmt.Sprintf("round %d", round), groups, 1)
				for i, res := range results {
					if i == at {
						if gp, ok := res.pv.(*groupPanic); !res.panicked || !ok || gp.i != at {
							t.Errorf("round %d: panicking transaction = %+v, want a panic with &groupPanic{%d}", round, res, at)
						}
						if committed(t, db, key(i)) {
							t.Errorf("round %d: row %s of the panicking transaction committed", round, key(i))
						}
						continue
					}
					if res.err != nil || res.panicked {
						t.Errorf("round %d: transaction %d = %+v, want success", round, i, res)
					}
					if !committed(t, db, key(i)) {
						t.Errorf("round %d: row %s missing", round, key(i))
					}
				}
			}
			checkWriterFree(t, db)
		})
	}
}

// TestGroupCommitCancelQueued cancels a request while it waits in the
// queue: its call returns at once with context.Canceled, it leaves the
// queue, its fn never runs, and the rest of the group commits.
func TestGroupCommitCancelQueued(t *testing.T) {
	db := openGroupTest(t)
	before := groupsRun(t, db)
	release := holdWriter(t, db)

	var ran atomic.Bool
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var chans []<-chan txResult
	chans = append(chans, startTx(db, t.Context(), insert("a")))
	waitQueue(t, db, 1)
	cancelled := startTx(db, ctx, func(s store) error {
		ran.Store(true)
		return insert("cancelled")(s)
	})
	waitQueue(t, db, 2)
	chans = append(chans, startTx(db, t.Context(), insert("c")))
	waitQueue(t, db, 3)

	cancel()
	select {
	case res := <-cancelled:
		if !errors.Is(res.err, context.Canceled) || res.panicked {
			t.Errorf("cancelled request = %+v, want an error wrapping context.Canceled", res)
		}
	case <-time.After(groupWait):
		t.Fatal("cancelled request did not return while the writer was busy")
	}
	if got := queueLen(db); got != 2 {
		t.Errorf("queue holds %d requests after one was cancelled, want 2", got)
	}
	release()

	wantSuccess(t, collect(t, chans))
	wantGroups(t, "the requests left", groupsRun(t, db)-before, 1)
	if ran.Load() {
		t.Error("the cancelled request's fn ran")
	}
	for _, k := range []string{"a", "c"} {
		if !committed(t, db, k) {
			t.Errorf("row %s missing", k)
		}
	}
	if committed(t, db, "cancelled") {
		t.Error("row of the cancelled request committed")
	}
	checkWriterFree(t, db)
}

// TestGroupCommitCancelTaken cancels a request after its group took it but
// before its turn came (an earlier transaction of the group cancels it): it
// does not run, its caller gets context.Canceled, and the group goes on.
func TestGroupCommitCancelTaken(t *testing.T) {
	db := openGroupTest(t)
	var ran atomic.Bool
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := []txCall{
		{fn: func(s store) error {
			cancel()
			return insert("a")(s)
		}},
		{ctx: ctx, fn: func(s store) error {
			ran.Store(true)
			return insert("b")(s)
		}},
		{fn: insert("c")},
	}
	results := runOneGroup(t, db, calls)
	if res := results[1]; !errors.Is(res.err, context.Canceled) || res.panicked {
		t.Errorf("cancelled request = %+v, want an error wrapping context.Canceled", res)
	}
	if ran.Load() {
		t.Error("the cancelled request's fn ran")
	}
	wantSuccess(t, results, 0, 2)
	if !committed(t, db, "a") || !committed(t, db, "c") || committed(t, db, "b") {
		t.Errorf("rows a, b, c committed = %v, %v, %v; want true, false, true",
			committed(t, db, "a"), committed(t, db, "b"), committed(t, db, "c"))
	}
	checkWriterFree(t, db)
}

// TestGroupCommitCancelDuringFn cancels a transaction's context while its
// fn runs in a group: its statements still run (an interrupted statement
// would take the group's other transactions with it), and it commits.
func TestGroupCommitCancelDuringFn(t *testing.T) {
	db := openGroupTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := []txCall{
		{fn: insert("a")},
		{ctx: ctx, fn: func(s store) error {
			if _, err := s.exec(ctx, `INSERT INTO g (k) VALUES ('b1')`); err != nil {
				return err
			}
			cancel()
			if _, err := s.exec(ctx, `INSERT INTO g (k) VALUES ('b2')`); err != nil {
				return err
			}
			var n int
			if err := s.queryRow(ctx, `SELECT count(*) FROM g WHERE k IN ('b1', 'b2')`).Scan(&n); err != nil {
				return err
			}
			if n != 2 {
				return fmt.Errorf("read %d of its own rows, want 2", n)
			}
			return nil
		}},
		{fn: insert("c")},
	}
	results := runOneGroup(t, db, calls)
	wantSuccess(t, results)
	for _, k := range []string{"a", "b1", "b2", "c"} {
		if !committed(t, db, k) {
			t.Errorf("row %s missing", k)
		}
	}
	checkWriterFree(t, db)
}

// TestGroupCommitAlreadyCancelled has a call whose context has ended
// before it starts: it fails without queueing or running.
func TestGroupCommitAlreadyCancelled(t *testing.T) {
	db := openGroupTest(t)
	before := groupsRun(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ran := false
	err := db.inTx(ctx, func(s store) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("inTx(cancelled ctx) = %v, want context.Canceled", err)
	}
	if ran {
		t.Error("fn ran with a cancelled context")
	}
	wantGroups(t, "a cancelled call", groupsRun(t, db)-before, 0)
	if got := queueLen(db); got != 0 {
		t.Errorf("queue holds %d requests, want 0", got)
	}
}

// TestGroupCommitTransactionLost has the middle transaction of a group
// [A, B, C] lose the whole SQLite transaction: A, which ran in it, fails
// too and its row is gone; B gets its error; C runs in a group of its own
// and commits.
func TestGroupCommitTransactionLost(t *testing.T) {
	tests := []struct {
		name    string
		lose    func(s store) error
		wantErr func(error) bool
	}{
		{
			name: "rollback",
			lose: func(s store) error {
				if _, err := s.exec(context.Background(), `ROLLBACK`); err != nil {
					return fmt.Errorf("ROLLBACK: %w", err)
				}
				return errLost
			},
			wantErr: func(err error) bool { return errors.Is(err, errLost) },
		},
		{
			// A constraint with the ROLLBACK resolution ends the
			// whole transaction, as an I/O error or a full disk does.
			name: "or rollback",
			lose: func(s store) error {
				_, err := s.exec(context.Background(), `INSERT OR ROLLBACK INTO g (k) VALUES ('dup')`)
				if err == nil {
					return errors.New("duplicate insert succeeded")
				}
				return mapErr(err)
			},
			wantErr: func(err error) bool { return errors.Is(err, auth.ErrConflict) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openGroupTest(t)
			if err := db.inTx(t.Context(), insert("dup")); err != nil {
				t.Fatal(err)
			}
			calls := []txCall{
				{fn: insert("a")},
				{fn: func(s store) error {
					if err := insert("b")(s); err != nil {
						return err
					}
					return tt.lose(s)
				}},
				{fn: insert("c")},
			}
			commits := countCommits(t, db)
			results, groups := runGroup(t, db, calls)
			wantGroups(t, "A, B and C (C in a fresh group)", groups, 2)
			if got := commits.Load(); got != 1 {
				t.Errorf("SQLite committed %d times, want once (C's group)", got)
			}
			if res := results[0]; res.err == nil || res.panicked {
				t.Errorf("A, whose transaction was lost = %+v, want an error", res)
			} else if !strings.Contains(res.err.Error(), "transaction lost") {
				t.Errorf("A = %v, want it to say the transaction was lost", res.err)
			}
			if res := results[1]; !tt.wantErr(res.err) || res.panicked {
				t.Errorf("B = %+v, want its own error", res)
			}
			if res := results[2]; res.err != nil || res.panicked {
				t.Errorf("C = %+v, want success", res)
			}
			for k, want := range map[string]bool{"a": false, "b": false, "c": true, "dup": true} {
				if got := committed(t, db, k); got != want {
					t.Errorf("row %s committed = %v, want %v", k, got, want)
				}
			}
			checkWriterFree(t, db)
		})
	}
}

var errLost = errors.New("lost the transaction")

// TestGroupCommitSerial checks that each transaction of a group sees the
// ones before it, in queue order, as if they had run one by one, and does
// not see the writes of one that failed.
func TestGroupCommitSerial(t *testing.T) {
	db := openGroupTest(t)
	if err := db.inTx(t.Context(), insert("x")); err != nil {
		t.Fatal(err)
	}
	const n = 10

	t.Run("conditional update", func(t *testing.T) {
		var changed atomic.Int32
		calls := make([]txCall, n)
		for i := range calls {
			calls[i] = txCall{fn: func(s store) error {
				ok, err := s.changed(context.Background(), `UPDATE g SET v = ? WHERE k = 'x' AND v < ?`, 7, 7)
				if ok {
					changed.Add(1)
				}
				return err
			}}
		}
		results := runOneGroup(t, db, calls)
		wantSuccess(t, results)
		if got := changed.Load(); got != 1 {
			t.Errorf("%d of %d identical conditional updates changed the row, want 1", got, n)
		}
	})

	t.Run("read modify write in order", func(t *testing.T) {
		if err := db.inTx(t.Context(), func(s store) error {
			_, err := s.exec(context.Background(), `UPDATE g SET v = 0 WHERE k = 'x'`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		seen := make([]int, n)
		calls := make([]txCall, n)
		for i := range calls {
			calls[i] = txCall{fn: func(s store) error {
				var v int
				if err := s.queryRow(context.Background(), `SELECT v FROM g WHERE k = 'x'`).Scan(&v); err != nil {
					return err
				}
				seen[i] = v
				_, err := s.exec(context.Background(), `UPDATE g SET v = ? WHERE k = 'x'`, v+1)
				return err
			}}
		}
		results := runOneGroup(t, db, calls)
		wantSuccess(t, results)
		for i := range results {
			if seen[i] != i {
				t.Errorf("transaction %d read v = %d, want %d (the %d before it)", i, seen[i], i, i)
			}
		}
		var v int
		if err := db.r.queryRow(t.Context(), `SELECT v FROM g WHERE k = 'x'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != n {
			t.Errorf("committed v = %d, want %d", v, n)
		}
	})

	t.Run("failed writes invisible", func(t *testing.T) {
		var seen []string
		calls := []txCall{
			{fn: insert("s1")},
			{fn: func(s store) error {
				if err := insert("s2")(s); err != nil {
					return err
				}
				return errLost
			}},
			{fn: func(s store) error {
				rows, err := s.query(context.Background(), `SELECT k FROM g WHERE k LIKE 's%' ORDER BY k`)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var k string
					if err := rows.Scan(&k); err != nil {
						return err
					}
					seen = append(seen, k)
				}
				return rows.Err()
			}},
		}
		results, _ := runGroup(t, db, calls)
		if !errors.Is(results[1].err, errLost) || results[0].err != nil || results[2].err != nil {
			t.Errorf("results = %+v, want nil, errLost, nil", results)
		}
		if got := strings.Join(seen, ","); got != "s1" {
			t.Errorf("last transaction saw rows %q, want %q", got, "s1")
		}
	})
}

// TestGroupCommitDurableOnReturn checks that a caller hears success only
// once its write is committed: no caller returns before SQLite's commit,
// and right after inTx returns nil a read through the reader pool (another
// connection) finds the row.
func TestGroupCommitDurableOnReturn(t *testing.T) {
	db := openGroupTest(t)
	const n = 20
	var returned, early, commits atomic.Int32
	onCommit(t, db, func() {
		commits.Add(1)
		// Nobody may have heard of this commit yet. Proving that none
		// can needs a wait: give a caller woken too soon time to return.
		deadline := time.Now().Add(20 * time.Millisecond)
		for returned.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Microsecond)
		}
		early.Store(returned.Load())
	})
	before := groupsRun(t, db)
	release := holdWriter(t, db)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		missing []string
	)
	for i := range n {
		key := fmt.Sprintf("k%d", i)
		wg.Go(func() {
			err := db.inTx(context.Background(), insert(key))
			returned.Add(1)
			if err != nil {
				t.Errorf("inTx(%s) = %v", key, err)
				return
			}
			var c int
			if err := db.read.QueryRowContext(context.Background(), `SELECT count(*) FROM g WHERE k = ?`, key).Scan(&c); err != nil {
				t.Errorf("read %s: %v", key, err)
				return
			}
			if c != 1 {
				mu.Lock()
				missing = append(missing, key)
				mu.Unlock()
			}
		})
		waitQueue(t, db, i+1)
	}
	release()
	wg.Wait()
	if got := early.Load(); got != 0 {
		t.Errorf("%d callers returned before SQLite committed their group", got)
	}
	if len(missing) > 0 {
		t.Errorf("rows not visible to readers when inTx returned: %v", missing)
	}
	if got := commits.Load(); got != 1 {
		t.Errorf("%d transactions took %d SQLite commits, want 1", n, got)
	}
	wantGroups(t, fmt.Sprintf("%d transactions", n), groupsRun(t, db)-before, 1)
}

// TestGroupCommitCommitFails has the COMMIT of a group fail (a deferred
// foreign key, checked only at commit): every transaction that ran in it
// fails, nothing is committed, and the writer goes on.
func TestGroupCommitCommitFails(t *testing.T) {
	db := openGroupTest(t)
	err := db.inTx(t.Context(), func(s store) error {
		_, err := s.exec(context.Background(), `CREATE TABLE child (p TEXT REFERENCES g (k) DEFERRABLE INITIALLY DEFERRED)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := []txCall{
		{fn: insert("a")},
		{fn: func(s store) error {
			_, err := s.exec(context.Background(), `INSERT INTO child (p) VALUES ('nobody')`)
			return err
		}},
		{fn: insert("c")},
	}
	results := runOneGroup(t, db, calls)
	for i, res := range results {
		if res.err == nil || res.panicked {
			t.Errorf("transaction %d = %+v, want the commit's error", i, res)
		}
	}
	if got := rowCount(t, db); got != 0 {
		t.Errorf("g holds %d rows after a failed commit, want 0", got)
	}
	checkWriterFree(t, db)
}

// TestGroupCommitMaxGroup queues more than maxGroup transactions: they run
// in as few groups of at most maxGroup as there can be, and all commit.
func TestGroupCommitMaxGroup(t *testing.T) {
	db := openGroupTest(t)
	n := maxGroup + maxGroup/2
	calls := make([]txCall, n)
	for i := range calls {
		calls[i] = txCall{fn: insert(fmt.Sprintf("k%d", i))}
	}
	results, groups := runGroup(t, db, calls)
	wantGroups(t, fmt.Sprintf("%d transactions, at most %d a group,", n, maxGroup), groups, 2)
	wantSuccess(t, results)
	if got := rowCount(t, db); got != n {
		t.Errorf("g holds %d rows, want %d", got, n)
	}
}

// TestGroupCommitSingle runs transactions one at a time (a group of one,
// without savepoints): success commits, an error or a panic rolls back.
func TestGroupCommitSingle(t *testing.T) {
	db := openGroupTest(t)
	ctx := t.Context()
	before := groupsRun(t, db)

	if err := db.inTx(ctx, insert("ok")); err != nil {
		t.Fatalf("inTx = %v", err)
	}
	if !committed(t, db, "ok") {
		t.Error("row of a successful single transaction missing")
	}

	err := db.inTx(ctx, func(s store) error {
		if err := insert("fail")(s); err != nil {
			return err
		}
		return errLost
	})
	if !errors.Is(err, errLost) {
		t.Errorf("failing inTx = %v, want its error", err)
	}
	if committed(t, db, "fail") {
		t.Error("row of a failed single transaction committed")
	}

	if err := db.inTx(ctx, insert("ok")); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("duplicate insert = %v, want auth.ErrConflict", err)
	}

	res := <-startTx(db, ctx, func(s store) error {
		if err := insert("panic")(s); err != nil {
			return err
		}
		panic(&groupPanic{-1})
	})
	if gp, ok := res.pv.(*groupPanic); !res.panicked || !ok || gp.i != -1 {
		t.Errorf("panicking inTx = %+v, want a panic with &groupPanic{-1}", res)
	}
	if committed(t, db, "panic") {
		t.Error("row of a panicking single transaction committed")
	}

	// WithTx goes through the group committer too.
	if err := db.WithTx(ctx, func(tx auth.Tx) error { return nil }); err != nil {
		t.Errorf("WithTx = %v", err)
	}
	wantGroups(t, "5 transactions one at a time", groupsRun(t, db)-before, 5)
	if got := rowCount(t, db); got != 1 {
		t.Errorf("g holds %d rows, want 1", got)
	}
	checkWriterFree(t, db)
}

// TestGroupCommitCancelWhileEarlierRuns: a caller whose request a group has
// taken, but whose fn has not started, returns as soon as its ctx ends,
// without waiting for the fns ahead of it; its fn then never runs.
//
// The caller that leads a group cannot leave it, so the test leads the group
// itself (holding the slot) to keep a and b both followers.
func TestGroupCommitCancelWhileEarlierRuns(t *testing.T) {
	db := openGroupTest(t)
	unblock, started := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	release := holdWriter(t, db)
	a := startTx(db, t.Context(), func(s store) error {
		close(started)
		<-unblock
		return insert("a")(s)
	})
	waitQueue(t, db, 1)
	b := startTx(db, ctx, insert("b"))
	waitQueue(t, db, 2)
	led := make(chan struct{})
	go func() {
		defer close(led)
		db.group.runGroup(db.group.take())
	}()
	<-started
	cancel()
	select {
	case res := <-b:
		if !errors.Is(res.err, context.Canceled) {
			t.Errorf("b = %+v, want context.Canceled", res)
		}
	case <-time.After(groupWait):
		t.Fatal("b, cancelled before its fn started, still waiting")
	}
	close(unblock)
	<-led
	release()
	if res := <-a; res.err != nil || res.panicked {
		t.Fatalf("a = %+v", res)
	}
	if !committed(t, db, "a") {
		t.Error("a not committed")
	}
	if committed(t, db, "b") {
		t.Error("b committed although its caller gave up before it started")
	}
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// maxGroup caps how many transactions share one SQLite commit.
const maxGroup = 64

// groupCommitter runs the SQLite writer's transactions in groups: the
// transactions waiting when the writer comes free run one after another
// inside one SQLite transaction, each in a savepoint of its own, and are
// committed together.
//
// SQLite has one writer, so its transactions queue anyway; what a commit
// costs (the WAL frames of every page touched, the WAL index, the page
// cache housekeeping, the checkpoints that follow) is paid once per group
// instead of once per transaction, and the pages several transactions touch
// (the tail of a table, an index's last leaf) are written once. Each
// transaction still sees the ones before it and nothing after it, exactly
// as if they had run one by one; one that fails is rolled back to its
// savepoint and the others go on; a caller hears success only after the
// commit that made its changes durable. Nothing waits for a group to fill:
// the writer takes whatever is queued when it comes free, so under light
// load a group is one transaction.
//
// There is no writer goroutine: the caller that finds the writer free runs
// the next group (its own transaction among them), and the callers whose
// transactions it ran are woken when it is done.
type groupCommitter struct {
	write *sql.DB
	stmts *stmtCache

	slot chan struct{} // capacity 1: held while a group runs

	mu    sync.Mutex
	queue []*txReq

	groups atomic.Int64 // groups committed or rolled back, for tests
}

func newGroupCommitter(write *sql.DB, stmts *stmtCache) *groupCommitter {
	return &groupCommitter{write: write, stmts: stmts, slot: make(chan struct{}, 1)}
}

// reqState is where a txReq is; it only moves forward.
type reqState int

const (
	reqQueued    reqState = iota // waiting in the queue
	reqTaken                     // in a group, fn not started
	reqStarted                   // fn has started: it runs to the end
	reqAbandoned                 // its caller stopped waiting before fn started
)

// txReq is one caller's transaction.
type txReq struct {
	ctx   context.Context
	fn    func(s store) error
	state reqState // under groupCommitter.mu
	done  chan struct{}

	err      error
	panicked bool
	panicVal any
}

// result returns what the transaction ended with, re-panicking on the
// caller's goroutine if fn panicked on the group's.
func (r *txReq) result() error {
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

func (r *txReq) finish(err error) {
	r.err = err
	close(r.done)
}

// run runs fn in a transaction of the next group and returns once that
// group has committed or rolled fn back. A ctx that ends before fn starts
// returns at once and fn never runs, unless this caller is the one running
// the group (it finishes the group for the others first); once fn has
// started it runs to the end (its statements ignore cancellation, which on
// SQLite would roll back the whole group) and run waits for the commit.
func (g *groupCommitter) run(ctx context.Context, fn func(s store) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	r := &txReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	g.mu.Unlock()
	for {
		// Done first: select picks at random among ready cases, and a
		// caller whose transaction is over should not lead another group.
		select {
		case <-r.done:
			return r.result()
		default:
		}
		select {
		case <-r.done:
			return r.result()
		case g.slot <- struct{}{}:
			g.lead()
			// With more than maxGroup queued, r may still be waiting.
		case <-ctx.Done():
			g.mu.Lock()
			switch r.state {
			case reqQueued:
				g.queue = slices.DeleteFunc(g.queue, func(q *txReq) bool { return q == r })
				g.mu.Unlock()
				return fmt.Errorf("begin transaction: %w", ctx.Err())
			case reqTaken:
				r.state = reqAbandoned
				g.mu.Unlock()
				return fmt.Errorf("begin transaction: %w", ctx.Err())
			}
			g.mu.Unlock()
			<-r.done
			return r.result()
		}
	}
}

// lead runs the next group while holding the writer's slot.
func (g *groupCommitter) lead() {
	defer func() { <-g.slot }()
	g.runGroup(g.take())
}

// take removes the next group from the queue.
func (g *groupCommitter) take() []*txReq {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := min(len(g.queue), maxGroup)
	group := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	for _, r := range group {
		r.state = reqTaken
	}
	return group
}

// runGroup runs group in one transaction and finishes every request in it.
func (g *groupCommitter) runGroup(group []*txReq) {
	if len(group) == 0 {
		return
	}
	defer g.groups.Add(1)
	// Not any caller's context: database/sql rolls a transaction back when
	// the context it began with ends.
	ctx := context.Background()
	tx, err := g.write.BeginTx(ctx, nil)
	if err != nil {
		err = fmt.Errorf("begin transaction: %w", mapErr(err))
		for _, r := range group {
			r.finish(err)
		}
		return
	}
	s := store{q: tx, stmts: g.stmts, tx: tx, detached: true}
	savepoints := len(group) > 1
	var ok []*txReq // ran without error; finished after the commit
	for i, r := range group {
		if !g.start(r) {
			continue // its caller has gone
		}
		if err := r.ctx.Err(); err != nil {
			r.finish(fmt.Errorf("begin transaction: %w", err))
			continue
		}
		if savepoints {
			if _, err := s.exec(ctx, "SAVEPOINT tx"); err != nil {
				g.abandon(tx, group[i:], ok, fmt.Errorf("savepoint: %w", mapErr(err)))
				return
			}
		}
		panicked, pv, err := call(r.fn, s)
		if err == nil && !panicked {
			if savepoints {
				if _, err := s.exec(ctx, "RELEASE tx"); err != nil {
					g.abandon(tx, group[i:], ok, fmt.Errorf("release savepoint: %w", mapErr(err)))
					return
				}
			}
			ok = append(ok, r)
			continue
		}
		r.panicked, r.panicVal = panicked, pv
		if !savepoints {
			if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
				err = errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
			}
			r.finish(err)
			return
		}
		if rbErr := rollbackTo(ctx, s); rbErr != nil {
			// The statement that failed took the whole transaction with
			// it (SQLite does so on I/O errors, a full disk, an
			// interrupt): what ran before r is lost; what comes after
			// it has not run and gets a transaction of its own.
			r.finish(errors.Join(err, fmt.Errorf("roll back to savepoint: %w", mapErr(rbErr))))
			g.abandon(tx, nil, ok, fmt.Errorf("transaction lost with its group: %w", mapErr(rbErr)))
			g.runGroup(group[i+1:])
			return
		}
		r.finish(err)
	}
	if len(ok) == 0 {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		err = fmt.Errorf("commit: %w", mapErr(err))
		for _, r := range ok {
			r.finish(err)
		}
		return
	}
	for _, r := range ok {
		r.finish(nil)
	}
	if g.stmts != nil {
		g.stmts.prepareMissed(ctx)
	}
}

// start marks r as started unless its caller has stopped waiting for it.
func (g *groupCommitter) start(r *txReq) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.state == reqAbandoned {
		return false
	}
	r.state = reqStarted
	return true
}

// abandon rolls tx back and fails the requests that ran in it (ok) and the
// ones that did not get to run (rest) with err.
func (g *groupCommitter) abandon(tx *sql.Tx, rest, ok []*txReq, err error) {
	_ = tx.Rollback()
	for _, r := range ok {
		r.finish(err)
	}
	for _, r := range rest {
		r.finish(err)
	}
}

// call runs fn, turning a panic into a value the caller's goroutine can
// re-raise.
func call(fn func(s store) error, s store) (panicked bool, pv any, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked, pv = true, p
			err = fmt.Errorf("transaction panicked: %v", p)
		}
	}()
	return false, nil, fn(s)
}

// rollbackTo undoes what ran since the savepoint and drops it.
func rollbackTo(ctx context.Context, s store) error {
	if _, err := s.exec(ctx, "ROLLBACK TO tx"); err != nil {
		return err
	}
	_, err := s.exec(ctx, "RELEASE tx")
	return err
}

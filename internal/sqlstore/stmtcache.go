package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache holds one prepared statement per query text for a pool. A
// *sql.Stmt prepares itself lazily on each connection it runs on, so one
// entry serves the whole pool and, through Tx.StmtContext, its
// transactions. The set of queries is fixed by the code, so the cache
// never grows past it.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
	// missed holds queries first seen inside a transaction. They cannot be
	// prepared then: on SQLite the writer's only connection is held by that
	// transaction. They are prepared after it ends.
	missed map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt), missed: make(map[string]bool)}
}

// lookup returns the cached statement for query without preparing it,
// remembering a miss for prepareMissed.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st == nil {
		c.mu.Lock()
		c.missed[query] = true
		c.mu.Unlock()
	}
	return st
}

// prepareMissed prepares the queries lookup missed. Call it only when no
// transaction of the pool is open on this goroutine.
func (c *stmtCache) prepareMissed(ctx context.Context) {
	c.mu.Lock()
	queries := make([]string, 0, len(c.missed))
	for q := range c.missed {
		queries = append(queries, q)
	}
	clear(c.missed)
	c.mu.Unlock()
	for _, q := range queries {
		c.get(ctx, q)
	}
}

// get returns the statement for query, preparing it on first use; nil if
// it cannot be prepared.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	// Prepare without holding mu: preparing waits for a connection, and
	// the goroutine holding the writer's connection may need mu (lookup)
	// before it lets go.
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.m[query]; prev != nil {
		_ = st.Close()
		return prev
	}
	c.m[query] = st
	return st
}

// close closes every cached statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
}

package sqlstore

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// checkpointEvery is how often the background checkpointer copies the
// SQLite WAL back into the database file.
const checkpointEvery = 100 * time.Millisecond

// checkpointer copies the WAL into the database file from a connection of
// its own, so that the writer never pays for a checkpoint (its page writes
// and the fsync of the database file) while requests wait behind it. A
// PASSIVE checkpoint takes no lock that the writer or the readers wait on.
// The writer's own automatic checkpoint stays on, at a higher threshold, in
// case this one falls behind.
type checkpointer struct {
	conn   *sql.DB
	logger *slog.Logger
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func startCheckpointer(conn *sql.DB, logger *slog.Logger) *checkpointer {
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{conn: conn, logger: logger, stop: stop}
	c.wg.Add(1)
	go c.loop(ctx)
	return c
}

func (c *checkpointer) loop(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var busy, logFrames, done int
		err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			// Once per run of failures: the writer's own checkpoint
			// keeps the WAL bounded meanwhile.
			c.logger.WarnContext(ctx, "sqlite checkpoint failed", "err", err)
			failing = true
		case err == nil && failing:
			c.logger.InfoContext(ctx, "sqlite checkpoint works again")
			failing = false
		}
	}
}

// close stops the loop and closes its connection.
func (c *checkpointer) close() error {
	c.stop()
	c.wg.Wait()
	return c.conn.Close()
}

package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twostep-auth/twostep/internal/auth"
	"github.com/twostep-auth/twostep/internal/sqlstore/sqltest"
)

// TestHandoffCodes checks the hosted pages' one-time codes on every
// engine: bound to a session, single use under concurrency, dead once
// expired, pruned by the next insert once expired, and gone with their
// session.
func TestHandoffCodes(t *testing.T) {
	for _, engine := range sqltest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := sqltest.Open(t, engine)
			u := newUser(t, db, "handoff")
			sess := newSession(t, db, "s-handoff", u.ID)
			h := auth.Handoff{Hash: hash("code-1"), SessionID: sess.ID, UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute),
				CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}
			if err := db.CreateHandoff(ctx, h); err != nil {
				t.Fatalf("CreateHandoff = %v", err)
			}
			if err := db.CreateHandoff(ctx, h); !errors.Is(err, auth.ErrConflict) {
				t.Errorf("CreateHandoff(same hash) = %v, want ErrConflict", err)
			}
			if err := db.CreateHandoff(ctx, auth.Handoff{Hash: hash("orphan"), SessionID: "no-such", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("CreateHandoff(unknown session) = %v, want ErrNotFound", err)
			}

			var wins atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					got, err := db.ConsumeHandoff(ctx, hash("code-1"), t0.Add(time.Second))
					switch {
					case err == nil:
						wins.Add(1)
						if got.SessionID != sess.ID || got.UserID != u.ID || got.UsedAt == nil || !got.ExpiresAt.Equal(h.ExpiresAt) || got.CodeChallenge != h.CodeChallenge {
							t.Errorf("ConsumeHandoff = %+v, want the stored code, used", got)
						}
					case !errors.Is(err, auth.ErrNotFound):
						t.Errorf("ConsumeHandoff = %v, want ErrNotFound for the losers", err)
					}
				})
			}
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Errorf("%d of 20 concurrent ConsumeHandoff calls got the code, want 1", n)
			}

			late := auth.Handoff{Hash: hash("code-2"), SessionID: sess.ID, UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
			if err := db.CreateHandoff(ctx, late); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ConsumeHandoff(ctx, late.Hash, late.ExpiresAt); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("ConsumeHandoff(at expiry) = %v, want ErrNotFound", err)
			}
			// The next insert prunes expired codes; deleting the session
			// takes its codes along.
			next := auth.Handoff{Hash: hash("code-3"), SessionID: sess.ID, UserID: u.ID, CreatedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Hour + time.Minute)}
			if err := db.CreateHandoff(ctx, next); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM handoff_codes").Scan(&n); err != nil || n != 1 {
				t.Errorf("handoff_codes after pruning holds %d rows (%v), want 1", n, err)
			}
			if _, err := db.SQL().ExecContext(ctx, "DELETE FROM sessions"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ConsumeHandoff(ctx, next.Hash, next.CreatedAt); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("ConsumeHandoff(session deleted) = %v, want ErrNotFound", err)
			}
		})
	}
}

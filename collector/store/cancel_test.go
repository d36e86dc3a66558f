package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// A caller that goes away in the middle of a write transaction (a client
// disconnecting, the uploader stopped at shutdown) must not leave the
// writer's connection inside a transaction: a started transaction runs to
// its commit or rollback, and the next write works. Cancellations land at
// seeded points: before, between and after the statements, and while the
// commit runs.
func TestCancelMidTransactionLeavesWriterUsable(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, m store.Mode) {
		s := storetest.MustOpen(t, store.Options{Mode: m, MaxCommitBytes: 1 << 20})
		ids, err := s.Insert(context.Background(), []collector.Event{{DeviceID: "d", Kind: "k", Payload: json.RawMessage(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 40 {
			ctx, cancel := context.WithCancel(context.Background())
			if i%4 == 3 { // cancel while the commit may be running
				time.AfterFunc(time.Duration(i%5)*50*time.Microsecond, cancel)
			}
			s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if i%4 == 0 {
					cancel()
				}
				if _, err := tx.ExecContext(ctx, `UPDATE events SET kind = ? WHERE id = ?`, "k2", ids[0]); err != nil {
					return err
				}
				if i%4 == 1 {
					cancel()
				}
				_, err := tx.ExecContext(ctx, `UPDATE events SET ts = ts + 1 WHERE id = ?`, ids[0])
				if i%4 == 2 {
					cancel()
				}
				return err
			})
			cancel()
			// Whatever became of that one, the writer takes the next.
			if _, err := s.Insert(context.Background(), []collector.Event{{DeviceID: "d", Kind: "k", Payload: json.RawMessage(`{}`)}}); err != nil {
				t.Fatalf("insert after cancelled write %d: %v", i, err)
			}
			if err := s.Write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE events SET kind = 'k' WHERE id = ?`, ids[0])
				return err
			}); err != nil {
				t.Fatalf("write after cancelled write %d: %v", i, err)
			}
		}
	})
}

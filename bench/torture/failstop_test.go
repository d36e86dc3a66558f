package torture

import (
	"context"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"edgecollector/bench/faultfs"
	"edgecollector/collector/store"
)

// TestFsyncFailureIsFailStop: the buffer's fsync fails once with EIO. The
// request whose commit it was gets an error, not a 200; nothing later is
// acknowledged by that process, which exits non-zero by itself; after a
// power cut and a restart on the same file, every event acknowledged before
// the failure is there, and the restarted collector acknowledges again.
// (Before the store went fail-stop, the collector answered 500 for that
// request and carried on acknowledging, on a file whose earlier pages the
// kernel may have dropped.)
func TestFsyncFailureIsFailStop(t *testing.T) {
	if err := faultfs.Usable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	bin := collectorBin(t)
	for _, mode := range store.Modes {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			recv, err := startReceiver()
			if err != nil {
				t.Fatal(err)
			}
			defer recv.close()
			ffs, buf, err := mountCell(t.TempDir(), faultfs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ffs.Close()
			db := filepath.Join(buf, "events.db")
			args := func(interval string) []string {
				return []string{
					"-db", db, "-addr", "127.0.0.1:0", "-mode", string(mode),
					"-sink", "webhook", "-webhook-url", recv.url, "-collector-id", "failstop",
					"-log-format", "json", "-upload-interval", interval, "-max-backlog", "0",
				}
			}
			// The uploader idle (its first cycle runs at start): the failed
			// fsync is the probe's own commit, not a mark's.
			proc, err := startCollector(ctx, bin, args("1h"), startTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if !proc.Exited() {
					proc.Kill()
				}
			}()
			l := newLoad(LoadConfig{}, 1)
			rng := rand.New(rand.NewPCG(1, 2))
			l.target.Store(&target{url: "http://" + proc.Addr() + "/events"})
			for range 20 {
				if st := l.probe(rng); st != http.StatusOK {
					t.Fatalf("before the fault: status %d", st)
				}
			}
			before := l.ackedEvents()

			if err := ffs.FailFsync("events.db-wal", syscall.EIO); err != nil {
				t.Fatal(err)
			}
			if st := l.probe(rng); st == http.StatusOK {
				t.Fatal("the request whose fsync failed was answered 200")
			}
			// Nothing more is acknowledged by this process, however long
			// it is asked; it exits by itself, non-zero.
			deadline := time.Now().Add(10 * time.Second)
			for !proc.Exited() && time.Now().Before(deadline) {
				l.probe(rng)
				time.Sleep(5 * time.Millisecond)
			}
			if got := l.ackedEvents(); got != before {
				t.Errorf("%d events acknowledged after the failed fsync", got-before)
			}
			exited, exitErr := proc.Wait(time.Second)
			if !exited {
				t.Fatal("the collector kept running after its fsync failed")
			}
			if exitErr == nil {
				t.Error("the collector exited 0 after its fsync failed")
			}
			if tail := proc.Tail(); !strings.Contains(tail, "storage failed") {
				t.Errorf("its last words do not say the storage failed: %s", tail)
			}

			// Power cut, restart on the same file.
			if _, err := ffs.Cut(); err != nil {
				t.Fatal(err)
			}
			proc, err = startCollector(ctx, bin, args("20ms"), startTimeout)
			if err != nil {
				t.Fatal(err)
			}
			l.target.Store(&target{url: "http://" + proc.Addr() + "/events", epoch: 1})
			if st := l.probe(rng); st != http.StatusOK {
				t.Errorf("after the restart: status %d", st)
			}
			if err := proc.Stop(stopTimeout); err != nil {
				t.Fatal(err)
			}
			rows, err := readRows(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			got, _, bad := recv.snapshot()
			v := checkLedger(l, rows, got, bad, nil)
			for _, p := range v.problems {
				// A request answered with an error after a failed fsync may
				// or may not be on disk (an unknown outcome, as a timeout);
				// everything else the ledger finds is a failure.
				if !strings.Contains(p, "was refused, yet") {
					t.Error(p)
				}
			}
			if lost, _ := cutLosses(l, rows, got); lost > 0 {
				t.Errorf("%d acknowledged events lost", lost)
			}
		})
	}
}

package torture

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"edgecollector/bench/faultfs"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
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
	bin := rig.Binary(t)
	for _, mode := range store.Modes {
		t.Run(string(mode), func(t *testing.T) { failStop(t, bin, mode) })
	}
}

func failStop(t *testing.T, bin string, mode store.Mode) {
	ctx := context.Background()
	var got rig.Deliveries
	recv, err := rig.StartReceiver(&got)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	ffs, buf, err := mountCell(t.TempDir(), faultfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ffs.Close()
	// The uploader idle while the fault is armed (its first cycle runs at
	// start), so the failed fsync is the probe's own commit, not a mark's.
	c := rig.Collector{Bin: bin, DB: filepath.Join(buf, "events.db"), Mode: string(mode), ID: "failstop", Webhook: recv.URL,
		Flags: []string{"-upload-interval", "1h", "-max-backlog", "0"}}
	proc, err := c.Start(ctx, startTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !proc.Exited() {
			proc.Kill()
		}
	}()
	var ledger rig.Ledger
	var target rig.Target
	probe := &rig.Load{Name: "probe", Batch: 1, Seed: 1, Events: rig.Hostile, Target: &target, Ledger: &ledger}
	defer probe.Stop()
	target.Set(proc.URL("/events"), 0)
	for range 20 {
		if st := probe.Post(); st != http.StatusOK {
			t.Fatalf("before the fault: status %d", st)
		}
	}
	before := len(ledger.AckedIDs())

	if err := ffs.FailFsync("events.db-wal", syscall.EIO); err != nil {
		t.Fatal(err)
	}
	if st := probe.Post(); st == http.StatusOK {
		t.Fatal("the request whose fsync failed was answered 200")
	}
	// Nothing more is acknowledged by this process, however long it is
	// asked; it exits by itself, non-zero.
	deadline := time.Now().Add(10 * time.Second)
	for !proc.Exited() && time.Now().Before(deadline) {
		probe.Post()
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(ledger.AckedIDs()); n != before {
		t.Errorf("%d events acknowledged after the failed fsync", n-before)
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

	// Power cut, restart on the same file, the uploader at work again.
	if _, err := ffs.Cut(); err != nil {
		t.Fatal(err)
	}
	c.Flags = []string{"-upload-interval", "20ms", "-max-backlog", "0"}
	if proc, err = c.Start(ctx, startTimeout); err != nil {
		t.Fatal(err)
	}
	target.Set(proc.URL("/events"), 1)
	if st := probe.Post(); st != http.StatusOK {
		t.Errorf("after the restart: status %d", st)
	}
	if err := proc.Stop(stopTimeout); err != nil {
		t.Fatal(err)
	}
	rows, err := rig.ReadRows(ctx, c.DB)
	if err != nil {
		t.Fatal(err)
	}
	v := ledger.Check(rows, got.Snapshot(), nil)
	for _, p := range v.Problems {
		// A request answered with an error after a failed fsync may or may
		// not be on disk (an unknown outcome, as a timeout); everything
		// else the ledger finds is a failure.
		if !strings.Contains(p, "refused") {
			t.Error(p)
		}
	}
	if lost := v.Acked - v.Intact; lost > 0 {
		t.Errorf("%d acknowledged events lost", lost)
	}
}

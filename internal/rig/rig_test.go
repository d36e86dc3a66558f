package rig

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// The rig end to end, against the real binary: producers post while the
// collector is killed with a batch held in the receiver, restarted on the
// same file and drained; the ledger finds every promise kept, and the
// re-shipped batch as duplicates.
func TestRigEndToEnd(t *testing.T) {
	bin := Binary(t)
	ctx := context.Background()
	d := &Deliveries{}
	recv, err := StartReceiver(d)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	c := Collector{
		Bin: bin, DB: filepath.Join(t.TempDir(), "events.db"), Mode: "group", ID: "rig", Webhook: recv.URL,
		Flags: []string{"-upload-interval", "20ms", "-upload-max-backoff", "100ms", "-webhook-timeout", "5s"},
	}
	p, err := c.Start(ctx, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !p.Exited() {
			p.Kill()
		}
	}()
	ledger, target := &Ledger{}, &Target{}
	target.Set(p.URL("/events"), 0)
	load := &Load{Name: "L", Workers: 2, Batch: 10, Seed: 1, Events: Hostile, Target: target, Ledger: ledger}
	load.Start()
	defer load.Stop()

	sprung := recv.Trap(Stall)
	select {
	case <-sprung:
	case <-time.After(15 * time.Second):
		t.Fatal("no batch shipped within 15 s")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	hw, check, err := CrashState(ctx, c.DB)
	if err != nil || check != "ok" {
		t.Fatalf("crash state: %d %q %v", hw, check, err)
	}
	if p, err = c.Start(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	target.Set(p.URL("/events"), 1)
	waitUntil(t, func() bool { return load.Acked() > 20 })
	load.Stop()
	if err := p.WaitBacklog(ctx, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if st, h, err := p.Health(ctx); err != nil || st != http.StatusOK || !h.OK {
		t.Errorf("healthz %d %+v %v", st, h, err)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadRows(ctx, c.DB)
	if err != nil {
		t.Fatal(err)
	}
	v := ledger.Check(rows, d.Snapshot(), []int64{hw})
	for _, p := range v.Problems {
		t.Error(p)
	}
	if v.Acked == 0 || v.Lost != 0 || v.Stored != v.Acked || v.Delivered != v.Acked {
		t.Errorf("verdict %+v", v)
	}
	// The batch held at the kill was delivered, unmarked, and shipped again.
	if v.Duplicates == 0 {
		t.Errorf("no duplicates after a kill with a batch held: %+v", v)
	}
	t.Logf("acked %d, rows %d, deliveries %d, duplicates %d", v.Acked, v.Rows, v.Deliveries, v.Duplicates)
}

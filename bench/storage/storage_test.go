package storage

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/record"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

func TestMain(m *testing.M) {
	if child, err := faultfs.ChildMain(); child { // the experiment's mount
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	rig.Main(m)
}

// TestCells runs the in-process and HTTP cells of two classes: an emulated
// device's fsync latency must show in the throughput of a mode that
// commits once per event (serialized), and group commit must beat it there.
func TestCells(t *testing.T) {
	if err := faultfs.Usable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	bin := rig.Binary(t)
	dir := t.TempDir()
	slow := Class{"slow", 20 * time.Millisecond, "slow"}
	e := Config{
		Binary: bin, DBDir: dir, Modes: []store.Mode{store.Serialized, store.Group},
		Classes: []Class{Classes[0], slow}, Jitter: 0.1,
		Producers: 8, Conns: 8, Warm: 50 * time.Millisecond, Dur: 400 * time.Millisecond,
		HTTPWarm: 50 * time.Millisecond, HTTPDur: 400 * time.Millisecond,
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	if got, want := len(e.Cells), 2*2*2; got != want {
		t.Fatalf("%d cells, want %d", got, want)
	}
	rate := map[string]float64{}
	for i, c := range e.Cells {
		s, err := c.Run(context.Background(), bench.Rep{Index: 1, Seed: uint64(i)})
		if err != nil {
			t.Fatalf("%s %s: %v", c.Name, c.Label(), err)
		}
		for _, p := range s.Problems {
			t.Errorf("%s %s: %s", c.Name, c.Label(), p)
		}
		v, _ := (&record.Point{Values: s.Values}).Value("events/s")
		rate[c.Name+" "+c.Label()] = v
		t.Logf("%s %s: %.0f events/s", c.Name, c.Label(), v)
	}
	// At 20 ms a flush, one commit per event cannot pass 50 events/s.
	for _, name := range []string{"StorageStore mode=serialized class=slow fsync-ms=20 producers=8", "StorageHTTP mode=serialized class=slow fsync-ms=20 conns=8"} {
		if v := rate[name]; v <= 0 || v > 55 {
			t.Errorf("%s: %.0f events/s, want at most 50 (one 20 ms flush per event)", name, v)
		}
	}
	if g, s := rate["StorageStore mode=group class=slow fsync-ms=20 producers=8"], rate["StorageStore mode=serialized class=slow fsync-ms=20 producers=8"]; g < 2*s {
		t.Errorf("group %.0f events/s, serialized %.0f at 20 ms: group commit should share the flush", g, s)
	}
}

package torture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/peer"
	"edgecollector/bench/proc"
	"edgecollector/bench/results"
	"edgecollector/collector"
	"edgecollector/collector/store"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// collectorBin builds the collector once per test binary run.
func collectorBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the collector binary")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "torture-bin-*")
		if buildErr != nil {
			return
		}
		builtBin, buildErr = proc.BuildCollector(context.Background(), buildDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	if child, err := faultfs.ChildMain(); child { // a powercut test's mount
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func value(t *testing.T, s bench.Sample, unit string) float64 {
	t.Helper()
	p := results.Point{Values: s.Values}
	v, ok := p.Value(unit)
	if !ok {
		t.Fatalf("no %s in %v", unit, s.Values)
	}
	return v
}

// TestTortureCell kills the real collector three times under load, once in
// each way, and holds it to the ledger.
func TestTortureCell(t *testing.T) {
	bin := collectorBin(t)
	e := Config{
		Binary: bin, DBDir: t.TempDir(), Modes: []store.Mode{store.Group},
		Kills: 3, MinUp: 150 * time.Millisecond, MaxUp: 400 * time.Millisecond,
		Load: LoadConfig{Singles: 2, Batchers: 1, Batch: 100, RetryCap: time.Second},
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	s, err := e.Cells[0].Run(context.Background(), bench.Rep{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Problems {
		t.Error(p)
	}
	if got := value(t, s, "kills"); got != 3 {
		t.Errorf("kills = %v, want 3", got)
	}
	if got := value(t, s, "lost-events"); got != 0 {
		t.Errorf("lost-events = %v", got)
	}
	if got := value(t, s, "acked-events"); got < 100 {
		t.Errorf("acked-events = %v, want at least 100", got)
	}
	if got := value(t, s, "kills-in-upload"); got < 1 {
		t.Errorf("kills-in-upload = %v: no kill landed between ship and mark", got)
	}
	// The in-flight kill leaves a batch delivered and unmarked: re-shipped.
	if got := value(t, s, "duplicate-deliveries"); got < 1 {
		t.Errorf("duplicate-deliveries = %v, want some after a kill with a batch in flight", got)
	}
	t.Logf("%v", s.Values)
}

// TestLedgerCatchesLoss feeds the check a database that lost an
// acknowledged event, a half-written request, a reused id and a delivery
// that differs: each must be named.
func TestLedgerCatchesLoss(t *testing.T) {
	l := newLoad(LoadConfig{}, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	a := makeEvents(rng, tag{0, 0}, 2)
	b := makeEvents(rng, tag{0, 1}, 3)
	l.sizes[tag{0, 0}], l.sizes[tag{0, 1}] = 2, 3
	l.acked = []ackedReq{{tag: tag{0, 0}, events: a, ids: []int64{1, 2}}, {tag: tag{0, 1}, epoch: 1, events: b, ids: []int64{3, 4, 5}}}
	rows := map[int64]*row{
		1: {deviceID: a[0].deviceID, kind: a[0].kind, payload: a[0].payload, uploaded: true},
		// 2 lost
		3: {deviceID: b[0].deviceID, kind: b[0].kind, payload: b[0].payload},
		4: {deviceID: b[1].deviceID, kind: b[1].kind, payload: b[1].payload},
		5: {deviceID: b[2].deviceID, kind: b[2].kind, payload: append([]byte(nil), b[2].payload...)},
	}
	rows[5].payload[len(rows[5].payload)-1] = ' ' // not byte-identical
	got := map[int64]*delivery{}
	v := checkLedger(l, rows, got, 0, []int64{4})
	if v.lost < 1 {
		t.Errorf("lost = %d, want at least 1", v.lost)
	}
	want := []string{"2 (request {0 0}) acknowledged but not in the database", "half-written", "not above 4", "stored payload", "marked uploaded but was never delivered"}
	for _, w := range want {
		found := false
		for _, p := range v.problems {
			if strings.Contains(p, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem mentions %q; got %q", w, v.problems)
		}
	}
}

// TestSoakCell runs a short outage against the real collector: the backlog
// reaches its cap, producers get 503s, /healthz says why, the sink
// recovers, the backlog drains, and the ledger holds.
func TestSoakCell(t *testing.T) {
	bin := collectorBin(t)
	e := Soak{
		Binary: bin, DBDir: t.TempDir(), Modes: []store.Mode{store.Concurrent},
		MaxBacklog: 2000, Outage: 4 * time.Second, Phase: time.Second, SinkTimeout: 500 * time.Millisecond,
		MaxRSS: 512 << 20,
		Load:   LoadConfig{Singles: 2, Batchers: 1, Batch: 100, RetryCap: time.Second},
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	s, err := e.Cells[0].Run(context.Background(), bench.Rep{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Problems {
		t.Error(p)
	}
	if got := value(t, s, "peak-backlog"); got < 2000 {
		t.Errorf("peak-backlog = %v, want at least the cap", got)
	}
	if got := value(t, s, "rejected-503"); got < 1 {
		t.Errorf("rejected-503 = %v", got)
	}
	if got := value(t, s, "lost-events"); got != 0 {
		t.Errorf("lost-events = %v", got)
	}
	t.Logf("%v", s.Values)
}

// TestPowercut cuts the power under the real collector a few times per
// mode, on a faultfs mount, and holds it to the ledger; the negative
// control (synchronous=OFF) in the same run must lose acknowledged events.
func TestPowercut(t *testing.T) {
	if err := faultfs.Usable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	bin := collectorBin(t)
	e := Powercut{
		Binary: bin, DBDir: t.TempDir(), Modes: store.Modes,
		Cuts: 3, ControlCuts: 3, MinUp: 150 * time.Millisecond, MaxUp: 400 * time.Millisecond,
		Load: LoadConfig{Singles: 2, Batchers: 1, Batch: 100, RetryCap: time.Second},
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	for i, c := range e.Cells {
		mode := c.Config[0].Value
		s, err := c.Run(context.Background(), bench.Rep{Seed: uint64(11 + i)})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for _, p := range s.Problems {
			t.Errorf("%s: %s", mode, p)
		}
		lost := value(t, s, "lost-events")
		if mode == ControlMode {
			if lost == 0 {
				t.Errorf("%s lost nothing", mode)
			}
		} else if lost != 0 {
			t.Errorf("%s: lost-events = %v", mode, lost)
		}
		if got := value(t, s, "acked-events"); got < 100 {
			t.Errorf("%s: acked-events = %v", mode, got)
		}
		if got := value(t, s, "forgotten-pages"); got < 1 {
			t.Errorf("%s: forgotten-pages = %v: the cuts forgot nothing", mode, got)
		}
		t.Logf("%s: %v", mode, s.Values)
	}
}

// TestPowercutPeer runs the peer cells (one cut of each system) when the
// peer binary is there (make peer; or PEER_BIN): our collector loses
// nothing; the peer's losses are values, reported, not asserted.
func TestPowercutPeer(t *testing.T) {
	if err := faultfs.Usable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	peerBin := os.Getenv("PEER_BIN")
	if peerBin == "" {
		peerBin, _ = filepath.Abs("../../bin/otelcol-peer")
	}
	if err := peer.CheckPeer(peerBin); err != nil {
		t.Skipf("skipped: %v", err)
	}
	bin := collectorBin(t)
	e := Powercut{
		Binary: bin, Peer: peerBin, DBDir: t.TempDir(),
		PeerConns: 4, PeerBatch: 20, PeerKillAfter: 700 * time.Millisecond,
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	for i, c := range e.Cells {
		mode := c.Config[0].Value
		s, err := c.Run(context.Background(), bench.Rep{Seed: uint64(5 + i)})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for _, p := range s.Problems {
			t.Errorf("%s: %s", mode, p)
		}
		if got := value(t, s, "acked-events"); got <= 0 {
			t.Errorf("%s: nothing acknowledged before the cut", mode)
		}
		if mode == string(peer.OursGroup) {
			if got := value(t, s, "lost-events"); got != 0 {
				t.Errorf("%s: lost-events = %v", mode, got)
			}
		}
		t.Logf("%s: %v", mode, s.Values)
	}
}

// TestCutLossesCountsReusedIDs: after a cut rolls the id counter back, a
// lost event's id can hold another event. The totals count such an event as
// lost (the ledger's own lost count would not: the row exists) and the id
// as given twice; an event stored and delivered as sent is neither.
func TestCutLossesCountsReusedIDs(t *testing.T) {
	l := newLoad(LoadConfig{}, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	a := makeEvents(rng, tag{0, 0}, 2) // ids 1, 2, before the cut
	b := makeEvents(rng, tag{0, 1}, 1) // id 2 again, after it
	l.acked = []ackedReq{{tag: tag{0, 0}, events: a, ids: []int64{1, 2}}, {tag: tag{0, 1}, epoch: 1, events: b, ids: []int64{2}}}
	rows := map[int64]*row{
		1: {deviceID: a[0].deviceID, kind: a[0].kind, payload: a[0].payload, uploaded: true},
		2: {deviceID: b[0].deviceID, kind: b[0].kind, payload: b[0].payload, uploaded: true},
	}
	got := map[int64]*delivery{}
	for id, e := range map[int64]sentEvent{1: a[0], 2: a[1]} {
		got[id] = &delivery{first: collectorShipped(id, e), count: 1}
	}
	got[2].count, got[2].differs = 2, true // b[0] delivered under the same id
	lost, reused := cutLosses(l, rows, got)
	// a[1]: not in the database as sent. b[0]: stored, but delivered first
	// as a[1] under its id, so never delivered as sent.
	if lost != 2 {
		t.Errorf("lost = %d, want 2", lost)
	}
	if reused != 1 {
		t.Errorf("reused = %d, want 1", reused)
	}
}

func collectorShipped(id int64, e sentEvent) collector.Shipped {
	return collector.Shipped{CollectorID: "powercut", ID: id, DeviceID: e.deviceID, Kind: e.kind, Payload: e.payload}
}

package torture

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/peer"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

// TestPowercut cuts the power under the real collector a few times per
// mode, on a faultfs mount, and holds it to the ledger; the negative
// control (synchronous=OFF) in the same run must lose acknowledged events.
func TestPowercut(t *testing.T) {
	if err := faultfs.Usable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	bin := rig.Binary(t)
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
	bin := rig.Binary(t)
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

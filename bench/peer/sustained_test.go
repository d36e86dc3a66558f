package peer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/internal/rig"
)

// One step of each system at a rate a loaded 2-core box carries passes the
// sustained rule; a rate far past what it carries fails it (the negative
// control: the rule has teeth).
func TestSustainedStep(t *testing.T) {
	bin := rig.Binary(t)
	systems := []System{OursGroup, OursGroupK1}
	peerBin := os.Getenv("PEER_BIN")
	if peerBin == "" {
		peerBin, _ = filepath.Abs("../../bin/otelcol-peer")
	}
	if CheckPeer(peerBin) == nil {
		systems = append(systems, OtelNoFsync)
	} else {
		peerBin = ""
	}
	cfg := SustainedConfig{Collector: bin, Peer: peerBin, Dir: t.TempDir(), Timeout: 5 * time.Second}
	e := cfg.Experiment()
	defer e.Close()
	s := &sustained{cfg: cfg, exp: &experiment{Config: Config{Collector: bin, Peer: peerBin, Dir: cfg.Dir, Timeout: cfg.Timeout}}}
	defer s.exp.close()
	for _, sys := range systems {
		r, err := s.step(context.Background(), sys, 100, 2000, 300*time.Millisecond, 2*time.Second, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s at 2,000 events/s: %d/%d ok, delivered %.0f/s, slope %.0f/s, trace %v, first error %q", sys, r.ok, r.sent, r.delivered, r.slope, r.trace, r.firstErr)
		if r.ok == 0 || r.okRatio() < 0.99 {
			t.Errorf("%s: %d of %d requests answered 200 (first error %q)", sys, r.ok, r.sent, r.firstErr)
		}
		if r.delivered < 0.9*r.rate {
			t.Errorf("%s: delivered %.0f/s of %.0f offered", sys, r.delivered, r.rate)
		}
	}
}

func TestSustainedSearchDebug(t *testing.T) {
	if os.Getenv("SUSTAINED_DEBUG") == "" {
		t.Skip("SUSTAINED_DEBUG unset")
	}
	bin := rig.Binary(t)
	peerBin, _ := filepath.Abs("../../bin/otelcol-peer")
	cfg := SustainedConfig{Collector: bin, Peer: peerBin, Dir: t.TempDir(), Timeout: 5 * time.Second,
		Short: 500 * time.Millisecond, ShortWarm: 150 * time.Millisecond, Long: 2 * time.Second, LongWarm: 300 * time.Millisecond,
		Doublings: 7, Bisections: 1, Down: 1.15, LongTries: 2}
	s := &sustained{cfg: cfg, exp: &experiment{Config: Config{Collector: bin, Peer: peerBin, Dir: cfg.Dir, Timeout: cfg.Timeout}}, logf: t.Logf}
	defer s.exp.close()
	sys := System(os.Getenv("SUSTAINED_DEBUG"))
	if _, err := s.search(sys, Search{Batch: 100, Start: 5000})(context.Background(), bench.Rep{Seed: 1}); err != nil {
		t.Fatal(err)
	}
}

package peer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/internal/rig"
)

// One step of each system at a rate a loaded 2-core box carries is
// answered, delivered and measured (TestSustainedRule holds the rule's
// teeth).
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

// The rule: a step passes only with >= 99% 200s, delivered >= 0.99x
// offered and a flat backlog, each to the measurement's resolution; a
// backlog growing by a few per cent of the rate, a delivery short by a few
// per cent, or 2% of requests refused fail it.
func TestSustainedRule(t *testing.T) {
	ok := stepResult{rate: 50000, batch: 100, win: 30 * time.Second, sent: 15000, ok: 15000, delivered: 49900, slope: 100}
	if !ok.pass() {
		t.Fatalf("a flat, fully delivered step fails: %+v", ok)
	}
	for name, mut := range map[string]func(*stepResult){
		"backlog grows 3% of the rate": func(r *stepResult) { r.slope = 1500 },
		"delivered 0.95x":              func(r *stepResult) { r.delivered = 47500 },
		"2% refused":                   func(r *stepResult) { r.ok = 14700 },
		"nothing sent":                 func(r *stepResult) { r.sent, r.ok = 0, 0 },
	} {
		r := ok
		mut(&r)
		if r.pass() {
			t.Errorf("%s: passes", name)
		}
	}
	// Half a second at 5,000 events/s: one 100-event request more or less
	// in the count is 4% of the rate, within the resolution.
	short := stepResult{rate: 5000, batch: 100, win: 500 * time.Millisecond, sent: 25, ok: 25, delivered: 4800, slope: 400}
	if !short.pass() {
		t.Errorf("a short step off by one request fails: %+v", short)
	}
}

// A whole search of our collector finds a knee and a sustained rate at or
// below it, in a few short steps and a long one.
func TestSustainedSearch(t *testing.T) {
	bin := rig.Binary(t)
	cfg := SustainedConfig{Collector: bin, Dir: t.TempDir(), Timeout: 5 * time.Second,
		Short: 400 * time.Millisecond, ShortWarm: 100 * time.Millisecond, Long: time.Second, LongWarm: 200 * time.Millisecond,
		Doublings: 4, Bisections: 1, Down: 1.15, LongTries: 2}
	s := &sustained{cfg: cfg, exp: &experiment{Config: Config{Collector: bin, Dir: cfg.Dir, Timeout: cfg.Timeout}}, logf: t.Logf}
	defer s.exp.close()
	smp, err := s.search(OursGroup, Search{Batch: 100, Start: 2000})(context.Background(), bench.Rep{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := record.Point{Values: smp.Values}
	sus, _ := p.Value("sustained-events/s")
	knee, _ := p.Value("knee-events/s")
	steps, _ := p.Value("steps")
	if knee < 2000 || sus > knee || steps < 3 {
		t.Errorf("sustained %v, knee %v, %v steps: want a knee at or above the start, the sustained rate at or below it", sus, knee, steps)
	}
	if _, ok := p.Value(traceUnit(traceN)); !ok {
		t.Error("no backlog trace")
	}
}

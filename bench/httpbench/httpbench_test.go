package httpbench

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

func TestMain(m *testing.M) { rig.Main(m) }

func TestMakeBodies(t *testing.T) {
	single := makeBodies(1, 1, 3)
	var ev map[string]any
	if err := json.Unmarshal(single[0], &ev); err != nil || ev["device_id"] == nil || ev["kind"] == nil {
		t.Errorf("single-event body %s: %v", single[0], err)
	}
	batch := makeBodies(1, 100, 2)
	var evs []map[string]any
	if err := json.Unmarshal(batch[1], &evs); err != nil || len(evs) != 100 {
		t.Errorf("batch body: %d events, %v", len(evs), err)
	}
	if string(makeBodies(1, 1, 3)[2]) != string(single[2]) {
		t.Error("bodies are not determined by the seed")
	}
}

// TestCells runs real cells against the real collector binary: a closed
// loop and an open-loop step, for two modes, each checked against its
// database. It builds the collector, so it is skipped with -short.
func TestCells(t *testing.T) {
	bin := rig.Binary(t)
	e := Config{
		Binary: bin, DBDir: t.TempDir(), Modes: []store.Mode{store.Serialized, store.Group},
		Loads: []Load{{Conns: 4, Batch: 10}}, Rates: []int{200}, MaxWorkers: 32,
		Warm: 50 * time.Millisecond, Dur: 250 * time.Millisecond, Timeout: 5 * time.Second, MaxBacklog: 50000,
		Profile: Load{Conns: 4, Batch: 1}, ProfileDur: time.Second,
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	if got, want := len(e.Cells), 5; got != want {
		t.Fatalf("%d cells, want %d", got, want)
	}
	for i, c := range e.Cells {
		s, err := c.Run(context.Background(), bench.Rep{Index: 1, Seed: uint64(i)})
		if err != nil {
			t.Fatalf("%s %s: %v", c.Name, c.Label(), err)
		}
		if len(s.Problems) > 0 {
			t.Errorf("%s %s: %v", c.Name, c.Label(), s.Problems)
		}
		p := record.Point{Values: s.Values}
		if v, _ := p.Value("req/s"); v <= 0 {
			t.Errorf("%s %s: req/s = %v", c.Name, c.Label(), v)
		}
		if v, ok := p.Value("lost-events"); !ok || v != 0 {
			t.Errorf("%s %s: lost-events = %v (%v)", c.Name, c.Label(), v, ok)
		}
		if runtime.GOOS != "linux" {
			continue
		}
		if c.Name == "HTTPProfile" {
			// Where the CPU went: the parts add up, and serving requests
			// (net/http, the handler, the store) is most of it.
			var sum, serving float64
			for _, u := range shareUnits() {
				v, _ := p.Value(u.Name)
				sum += v
			}
			for _, part := range []string{"http", "handler", "store"} {
				v, _ := p.Value(shareUnit(part))
				serving += v
			}
			if sum < 0.99 || sum > 1.01 || serving < 0.3 {
				t.Errorf("%s: CPU shares sum to %v, serving %v: %v", c.Label(), sum, serving, s.Values)
			}
			continue
		}
		// The collector's CPU per request: more than nothing, less than a
		// second.
		if v, ok := p.Value("cpu-us/req"); !ok || v <= 0 || v > 1e6 {
			t.Errorf("%s %s: cpu-us/req = %v (%v)", c.Name, c.Label(), v, ok)
		}
		if v, ok := p.Value("cpu-us/event"); !ok || v <= 0 {
			t.Errorf("%s %s: cpu-us/event = %v (%v)", c.Name, c.Label(), v, ok)
		}
	}
}

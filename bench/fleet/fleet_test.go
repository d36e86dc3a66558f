package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/internal/natstest"
	"edgecollector/internal/rig"
)

func TestMain(m *testing.M) { rig.Main(m) }

// One small cell end to end: two real collector processes into one stream;
// the stream read back has every acknowledged event once.
func TestFleetCell(t *testing.T) {
	bin := rig.Binary(t)
	e := Config{
		Binary: bin, DBDir: t.TempDir(), Collectors: []int{2}, Rate: 50, Batch: 5, MaxInFlight: 8,
		Warm: 200 * time.Millisecond, Dur: 800 * time.Millisecond,
	}.Experiment()
	if len(e.Cells) != 1 {
		t.Fatalf("%d cells, want 1", len(e.Cells))
	}
	s, err := e.Cells[0].Run(context.Background(), bench.Rep{Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) > 0 {
		t.Errorf("problems: %v", s.Problems)
	}
	p := record.Point{Values: s.Values}
	if v, _ := p.Value("events/s"); v <= 0 {
		t.Errorf("events/s = %v", v)
	}
	for _, u := range []string{"duplicates", "lost-events"} {
		if v, ok := p.Value(u); !ok || v != 0 {
			t.Errorf("%s = %v (%v), want 0", u, v, ok)
		}
	}
	if v, _ := p.Value("p99-ns/event"); v <= 0 || v > float64(5*time.Second) {
		t.Errorf("p99 = %v ns, want within (0, 5s]", v)
	}
}

// The check itself: a duplicate or a missing event in the stream is a Problem.
func TestTallyFlagsDuplicatesAndLoss(t *testing.T) {
	now := time.Now()
	m := &member{id: "c0"}
	m.acks = []ack{{id: 1, t: now.UnixNano(), win: true}, {id: 2, t: now.UnixNano(), win: true}}
	msg := func(id string) natstest.Msg {
		h := map[string][]string{"Nats-Msg-Id": {id}}
		return natstest.Msg{Header: h, Stored: now.Add(time.Millisecond)}
	}
	cfg := Config{Rate: 1, Batch: 1, Dur: time.Second}
	s := cfg.tally([]*member{m}, []natstest.Msg{msg("c0:1"), msg("c0:1")}, now, now.Add(time.Second), 0, 0)
	got := strings.Join(s.Problems, "; ")
	if !strings.Contains(got, "1 duplicate messages") || !strings.Contains(got, "1 of 2 acknowledged events missing") {
		t.Errorf("problems = %q, want a duplicate and a loss", got)
	}
}

package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/internal/rig"
)

func TestMain(m *testing.M) { rig.Main(m) }

func TestPayloadSeq(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`{"seq":42,"temp_c":21.5}`, 42, true},
		{` {"seq":7}`, 7, true},                              // leading space, last field
		{`{"temp_c":1,"seq":3}`, 0, false},                   // seq not first: not one of ours
		{`{"seq":-1}`, 0, false},                             // negative
		{`{"seq":"x"}`, 0, false},                            // not a number
		{`{"seq":12`, 0, false},                              // truncated
		{`[{"seq":1}]`, 0, false},                            // not an object
		{`{"seq":9007199254740993}`, 9007199254740993, true}, // exact past float64
	}
	for _, tt := range tests {
		got, ok := payloadSeq([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("payloadSeq(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// Event seq is the same event whichever system it is posted to: the same
// device_id, kind, ts and payload, as our JSON or as an OTLP log record.
func TestGenEqualWork(t *testing.T) {
	ours := &gen{sys: OursGroup, batch: 3, seed: 9, ts0: tsBase}
	otel := &gen{sys: OtelFsync, batch: 3, seed: 9, ts0: tsBase}
	ours.request() // advance both to the second request: seqs 3..5
	otel.request()
	first, ob := ours.request()
	first2, pb := otel.request()
	if first != 3 || first2 != 3 {
		t.Fatalf("second request starts at %d and %d, want 3", first, first2)
	}
	type event struct {
		Device, Kind string
		TS           int64
		Payload      string
	}
	var evs []struct {
		DeviceID string          `json:"device_id"`
		Kind     string          `json:"kind"`
		TS       int64           `json:"ts"`
		Payload  json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(ob, &evs); err != nil {
		t.Fatalf("our body %s: %v", ob, err)
	}
	var got []event
	for _, e := range evs {
		got = append(got, event{e.DeviceID, e.Kind, e.TS, string(e.Payload)})
	}
	var msg struct {
		ResourceLogs []struct {
			ScopeLogs []struct {
				LogRecords []struct {
					Attributes []struct {
						Key   string `json:"key"`
						Value struct {
							StringValue string `json:"stringValue"`
							IntValue    string `json:"intValue"`
						} `json:"value"`
					} `json:"attributes"`
					Body struct {
						StringValue string `json:"stringValue"`
					} `json:"body"`
				} `json:"logRecords"`
			} `json:"scopeLogs"`
		} `json:"resourceLogs"`
	}
	if err := json.Unmarshal(pb, &msg); err != nil {
		t.Fatalf("OTLP body %s: %v", pb, err)
	}
	var want []event
	for _, lr := range msg.ResourceLogs[0].ScopeLogs[0].LogRecords {
		var e event
		for _, a := range lr.Attributes {
			switch a.Key {
			case "device_id":
				e.Device = a.Value.StringValue
			case "kind":
				e.Kind = a.Value.StringValue
			case "ts":
				fmt.Sscan(a.Value.IntValue, &e.TS)
			}
		}
		e.Payload = lr.Body.StringValue
		want = append(want, e)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 3 {
		t.Errorf("ours:\n%v\nOTLP:\n%v", got, want)
	}
	if s, ok := payloadSeq([]byte(got[2].Payload)); !ok || s != 5 {
		t.Errorf("third event's seq = %d, %v; want 5", s, ok)
	}
	if _, b := (&gen{sys: OursGroup, batch: 1, seed: 9}).request(); !bytes.HasPrefix(b, []byte(`{"device_id"`)) {
		t.Errorf("single-event body is not one object: %s", b)
	}
}

// The receiver counts both delivery formats, dedupes by seq, finds what an
// acknowledgement set misses, and refuses the exporter's default protobuf.
func TestReceiver(t *testing.T) {
	rec := &seqs{}
	r, err := rig.StartReceiver(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	post := func(path, ct string, body []byte) int {
		t.Helper()
		resp, err := http.Post(r.Base()+path, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Our webhook: seqs 0 and 1, then 1 again (a re-shipped batch).
	if code := post("/ingest", "application/json", []byte(`[{"id":1,"payload":{"seq":0}},{"id":2,"payload":{"seq":1}}]`)); code != http.StatusOK {
		t.Fatalf("webhook batch: %d", code)
	}
	post("/ingest", "application/json", []byte(`[{"id":2,"payload":{"seq":1}}]`))
	// The peer: an OTLP/JSON request as gen makes it, seqs 0..2 (0 and 1 dups).
	g := &gen{sys: OtelFsync, batch: 3, seed: 1}
	_, body := g.request()
	if code := post("/v1/logs", "application/json", body); code != http.StatusOK {
		t.Fatalf("OTLP request: %d", code)
	}
	if code := post("/v1/logs", "application/x-protobuf", []byte{0x0a}); code != http.StatusUnsupportedMediaType {
		t.Errorf("protobuf: %d, want 415", code)
	}
	if got, want := rec.unique.Load(), int64(3); got != want {
		t.Errorf("unique = %d, want %d", got, want)
	}
	if got, want := rec.dups.Load(), int64(3); got != want {
		t.Errorf("dups = %d, want %d", got, want)
	}
	if got := r.Bad(); got != 1 {
		t.Errorf("bad = %d, want 1", got)
	}
	var acked bitset
	for _, s := range []int64{0, 2, 3, 200} {
		acked.set(s)
	}
	if got, want := rec.missing(acked), int64(2); got != want { // 3 and 200
		t.Errorf("missing = %d, want %d", got, want)
	}
	r.Reset()
	if rec.unique.Load() != 0 || rec.missing(acked) != 4 {
		t.Errorf("after reset: unique %d, missing %d", rec.unique.Load(), rec.missing(acked))
	}
}

func TestPeerConfigHasTheKnownPitfallsCovered(t *testing.T) {
	cfg := peerConfig("127.0.0.1:1234", "http://127.0.0.1:9", "/q", true)
	for _, want := range []string{
		"fsync: true", "encoding: json", "compression: none", "storage: file_storage",
		"queue_size: 5000000", "level: none", "endpoint: 127.0.0.1:1234",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("peer config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "wait_for_result") {
		t.Error("wait_for_result cannot go with a storage-backed queue")
	}
}

// TestCells runs a load cell and a kill check of our collector, and of the
// peer when its binary is there (make peer; or PEER_BIN), against the real
// binaries. It builds the collector, so it is skipped with -short.
func TestCells(t *testing.T) {
	bin := rig.Binary(t)
	dir := t.TempDir()
	systems := []System{OursGroup}
	peerBin := os.Getenv("PEER_BIN")
	if peerBin == "" {
		peerBin, _ = filepath.Abs("../../bin/otelcol-peer")
	}
	if CheckPeer(peerBin) == nil {
		systems = append(systems, OtelFsync)
	} else {
		t.Logf("no peer binary at %s (make peer): its cells are not run", peerBin)
	}
	e := Config{
		Collector: bin, Peer: peerBin, Dir: dir, Systems: systems,
		Conns: 4, Batches: []int{10}, Warm: 50 * time.Millisecond, Dur: 300 * time.Millisecond,
		Timeout: 5 * time.Second, DrainTimeout: 20 * time.Second,
		KillBatch: 10, KillAfter: 300 * time.Millisecond,
	}.Experiment()
	defer func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	if got, want := len(e.Cells), 2*len(systems); got != want {
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
		if v, ok := p.Value("lost-events"); !ok || v != 0 {
			t.Errorf("%s %s: lost-events = %v (%v)", c.Name, c.Label(), v, ok)
		}
		switch c.Name {
		case "PeerLoad":
			for _, u := range []string{"accepted-events/s", "cpu-ms/1k-events", "peak-rss-bytes", "p99-ns/req"} {
				if v, _ := p.Value(u); v <= 0 {
					t.Errorf("%s %s: %s = %v", c.Name, c.Label(), u, v)
				}
			}
		case "PeerKill":
			if v, _ := p.Value("acked-events"); v <= 0 {
				t.Errorf("%s %s: nothing acknowledged before the kill", c.Name, c.Label())
			}
		}
	}
}

func TestCheckPeer(t *testing.T) {
	for _, path := range []string{"", filepath.Join(t.TempDir(), "absent")} {
		if err := CheckPeer(path); err == nil || !strings.Contains(err.Error(), "make peer") {
			t.Errorf("CheckPeer(%q) = %v, want an error naming make peer", path, err)
		}
	}
}

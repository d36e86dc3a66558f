package server

import (
	"context"
	"testing"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// raceDetector is set under -race (race_test.go).
var raceDetector bool

// Allocation budgets of the single-event hot path, set from the measurement
// (issue 16) with a little room; allocation counts are deterministic where
// time is not. A change that adds garbage to every request fails here and
// must either find another way or raise the budget with a reason.
const (
	// serverAllocsPerRequest: what the server itself allocates for one
	// single-event POST /events beyond the store's insert (measured: 2, the
	// status recorder and http.MaxBytesReader's reader; before issue 16 it
	// was 19: promhttp's labels and delegator, the decoder's names and
	// strings, io.ReadAll, encoding/json, mime parsing, the job's channel).
	serverAllocsPerRequest = 3
	// storeAllocsPerInsert: one single-event Insert committed alone, a
	// transaction of its own (measured: 31, most of it database/sql's
	// transaction and statement bookkeeping).
	storeAllocsPerInsert = 34
	// storeAllocsPerEvent: what each further event of a request adds
	// (measured: 5, the bound arguments: three strings and the ts as
	// interface values, the payload as a string). A group commit of
	// single-event requests pays this per request, the rest per group.
	storeAllocsPerEvent = 6
)

// TestAllocsPerSingleEventRequest holds the hot path to its allocation
// budgets: the whole handler over a real store (group mode, the durable
// default) against the store's insert alone, and the store's cost per event.
func TestAllocsPerSingleEventRequest(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts mean nothing under -race (sync.Pool drops at random); make test runs this without it")
	}
	h, st := benchHandler(t, store.Options{})
	rq := newBenchRequest(singleEvent)
	ctx := context.Background()
	handler := testing.AllocsPerRun(300, func() {
		if code := rq.serve(h); code != 200 {
			t.Fatalf("status %d: %s", code, rq.w.body)
		}
	})
	one := []collector.Event{{DeviceID: "sensor-0042", Kind: "telemetry", TS: 1748722000000, Payload: []byte(`{"temp_c":21.4,"rh":40}`)}}
	insert := testing.AllocsPerRun(300, func() {
		if _, err := st.Insert(ctx, one); err != nil {
			t.Fatal(err)
		}
	})
	const n = 64
	many := storetest.Repeat(one[0], n)
	insertMany := testing.AllocsPerRun(100, func() {
		if _, err := st.Insert(ctx, many); err != nil {
			t.Fatal(err)
		}
	})
	perEvent := (insertMany - insert) / (n - 1)
	t.Logf("allocations: handler %.0f per request (server %.0f + store %.0f), store %.1f per further event", handler, handler-insert, insert, perEvent)
	if got := handler - insert; got > serverAllocsPerRequest {
		t.Errorf("the server allocates %.0f times per single-event request beyond the store, budget %d", got, serverAllocsPerRequest)
	}
	if insert > storeAllocsPerInsert {
		t.Errorf("a single-event insert allocates %.0f times, budget %d", insert, storeAllocsPerInsert)
	}
	if perEvent > storeAllocsPerEvent {
		t.Errorf("each further event of a request allocates %.1f times, budget %d", perEvent, storeAllocsPerEvent)
	}
}

package store_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// BenchmarkInsert measures durable single-event inserts (one request = one
// event) by P concurrent producers, in each write mode. events/s is the
// figure to compare; p99-ms is the per-insert latency tail. The
// sync=NORMAL rows measure the same writer without an fsync per commit: the
// price of durability. Run alone: `make bench`.
func BenchmarkInsert(b *testing.B) {
	for _, producers := range []int{1, 16, 64} {
		for _, mode := range store.Modes {
			b.Run(fmt.Sprintf("mode=%s/producers=%d", mode, producers), func(b *testing.B) {
				benchInsert(b, store.Options{Mode: mode}, producers)
			})
		}
		b.Run(fmt.Sprintf("mode=group/sync=normal/producers=%d", producers), func(b *testing.B) {
			benchInsert(b, store.Options{Mode: store.Group, Synchronous: "NORMAL"}, producers)
		})
	}
}

func benchInsert(b *testing.B, o store.Options, producers int) {
	s := storetest.MustOpen(b, o)
	ctx := context.Background()
	ev := []collector.Event{{DeviceID: "sensor-001", Kind: "telemetry", TS: 1, Payload: []byte(`{"temp_c":21.4}`)}}
	var next atomic.Int64
	lat := make([][]time.Duration, producers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := s.Insert(ctx, ev); err != nil {
					b.Error(err)
					return
				}
				lat[p] = append(lat[p], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
	st := s.Stats()
	b.ReportMetric(st.EventsPerCommit, "events/commit")
	if got := st.Written; got != int64(b.N) {
		b.Fatalf("written = %d, want %d", got, b.N)
	}
}

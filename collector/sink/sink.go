// Package sink holds the upstream destinations the uploader ships to: a
// JSON-lines log, an HTTP webhook, and a wrapper that fails on purpose.
package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"edgecollector/collector"
)

func shipped(collectorID string, events []collector.Event) []collector.Shipped {
	out := make([]collector.Shipped, len(events))
	for i, e := range events {
		out[i] = collector.Shipped{CollectorID: collectorID, ID: e.ID, DeviceID: e.DeviceID, Kind: e.Kind, Payload: e.Payload, TS: e.TS}
	}
	return out
}

// Log writes each shipped event as one JSON line to W.
type Log struct {
	mu sync.Mutex
	W  io.Writer
}

// NewLog returns a log sink writing to w.
func NewLog(w io.Writer) *Log { return &Log{W: w} }

func (l *Log) Ship(_ context.Context, collectorID string, events []collector.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	enc := json.NewEncoder(l.W)
	for _, s := range shipped(collectorID, events) {
		if err := enc.Encode(s); err != nil {
			return fmt.Errorf("log sink: %w", err)
		}
	}
	return nil
}

// Flaky wraps a sink and fails every Nth Ship call, to demonstrate backoff,
// health and backpressure without a real outage.
type Flaky struct {
	Sink  collector.Sink
	Every int

	mu    sync.Mutex
	calls int
}

func (f *Flaky) Ship(ctx context.Context, collectorID string, events []collector.Event) error {
	f.mu.Lock()
	f.calls++
	fail := f.Every > 0 && f.calls%f.Every == 0
	n := f.calls
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("flaky sink: simulated failure on call %d", n)
	}
	return f.Sink.Ship(ctx, collectorID, events)
}

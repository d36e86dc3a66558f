// Package sink holds the upstream destinations the uploader ships to, each a
// collector.Sink made with the collector's identity: a JSON-lines log (this
// file), an HTTP webhook that takes a batch as a JSON array (webhook.go),
// NATS JetStream with one message and one ack per event (nats.go), and
// Flaky, a wrapper that fails on purpose. A sink that takes or refuses a
// batch whole answers through Bisect (bisect.go). All of them send the same
// wire form of an event (wire.go), with the payload byte for byte as the
// producer sent it.
package sink

import (
	"context"
	"fmt"
	"io"
	"sync"

	"edgecollector/collector"
)

// Log writes each shipped event as one JSON line to W, unbuffered: an event
// counts as taken once its whole line was written. A failed write (a reader
// of stdout that went away: EPIPE) fails the cycle, and only the lines
// written whole before it are taken.
type Log struct {
	mu sync.Mutex
	w  io.Writer
	id string
}

// NewLog returns a log sink writing to w as collector collectorID.
func NewLog(w io.Writer, collectorID string) *Log { return &Log{w: w, id: collectorID} }

func (l *Log) Ship(_ context.Context, events []collector.Event) (collector.Receipt, error) {
	buf := getBuf()
	defer putBuf(buf)
	b := (*buf)[:0]
	ends := make([]int, len(events)) // where each event's line ends in b
	for i, e := range events {
		b = append(appendShipped(b, l.id, e), '\n')
		ends[i] = len(b)
	}
	*buf = b
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		return collector.TookAll(len(events)), nil
	}
	r := collector.Receipt{Fates: make([]collector.Fate, len(events))}
	for i, end := range ends {
		if end > n {
			break
		}
		r.Fates[i] = collector.Taken
	}
	return r, fmt.Errorf("log sink: %w", err)
}

// Flaky wraps a sink and fails every Nth Ship call, to demonstrate backoff,
// health and backpressure without a real outage.
type Flaky struct {
	Sink  collector.Sink
	Every int

	mu    sync.Mutex
	calls int
}

func (f *Flaky) Ship(ctx context.Context, events []collector.Event) (collector.Receipt, error) {
	f.mu.Lock()
	f.calls++
	fail := f.Every > 0 && f.calls%f.Every == 0
	n := f.calls
	f.mu.Unlock()
	if fail {
		return collector.Receipt{}, fmt.Errorf("flaky sink: simulated failure on call %d", n)
	}
	return f.Sink.Ship(ctx, events)
}

// Stats passes on the wrapped sink's counters, when it keeps any.
func (f *Flaky) Stats() any {
	if s, ok := f.Sink.(interface{ Stats() any }); ok {
		return s.Stats()
	}
	return nil
}

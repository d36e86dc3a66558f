// Package sink holds the upstream destinations the uploader ships to, each a
// collector.Sink: a JSON-lines log (this file), an HTTP webhook that takes a
// batch as a JSON array (webhook.go), NATS JetStream with one message and
// one ack per event (nats.go), and Flaky, a wrapper that fails on purpose.
// All of them send the same wire form of an event (appendShipped), with
// the payload byte for byte as the producer sent it.
package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"

	"edgecollector/collector"
)

// appendShipped appends the wire form of e (collector.Shipped's fields, in
// its order) to b. encoding/json would compact the payload and escape its
// <, > and &; receivers get the payload byte for byte as the producer sent
// it and the buffer stored it.
func appendShipped(b []byte, collectorID string, e collector.Event) []byte {
	b = append(b, `{"collector_id":`...)
	b = appendString(b, collectorID)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `,"device_id":`...)
	b = appendString(b, e.DeviceID)
	b = append(b, `,"kind":`...)
	b = appendString(b, e.Kind)
	if len(e.Payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, e.Payload...)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, e.TS, 10)
	return append(b, '}')
}

// appendString appends s as a JSON string, leaving <, > and & as they are.
func appendString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// encodeBatch is the webhook body: a JSON array of shipped events.
func encodeBatch(collectorID string, events []collector.Event) []byte {
	b := []byte{'['}
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendShipped(b, collectorID, e)
	}
	return append(b, ']')
}

// Log writes each shipped event as one JSON line to W, unbuffered: an event
// counts as delivered once its whole line was written. A failed write (a
// reader of stdout that went away: EPIPE) fails the cycle, and only the
// lines written whole before it are marked.
type Log struct {
	mu sync.Mutex
	W  io.Writer
}

// NewLog returns a log sink writing to w.
func NewLog(w io.Writer) *Log { return &Log{W: w} }

func (l *Log) Ship(_ context.Context, collectorID string, events []collector.Event) error {
	var b []byte
	ends := make([]int, len(events)) // where each event's line ends in b
	for i, e := range events {
		b = append(appendShipped(b, collectorID, e), '\n')
		ends[i] = len(b)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.W.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("log sink: %w", err)
	pe := &collector.PartialError{Err: err}
	for i, end := range ends {
		if end > n {
			break
		}
		pe.Delivered = append(pe.Delivered, events[i].ID)
	}
	if len(pe.Delivered) == 0 {
		return err
	}
	return pe
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

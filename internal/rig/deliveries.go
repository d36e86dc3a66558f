package rig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"edgecollector/collector"
)

// Key names one event across a fleet: the collector that shipped it and
// the id it gave it. Receivers deduplicate on it, as the README tells them to.
type Key struct {
	CollectorID string
	ID          int64
}

// Delivery is what a receiver took of one event.
type Delivery struct {
	// First is the first delivery, its payload the raw bytes off the wire
	// (a json.RawMessage is copied verbatim by the decoder, never re-encoded).
	First collector.Shipped
	Count int // deliveries, the first included
	// Differs is set when a later delivery was not byte-identical to the first.
	Differs bool
}

// Deliveries is the Recorder of the ledger: it takes the webhook's batches
// (JSON arrays of collector.Shipped) and keeps every event by Key.
type Deliveries struct {
	mu sync.Mutex
	m  map[Key]*Delivery
}

// Take records a batch; a body that is not a JSON array of shipped events
// is refused.
func (d *Deliveries) Take(_ *http.Request, body []byte) (int, error) {
	var batch []collector.Shipped
	if err := json.Unmarshal(body, &batch); err != nil {
		return 0, fmt.Errorf("not a JSON array of events: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = make(map[Key]*Delivery)
	}
	for _, e := range batch {
		k := Key{e.CollectorID, e.ID}
		dl := d.m[k]
		if dl == nil {
			d.m[k] = &Delivery{First: e, Count: 1}
			continue
		}
		dl.Count++
		if f := dl.First; f.DeviceID != e.DeviceID || f.Kind != e.Kind || f.TS != e.TS || !bytes.Equal(f.Payload, e.Payload) {
			dl.Differs = true
		}
	}
	return len(batch), nil
}

// Reset forgets every delivery.
func (d *Deliveries) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m = nil
}

// Snapshot is a copy of what was delivered so far.
func (d *Deliveries) Snapshot() map[Key]Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[Key]Delivery, len(d.m))
	for k, v := range d.m {
		out[k] = *v
	}
	return out
}

// Counter is a Recorder that only counts: the batches are read as JSON
// arrays, their events counted and forgotten. For a receiver under load
// whose deliveries no ledger checks.
type Counter struct{}

// Take counts a batch's events; a body that is not a JSON array is refused.
func (Counter) Take(_ *http.Request, body []byte) (int, error) {
	var batch []struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		return 0, err
	}
	return len(batch), nil
}

// Reset does nothing: a Counter keeps nothing.
func (Counter) Reset() {}

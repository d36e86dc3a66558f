package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"edgecollector/collector"
)

// sinkMode is how the receiver answers the collector's webhook.
type sinkMode int

const (
	sinkOK      sinkMode = iota // take the batch, answer 200
	sinkFail                    // answer 500, take nothing
	sinkTimeout                 // hold the request, unanswered, until the collector gives up
	sinkSlow                    // wait slowDelay, then take the batch and answer 200
	sinkRefused                 // not listening: connection refused
)

func (m sinkMode) String() string {
	return [...]string{"ok", "500", "timeout", "slow", "refused"}[m]
}

// trap is a one-shot ambush for the next batch, so a kill lands in the
// uploader's window between ship and mark.
type trap int

const (
	trapNone trap = iota
	// trapInFlight takes the batch and holds the answer until the collector
	// goes away: the kill lands while the sink request is in flight.
	trapInFlight
	// trapAnswered takes the batch, answers 200 and flushes it: the kill
	// lands right after, while the collector marks the batch uploaded.
	trapAnswered
)

// delivery is what the receiver holds of one event id.
type delivery struct {
	first collector.Shipped // the first delivery, payload as raw bytes off the wire
	count int
	// differs is set when a later delivery of the id was not byte-identical
	// to the first.
	differs bool
}

// receiver is the upstream: a loopback webhook that keeps every event it
// takes, payloads as the raw bytes the collector sent (a json.RawMessage
// is copied verbatim by the decoder, never re-encoded).
type receiver struct {
	addr string
	url  string

	mu        sync.Mutex
	srv       *http.Server
	serving   sync.WaitGroup
	mode      sinkMode
	slowDelay time.Duration
	release   chan struct{} // closed when held requests must be let go
	trap      trap
	sprung    chan struct{} // signalled when a trap caught a batch
	got       map[int64]*delivery
	taken     int64 // events taken, duplicates included
	requests  int64 // batches that reached the handler
	badBodies int64
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r := &receiver{
		addr:    ln.Addr().String(),
		release: make(chan struct{}),
		sprung:  make(chan struct{}, 1),
		got:     make(map[int64]*delivery),
	}
	r.url = "http://" + r.addr + "/ingest"
	r.serve(ln)
	return r, nil
}

// serve serves on ln until the server is closed; r.mu held or not yet shared.
func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.srv = srv
	r.serving.Add(1)
	go func() { // owned: close (or a refused phase) closes srv and waits
		defer r.serving.Done()
		srv.Serve(ln)
	}()
}

// reset forgets everything taken, for a fresh cell.
func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = make(map[int64]*delivery)
	r.taken, r.requests, r.badBodies = 0, 0, 0
	r.trap = trapNone
	select {
	case <-r.sprung:
	default:
	}
}

// setMode switches how batches are answered. Requests held by an earlier
// mode are let go; sinkRefused closes the listener and every connection,
// and leaving it listens again on the same address.
func (r *receiver) setMode(m sinkMode, slow time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.release)
	r.release = make(chan struct{})
	old := r.mode
	r.mode, r.slowDelay = m, slow
	switch {
	case m == sinkRefused && old != sinkRefused:
		srv := r.srv
		r.mu.Unlock()
		srv.Close()
		r.serving.Wait()
		r.mu.Lock()
	case m != sinkRefused && old == sinkRefused:
		var ln net.Listener
		var err error
		// The port was ours a moment ago; a few tries cover TIME_WAIT
		// oddities, and nothing else on loopback should take it.
		for range 50 {
			if ln, err = net.Listen("tcp", r.addr); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("receiver: listen again on %s: %w", r.addr, err)
		}
		r.serve(ln)
	}
	return nil
}

// arm sets the trap for the next batch.
func (r *receiver) arm(t trap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trap = t
	select {
	case <-r.sprung:
	default:
	}
}

// disarm removes a trap that nothing has sprung.
func (r *receiver) disarm() { r.arm(trapNone) }

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	if err != nil {
		return // the collector went away mid-body
	}
	r.mu.Lock()
	r.requests++
	mode, slow, release, tr := r.mode, r.slowDelay, r.release, r.trap
	if tr != trapNone {
		r.trap = trapNone
	}
	r.mu.Unlock()

	switch {
	case tr != trapNone:
		if !r.take(body) {
			http.Error(w, "bad batch", http.StatusBadRequest)
			return
		}
		if tr == trapAnswered {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"ok":true}`+"\n")
			http.NewResponseController(w).Flush()
		}
		select {
		case r.sprung <- struct{}{}:
		default:
		}
		if tr == trapInFlight {
			hold(req.Context(), release, time.Minute)
		}
		return
	case mode == sinkFail:
		http.Error(w, `{"error":"receiver told to fail"}`, http.StatusInternalServerError)
		return
	case mode == sinkTimeout:
		hold(req.Context(), release, time.Minute)
		// Released by a change of mode with the collector still waiting: an
		// error, or net/http would answer an empty 200 for a batch never taken.
		http.Error(w, `{"error":"receiver held the batch"}`, http.StatusServiceUnavailable)
		return
	case mode == sinkSlow:
		t := time.NewTimer(slow)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return
		}
	}
	if !r.take(body) {
		http.Error(w, "bad batch", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`+"\n")
}

// hold blocks until the client goes away, the mode changes, or max passes.
func hold(ctx context.Context, release <-chan struct{}, max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-release:
	case <-t.C:
	}
}

// take records a batch. A body that is not a JSON array of shipped events
// is counted (the ledger reports it) and refused.
func (r *receiver) take(body []byte) bool {
	var batch []collector.Shipped
	if err := json.Unmarshal(body, &batch); err != nil {
		r.mu.Lock()
		r.badBodies++
		r.mu.Unlock()
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range batch {
		r.taken++
		d := r.got[e.ID]
		if d == nil {
			r.got[e.ID] = &delivery{first: e, count: 1}
			continue
		}
		d.count++
		f := d.first
		if f.DeviceID != e.DeviceID || f.Kind != e.Kind || f.TS != e.TS || f.CollectorID != e.CollectorID || !bytes.Equal(f.Payload, e.Payload) {
			d.differs = true
		}
	}
	return true
}

// snapshot returns what was delivered; call it once the collector has stopped.
func (r *receiver) snapshot() (got map[int64]*delivery, taken, badBodies int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got, r.taken, r.badBodies
}

func (r *receiver) close() error {
	if err := r.setMode(sinkOK, 0); err != nil {
		return err
	}
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	err := srv.Close()
	r.serving.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

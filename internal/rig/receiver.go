package rig

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// A Recorder keeps what a Receiver takes. The receiver calls Take for each
// batch it accepts, from its handlers' goroutines, and Reset between cells.
type Recorder interface {
	// Take records one batch: the request (its path, its headers) and its
	// whole body. It returns how many events the batch held, or an error
	// that refuses it: 400, or a Refusal's status.
	Take(req *http.Request, body []byte) (int, error)
	// Reset forgets everything taken.
	Reset()
}

// Refusal is a Take error with the status to answer it with.
type Refusal struct {
	Status int
	Msg    string
}

func (r *Refusal) Error() string { return r.Msg }

// Mode is how a Receiver answers the batches it is sent.
type Mode struct {
	kind   modeKind
	status int           // fail
	delay  time.Duration // slow
}

type modeKind int

const (
	kindTake modeKind = iota
	kindFail
	kindHold
	kindStall
	kindSlow
	kindRefuse
)

var (
	// Take takes each batch and answers 200.
	Take = Mode{kind: kindTake}
	// Hold takes nothing: it holds each request unanswered until the
	// collector gives up, the mode changes (then 503) or a minute passes.
	Hold = Mode{kind: kindHold}
	// Stall takes each batch, then holds the answer until the collector
	// gives up, the mode changes (then 200) or a minute passes: a delivery
	// the collector never hears of.
	Stall = Mode{kind: kindStall}
	// Refuse stops listening: connections are refused. Leaving it listens
	// again on the same address.
	Refuse = Mode{kind: kindRefuse}
)

// Fail answers each batch with status, taking nothing.
func Fail(status int) Mode { return Mode{kind: kindFail, status: status} }

// Slow waits d, then takes each batch and answers 200.
func Slow(d time.Duration) Mode { return Mode{kind: kindSlow, delay: d} }

func (m Mode) String() string {
	switch m.kind {
	case kindFail:
		return fmt.Sprint(m.status)
	case kindSlow:
		return "slow " + m.delay.String()
	}
	return [...]string{"take", "", "hold", "stall", "", "refuse"}[m.kind]
}

// holdMax bounds how long a held request waits for its release.
const holdMax = time.Minute

// Receiver is the upstream the collector ships to: a webhook endpoint on
// loopback that records what it takes (its Recorder) and fails on command
// (Set, Trap). Its methods may be called from several goroutines.
type Receiver struct {
	// URL is where the collector ships: http://127.0.0.1:port/ingest.
	URL  string
	addr string
	rec  Recorder

	mu       sync.Mutex
	srv      *http.Server
	serving  sync.WaitGroup
	mode     Mode
	release  chan struct{} // closed when held requests must be let go
	trap     *trap
	taken    int64 // events taken, duplicates included
	requests int64 // batches that reached the handler
	bad      int64 // batches the recorder refused
}

// trap is a one-shot mode for the next batch; sprung is closed once it
// has caught one.
type trap struct {
	mode   Mode
	sprung chan struct{}
}

// StartReceiver listens on a loopback port and serves, in mode Take, until
// Close. Everything it takes goes to rec.
func StartReceiver(rec Recorder) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r := &Receiver{addr: ln.Addr().String(), rec: rec, release: make(chan struct{})}
	r.URL = "http://" + r.addr + "/ingest"
	r.serve(ln)
	return r, nil
}

// Base is the receiver's address as a URL without a path: http://127.0.0.1:port.
func (r *Receiver) Base() string { return "http://" + r.addr }

// serve serves on ln until the server is closed; r.mu held, or r not yet shared.
func (r *Receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.srv = srv
	r.serving.Add(1)
	go func() { // owned: Close (or a Refuse) closes srv and waits
		defer r.serving.Done()
		srv.Serve(ln)
	}()
}

// Set switches how batches are answered. Requests held by the earlier mode
// are let go.
func (r *Receiver) Set(m Mode) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.release)
	r.release = make(chan struct{})
	old := r.mode
	r.mode = m
	switch {
	case m.kind == kindRefuse && old.kind != kindRefuse:
		srv := r.srv
		r.mu.Unlock()
		srv.Close()
		r.serving.Wait()
		r.mu.Lock()
	case m.kind != kindRefuse && old.kind == kindRefuse:
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

// Trap answers the next batch in mode m (Stall or Take), whatever the
// receiver's mode, and returns a channel closed once it has taken that batch
// and, in Take, answered it: a SIGKILL then lands in the collector's window
// between ship and mark. A later Trap or Disarm replaces it.
func (r *Receiver) Trap(m Mode) <-chan struct{} {
	t := &trap{mode: m, sprung: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trap = t
	return t.sprung
}

// Disarm removes a trap that nothing has sprung.
func (r *Receiver) Disarm() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trap = nil
}

// Reset forgets everything taken and any trap, for a fresh cell.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Reset()
	r.taken, r.requests, r.bad = 0, 0, 0
	r.trap = nil
}

// Taken is how many events the receiver has taken, duplicates included.
func (r *Receiver) Taken() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.taken
}

// Requests is how many batches reached the receiver, whatever their answer.
func (r *Receiver) Requests() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Bad is how many batches the recorder refused (not a batch it can read).
func (r *Receiver) Bad() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := readBody(req)
	if err != nil {
		var rf *Refusal
		if errors.As(err, &rf) {
			r.mu.Lock()
			r.requests++
			r.bad++
			r.mu.Unlock()
			http.Error(w, rf.Msg, rf.Status)
		}
		return // or the collector went away mid-body
	}
	r.mu.Lock()
	r.requests++
	mode, release, tr := r.mode, r.release, r.trap
	if tr != nil {
		mode, r.trap = tr.mode, nil
	}
	r.mu.Unlock()

	switch mode.kind {
	case kindFail:
		answer(w, mode.status, `{"error":"receiver told to fail"}`)
		return
	case kindHold:
		hold(req.Context(), release)
		// Let go with the collector still waiting: an error, or net/http
		// would answer an empty 200 for a batch never taken.
		answer(w, http.StatusServiceUnavailable, `{"error":"receiver held the batch"}`)
		return
	case kindSlow:
		if Sleep(req.Context(), mode.delay) != nil {
			return
		}
	}
	if !r.take(w, req, body) {
		return
	}
	if mode.kind == kindStall {
		if tr != nil {
			close(tr.sprung)
		}
		hold(req.Context(), release)
		if req.Context().Err() != nil {
			return // the collector gave up or died; it never hears back
		}
	}
	answer(w, http.StatusOK, `{}`)
	if tr != nil && mode.kind != kindStall {
		http.NewResponseController(w).Flush()
		close(tr.sprung)
	}
}

// maxBody bounds a batch the receiver reads, compressed or not.
const maxBody = 64 << 20

// readBody reads a batch, inflating it when it came with
// Content-Encoding: gzip (-webhook-gzip). An encoding it does not know, or
// a gzip stream that does not inflate, is a *Refusal (415, 400).
func readBody(req *http.Request) ([]byte, error) {
	var src io.Reader = req.Body
	switch enc := req.Header.Get("Content-Encoding"); strings.ToLower(enc) {
	case "", "identity":
	case "gzip":
		z, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, &Refusal{Status: http.StatusBadRequest, Msg: "gzip: " + err.Error()}
		}
		defer z.Close()
		src = z
	default:
		return nil, &Refusal{Status: http.StatusUnsupportedMediaType, Msg: "unknown Content-Encoding " + enc}
	}
	body, err := io.ReadAll(io.LimitReader(src, maxBody))
	if err != nil && req.Header.Get("Content-Encoding") != "" && req.Context().Err() == nil {
		return nil, &Refusal{Status: http.StatusBadRequest, Msg: "gzip: " + err.Error()}
	}
	return body, err
}

// take hands body to the recorder; a refusal is answered and counted.
func (r *Receiver) take(w http.ResponseWriter, req *http.Request, body []byte) bool {
	n, err := r.rec.Take(req, body)
	if err != nil {
		status := http.StatusBadRequest
		var rf *Refusal
		if errors.As(err, &rf) {
			status = rf.Status
		}
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		http.Error(w, err.Error(), status)
		return false
	}
	r.mu.Lock()
	r.taken += int64(n)
	r.mu.Unlock()
	return true
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body+"\n")
}

// hold blocks until the client goes away, release is closed, or holdMax passes.
func hold(ctx context.Context, release <-chan struct{}) {
	t := time.NewTimer(holdMax)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-release:
	case <-t.C:
	}
}

// Close lets held requests go, stops serving and waits for the server.
func (r *Receiver) Close() error {
	r.mu.Lock()
	close(r.release)
	r.release = make(chan struct{})
	srv := r.srv
	refused := r.mode.kind == kindRefuse
	r.mu.Unlock()
	if refused {
		return nil // closed already
	}
	err := srv.Close()
	r.serving.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is the upstream both systems deliver to, in the harness's
// process. It decodes our webhook's JSON array and OTLP/JSON logs alike,
// finds each event's seq in its payload, and counts what arrives: unique
// events (a bitset over seq) and duplicates (a seq seen before).
type receiver struct {
	srv  *http.Server
	base string // http://127.0.0.1:port
	done chan struct{}

	mu     sync.Mutex
	seen   bitset
	unique atomic.Int64
	dups   atomic.Int64
	bad    atomic.Int64 // requests it could not decode
	down   atomic.Bool  // refuse every delivery with 503 (an uplink outage)
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r := &receiver{base: "http://" + ln.Addr().String(), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ingest", r.ingest)    // our webhook sink
	mux.HandleFunc("POST /v1/logs", r.otlpLogs) // the peer's otlp_http exporter
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { // owned: ends on close
		defer close(r.done)
		r.srv.Serve(ln)
	}()
	return r, nil
}

// ingest takes one batch from our webhook sink: a JSON array of shipped
// events whose payload is the one the harness posted, byte for byte.
func (r *receiver) ingest(w http.ResponseWriter, req *http.Request) {
	if r.down.Load() {
		http.Error(w, "upstream down", http.StatusServiceUnavailable)
		return
	}
	var batch []struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.NewDecoder(req.Body).Decode(&batch); err != nil {
		r.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	seqs := make([]int64, 0, len(batch))
	for _, e := range batch {
		s, ok := payloadSeq(e.Payload)
		if !ok {
			r.bad.Add(1)
			http.Error(w, "payload without seq", http.StatusBadRequest)
			return
		}
		seqs = append(seqs, s)
	}
	r.add(seqs)
	w.WriteHeader(http.StatusNoContent)
}

// otlpLogs takes one ExportLogsServiceRequest in OTLP/JSON: each log
// record's body is the payload string. Protobuf (the exporter's default)
// is refused, so a peer left on its default encoding fails loudly.
func (r *receiver) otlpLogs(w http.ResponseWriter, req *http.Request) {
	if r.down.Load() {
		http.Error(w, "upstream down", http.StatusServiceUnavailable)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" || req.Header.Get("Content-Encoding") != "" {
		r.bad.Add(1)
		http.Error(w, "want uncompressed application/json, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var msg otlpRequest
	if err := json.NewDecoder(req.Body).Decode(&msg); err != nil {
		r.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var seqs []int64
	for _, rl := range msg.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				s, ok := payloadSeq([]byte(lr.Body.StringValue))
				if !ok {
					r.bad.Add(1)
					http.Error(w, "log record without seq", http.StatusBadRequest)
					return
				}
				seqs = append(seqs, s)
			}
		}
	}
	r.add(seqs)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}"))
}

// otlpRequest is the part of an OTLP/JSON ExportLogsServiceRequest the
// receiver reads.
type otlpRequest struct {
	ResourceLogs []struct {
		ScopeLogs []struct {
			LogRecords []struct {
				Body struct {
					StringValue string `json:"stringValue"`
				} `json:"body"`
			} `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
}

// payloadSeq reads seq from a payload the harness generated: it always
// starts with {"seq":N, so no full JSON decode is needed.
func payloadSeq(p []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(p), []byte(`{"seq":`))
	if !ok {
		return 0, false
	}
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func (r *receiver) add(seqs []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range seqs {
		if r.seen.set(s) {
			r.unique.Add(1)
		} else {
			r.dups.Add(1)
		}
	}
}

// reset forgets everything: each cell starts from an empty receiver.
func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = nil
	r.unique.Store(0)
	r.dups.Store(0)
	r.bad.Store(0)
}

// missing counts the seqs set in acked that the receiver has not seen.
func (r *receiver) missing(acked bitset) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for i, w := range acked {
		var s uint64
		if i < len(r.seen) {
			s = r.seen[i]
		}
		n += int64(bits.OnesCount64(w &^ s))
	}
	return n
}

func (r *receiver) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	<-r.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// bitset is a growable set of non-negative ints.
type bitset []uint64

// set adds i and reports whether it was new.
func (b *bitset) set(i int64) bool {
	w := int(i >> 6)
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w-len(*b)+1+len(*b)/2)...)
	}
	m := uint64(1) << (i & 63)
	old := (*b)[w]
	(*b)[w] = old | m
	return old&m == 0
}

func (b bitset) count() int64 {
	var n int64
	for _, w := range b {
		n += int64(bits.OnesCount64(w))
	}
	return n
}

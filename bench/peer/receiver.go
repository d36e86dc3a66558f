package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/bits"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"edgecollector/internal/rig"
)

// seqs is what the receiver both systems deliver to keeps (a rig.Recorder):
// it decodes our webhook's JSON array and OTLP/JSON logs alike, finds each
// event's seq in its payload, and counts what arrives: unique events (a
// bitset over seq) and duplicates (a seq seen before).
type seqs struct {
	mu     sync.Mutex
	seen   bitset
	unique atomic.Int64
	dups   atomic.Int64
}

// Take records a batch from our webhook sink (POST /ingest) or from the
// peer's otlp_http exporter (POST /v1/logs).
func (r *seqs) Take(req *http.Request, body []byte) (int, error) {
	var got []int64
	var err error
	if req.URL.Path == "/v1/logs" {
		got, err = otlpSeqs(req, body)
	} else {
		got, err = webhookSeqs(body)
	}
	if err != nil {
		return 0, err
	}
	r.add(got)
	return len(got), nil
}

// webhookSeqs reads a batch of our webhook sink: a JSON array of shipped
// events whose payload is the one the harness posted, byte for byte.
func webhookSeqs(body []byte) ([]int64, error) {
	var batch []struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		return nil, err
	}
	out := make([]int64, 0, len(batch))
	for _, e := range batch {
		s, ok := payloadSeq(e.Payload)
		if !ok {
			return nil, errors.New("payload without seq")
		}
		out = append(out, s)
	}
	return out, nil
}

// otlpSeqs reads one ExportLogsServiceRequest in OTLP/JSON: each log
// record's body is the payload string. Protobuf (the exporter's default)
// is refused with 415, so a peer left on its default encoding fails loudly.
func otlpSeqs(req *http.Request, body []byte) ([]int64, error) {
	if ct := req.Header.Get("Content-Type"); ct != "application/json" || req.Header.Get("Content-Encoding") != "" {
		return nil, &rig.Refusal{Status: http.StatusUnsupportedMediaType, Msg: "want uncompressed application/json, got " + ct}
	}
	var msg otlpRequest
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, err
	}
	var out []int64
	for _, rl := range msg.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				s, ok := payloadSeq([]byte(lr.Body.StringValue))
				if !ok {
					return nil, errors.New("log record without seq")
				}
				out = append(out, s)
			}
		}
	}
	return out, nil
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

func (r *seqs) add(got []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range got {
		if r.seen.set(s) {
			r.unique.Add(1)
		} else {
			r.dups.Add(1)
		}
	}
}

// Reset forgets everything: each cell starts from an empty receiver.
func (r *seqs) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = nil
	r.unique.Store(0)
	r.dups.Store(0)
}

// missing counts the seqs set in acked that the receiver has not seen.
func (r *seqs) missing(acked bitset) int64 {
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

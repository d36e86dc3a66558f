package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// msgRequestFailed is the log line of a request that failed with a 5xx.
const msgRequestFailed = "request failed"

// repeatEvery: of the request-failed lines with one status, one per period
// is written; the next one written says how many were left out.
const repeatEvery = 10 * time.Second

// quietRepeats writes the first request-failed line per status in each
// period and counts the others: a full backlog refuses every request (one
// WARN each made 128,000 lines, 18 MB in 5 s), and a flood of identical
// lines tells an operator nothing the first one and a count do not. Every
// other record passes untouched.
type quietRepeats struct {
	slog.Handler
	every time.Duration
	st    *repeatState // shared by the handlers WithAttrs and WithGroup derive
}

type repeatState struct {
	mu      sync.Mutex
	last    map[int64]time.Time
	dropped map[int64]int64
}

func newQuietRepeats(h slog.Handler, every time.Duration) *quietRepeats {
	return &quietRepeats{Handler: h, every: every,
		st: &repeatState{last: map[int64]time.Time{}, dropped: map[int64]int64{}}}
}

func (q *quietRepeats) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != msgRequestFailed {
		return q.Handler.Handle(ctx, r)
	}
	var status int64
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "status" {
			status = a.Value.Int64()
			return false
		}
		return true
	})
	st := q.st
	st.mu.Lock()
	if last, ok := st.last[status]; ok && r.Time.Sub(last) < q.every {
		st.dropped[status]++
		st.mu.Unlock()
		return nil
	}
	st.last[status] = r.Time
	n := st.dropped[status]
	st.dropped[status] = 0
	st.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int64("same_status_not_logged", n))
	}
	return q.Handler.Handle(ctx, r)
}

func (q *quietRepeats) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &quietRepeats{Handler: q.Handler.WithAttrs(attrs), every: q.every, st: q.st}
}

func (q *quietRepeats) WithGroup(name string) slog.Handler {
	return &quietRepeats{Handler: q.Handler.WithGroup(name), every: q.every, st: q.st}
}

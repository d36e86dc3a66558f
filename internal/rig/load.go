package rig

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is where producers post: a restarted collector listens on a new
// port, and its epoch (restarts so far) goes with every answer it gives.
// Loads may share one.
type Target struct{ p atomic.Pointer[target] }

type target struct {
	url   string // http://addr/events
	epoch int
}

// Set points the producers at url; epoch counts the collector's restarts.
func (t *Target) Set(url string, epoch int) { t.p.Store(&target{url, epoch}) }

// Load is a set of producers: Workers goroutines posting requests of Batch
// events to a Target, each request tagged, until stopped or Limit requests
// are out. Every request and its answer go into the Ledger. Set the fields,
// then Start; a Load runs once.
type Load struct {
	Name    string // tags its requests
	Workers int
	Batch   int   // events per request
	Limit   int64 // requests in all; 0: until stopped
	Seed    uint64
	Events  Generator // Plain when nil
	Target  *Target
	Ledger  *Ledger
	// RetryCap, when set, has a producer honour a 503's or 507's
	// Retry-After, loosely and never past RetryCap; otherwise, as after any
	// failure, it pauses a few milliseconds (no busy loop on a dead port).
	RetryCap time.Duration
	// Pause is a producer's pause after each acknowledged request (a
	// gentler load); 0 for a closed loop.
	Pause time.Duration

	client *http.Client
	tr     *http.Transport
	stopc  chan struct{}
	once   sync.Once // init
	stop   sync.Once
	wg     sync.WaitGroup
	req    atomic.Int64 // requests numbered so far

	sent, acked, failed, ackedEvents atomic.Int64

	mu       sync.Mutex
	failures map[string]int // why requests failed
}

// init readies the load to post; Start and Post call it.
func (l *Load) init() {
	l.once.Do(func() {
		l.tr = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: l.Workers + 2,
		}
		// Longer than the collector's whole retry budget (~2.5 s) and a held
		// lock: a slow answer is an answer, and it is checked.
		l.client = &http.Client{Transport: l.tr, Timeout: 20 * time.Second}
		l.stopc = make(chan struct{})
		l.failures = make(map[string]int)
		if l.Events == nil {
			l.Events = Plain
		}
	})
}

// Start launches the workers.
func (l *Load) Start() {
	l.init()
	for w := range l.Workers {
		l.wg.Go(func() { l.work(w) }) // owned: Stop waits for it
	}
}

func (l *Load) work(w int) {
	rng := rand.New(rand.NewPCG(l.Seed, uint64(w)))
	for {
		select {
		case <-l.stopc:
			return
		default:
		}
		req := l.req.Add(1)
		if l.Limit > 0 && req > l.Limit {
			return
		}
		status, retry := l.post(Tag{l.Name, req}, w, rng)
		var pause time.Duration
		switch {
		case (status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage) && l.RetryCap > 0:
			// Somewhere in the second half of Retry-After, so producers do
			// not march back in step.
			pause = min(retry, l.RetryCap)
			pause = pause/2 + time.Duration(rng.Int64N(int64(pause/2)+1))
		case status != http.StatusOK:
			pause = 5*time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Millisecond)))
		default:
			pause = l.Pause
		}
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-l.stopc:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// Stop stops issuing requests and waits for those in flight.
func (l *Load) Stop() {
	l.init()
	l.stop.Do(func() { close(l.stopc) })
	l.wg.Wait()
	l.tr.CloseIdleConnections()
}

// Wait waits, at most timeout, until the workers are done: every request
// of a Limit answered. It reports whether they are.
func (l *Load) Wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }() // owned: ends with the workers, which Stop ends
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Post sends one request from outside the workers (a probe) and returns
// its status (0: no answer).
func (l *Load) Post() int {
	l.init()
	t := Tag{l.Name, l.req.Add(1)}
	status, _ := l.post(t, l.Workers, rand.New(rand.NewPCG(l.Seed, uint64(t.Req)<<32)))
	return status
}

// post sends request t from worker w and records the answer in the ledger.
// It returns the status (0: none) and the Retry-After asked for.
func (l *Load) post(t Tag, w int, rng *rand.Rand) (int, time.Duration) {
	tgt := l.Target.p.Load()
	if tgt == nil {
		return 0, 0 // nowhere to post yet
	}
	events := l.Events(rng, t, w, l.Batch)
	l.Ledger.Sent(t, len(events))
	status, retry, body, why := l.do(tgt.url, Body(events))
	status = l.Ledger.Answer(t, tgt.epoch, events, status, body)
	if status == http.StatusOK {
		l.acked.Add(1)
		l.ackedEvents.Add(int64(len(events)))
		return status, retry
	}
	if why == "" {
		why = fmt.Sprintf("HTTP %d", status)
	}
	l.failed.Add(1)
	l.mu.Lock()
	l.failures[why]++
	l.mu.Unlock()
	return status, retry
}

// do posts body to url. It returns the status (0 for no answer, with why),
// the Retry-After asked for and the answer's body.
func (l *Load) do(url string, body []byte) (status int, retry time.Duration, answer []byte, why string) {
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				l.sent.Add(1)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, nil, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, 0, nil, "no answer (" + errKind(err) + ")"
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, 0, nil, "answer cut (" + errKind(err) + ")" // what it said is unknown
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retry = time.Duration(s) * time.Second
	}
	return resp.StatusCode, retry, b, ""
}

// errKind shortens a transport error to what a reader wants to know.
func errKind(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "EOF", "timeout", "broken pipe"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}

// Sent is how many requests were written whole to their connections.
func (l *Load) Sent() int64 { return l.sent.Load() }

// Acked is how many requests were answered 200.
func (l *Load) Acked() int64 { return l.acked.Load() }

// Failed is how many requests got no answer or another status.
func (l *Load) Failed() int64 { return l.failed.Load() }

// AckedEvents is how many events were acknowledged.
func (l *Load) AckedEvents() int64 { return l.ackedEvents.Load() }

// Failures counts the failed requests by why they failed.
func (l *Load) Failures() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.failures)
}

package scenarios

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// load is a set of goroutines posting to the collector at once, in the
// background of a script, so that something can happen to the collector
// (a held lock, a signal, SIGKILL, a diagnostic reader) while requests are
// in flight. Every 200 goes into the ledger; anything else is counted.
type load struct {
	name    string
	events  int   // events per request
	limit   int64 // requests in all; 0: until stopped
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup

	issued, acked, failed atomic.Int64
	sent                  atomic.Int64 // requests written whole to a connection
	ackedEvents           atomic.Int64

	mu       sync.Mutex
	failures map[string]int // why requests failed, for the log
}

func (l *load) run(st *state, conc int) {
	for w := range conc {
		l.wg.Add(1)
		go func() { // owned: stopAndWait waits for it
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req := l.issued.Add(1)
				if l.limit > 0 && req > l.limit {
					return
				}
				if err := l.post(st, w, req); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					l.failures[err.Error()]++
					l.mu.Unlock()
					// Not synchronisation: keeps a dead collector's
					// "connection refused" from spinning a core.
					select {
					case <-l.stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
	}
}

func (l *load) post(st *state, worker int, req int64) error {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range l.events {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"device_id":"%s-%d","kind":"burst","payload":{"load":%q,"req":%d,"i":%d,"n":%d}}`,
			l.name, worker, l.name, req, i, l.events)
	}
	b.WriteByte(']')
	body := b.Bytes()
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				l.sent.Add(1)
			}
		},
	})
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, st.url("/events"), bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := st.client.Do(hreq)
	if err != nil {
		return fmt.Errorf("no answer (%s)", errKind(err))
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("answer cut (%s)", errKind(err))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := st.record(body, respBody); err != nil {
		return err
	}
	l.acked.Add(1)
	l.ackedEvents.Add(int64(l.events))
	return nil
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

func (l *load) stopAndWait() {
	l.stopped.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *load) report(ts *testscript.TestScript) {
	fmt.Fprintf(ts.Stdout(), "requests: %d acknowledged, %d failed\n", l.acked.Load(), l.failed.Load())
	fmt.Fprintf(ts.Stdout(), "events: %d acknowledged\n", l.ackedEvents.Load())
	l.mu.Lock()
	defer l.mu.Unlock()
	for why, n := range l.failures {
		ts.Logf("load %s: %d requests failed: %s", l.name, n, why)
	}
}

// load start NAME [-c C] [-events E] [-n N] | sent NAME N | acked NAME N | wait NAME | stop NAME
func cmdLoad(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "load")
	const usage = "load start NAME [-c C] [-events E] [-n N] | load sent|acked NAME N | load wait|stop NAME"
	if len(args) < 2 {
		ts.Fatalf("usage: %s", usage)
	}
	verb, name := args[0], args[1]
	st := stateOf(ts)
	if verb == "start" {
		if st.loads[name] != nil {
			ts.Fatalf("load %s is already started", name)
		}
		var conc, events, n int
		parseFlags(ts, "load", usage, args[2:], func(fs *flag.FlagSet) {
			fs.IntVar(&conc, "c", 4, "")
			fs.IntVar(&events, "events", 1, "")
			fs.IntVar(&n, "n", 0, "")
		})
		if conc < 1 || events < 1 || n < 0 {
			ts.Fatalf("load: -c and -events must be at least 1, -n not negative")
		}
		l := &load{name: name, events: events, limit: int64(n), stop: make(chan struct{}), failures: make(map[string]int)}
		st.loads[name] = l
		l.run(st, conc)
		return
	}
	l := st.loads[name]
	if l == nil {
		ts.Fatalf("load: no load called %q (load start %s)", name, name)
	}
	switch verb {
	case "sent", "acked":
		if len(args) != 3 {
			ts.Fatalf("usage: load %s NAME N", verb)
		}
		n, err := strconv.ParseInt(args[2], 10, 64)
		ts.Check(err)
		count, what := &l.acked, "acknowledged"
		if verb == "sent" {
			count, what = &l.sent, "sent"
		}
		if !waitFor(defaultWait, func() bool { return count.Load() >= n }) {
			ts.Fatalf("load %s: %d requests %s in %s, want at least %d", name, count.Load(), what, defaultWait, n)
		}
	case "wait":
		if l.limit == 0 {
			ts.Fatalf("load wait %s: it runs until stopped (no -n); use load stop", name)
		}
		done := make(chan struct{})
		go func() { l.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * defaultWait):
			ts.Fatalf("load %s: requests still unanswered after %s", name, 2*defaultWait)
		}
		l.report(ts)
	case "stop":
		l.stopAndWait()
		l.report(ts)
	default:
		ts.Fatalf("usage: %s", usage)
	}
}

package peer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// gen makes request bodies with the same events for every system: event
// seq has the same device_id, kind, ts and payload {"seq":N,"temp_c":T}
// whether it is posted to our /events or as an OTLP log record (the
// attributes device_id, kind, ts; the payload as the body). Every event of
// a cell has its own seq, so the receiver can find losses and duplicates.
type gen struct {
	sys   System
	batch int
	seed  uint64
	ts0   int64 // unix ms of event 0
	next  atomic.Int64
}

var kinds = []string{"telemetry", "telemetry", "telemetry", "heartbeat", "error"}

// event returns seq's fields, derived from the seed alone (the targeter
// runs on many goroutines, so there is no shared generator).
func (g *gen) event(seq int64) (device, kind string, ts int64, payload string) {
	x := mix(g.seed ^ uint64(seq))
	device = fmt.Sprintf("sensor-%03d", x%50)
	kind = kinds[(x>>8)%uint64(len(kinds))]
	temp := 15 + float64((x>>16)%200)/10
	return device, kind, g.ts0 + seq, fmt.Sprintf(`{"seq":%d,"temp_c":%.1f}`, seq, temp)
}

// request returns the next request's first seq and body.
func (g *gen) request() (int64, []byte) {
	first := (g.next.Add(1) - 1) * int64(g.batch)
	var b bytes.Buffer
	if g.sys.otel() {
		b.WriteString(`{"resourceLogs":[{"resource":{},"scopeLogs":[{"scope":{},"logRecords":[`)
	} else if g.batch > 1 {
		b.WriteByte('[')
	}
	for i := range int64(g.batch) {
		if i > 0 {
			b.WriteByte(',')
		}
		device, kind, ts, payload := g.event(first + i)
		if g.sys.otel() {
			body, _ := json.Marshal(payload)
			fmt.Fprintf(&b, `{"attributes":[{"key":"device_id","value":{"stringValue":%q}},{"key":"kind","value":{"stringValue":%q}},{"key":"ts","value":{"intValue":"%d"}}],"body":{"stringValue":%s}}`,
				device, kind, ts, body)
		} else {
			fmt.Fprintf(&b, `{"device_id":%q,"kind":%q,"ts":%d,"payload":%s}`, device, kind, ts, payload)
		}
	}
	if g.sys.otel() {
		b.WriteString(`]}]}]}`)
	} else if g.batch > 1 {
		b.WriteByte(']')
	}
	return first, b.Bytes()
}

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// tally is what one attack's responses add up to.
type tally struct {
	sent, ok, busy, errors int
	acked                  bitset // seqs of every event acknowledged with a 200
	ackedN                 int64
	eventsWin              int64   // events acknowledged by 200s completed in the window
	lat                    []int64 // latencies of the 200s sent in the window, ns, sorted
	firstErr               string
	// deliveredAt counts the receiver's unique events at the window's
	// start and end (deliveredTime): delivery during load.
	deliveredAt   [2]int64
	deliveredTime [2]time.Time
}

// attackOpts shape one attack: closed loop, conns connections, warm then
// dur; stopAt, when > 0, ends it early (the kill check) after calling
// onStop.
type attackOpts struct {
	conns     int
	warm, dur time.Duration
	timeout   time.Duration
	stopAt    time.Duration
	onStop    func()
}

// targeter posts g's requests to addr, the seq of each request's first
// event in its URL, so an answer tells which events it acknowledged.
func (g *gen) targeter(addr string) vegeta.Targeter {
	base := "http://" + addr + g.sys.path() + "?seq="
	hdr := http.Header{"Content-Type": []string{"application/json"}}
	return func(tgt *vegeta.Target) error {
		first, body := g.request()
		tgt.Method, tgt.URL, tgt.Header, tgt.Body = http.MethodPost, base+strconv.FormatInt(first, 10), hdr, body
		return nil
	}
}

// attack drives addr with g's requests, closed loop, as httpbench does:
// each of conns connections sends its next request when the last is
// answered. The seq of each request rides in its URL, so an answer tells
// which events it acknowledged.
func attack(addr string, g *gen, recv *seqs, o attackOpts) tally {
	targeter := g.targeter(addr)
	// Our own transport, so its idle connections are closed after the
	// attack and do not hold up a graceful shutdown.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: o.conns,
	}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr}),
		vegeta.Timeout(o.timeout),
		vegeta.KeepAlive(true),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.Workers(uint64(o.conns)), vegeta.MaxWorkers(uint64(o.conns)),
		vegeta.Connections(o.conns), vegeta.MaxConnections(o.conns),
	)
	total := o.warm + o.dur
	began := time.Now()
	winStart, winEnd := began.Add(o.warm), began.Add(total)
	var t tally

	// In the kill check one goroutine crashes the system and stops the
	// attack; it is done before attack returns.
	var wg sync.WaitGroup
	stopc := make(chan struct{})
	if o.stopAt > 0 {
		wg.Go(func() {
			select {
			case <-time.After(o.stopAt):
				o.onStop()
				atk.Stop()
			case <-stopc:
			}
		})
	}

	in := func(at time.Time) bool { return !at.Before(winStart) && at.Before(winEnd) }
	// The receiver is sampled at the first answer past each edge of the
	// window (answers come every few ms in a closed loop): delivery during
	// load, without a sampling goroutine.
	sample := func(i int, now time.Time) {
		if t.deliveredTime[i].IsZero() {
			t.deliveredAt[i], t.deliveredTime[i] = recv.unique.Load(), now
		}
	}
	for res := range atk.Attack(targeter, vegeta.ConstantPacer{}, total, "peer") {
		if end := res.End(); !end.Before(winEnd) {
			sample(1, end)
		} else if !end.Before(winStart) {
			sample(0, end)
		}
		t.add(res, g, in)
	}
	sample(1, time.Now())
	close(stopc)
	wg.Wait()
	slices.Sort(t.lat)
	return t
}

// add counts one response to g's requests; in tells whether a time is in
// the measured window.
func (t *tally) add(res *vegeta.Result, g *gen, in func(time.Time) bool) {
	t.sent++
	switch res.Code {
	case http.StatusOK:
		if err := checkOK(g.sys, g.batch, res.Body); err != nil {
			t.errors++
			if t.firstErr == "" {
				t.firstErr = err.Error()
			}
			return
		}
		first, err := strconv.ParseInt(res.URL[strings.LastIndexByte(res.URL, '=')+1:], 10, 64)
		if err != nil {
			t.errors++
			return
		}
		t.ok++
		for s := first; s < first+int64(g.batch); s++ {
			t.acked.set(s)
		}
		t.ackedN += int64(g.batch)
		if in(res.End()) {
			t.eventsWin += int64(g.batch)
		}
		if in(res.Timestamp) {
			t.lat = append(t.lat, int64(res.Latency))
		}
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		t.busy++
	default:
		t.errors++
		if t.firstErr == "" {
			t.firstErr = fmt.Sprintf("%d %s %s", res.Code, res.Error, bytes.TrimSpace(res.Body))
		}
	}
}

// deliveredRate is the receiver's unique events per second between the
// window's edges.
func (t *tally) deliveredRate() float64 {
	d := t.deliveredTime[1].Sub(t.deliveredTime[0])
	if t.deliveredTime[0].IsZero() || d <= 0 {
		return 0
	}
	return float64(t.deliveredAt[1]-t.deliveredAt[0]) / d.Seconds()
}

// checkOK reads a 200's body: ours must have accepted the whole batch; the
// peer must not report rejected log records (a partial success).
func checkOK(sys System, batch int, body []byte) error {
	if sys.otel() {
		var r struct {
			PartialSuccess struct {
				RejectedLogRecords json.Number `json:"rejectedLogRecords"`
				ErrorMessage       string      `json:"errorMessage"`
			} `json:"partialSuccess"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("200 with an unreadable body: %w", err)
		}
		if n := r.PartialSuccess.RejectedLogRecords; n != "" && n != "0" {
			return fmt.Errorf("200 with %s log records rejected: %s", n, r.PartialSuccess.ErrorMessage)
		}
		return nil
	}
	var r struct{ Accepted int }
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("200 with an unreadable body: %w", err)
	}
	if r.Accepted != batch {
		return fmt.Errorf("200 accepting %d of %d events", r.Accepted, batch)
	}
	return nil
}

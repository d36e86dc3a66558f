// Package httpbench drives the real collector binary over HTTP with
// github.com/tsenart/vegeta/v12 as a library: the most a mode sustains
// (closed loop, single events and batches), and an open-loop sweep of
// offered rates past saturation. Every cell starts a fresh collector on a
// fresh database on 127.0.0.1, stops it with SIGTERM, and counts the
// acknowledged events against the database: no silent drops.
package httpbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/bench/stats"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

// Config configures the http experiment.
type Config struct {
	Binary string // the collector, built with CGO_ENABLED=0
	DBDir  string
	Modes  []store.Mode

	// Max throughput: for each load, its connections in a closed loop, each
	// sending the next request as soon as the last is answered.
	Loads []Load

	// Sweep: single-event requests offered open-loop at each rate (req/s),
	// by at most MaxWorkers requests in flight.
	Rates      []int
	MaxWorkers int

	Warm, Dur  time.Duration // per cell: dropped ramp, then the measured window
	Timeout    time.Duration // per request
	MaxBacklog int64         // the collector's -max-backlog

	// Profile, when it has connections, adds an HTTPProfile cell: that load
	// in group mode with the collector's CPU profiled (-pprof-addr) for
	// ProfileDur of the window, which says where its CPU goes (cpuShares).
	// It is a cell of its own: profiling costs CPU, which the other cells'
	// figures must not carry.
	Profile    Load
	ProfileDur time.Duration
}

// Load is a closed-loop cell's shape: connections, events per request.
type Load struct{ Conns, Batch int }

// experiment is the state the cells of one experiment share: the receiver,
// started by the first cell that runs. It only counts what it takes.
type experiment struct {
	Config
	recvOnce sync.Once
	recv     *rig.Receiver
	recvErr  error
}

// Units of the experiment's values.
var (
	unitReqs    = record.Unit{Name: "req/s", Better: 1}
	unitEvents  = record.Unit{Name: "events/s", Better: 1}
	unitOffered = record.Unit{Name: "sent-req/s", Better: 0}
	unitSuccess = record.Unit{Name: "success-ratio", Better: 1}
	unit503     = record.Unit{Name: "backpressure-ratio", Better: -1}
	unitErrors  = record.Unit{Name: "errors", Better: -1}
	unitP50     = record.Unit{Name: "p50-ns/req", Better: -1}
	unitP90     = record.Unit{Name: "p90-ns/req", Better: -1}
	unitP99     = record.Unit{Name: "p99-ns/req", Better: -1}
	unitMax     = record.Unit{Name: "max-ns/req", Better: -1}
	unitDrained = record.Unit{Name: "drained-events/s", Better: 1}
	unitLost    = record.Unit{Name: "lost-events", Better: -1}
	unitUnacked = record.Unit{Name: "unacked-stored-events", Better: 0}
	unitPeakRSS = record.Unit{Name: "peak-rss-bytes", Better: -1}
	// The collector's CPU time (utime+stime, /proc) over the attack, per
	// request and per event acknowledged in it.
	unitCPUReq   = record.Unit{Name: "cpu-us/req", Better: -1}
	unitCPUEvent = record.Unit{Name: "cpu-us/event", Better: -1}
	allUnits     = append([]record.Unit{unitReqs, unitEvents, unitOffered, unitSuccess, unit503, unitErrors, unitP50, unitP90, unitP99, unitMax, unitDrained, unitLost, unitUnacked, unitPeakRSS, unitCPUReq, unitCPUEvent}, shareUnits()...)
	startTimeout = 10 * time.Second
	stopTimeout  = 30 * time.Second
)

var errNoBinary = errors.New("no collector binary")

// Experiment returns the http experiment: max-throughput cells (HTTPMax)
// then sweep cells (HTTPSweep), every mode next to the others.
func (cfg Config) Experiment() *bench.Experiment {
	c := &experiment{Config: cfg}
	var loads []string
	for _, l := range c.Loads {
		loads = append(loads, fmt.Sprintf("%d connections x %d events/request", l.Conns, l.Batch))
	}
	e := &bench.Experiment{
		Name: "http",
		Plan: fmt.Sprintf("The collector binary (CGO_ENABLED=0) on 127.0.0.1, a fresh database per cell, -sink webhook to a receiver in the harness, "+
			"-upload-interval %s, -max-backlog %d, stopped with SIGTERM; vegeta as a library, request timeout %s. "+
			"Max: closed loop, %s. "+
			"Sweep: single-event requests offered open loop at %v req/s, at most %d in flight, latency counted from each request's scheduled time. "+
			"Each cell: %s ramp dropped, %s measured; the collector's CPU (utime+stime from /proc) over the attack, per acknowledged request and event.",
			uploadInterval, c.MaxBacklog, c.Timeout, strings.Join(loads, ", "), c.Rates, c.MaxWorkers, c.Warm, c.Dur),
		Units: allUnits,
		Close: c.close,
	}
	for _, l := range c.Loads {
		for _, m := range c.Modes {
			e.Cells = append(e.Cells, bench.Cell{
				Name: "HTTPMax",
				Config: []record.KV{
					{Key: "mode", Value: string(m)},
					{Key: "batch", Value: strconv.Itoa(l.Batch)},
					{Key: "conns", Value: strconv.Itoa(l.Conns)},
				},
				Cost: c.Warm + c.Dur + cellOverhead,
				Run:  c.run(m, l, 0, 0),
			})
		}
	}
	for _, rate := range c.Rates {
		for _, m := range c.Modes {
			e.Cells = append(e.Cells, bench.Cell{
				Name: "HTTPSweep",
				Config: []record.KV{
					{Key: "mode", Value: string(m)},
					{Key: "batch", Value: "1"},
					{Key: "rate", Value: strconv.Itoa(rate)},
				},
				Cost: c.Warm + c.Dur + cellOverhead,
				Run:  c.run(m, Load{Conns: c.MaxWorkers, Batch: 1}, rate, 0),
			})
		}
	}
	if l := c.Profile; l.Conns > 0 {
		secs := max(1, int(c.ProfileDur.Round(time.Second)/time.Second))
		e.Cells = append(e.Cells, bench.Cell{
			Name: "HTTPProfile",
			Config: []record.KV{
				{Key: "mode", Value: string(store.Group)},
				{Key: "batch", Value: strconv.Itoa(l.Batch)},
				{Key: "conns", Value: strconv.Itoa(l.Conns)},
			},
			Cost: c.Warm + max(c.Dur, time.Duration(secs)*time.Second) + cellOverhead,
			Run:  c.run(store.Group, l, 0, secs),
		})
	}
	return e
}

// uploadInterval is the collectors' -upload-interval in this experiment.
const uploadInterval = 50 * time.Millisecond

// cellOverhead is a cell's expected cost beyond its attack: starting the
// collector, its drain and exit, and the count.
const cellOverhead = 600 * time.Millisecond

func (c *experiment) close() error {
	if c.recv != nil {
		return c.recv.Close()
	}
	return nil
}

// tally is what one cell's responses add up to.
type tally struct {
	sent, ok, backpressure, errors int // over the whole attack
	acked                          int64
	sentWin                        int // requests sent in the measured window
	okWin                          int // 200s completed in the window (throughput)
	dueWin, okDue, busyDue         int // requests due in the window: all sent, 200, 503
	offeredWin                     int // open loop: rate x window; closed loop: dueWin
	eventsWin                      int64
	lat                            []int64 // latencies of the 200s due in the window, ns
	firstErr                       string
}

// run returns a cell: closed loop at load when rate is 0, open loop at rate
// otherwise (load.Batch events per request). With profileSecs, the cell
// takes a CPU profile of that many seconds from the start of its window and
// reports where the CPU went instead of how much there was.
func (c *experiment) run(mode store.Mode, load Load, rate, profileSecs int) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		if c.Binary == "" {
			return bench.Sample{}, errNoBinary
		}
		c.recvOnce.Do(func() { c.recv, c.recvErr = rig.StartReceiver(rig.Counter{}) })
		if c.recvErr != nil {
			return bench.Sample{}, c.recvErr
		}
		dir, err := os.MkdirTemp(c.DBDir, "http-*")
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "events.db")
		c.recv.Reset()
		flags := []string{
			"-max-backlog", strconv.FormatInt(c.MaxBacklog, 10),
			// Steady state: the uploader drains all along, as it does on a box
			// that has been up for a while (its interval is only the idle
			// polling period). At the stop, what is left stays in the file.
			"-upload-interval", uploadInterval.String(),
			"-drain-timeout", "2s",
		}
		if profileSecs > 0 {
			flags = append(flags, "-pprof-addr", "127.0.0.1:0")
		}
		col, err := rig.Collector{Bin: c.Binary, DB: path, Mode: string(mode), ID: "bench", Webhook: c.recv.URL, Flags: flags}.Start(ctx, startTimeout)
		if err != nil {
			return bench.Sample{}, err
		}
		var prof profileTake
		if profileSecs > 0 {
			prof.start(ctx, col.ProfilerAddr(), c.Warm, profileSecs)
		}
		cpu0, cpuErr0 := col.CPUTime()
		t, window := c.attack(col.Addr(), load, rate, rep.Seed, time.Duration(profileSecs)*time.Second)
		cpu1, cpuErr1 := col.CPUTime()
		drained := c.recv.Taken()
		peakRSS, rssErr := col.PeakRSS()
		if err := col.Stop(stopTimeout); err != nil {
			return bench.Sample{}, err
		}
		stored, err := rig.CountRows(ctx, path)
		if err != nil {
			return bench.Sample{}, err
		}
		s := bench.Sample{Iters: t.okWin}
		lost := max(0, t.acked-stored)
		unacked := max(0, stored-t.acked)
		if lost > 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("%d events acknowledged with 200, %d rows in the database: %d lost", t.acked, stored, lost))
		}
		if unacked > 0 && t.errors == 0 {
			// Stored without a 200 is possible only when a request failed
			// on the client's side (a timeout) after its commit.
			s.Problems = append(s.Problems, fmt.Sprintf("%d rows in the database, only %d events acknowledged, and no request failed", stored, t.acked))
		}
		if t.ok == 0 {
			return bench.Sample{}, fmt.Errorf("no request succeeded (%d sent, %d errors): %s", t.sent, t.errors, t.firstErr)
		}
		s.Values = t.values(window)
		s.Values = append(s.Values,
			record.Value{Value: round(float64(drained)/(c.Warm+window).Seconds(), 1), Unit: unitDrained.Name},
			record.Value{Value: float64(lost), Unit: unitLost.Name},
			record.Value{Value: float64(unacked), Unit: unitUnacked.Name})
		if rssErr == nil {
			s.Values = append(s.Values, record.Value{Value: float64(peakRSS), Unit: unitPeakRSS.Name})
		}
		if profileSecs > 0 {
			shares, err := prof.shares()
			if err != nil {
				return bench.Sample{}, err
			}
			s.Values = append(s.Values, shares...)
			return s, nil
		}
		if cpuErr0 == nil && cpuErr1 == nil {
			us := float64(cpu1-cpu0) / float64(time.Microsecond)
			s.Values = append(s.Values,
				record.Value{Value: round(us/float64(t.ok), 2), Unit: unitCPUReq.Name},
				record.Value{Value: round(us/float64(t.acked), 2), Unit: unitCPUEvent.Name})
		}
		return s, nil
	}
}

// profileTake is a CPU profile being taken while a cell's load runs.
type profileTake struct {
	done chan struct{}
	p    *profile.Profile
	err  error
}

// start asks the profiler at addr, after wait, for secs seconds of CPU
// profile, in the background; shares waits for it.
func (pt *profileTake) start(ctx context.Context, addr string, wait time.Duration, secs int) {
	pt.done = make(chan struct{})
	if addr == "" {
		pt.err = errors.New("cpu profile: the collector logged no profiler address")
		close(pt.done)
		return
	}
	go func() { // owned: shares waits for it; takeProfile is bounded
		defer close(pt.done)
		if err := rig.Sleep(ctx, wait); err != nil {
			pt.err = err
			return
		}
		pt.p, pt.err = takeProfile(ctx, addr, secs)
	}()
}

func (pt *profileTake) shares() ([]record.Value, error) {
	<-pt.done
	if pt.err != nil {
		return nil, pt.err
	}
	return cpuShares(pt.p)
}

// attack runs vegeta against the collector at addr and tallies the
// responses. Requests that start in the first Warm are not measured; all
// count for the correctness check.
// values are the tally's rates over the window, its answers and latencies.
func (t *tally) values(window time.Duration) []record.Value {
	secs := window.Seconds()
	ratio := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return round(float64(a)/float64(b), 4)
	}
	vs := []record.Value{
		{Value: round(float64(t.okWin)/secs, 1), Unit: unitReqs.Name},
		{Value: round(float64(t.eventsWin)/secs, 1), Unit: unitEvents.Name},
		{Value: round(float64(t.sentWin)/secs, 1), Unit: unitOffered.Name},
		{Value: ratio(t.okDue, t.offeredWin), Unit: unitSuccess.Name},
		{Value: ratio(t.busyDue, t.offeredWin), Unit: unit503.Name},
		{Value: float64(t.errors), Unit: unitErrors.Name},
	}
	// No 200 due in the window (far past saturation): no latency to report,
	// rather than a zero that would read as instant.
	if len(t.lat) > 0 {
		vs = append(vs,
			record.Value{Value: float64(stats.Percentile(t.lat, 0.50)), Unit: unitP50.Name},
			record.Value{Value: float64(stats.Percentile(t.lat, 0.90)), Unit: unitP90.Name},
			record.Value{Value: float64(stats.Percentile(t.lat, 0.99)), Unit: unitP99.Name},
			record.Value{Value: float64(stats.Percentile(t.lat, 1)), Unit: unitMax.Name})
	}
	return vs
}

func (c *experiment) attack(addr string, load Load, rate int, seed uint64, atLeast time.Duration) (tally, time.Duration) {
	bodies := makeBodies(seed, load.Batch, 64)
	url := "http://" + addr + "/events"
	hdr := http.Header{"Content-Type": []string{"application/json"}}
	var next atomic.Uint64
	targeter := func(tgt *vegeta.Target) error {
		i := next.Add(1) - 1
		tgt.Method, tgt.URL, tgt.Header = http.MethodPost, url, hdr
		tgt.Body = bodies[i%uint64(len(bodies))]
		return nil
	}
	atk, pacer, tr := c.attacker(load.Conns, rate)
	defer tr.CloseIdleConnections()
	dur := max(c.Dur, atLeast)
	total := c.Warm + dur
	var t tally
	began := time.Now()
	w := window{began: began, from: began.Add(c.Warm), to: began.Add(total)}
	if rate > 0 {
		w.period = time.Second / time.Duration(rate)
		t.offeredWin = int(int64(dur) * int64(rate) / int64(time.Second))
	}
	for res := range atk.Attack(vegeta.Targeter(targeter), pacer, total, "bench") {
		t.add(res, w)
	}
	if t.offeredWin == 0 { // closed loop: what was asked is what was sent
		t.offeredWin = t.dueWin
	}
	slices.Sort(t.lat)
	return t, dur
}

// attacker is vegeta shaped for a cell: closed loop (rate 0), Conns workers
// each waiting for its answer; open loop, requests leaving on schedule
// whatever is in flight, at most MaxWorkers. It runs on its own transport,
// so that its idle connections can be closed after the attack: a connection
// the transport dialled but never used would otherwise hold the collector's
// graceful shutdown for 5 s (net/http counts a new connection as active
// until then).
func (c *experiment) attacker(conns, rate int) (*vegeta.Attacker, vegeta.Pacer, *http.Transport) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
	}
	opts := []func(*vegeta.Attacker){
		vegeta.Client(&http.Client{Transport: tr}),
		vegeta.Timeout(c.Timeout),
		vegeta.KeepAlive(true),
		vegeta.Redirects(vegeta.NoFollow),
	}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(conns)), vegeta.MaxWorkers(uint64(conns)),
			vegeta.Connections(conns), vegeta.MaxConnections(conns))
		return vegeta.NewAttacker(opts...), vegeta.ConstantPacer{}, tr
	}
	opts = append(opts, vegeta.Workers(uint64(min(rate, 64))), vegeta.MaxWorkers(uint64(c.MaxWorkers)),
		vegeta.Connections(c.MaxWorkers))
	return vegeta.NewAttacker(opts...), vegeta.ConstantPacer{Freq: rate, Per: time.Second}, tr
}

// window is an attack's measured window, and its schedule when open loop.
type window struct {
	began, from, to time.Time
	period          time.Duration // open loop: between two requests' due times; 0 closed loop
}

func (w window) in(at time.Time) bool { return !at.Before(w.from) && at.Before(w.to) }

// add counts one response.
func (t *tally) add(res *vegeta.Result, w window) {
	t.sent++
	// A request is due when it was sent (closed loop) or scheduled (open
	// loop). Open loop, its latency counts from when it was due, so the
	// time it waited for a free worker when the server fell behind is
	// not hidden (coordinated omission).
	due, lat := res.Timestamp, res.Latency
	if w.period > 0 {
		due = w.began.Add(time.Duration(res.Seq) * w.period)
		lat = res.End().Sub(due)
	}
	if w.in(res.Timestamp) {
		t.sentWin++
	}
	if w.in(due) {
		t.dueWin++
	}
	switch res.Code {
	case http.StatusOK:
		var body struct{ Accepted int }
		if err := json.Unmarshal(res.Body, &body); err != nil {
			t.errors++
			t.firstErr = "200 with an unreadable body: " + err.Error()
			return
		}
		t.ok++
		t.acked += int64(body.Accepted)
		if w.in(res.End()) {
			t.okWin++
			t.eventsWin += int64(body.Accepted)
		}
		if w.in(due) {
			t.okDue++
			t.lat = append(t.lat, int64(lat))
		}
	case http.StatusServiceUnavailable:
		t.backpressure++
		if w.in(due) {
			t.busyDue++
		}
	default:
		t.errors++
		if t.firstErr == "" {
			t.firstErr = fmt.Sprintf("%d %s %s", res.Code, res.Error, bytes.TrimSpace(res.Body))
		}
	}
}

// makeBodies returns n request bodies of batch events each, generated from
// seed: a JSON object for one event, an array for more.
func makeBodies(seed uint64, batch, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	type ev struct {
		DeviceID string          `json:"device_id"`
		Kind     string          `json:"kind"`
		Payload  json.RawMessage `json:"payload"`
	}
	kinds := []string{"telemetry", "telemetry", "telemetry", "heartbeat", "error"}
	bodies := make([][]byte, n)
	for i := range bodies {
		evs := make([]ev, batch)
		for j := range evs {
			evs[j] = ev{
				DeviceID: fmt.Sprintf("sensor-%03d", rng.IntN(50)),
				Kind:     kinds[rng.IntN(len(kinds))],
				Payload:  json.RawMessage(fmt.Sprintf(`{"seq":%d,"temp_c":%.1f}`, i*batch+j, 15+float64(rng.IntN(200))/10)),
			}
		}
		var v any = evs
		if batch == 1 {
			v = evs[0]
		}
		bodies[i], _ = json.Marshal(v)
	}
	return bodies
}

func round(x float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

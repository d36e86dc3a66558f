package peer

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"edgecollector/bench"
	"edgecollector/bench/record"
)

// The sustained experiment asks what a user asks of an edge buffer: how
// many events per second can this box take, forever? Open loop, offered
// event rates stepping up, each step on a fresh system delivering to the
// shared receiver. A step passes when at least 99% of its requests got a
// 200, the receiver got at least 0.99x the offered events/s during the
// window, and the backlog (acknowledged, not yet delivered) did not grow
// over the window's second half by more than 1% of the rate per second.
// The sustained rate is the highest step that passes in a long window.
//
// The knee is found coarsely first: short steps doubling the rate until
// one fails, then a few geometric bisections between the last pass and
// the first failure. The long windows are spent only there: at the coarse
// knee, and stepping down by Down while that fails.

// SustainedSpec is the sustained experiment. It runs the peer's systems
// when -peer exists, and leaves them out (saying so) when not.
var SustainedSpec = &bench.Spec{
	Name:      "sustained",
	Collector: true,
	New: func(p bench.Profile, env bench.Env) *bench.Experiment {
		c := SustainedConfig{
			Collector: env.Collector, Peer: Binary(), Dir: env.Scratch,
			Searches: []Search{
				{Batch: 100, Start: 5000, Systems: []System{OursGroupK1, OursGroup, OtelFsync, OtelNoFsync}},
				{Batch: 1, Start: 1000, Systems: []System{OursGroup, OtelNoFsync}},
			},
			Short: 1500 * time.Millisecond, ShortWarm: 500 * time.Millisecond,
			Long: 30 * time.Second, LongWarm: 2 * time.Second,
			Doublings: 7, Bisections: 2, Down: 1.15, LongTries: 3,
			Timeout: 5 * time.Second,
		}
		if p.IsQuick() {
			c.Searches = []Search{
				{Batch: 100, Start: 5000, Systems: []System{OursGroupK1, OursGroup, OtelNoFsync}},
				{Batch: 1, Start: 1000, Systems: []System{OursGroup}},
			}
			c.Short, c.ShortWarm = 500*time.Millisecond, 150*time.Millisecond
			c.Long, c.LongWarm = 2*time.Second, 300*time.Millisecond
			c.Bisections, c.LongTries = 1, 2
		}
		return c.Experiment()
	},
	Report: sustainedReport,
}

// Search is one request size's search: each system's sustained rate, from
// Start events/s up.
type Search struct {
	Batch   int // events per request
	Start   float64
	Systems []System
}

// SustainedConfig configures the sustained experiment.
type SustainedConfig struct {
	Collector string // our collector binary
	Peer      string // the peer binary, or "": its systems are left out
	Dir       string
	Searches  []Search

	// Short steps find the knee (ShortWarm dropped, then Short measured);
	// long steps (LongWarm, Long) decide the sustained rate.
	Short, ShortWarm, Long, LongWarm time.Duration
	// Doublings bounds the coarse steps, Bisections the steps between the
	// last pass and the first failure, LongTries the long steps, each Down
	// times slower than the one before.
	Doublings, Bisections, LongTries int
	Down                             float64
	Timeout                          time.Duration // per request
}

// traceN is how many backlog samples a window keeps: one each 1/traceN of it.
const traceN = 20

var (
	unitSustained      = record.Unit{Name: "sustained-events/s", Better: 1}
	unitKnee           = record.Unit{Name: "knee-events/s", Better: 1}
	unitOKRatio        = record.Unit{Name: "ok-ratio", Better: 1}
	unitDeliveredRatio = record.Unit{Name: "delivered-ratio", Better: 1}
	unitSlope          = record.Unit{Name: "backlog-slope-ratio", Better: -1}
	unitSteps          = record.Unit{Name: "steps", Better: 0}
	unitLongSteps      = record.Unit{Name: "long-steps", Better: 0}
	unitWindow         = record.Unit{Name: "window-ns", Better: 0} // the long window, for the trace's time axis
)

// traceUnit is the unit of the backlog at sample i (1..traceN) of the
// long window at the sustained rate.
func traceUnit(i int) string { return fmt.Sprintf("backlog-t%02d-events", i) }

func sustainedUnits() []record.Unit {
	u := []record.Unit{unitSustained, unitKnee, unitOKRatio, unitDeliveredRatio, unitSlope, unitSteps, unitLongSteps, unitWindow}
	for i := 1; i <= traceN; i++ {
		u = append(u, record.Unit{Name: traceUnit(i), Better: 0})
	}
	return u
}

// stepOverhead is a step's expected cost beyond its load: a start, a kill.
const stepOverhead = time.Second

// Experiment returns the sustained experiment: one cell per request size
// and system, each a whole search, interleaved by system.
func (cfg SustainedConfig) Experiment() *bench.Experiment {
	c := &experiment{Config: Config{Collector: cfg.Collector, Peer: cfg.Peer, Dir: cfg.Dir, Timeout: cfg.Timeout}}
	s := &sustained{cfg: cfg, exp: c}
	left := ""
	if cfg.Peer == "" {
		left = " The OpenTelemetry Collector's systems were left out: no -peer binary."
	}
	e := &bench.Experiment{
		Name: "sustained",
		Plan: fmt.Sprintf("Open loop (vegeta, constant rate), offered events/s stepping up, each step on a fresh system (our collector: -sink webhook, -upload-batch %d, "+
			"-upload-interval %s, no backlog cap; the OpenTelemetry Collector as in peer), all delivering to one receiver in the harness. "+
			"A step passes with >= 99%% of requests answered 200, delivered/s >= 0.99x offered, and the backlog's slope over the window's second half <= 1%% of the rate. "+
			"Coarse: %s steps (%s dropped) from the start rate, doubling until one fails (at most %d), then %d geometric bisections; "+
			"then %s windows (%s dropped) at the coarse knee, %.2fx slower while one fails (at most %d). The sustained rate is the long step that passed.%s",
			uploadBatch, uploadInterval, cfg.Short, cfg.ShortWarm, cfg.Doublings, cfg.Bisections, cfg.Long, cfg.LongWarm, cfg.Down, cfg.LongTries, left),
		Units:  sustainedUnits(),
		Close:  c.close,
		Reps:   1,
		Warmup: 0,
	}
	for _, sr := range cfg.Searches {
		for _, sys := range sr.Systems {
			if sys.otel() && cfg.Peer == "" {
				continue
			}
			e.Cells = append(e.Cells, bench.Cell{
				Name: "Sustained",
				Config: []record.KV{
					{Key: "mode", Value: string(sys)},
					{Key: "batch", Value: strconv.Itoa(sr.Batch)},
				},
				Cost: cfg.cost(),
				Run:  s.search(sys, sr),
			})
		}
	}
	return e
}

// cost is a search's expected cost: about five coarse steps and the
// bisections, and one and a half long steps.
func (cfg SustainedConfig) cost() time.Duration {
	short := cfg.ShortWarm + cfg.Short + stepOverhead
	long := cfg.LongWarm + cfg.Long + stepOverhead
	return time.Duration(5+cfg.Bisections)*short + long*3/2
}

type sustained struct {
	cfg  SustainedConfig
	exp  *experiment
	logf func(format string, args ...any) // each step's result, when set (tests)
}

// stepResult is what one step at one offered rate measured.
type stepResult struct {
	rate      float64 // offered events/s
	batch     int     // events per request
	win       time.Duration
	sent, ok  int     // requests scheduled in the window, and their 200s
	delivered float64 // events/s the receiver got in the window
	slope     float64 // the backlog's growth over the second half, events/s
	trace     [traceN]float64
	firstErr  string // the first answer that was not a 200, for a failed step's log
}

func (r stepResult) okRatio() float64 {
	if r.sent == 0 {
		return 0
	}
	return float64(r.ok) / float64(r.sent)
}

// pass is the sustained rule, to the measurement's resolution: events are
// acknowledged a request at a time and delivered a batch at a time, so a
// window's delivered count and its backlog samples are off by up to a
// chunk each (quantum). Two chunks over the window (or over its second
// half, for the slope) is the allowance: a few per mille of the rate in a
// 30 s window, what keeps a half-second step from failing on rounding.
func (r stepResult) pass() bool {
	if r.sent == 0 || r.win <= 0 {
		return false
	}
	q := 2 * r.quantum()
	return r.okRatio() >= 0.99 &&
		r.delivered >= 0.99*r.rate-q/r.win.Seconds() &&
		r.slope <= 0.01*r.rate+q/(r.win.Seconds()/2)
}

// quantum is the events one step of the counts can jump by: a request's
// batch, plus a delivery (what accumulates in one upload interval, at
// most one upload batch).
func (r stepResult) quantum() float64 {
	return min(uploadBatch, max(float64(r.batch), r.rate*uploadInterval.Seconds())) + float64(r.batch)
}

// search returns a cell: the coarse search, then the long windows.
func (s *sustained) search(sys System, sr Search) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		steps, longSteps := 0, 0
		step := func(rate float64, warm, win time.Duration) (stepResult, error) {
			steps++
			r, err := s.step(ctx, sys, sr.Batch, rate, warm, win, rep.Seed+uint64(steps))
			if s.logf != nil {
				s.logf("%s batch %d: %.0f events/s for %s: pass %v, %d/%d ok, delivered %.0f/s, slope %.0f/s, first error %q",
					sys, sr.Batch, rate, win, r.pass(), r.ok, r.sent, r.delivered, r.slope, r.firstErr)
			}
			return r, err
		}
		var pass, fail float64
		rate := sr.Start
		for range s.cfg.Doublings {
			r, err := step(rate, s.cfg.ShortWarm, s.cfg.Short)
			if err != nil {
				return bench.Sample{}, err
			}
			if !r.pass() {
				fail = rate
				break
			}
			pass, rate = rate, rate*2
		}
		if pass == 0 { // the start rate failed: halve down to find a pass
			for rate = sr.Start / 2; rate >= sr.Start/16; rate /= 2 {
				r, err := step(rate, s.cfg.ShortWarm, s.cfg.Short)
				if err != nil {
					return bench.Sample{}, err
				}
				if r.pass() {
					pass = rate
					break
				}
				fail = rate
			}
		}
		for range s.cfg.Bisections {
			if pass == 0 || fail == 0 {
				break
			}
			mid := math.Sqrt(pass * fail)
			r, err := step(mid, s.cfg.ShortWarm, s.cfg.Short)
			if err != nil {
				return bench.Sample{}, err
			}
			if r.pass() {
				pass = mid
			} else {
				fail = mid
			}
		}
		knee := pass
		var best stepResult
		var sustainedRate float64
		for rate, i := knee, 0; rate > 0 && i < s.cfg.LongTries; rate, i = rate/s.cfg.Down, i+1 {
			longSteps++
			r, err := step(rate, s.cfg.LongWarm, s.cfg.Long)
			if err != nil {
				return bench.Sample{}, err
			}
			best = r
			if r.pass() {
				sustainedRate = rate
				break
			}
		}
		smp := bench.Sample{Iters: 1}
		smp.Values = []record.Value{
			{Value: round(sustainedRate, 1), Unit: unitSustained.Name},
			{Value: round(knee, 1), Unit: unitKnee.Name},
			{Value: round(best.okRatio(), 4), Unit: unitOKRatio.Name},
			{Value: round(ratio(best.delivered, best.rate), 4), Unit: unitDeliveredRatio.Name},
			{Value: round(ratio(best.slope, best.rate), 4), Unit: unitSlope.Name},
			{Value: float64(steps), Unit: unitSteps.Name},
			{Value: float64(longSteps), Unit: unitLongSteps.Name},
			{Value: float64(s.cfg.Long), Unit: unitWindow.Name},
		}
		for i, b := range best.trace {
			smp.Values = append(smp.Values, record.Value{Value: round(b, 0), Unit: traceUnit(i + 1)})
		}
		return smp, nil
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// step runs sys from fresh files under rate events/s, open loop, for warm
// then win, and measures the window. The system is killed after: its
// backlog is not this step's question (the peer experiment checks that
// nothing acknowledged is lost).
func (s *sustained) step(ctx context.Context, sys System, batch int, rate float64, warm, win time.Duration, seed uint64) (stepResult, error) {
	c := s.exp
	dir, err := c.setup(sys)
	if err != nil {
		return stepResult{}, err
	}
	defer os.RemoveAll(dir)
	in, err := c.newInstance(sys, dir)
	if err != nil {
		return stepResult{}, err
	}
	p, err := in.start(ctx)
	if err != nil {
		return stepResult{}, err
	}
	defer p.Kill()
	g := &gen{sys: sys, batch: batch, seed: seed, ts0: tsBase}
	r := openLoop(p.Addr(), g, &c.got, rate, warm, win, c.Timeout)
	if r.ok == 0 && r.sent > 0 && p.Exited() {
		return r, fmt.Errorf("%s exited under %.0f events/s: %s", sys, rate, p.Tail())
	}
	return r, nil
}

// openLoop offers rate events/s to addr in requests of g's batch, at a
// constant pace whatever the answers (vegeta's open loop: a request is
// sent on schedule, on a new connection if every open one is busy), for
// warm then win. The receiver's unique events and the acknowledged events
// are sampled traceN times over the window: the backlog over time.
func openLoop(addr string, g *gen, recv *seqs, rate float64, warm, win, timeout time.Duration) stepResult {
	res := stepResult{rate: rate, batch: g.batch, win: win}
	targeter := g.targeter(addr)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 256,
	}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr}),
		vegeta.Timeout(timeout),
		vegeta.KeepAlive(true),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.Workers(32), vegeta.MaxWorkers(1024),
	)
	// Requests per second as a pace: Freq hits per Per, exact to a
	// thousandth of a request per second.
	pacer := vegeta.ConstantPacer{Freq: max(1, int(math.Round(rate/float64(g.batch)*1000))), Per: 1000 * time.Second}

	var acked atomic.Int64 // events acknowledged so far
	began := time.Now()
	winStart, winEnd := began.Add(warm), began.Add(warm+win)
	var delivered [2]int64
	var deliveredAt [2]time.Time
	var samples [traceN]float64
	sampled := make(chan struct{})
	go func() { // owned: ends at the window's end; openLoop waits for it
		defer close(sampled)
		time.Sleep(time.Until(winStart))
		delivered[0], deliveredAt[0] = recv.unique.Load(), time.Now()
		for i := range traceN {
			time.Sleep(time.Until(winStart.Add(win * time.Duration(i+1) / traceN)))
			samples[i] = float64(acked.Load() - recv.unique.Load())
		}
		delivered[1], deliveredAt[1] = recv.unique.Load(), time.Now()
	}()
	in := func(t time.Time) bool { return !t.Before(winStart) && t.Before(winEnd) }
	for r := range atk.Attack(targeter, pacer, warm+win, "sustained") {
		ok := r.Code == http.StatusOK && checkOK(g.sys, g.batch, r.Body) == nil
		if ok {
			acked.Add(int64(g.batch))
		} else if res.firstErr == "" {
			res.firstErr = fmt.Sprintf("%d %s %.200s", r.Code, r.Error, r.Body)
		}
		if in(r.Timestamp) {
			res.sent++
			if ok {
				res.ok++
			}
		}
	}
	<-sampled
	res.trace = samples
	if d := deliveredAt[1].Sub(deliveredAt[0]); d > 0 {
		res.delivered = float64(delivered[1]-delivered[0]) / d.Seconds()
	}
	res.slope = slope(samples[traceN/2:], win/traceN)
	return res
}

// slope is the least-squares slope of ys sampled every dt, per second.
func slope(ys []float64, dt time.Duration) float64 {
	n := float64(len(ys))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, y := range ys {
		x := float64(i) * dt.Seconds()
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

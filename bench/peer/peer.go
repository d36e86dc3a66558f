// Package peer is the side-by-side experiment: our collector against what
// users pick instead, the OpenTelemetry Collector with a persistent sending
// queue (the peer, built from peers/otelcol by make peer), under the same
// vegeta load, delivering to the same receiver in the harness.
//
// Equal work: one of our events is one OTLP log record with the same
// attributes (device_id, kind, ts) and the payload as its body; both
// systems ship batches of up to 1,000 events, uncompressed JSON, to the
// receiver, which counts and dedupes by the seq every payload carries.
//
// What a 200 promises differs, and the report says so beside the numbers:
// ours answers once the events are committed and fsync'd in SQLite; the
// peer once the request is in its bbolt queue, fsync'd only with fsync:
// true. Neither 200 means delivered, so each cell also measures how long
// the backlog takes to reach the receiver after the load stops. The peer's
// wait_for_result cannot be combined with a storage-backed queue.
//
// The harness only execs the two binaries and speaks HTTP: no OpenTelemetry
// module enters the main module.
package peer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/record"
	"edgecollector/bench/stats"
	"edgecollector/internal/rig"
)

// Config configures the peer experiment.
type Config struct {
	Collector string // our collector binary
	Peer      string // the peer binary (make peer: bin/otelcol-peer)
	Dir       string // scratch directory for cells' databases and queues
	Systems   []System

	// Load cells: Conns connections in a closed loop, Batches events per
	// request; Warm dropped, Dur measured; then the drain is timed.
	Conns     int
	Batches   []int
	Warm, Dur time.Duration
	Timeout   time.Duration // per request
	// DrainTimeout bounds the wait for every acknowledged event to reach
	// the receiver, after the load and after the restart in the kill check.
	DrainTimeout time.Duration

	// Kill check: KillBatch events per request for KillAfter, then SIGKILL
	// under load, a restart on the same files, and a drain.
	KillBatch int
	KillAfter time.Duration

	// Reps and Warmup are the experiment's own repetitions (bench.Experiment).
	Reps, Warmup int

	// Cut, when set, is a power cut between the kill check's SIGKILL and
	// its restart: the powercut experiment sets it, with Dir on a faultfs
	// mount. Each kill check then installs the system first (starts and
	// stops it, then fsyncs every file and directory under its cell, as a
	// sync after an installation would), so what the cut tests is the
	// system's own fsync of what it acknowledges, not whether its config
	// or a directory made at its first start survives. The receiver
	// refuses every delivery (503) from the start of the load until the
	// restart, so what was acknowledged waits in the system's queue when
	// the cut comes, as on a box whose uplink is down. The drain ends once
	// nothing new arrived for DrainQuiet, a restart that fails counts
	// every undelivered event as lost, and a loss by the peer is a value,
	// not a failed check (by our collector it still fails the check): what
	// a cut costs the peer is the finding.
	Cut        func() error
	DrainQuiet time.Duration
}

// ErrNoPeer is returned when the peer binary is missing.
var ErrNoPeer = errors.New("no peer binary: build it with `make peer` (bin/otelcol-peer), or pass -peer PATH")

// CheckPeer reports whether path is a peer binary the experiment can run.
func CheckPeer(path string) error {
	if path == "" {
		return ErrNoPeer
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%w: %v", ErrNoPeer, err)
	}
	return nil
}

// experiment is the state the cells share: the receiver, started by the
// first cell that runs, and what it took.
type experiment struct {
	Config
	recvOnce sync.Once
	recv     *rig.Receiver
	got      seqs
	recvErr  error
}

var (
	unitAccepted  = record.Unit{Name: "accepted-events/s", Better: 1}
	unitDelivered = record.Unit{Name: "delivered-events/s", Better: 1}
	unitDrain     = record.Unit{Name: "drain-ns", Better: -1}
	unitBacklog   = record.Unit{Name: "backlog-events", Better: 0}
	unitP50       = record.Unit{Name: "p50-ns/req", Better: -1}
	unitP99       = record.Unit{Name: "p99-ns/req", Better: -1}
	unitRSS       = record.Unit{Name: "peak-rss-bytes", Better: -1}
	unitCPU       = record.Unit{Name: "cpu-ms/1k-events", Better: -1}
	unitErrors    = record.Unit{Name: "errors", Better: -1}
	unitAcked     = record.Unit{Name: "acked-events", Better: 0}
	unitRecovery  = record.Unit{Name: "recovery-ns", Better: -1}
	unitLost      = record.Unit{Name: "lost-events", Better: -1}
	unitDups      = record.Unit{Name: "dup-events", Better: -1}

	// The kill check with a power cut (Config.Cut) adds these.
	unitRestartFailed = record.Unit{Name: "restart-failed", Better: -1}
	unitUncleanExit   = record.Unit{Name: "unclean-exit", Better: -1}
	allUnits          = []record.Unit{unitAccepted, unitDelivered, unitDrain, unitBacklog, unitP50, unitP99, unitRSS, unitCPU, unitErrors, unitAcked, unitRecovery, unitLost, unitDups}
	// CutUnits are the kill check's units under a power cut.
	CutUnits = []record.Unit{unitAcked, unitBacklog, unitRecovery, unitLost, unitDups, unitRestartFailed, unitUncleanExit}
)

const (
	startTimeout = 10 * time.Second
	stopTimeout  = 30 * time.Second
	// cellOverhead is a cell's expected cost beyond its load: starts, the
	// drain, the stop.
	cellOverhead = 800 * time.Millisecond
)

// Experiment returns the peer experiment: per batch size, a load cell of
// every system side by side, then a kill check of every system.
func (cfg Config) Experiment() *bench.Experiment {
	c := &experiment{Config: cfg}
	e := &bench.Experiment{
		Name: "peer",
		Plan: fmt.Sprintf("Our collector (-mode group, serialized; -sink webhook, -upload-batch %d, -upload-interval %s, no backlog cap) "+
			"against the OpenTelemetry Collector v0.165 (peers/otelcol: OTLP/HTTP receiver, otlp_http exporter, encoding json, compression none, "+
			"sending_queue on file_storage with fsync true and false, sizer requests, queue_size %d, 10 consumers, batches of %d items, flush %s), "+
			"both delivering to one receiver in the harness that dedupes by seq. vegeta closed loop, %d connections, %v events per request, "+
			"%s ramp dropped, %s measured, then the drain until every acknowledged event arrived (at most %s). "+
			"Kill check: %d events per request for %s, SIGKILL under load, restart on the same files, drain; lost and duplicated events counted.",
			uploadBatch, uploadInterval, peerQueueSize, uploadBatch, uploadInterval,
			c.Conns, c.Batches, c.Warm, c.Dur, c.DrainTimeout, c.KillBatch, c.KillAfter),
		Units:  allUnits,
		Close:  c.close,
		Reps:   c.Reps,
		Warmup: c.Warmup,
	}
	for _, batch := range c.Batches {
		for _, sys := range c.Systems {
			e.Cells = append(e.Cells, bench.Cell{
				Name: "PeerLoad",
				Config: []record.KV{
					{Key: "mode", Value: string(sys)},
					{Key: "batch", Value: strconv.Itoa(batch)},
					{Key: "conns", Value: strconv.Itoa(c.Conns)},
				},
				Cost: c.Warm + c.Dur + cellOverhead,
				Run:  c.load(sys, batch),
			})
		}
	}
	if c.KillAfter > 0 {
		for _, sys := range c.Systems {
			e.Cells = append(e.Cells, bench.Cell{
				Name: "PeerKill",
				Config: []record.KV{
					{Key: "mode", Value: string(sys)},
					{Key: "batch", Value: strconv.Itoa(c.KillBatch)},
					{Key: "conns", Value: strconv.Itoa(c.Conns)},
				},
				Cost: c.KillAfter + 2*cellOverhead,
				Run:  c.kill(sys),
			})
		}
	}
	return e
}

func (c *experiment) close() error {
	if c.recv != nil {
		return c.recv.Close()
	}
	return nil
}

// setup checks the binaries, starts the shared receiver once, empties it,
// and makes the cell's directory.
func (c *experiment) setup(sys System) (string, error) {
	if sys.otel() {
		if err := CheckPeer(c.Peer); err != nil {
			return "", err
		}
	} else if c.Collector == "" {
		return "", errors.New("no collector binary")
	}
	c.recvOnce.Do(func() { c.recv, c.recvErr = rig.StartReceiver(&c.got) })
	if c.recvErr != nil {
		return "", c.recvErr
	}
	c.recv.Reset()
	dir, err := os.MkdirTemp(c.Dir, "peer-*")
	if err == nil && c.Cut != nil {
		err = faultfs.SyncTree(c.Dir)
	}
	return dir, err
}

// load returns a load cell: the attack, then the drain.
func (c *experiment) load(sys System, batch int) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		dir, err := c.setup(sys)
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		in, err := c.newInstance(sys, dir)
		if err != nil {
			return bench.Sample{}, err
		}
		p, err := in.start(ctx)
		if err != nil {
			return bench.Sample{}, err
		}
		cpu0, cpuErr := p.CPUTime()
		g := &gen{sys: sys, batch: batch, seed: rep.Seed, ts0: tsBase}
		t := attack(p.Addr(), g, &c.got, attackOpts{conns: c.Conns, warm: c.Warm, dur: c.Dur, timeout: c.Timeout})
		backlog := t.ackedN - c.got.unique.Load()
		drain, drained := c.drain(ctx, t.acked, t.ackedN)
		cpu1, cpuErr1 := p.CPUTime()
		rss, rssErr := p.PeakRSS()
		if err := p.Stop(stopTimeout); err != nil {
			return bench.Sample{}, fmt.Errorf("%s: %w", sys, err)
		}
		if t.ok == 0 {
			return bench.Sample{}, fmt.Errorf("%s: no request succeeded (%d sent, %d errors): %s", sys, t.sent, t.errors, t.firstErr)
		}
		s := bench.Sample{Iters: int(t.eventsWin)}
		lost, dups := c.got.missing(t.acked), c.got.dups.Load()
		if !drained {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: %d acknowledged events still not delivered %s after the load", sys, lost, c.DrainTimeout))
		} else if lost > 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: %d of %d acknowledged events never delivered", sys, lost, t.ackedN))
		}
		if bad := c.recv.Bad(); bad > 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: the receiver could not decode %d deliveries", sys, bad))
		}
		s.Values = []record.Value{
			{Value: round(float64(t.eventsWin)/c.Dur.Seconds(), 1), Unit: unitAccepted.Name},
			{Value: round(t.deliveredRate(), 1), Unit: unitDelivered.Name},
			{Value: float64(drain.Round(time.Microsecond)), Unit: unitDrain.Name},
			{Value: float64(max(0, backlog)), Unit: unitBacklog.Name},
		}
		if len(t.lat) > 0 {
			s.Values = append(s.Values,
				record.Value{Value: float64(stats.Percentile(t.lat, 0.50)), Unit: unitP50.Name},
				record.Value{Value: float64(stats.Percentile(t.lat, 0.99)), Unit: unitP99.Name})
		}
		if rssErr == nil {
			s.Values = append(s.Values, record.Value{Value: float64(rss), Unit: unitRSS.Name})
		}
		// CPU from the start of the load to the end of the drain: accepting
		// and shipping, per 1,000 acknowledged events.
		if cpuErr == nil && cpuErr1 == nil && t.ackedN > 0 {
			s.Values = append(s.Values, record.Value{Value: round(float64(cpu1-cpu0)/float64(time.Millisecond)*1000/float64(t.ackedN), 3), Unit: unitCPU.Name})
		}
		s.Values = append(s.Values,
			record.Value{Value: float64(t.errors), Unit: unitErrors.Name},
			record.Value{Value: float64(lost), Unit: unitLost.Name},
			record.Value{Value: float64(dups), Unit: unitDups.Name})
		return s, nil
	}
}

// kill returns a kill check: load, SIGKILL while requests are in flight
// and a backlog waits, restart on the same files, drain; every event
// acknowledged before the kill must arrive.
func (c *experiment) kill(sys System) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		dir, err := c.setup(sys)
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		in, err := c.newInstance(sys, dir)
		if err != nil {
			return bench.Sample{}, err
		}
		if c.Cut != nil {
			if err := c.install(ctx, in, dir); err != nil {
				return bench.Sample{}, err
			}
			if err := c.recv.Set(rig.Fail(http.StatusServiceUnavailable)); err != nil {
				return bench.Sample{}, err
			}
			defer c.recv.Set(rig.Take)
		}
		p, err := in.start(ctx)
		if err != nil {
			return bench.Sample{}, err
		}
		var backlog int64
		g := &gen{sys: sys, batch: c.KillBatch, seed: rep.Seed, ts0: tsBase}
		t := attack(p.Addr(), g, &c.got, attackOpts{
			conns: c.Conns, dur: c.KillAfter + time.Second, timeout: c.Timeout,
			stopAt: c.KillAfter,
			onStop: func() {
				p.Kill()
				// Read after the kill: every 200 counted later was answered
				// before it, so this is at most the true backlog.
				backlog = c.got.unique.Load()
			},
		})
		backlog = max(0, t.ackedN-backlog)
		if t.ok == 0 {
			return bench.Sample{}, fmt.Errorf("%s: no request succeeded before the kill (%d sent, %d errors): %s", sys, t.sent, t.errors, t.firstErr)
		}
		var restartFailed, uncleanExit float64
		drained, recovery := false, time.Duration(0)
		if c.Cut != nil {
			if err := c.Cut(); err != nil {
				return bench.Sample{}, fmt.Errorf("power cut: %w", err)
			}
			if err := c.recv.Set(rig.Take); err != nil {
				return bench.Sample{}, err
			}
		}
		restarted := time.Now()
		p2, err := in.start(ctx)
		switch {
		case err != nil && c.Cut == nil:
			return bench.Sample{}, fmt.Errorf("restart after SIGKILL: %w", err)
		case err != nil:
			restartFailed = 1 // after a power cut: what it could not recover is lost
		default:
			_, drained = c.drain(ctx, t.acked, t.ackedN)
			recovery = time.Since(restarted)
			signalReady(ctx, p2)
			if err := p2.Stop(stopTimeout); err != nil {
				if c.Cut == nil {
					return bench.Sample{}, fmt.Errorf("%s after restart: %w", sys, err)
				}
				uncleanExit = 1
			}
		}
		lost, dups := c.got.missing(t.acked), c.got.dups.Load()
		s := bench.Sample{Iters: int(t.ackedN)}
		if c.Cut != nil {
			s.Values = append(s.Values,
				record.Value{Value: restartFailed, Unit: unitRestartFailed.Name},
				record.Value{Value: uncleanExit, Unit: unitUncleanExit.Name})
		}
		if lost > 0 && (c.Cut == nil || !sys.otel()) {
			how := "after the drain"
			if !drained {
				how = fmt.Sprintf("within %s of the restart", c.DrainTimeout)
			}
			s.Problems = append(s.Problems, fmt.Sprintf("%s: %d of %d events acknowledged before SIGKILL not delivered %s", sys, lost, t.ackedN, how))
		}
		s.Values = append(s.Values,
			record.Value{Value: float64(t.ackedN), Unit: unitAcked.Name},
			record.Value{Value: float64(backlog), Unit: unitBacklog.Name},
			record.Value{Value: float64(recovery.Round(time.Microsecond)), Unit: unitRecovery.Name},
			record.Value{Value: float64(lost), Unit: unitLost.Name},
			record.Value{Value: float64(dups), Unit: unitDups.Name})
		return s, nil
	}
}

// install starts the system once and stops it (after a moment: a process
// that only just opened its port may not handle SIGTERM yet), then makes
// everything under its directory durable, as a sync after an installation
// would.
func (c *experiment) install(ctx context.Context, in *instance, dir string) error {
	p, err := in.start(ctx)
	if err != nil {
		return err
	}
	signalReady(ctx, p)
	if err := p.Stop(stopTimeout); err != nil {
		return fmt.Errorf("%s: first stop: %w", in.sys, err)
	}
	return faultfs.SyncTree(dir)
}

// signalReadyAfter is how long after its start a process is given before
// a SIGTERM: the OpenTelemetry Collector opens its port before it handles
// the signal, so a SIGTERM at once kills it (signal: terminated, nothing
// logged; seen after a restart that had nothing left to deliver).
const signalReadyAfter = 300 * time.Millisecond

// signalReady waits until p has been up for signalReadyAfter.
func signalReady(ctx context.Context, p *rig.Process) {
	rig.Sleep(ctx, time.Until(p.Started().Add(signalReadyAfter)))
}

// tsBase is event 0's ts: a fixed instant, so runs are comparable.
const tsBase = 1_748_722_000_000

// drain waits until every acknowledged event reached the receiver, or
// DrainTimeout passes, or (with DrainQuiet) nothing new arrived for
// DrainQuiet; it returns how long it waited.
func (c *experiment) drain(ctx context.Context, acked bitset, n int64) (time.Duration, bool) {
	began := time.Now()
	last, lastAt := c.got.unique.Load(), began
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(c.DrainTimeout)
	defer deadline.Stop()
	for {
		// The unique count is cheap; the exact check runs once it could pass.
		u := c.got.unique.Load()
		if u >= n && c.got.missing(acked) == 0 {
			return time.Since(began), true
		}
		if u != last {
			last, lastAt = u, time.Now()
		} else if c.DrainQuiet > 0 && time.Since(lastAt) >= c.DrainQuiet {
			return time.Since(began), false
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return time.Since(began), false
		case <-ctx.Done():
			return time.Since(began), false
		}
	}
}

func round(x float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

// Package torture holds the harness's reliability experiments, run
// against the real collector binary with internal/rig's recording webhook
// receiver on loopback and its producers, which keep a ledger of every
// answer:
//
//   - torture: SIGKILL at seeded random moments, some aimed at the
//     uploader's window between ship and mark; restart on the same file;
//     repeat; then drain and hold the collector to its promises.
//   - soak: the sink fails for a long stretch (refused connections, 500s,
//     timeouts, slow answers) while producers keep sending; the backlog
//     reaches its cap, producers are pushed back, the sink recovers, the
//     backlog drains, nothing is lost.
//
// A broken promise is a Problem in the sample, which fails the run.
package torture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/bench/stats"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

// Config configures the torture experiment.
type Config struct {
	Binary string // the collector, built with CGO_ENABLED=0
	DBDir  string
	Modes  []store.Mode

	// Reps and Warmup are the experiment's own repetitions (bench.Experiment).
	Reps, Warmup int
	// Kills is how many times one repetition SIGKILLs the collector.
	Kills int
	// MinUp and MaxUp bound how long a collector serves before its kill.
	MinUp, MaxUp time.Duration
	Load         LoadConfig
}

// Units of the torture experiment.
var (
	unitKills      = record.Unit{Name: "kills", Better: 0}
	unitAcked      = record.Unit{Name: "acked-events", Better: 0}
	unitLost       = record.Unit{Name: "lost-events", Better: -1}
	unitDups       = record.Unit{Name: "duplicate-deliveries", Better: 0}
	unitUnanswered = record.Unit{Name: "unanswered-requests", Better: 0}
	unitTrapped    = record.Unit{Name: "kills-in-upload", Better: 0}
	unitRecP50     = record.Unit{Name: "recovery-p50-ns", Better: -1}
	unitRecMax     = record.Unit{Name: "recovery-max-ns", Better: -1}
	unitReadyP50   = record.Unit{Name: "ready-p50-ns", Better: -1}
	unitReadyMax   = record.Unit{Name: "ready-max-ns", Better: -1}
	tortureUnits   = []record.Unit{unitKills, unitAcked, unitLost, unitDups, unitUnanswered, unitTrapped, unitRecP50, unitRecMax, unitReadyP50, unitReadyMax}
)

const (
	startTimeout = 15 * time.Second
	stopTimeout  = 30 * time.Second
	drainTimeout = 90 * time.Second
)

// Experiment returns the torture experiment: one cell per mode.
func (cfg Config) Experiment() *bench.Experiment {
	sh := &shared{}
	e := &bench.Experiment{
		Name: "torture",
		Plan: fmt.Sprintf("The collector binary on 127.0.0.1, a fresh database per repetition, -sink webhook to a recording receiver in the harness "+
			"(-upload-interval 20ms, -upload-batch 200). %d producers send single events and %d send %d-event batches, closed loop, payloads with hostile text. "+
			"Each repetition SIGKILLs the collector %d times after %s-%s of service, a third of the kills while the receiver holds a batch unanswered "+
			"and a third just after it answered (the mark in progress), and restarts it on the same file (after SQLite's quick_check of the file the kill left); then it drains and checks the ledger.",
			cfg.Load.Singles, cfg.Load.Batchers, cfg.Load.Batch, cfg.Kills, cfg.MinUp, cfg.MaxUp),
		Units: tortureUnits,
		Close: sh.close,
	}
	for _, m := range cfg.Modes {
		e.Cells = append(e.Cells, bench.Cell{
			Name:   "Torture",
			Config: []record.KV{{Key: "mode", Value: string(m)}, {Key: "kills", Value: strconv.Itoa(cfg.Kills)}},
			// A random kill waits its whole uptime, a trapped one little past
			// MinUp; then a restart and its recovery. Then drain and stop.
			Cost: time.Duration(cfg.Kills)*((cfg.MinUp+cfg.MaxUp)/6+2*cfg.MinUp/3+200*time.Millisecond) + 1500*time.Millisecond,
			Run:  cfg.run(sh, m),
		})
	}
	e.Reps, e.Warmup = cfg.Reps, cfg.Warmup
	return e
}

// tortureCell is one repetition of a torture cell: a collector killed and
// restarted on one file, under one set of producers, and what it showed.
type tortureCell struct {
	cfg   Config
	recv  *rig.Receiver
	got   *rig.Deliveries
	c     rig.Collector
	proc  *rig.Process
	prod  *producers
	rng   *rand.Rand
	epoch int // restarts so far

	highWater       []int64 // per epoch: the largest id on disk at its kill
	recovery, ready []int64
	trapped         int
	problems        []string // found along the way

	// crashed reads the file a kill left: the largest id ever handed out
	// and the named check's verdict ("ok" when intact). rig.CrashState
	// (quick_check) when nil; the powercut experiment cuts the power first.
	crashed   func(ctx context.Context, k int) (maxID int64, check string, err error)
	checkName string
	// setAside, when set (the powercut experiment's negative control, whose
	// file a cut may leave damaged), answers a restart that refuses the
	// file as its operator would: the file is moved aside and the collector
	// starts a new buffer. What the old file held counts as lost. setAsides
	// counts them.
	setAside  bool
	setAsides int
}

func (cfg Config) run(sh *shared, mode store.Mode) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		db, done, err := sh.begin(cfg.Binary, cfg.DBDir)
		if err != nil {
			return bench.Sample{}, err
		}
		defer done()
		tc := &tortureCell{
			cfg: cfg, recv: sh.recv, got: &sh.got,
			c: rig.Collector{
				Bin: cfg.Binary, DB: db, Mode: string(mode), ID: "torture", Webhook: sh.recv.URL,
				Flags: []string{"-webhook-timeout", "5s", "-upload-interval", "20ms", "-upload-batch", "200",
					"-upload-max-backoff", "200ms", "-max-backlog", "0", "-drain-timeout", "10s"},
			},
			prod: cfg.Load.producers(rep.Seed),
			rng:  rand.New(rand.NewPCG(rep.Seed, 1)),
		}
		defer tc.prod.stop()
		if tc.proc, err = tc.c.Start(ctx, startTimeout); err != nil {
			return bench.Sample{}, err
		}
		defer func() {
			if tc.proc != nil && !tc.proc.Exited() { // nil: a restart failed
				tc.proc.Kill()
			}
		}()
		tc.prod.target.Set(tc.proc.URL("/events"), 0)
		tc.prod.start()
		for k := range cfg.Kills {
			if err := tc.killAndRestart(ctx, k); err != nil {
				return bench.Sample{}, err
			}
		}
		rig.Sleep(ctx, cfg.MinUp)
		return tc.drainAndCheck(ctx)
	}
}

// killAndRestart lets the collector serve a while, kills it (a third of the
// kills at random, a third while the receiver holds a batch unanswered, a
// third just after it answered one), checks the file the kill left, and
// restarts the collector on it.
func (tc *tortureCell) killAndRestart(ctx context.Context, k int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg := tc.cfg
	up := cfg.MinUp + time.Duration(tc.rng.Int64N(int64(cfg.MaxUp-cfg.MinUp)+1))
	switch k % 3 {
	case 0:
		rig.Sleep(ctx, up)
	case 1:
		tc.ambush(ctx, rig.Stall, up)
	case 2:
		if tc.ambush(ctx, rig.Take, up) {
			// Somewhere in the mark: right away, or a moment later.
			rig.Sleep(ctx, time.Duration(tc.rng.Int64N(int64(2*time.Millisecond))))
		}
	}
	if err := tc.proc.Kill(); err != nil {
		return err
	}
	crashed, name := tc.crashed, tc.checkName
	if crashed == nil {
		crashed = func(ctx context.Context, _ int) (int64, string, error) { return rig.CrashState(ctx, tc.c.DB) }
		name = "quick_check"
	}
	hw, check, err := crashed(ctx, k)
	if err != nil {
		return fmt.Errorf("after kill %d: %w", k+1, err)
	}
	if check != "ok" {
		tc.problems = append(tc.problems, fmt.Sprintf("after kill %d the file fails SQLite's %s: %s", k+1, name, check))
	}
	tc.highWater = append(tc.highWater, hw)

	tc.proc, err = tc.c.Start(ctx, startTimeout)
	if err != nil && tc.setAside && strings.Contains(err.Error(), "refusing the database file") {
		tc.setAsides++
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			os.Rename(tc.c.DB+suffix, fmt.Sprintf("%s.refused-%d%s", tc.c.DB, k+1, suffix))
		}
		tc.proc, err = tc.c.Start(ctx, startTimeout)
	}
	if err != nil {
		return fmt.Errorf("restart %d: %w", k+1, err)
	}
	tc.epoch++
	tc.prod.target.Set(tc.proc.URL("/events"), tc.epoch)
	rd, rc, err := tc.timeRecovery(ctx)
	if err != nil {
		return fmt.Errorf("restart %d: %w", k+1, err)
	}
	tc.ready, tc.recovery = append(tc.ready, int64(rd)), append(tc.recovery, int64(rc))
	return nil
}

// ambush waits MinUp, then sets a trap in mode m for the next batch and
// waits for it to spring, at most up. It reports whether it sprang; if the
// uploader shipped nothing in time, the kill is a random one.
func (tc *tortureCell) ambush(ctx context.Context, m rig.Mode, up time.Duration) bool {
	rig.Sleep(ctx, tc.cfg.MinUp)
	sprung := tc.recv.Trap(m)
	defer tc.recv.Disarm()
	select {
	case <-sprung:
		tc.trapped++
		return true
	case <-time.After(up):
	case <-ctx.Done():
	}
	return false
}

// timeRecovery times a restarted collector from its exec: until /healthz
// answers 200 (ready), and until a probe event is acknowledged (recovered).
func (tc *tortureCell) timeRecovery(ctx context.Context) (ready, recovered time.Duration, err error) {
	p := tc.proc
	deadline := time.Now().Add(startTimeout)
	for {
		if st, _, _ := p.Health(ctx); st == http.StatusOK {
			ready = time.Since(p.Started())
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("/healthz not 200 within %s of the restart: %s", startTimeout, p.Tail())
		}
		rig.Sleep(ctx, 2*time.Millisecond)
	}
	for {
		if tc.prod.probe.Post() == http.StatusOK {
			return ready, time.Since(p.Started()), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("no event accepted within %s of the restart: %s", startTimeout, p.Tail())
		}
		rig.Sleep(ctx, 2*time.Millisecond)
	}
}

// finish stops the producers, drains the backlog to zero, stops the
// collector cleanly, and holds what it left to the ledger.
func (tc *tortureCell) finish(ctx context.Context) (rig.Verdict, error) {
	tc.prod.stop()
	if err := tc.proc.WaitBacklog(ctx, 0, drainTimeout); err != nil {
		return rig.Verdict{}, err
	}
	if err := tc.proc.Stop(stopTimeout); err != nil {
		return rig.Verdict{}, err
	}
	rows, err := rig.ReadRows(ctx, tc.c.DB)
	if err != nil {
		return rig.Verdict{}, err
	}
	v := tc.prod.ledger.Check(rows, tc.got.Snapshot(), tc.highWater)
	if bad := tc.recv.Bad(); bad > 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("the receiver took %d batches that were not JSON arrays of events", bad))
	}
	return v, nil
}

// drainAndCheck finishes the cell and reports what it showed.
func (tc *tortureCell) drainAndCheck(ctx context.Context) (bench.Sample, error) {
	v, err := tc.finish(ctx)
	if err != nil {
		return bench.Sample{}, err
	}
	kills := tc.cfg.Kills
	s := bench.Sample{Iters: kills, Problems: append(tc.problems, v.Problems...)}
	if v.Acked == 0 {
		return s, errors.New("no event was acknowledged")
	}
	slices.Sort(tc.recovery)
	slices.Sort(tc.ready)
	s.Values = []record.Value{
		{Value: float64(kills), Unit: unitKills.Name},
		{Value: float64(v.Acked), Unit: unitAcked.Name},
		{Value: float64(v.Lost), Unit: unitLost.Name},
		{Value: float64(v.Duplicates), Unit: unitDups.Name},
		{Value: float64(tc.prod.ledger.Statuses()[0]), Unit: unitUnanswered.Name},
		{Value: float64(tc.trapped), Unit: unitTrapped.Name},
		{Value: float64(pctl(tc.recovery, 0.5)), Unit: unitRecP50.Name},
		{Value: float64(pctl(tc.recovery, 1)), Unit: unitRecMax.Name},
		{Value: float64(pctl(tc.ready, 0.5)), Unit: unitReadyP50.Name},
		{Value: float64(pctl(tc.ready, 1)), Unit: unitReadyMax.Name},
	}
	return s, nil
}

// pctl is the q-quantile of sorted xs; 0 for none.
func pctl(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	return stats.Percentile(xs, q)
}

// Package torture holds the harness's reliability experiments, run
// against the real collector binary with a recording webhook receiver on
// loopback and producers that keep a ledger of every answer:
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
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/results"
	"edgecollector/bench/stats"
	"edgecollector/collector/store"
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

// DefaultLoad is the torture's producers: four sending single events,
// two sending 100-event batches.
var DefaultLoad = LoadConfig{Singles: 4, Batchers: 2, Batch: 100, RetryCap: time.Second}

// Units of the torture experiment.
var (
	unitKills      = results.Unit{Name: "kills", Better: 0}
	unitAcked      = results.Unit{Name: "acked-events", Better: 0}
	unitLost       = results.Unit{Name: "lost-events", Better: -1}
	unitDups       = results.Unit{Name: "duplicate-deliveries", Better: 0}
	unitUnanswered = results.Unit{Name: "unanswered-requests", Better: 0}
	unitTrapped    = results.Unit{Name: "kills-in-upload", Better: 0}
	unitRecP50     = results.Unit{Name: "recovery-p50-ns", Better: -1}
	unitRecMax     = results.Unit{Name: "recovery-max-ns", Better: -1}
	unitReadyP50   = results.Unit{Name: "ready-p50-ns", Better: -1}
	unitReadyMax   = results.Unit{Name: "ready-max-ns", Better: -1}
	tortureUnits   = []results.Unit{unitKills, unitAcked, unitLost, unitDups, unitUnanswered, unitTrapped, unitRecP50, unitRecMax, unitReadyP50, unitReadyMax}
)

const (
	startTimeout = 15 * time.Second
	stopTimeout  = 30 * time.Second
	drainTimeout = 90 * time.Second
)

// shared is what the cells of one experiment share: the receiver.
type shared struct {
	once sync.Once
	recv *receiver
	err  error
}

func (s *shared) receiver() (*receiver, error) {
	s.once.Do(func() { s.recv, s.err = startReceiver() })
	return s.recv, s.err
}

func (s *shared) close() error {
	if s.recv != nil {
		return s.recv.close()
	}
	return nil
}

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
			Config: []results.KV{{Key: "mode", Value: string(m)}, {Key: "kills", Value: strconv.Itoa(cfg.Kills)}},
			// A random kill waits its whole uptime, a trapped one little past
			// MinUp; then a restart and its recovery. Then drain and stop.
			Cost: time.Duration(cfg.Kills)*((cfg.MinUp+cfg.MaxUp)/6+2*cfg.MinUp/3+200*time.Millisecond) + 1500*time.Millisecond,
			Run:  cfg.run(sh, m),
		})
	}
	e.Reps, e.Warmup = cfg.Reps, cfg.Warmup
	return e
}

func (cfg Config) run(sh *shared, mode store.Mode) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		if cfg.Binary == "" {
			return bench.Sample{}, errNoBinary
		}
		recv, err := sh.receiver()
		if err != nil {
			return bench.Sample{}, err
		}
		recv.reset()
		dir, err := os.MkdirTemp(cfg.DBDir, "torture-*")
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		db := filepath.Join(dir, "events.db")
		args := []string{
			"-db", db, "-addr", "127.0.0.1:0", "-mode", string(mode),
			"-sink", "webhook", "-webhook-url", recv.url, "-webhook-timeout", "5s",
			"-collector-id", "torture", "-log-format", "json",
			"-upload-interval", "20ms", "-upload-batch", "200", "-upload-max-backoff", "200ms",
			"-max-backlog", "0", "-drain-timeout", "10s",
		}
		rng := rand.New(rand.NewPCG(rep.Seed, 1))
		l := newLoad(cfg.Load, rep.Seed)
		defer l.stop()

		proc, err := startCollector(ctx, cfg.Binary, args, startTimeout)
		if err != nil {
			return bench.Sample{}, err
		}
		defer func() {
			if proc != nil && !proc.Exited() {
				proc.Kill()
			}
		}()
		l.target.Store(&target{url: "http://" + proc.Addr() + "/events"})
		l.start()

		var (
			highWater       []int64 // per epoch: the largest id on disk at its kill
			recovery, ready []int64
			trapped         int
			problems        []string // found along the way
		)
		for k := range cfg.Kills {
			if err := ctx.Err(); err != nil {
				return bench.Sample{}, err
			}
			up := cfg.MinUp + time.Duration(rng.Int64N(int64(cfg.MaxUp-cfg.MinUp)+1))
			// A third of the kills land at random, a third while a sink
			// request is in flight, a third just after the receiver answered.
			switch tr := trap(k % 3); tr {
			case trapNone:
				sleep(ctx, up)
			default:
				sleep(ctx, cfg.MinUp)
				recv.arm(tr)
				select {
				case <-recv.sprung:
					trapped++
					if tr == trapAnswered {
						// Somewhere in the mark: right away, or a moment later.
						sleep(ctx, time.Duration(rng.Int64N(int64(2*time.Millisecond))))
					}
				case <-time.After(up):
					// The uploader shipped nothing in time: a random kill.
				case <-ctx.Done():
				}
				recv.disarm()
			}
			if err := proc.Kill(); err != nil {
				return bench.Sample{}, err
			}
			hw, check, err := crashState(ctx, db)
			if err != nil {
				return bench.Sample{}, fmt.Errorf("after kill %d: %w", k+1, err)
			}
			if check != "ok" {
				problems = append(problems, fmt.Sprintf("after kill %d the file fails SQLite's quick_check: %s", k+1, check))
			}
			highWater = append(highWater, hw)

			proc, err = startCollector(ctx, cfg.Binary, args, startTimeout)
			if err != nil {
				return bench.Sample{}, fmt.Errorf("restart %d: %w", k+1, err)
			}
			base := "http://" + proc.Addr()
			l.target.Store(&target{url: base + "/events", epoch: k + 1})
			rd, rc, err := timeRecovery(ctx, proc, base, l, rng)
			if err != nil {
				return bench.Sample{}, fmt.Errorf("restart %d: %w", k+1, err)
			}
			ready, recovery = append(ready, int64(rd)), append(recovery, int64(rc))
		}
		sleep(ctx, cfg.MinUp)

		// Drain: no more producers, the backlog to zero, a clean stop.
		l.stop()
		if err := waitBacklog(ctx, "http://"+proc.Addr(), 0, drainTimeout); err != nil {
			return bench.Sample{}, err
		}
		if err := proc.Stop(stopTimeout); err != nil {
			return bench.Sample{}, err
		}
		rows, err := readRows(ctx, db)
		if err != nil {
			return bench.Sample{}, err
		}
		got, _, bad := recv.snapshot()
		v := checkLedger(l, rows, got, bad, highWater)
		s := bench.Sample{Iters: cfg.Kills, Problems: append(problems, v.problems...)}
		if v.acked == 0 {
			return s, errors.New("no event was acknowledged")
		}
		slices.Sort(recovery)
		slices.Sort(ready)
		s.Values = []results.Value{
			{Value: float64(cfg.Kills), Unit: unitKills.Name},
			{Value: float64(v.acked), Unit: unitAcked.Name},
			{Value: float64(v.lost), Unit: unitLost.Name},
			{Value: float64(v.duplicates), Unit: unitDups.Name},
			{Value: float64(l.counts()[0]), Unit: unitUnanswered.Name},
			{Value: float64(trapped), Unit: unitTrapped.Name},
			{Value: float64(pctl(recovery, 0.5)), Unit: unitRecP50.Name},
			{Value: float64(pctl(recovery, 1)), Unit: unitRecMax.Name},
			{Value: float64(pctl(ready, 0.5)), Unit: unitReadyP50.Name},
			{Value: float64(pctl(ready, 1)), Unit: unitReadyMax.Name},
		}
		return s, nil
	}
}

// timeRecovery times a restarted collector from its exec: until /healthz answers
// 200 (ready), and until a probe event is acknowledged (recovered).
func timeRecovery(ctx context.Context, proc *process, base string, l *load, rng *rand.Rand) (ready, recovered time.Duration, err error) {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		if st, _ := get(ctx, client, base+"/healthz", nil); st == http.StatusOK {
			ready = time.Since(proc.started)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("/healthz not 200 within %s of the restart: %s", startTimeout, proc.Tail())
		}
		sleep(ctx, 2*time.Millisecond)
	}
	for {
		if l.probe(rng) == http.StatusOK {
			return ready, time.Since(proc.started), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("no event accepted within %s of the restart: %s", startTimeout, proc.Tail())
		}
		sleep(ctx, 2*time.Millisecond)
	}
}

// statsAnswer is the part of /stats the experiments read.
type statsAnswer struct {
	Store struct {
		Backlog int64 `json:"backlog"`
	} `json:"store"`
}

// waitBacklog polls /stats until the backlog is at most n.
func waitBacklog(ctx context.Context, base string, n int64, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	last := int64(-1)
	for {
		var s statsAnswer
		if st, err := get(ctx, client, base+"/stats", &s); err == nil && st == http.StatusOK {
			last = s.Store.Backlog
			if last <= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backlog still %d after %s (want %d)", last, timeout, n)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sleep(ctx, 20*time.Millisecond)
	}
}

// get fetches url and decodes a JSON answer into v when v is not nil.
func get(ctx context.Context, client *http.Client, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %w", url, err)
		}
	}
	return resp.StatusCode, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// pctl is the q-quantile of sorted xs; 0 for none.
func pctl(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	return stats.Percentile(xs, q)
}

var errNoBinary = errors.New("no collector binary")

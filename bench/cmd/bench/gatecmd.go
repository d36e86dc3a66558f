package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/gate"
	"edgecollector/bench/peer"
	"edgecollector/bench/record"
	"edgecollector/bench/storebench"
	"edgecollector/collector/store"
)

func gateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench gate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: bench gate [flags]

Runs a quick interleaved measurement of the cells the thresholds file names
(with its A/A control), then checks each ratio: a gate fails only when the
whole 95%% confidence interval of the paired ratio lies past its threshold.
Exits 1 when a gate fails, saying why. On a busy machine it runs anyway
(CI machines are what they are) and says so; the intervals widen.

Flags:
`)
		fs.PrintDefaults()
	}
	var sf sessionFlags
	sf.register(fs)
	thresholds := fs.String("thresholds", "bench/gates.txt", "thresholds `file`")
	reps := fs.Int("reps", 8, "counted repetitions per cell (6 or more for a 95% CI)")
	seed := fs.Uint64("seed", 1, "seed of the generated events")
	keep := fs.String("keep", "", "write the gate run's results under this `directory` (default: discard)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	f, err := os.Open(*thresholds)
	if err != nil {
		return err
	}
	gates, err := gate.Parse(f, *thresholds)
	f.Close()
	if err != nil {
		return err
	}
	gp, err := gatePlanOf(gates)
	if err != nil {
		return err
	}
	sf.allowBusy = true // a gate reports a busy machine; it does not refuse
	s, err := openSession(ctx, sf, "gate", gp.delivery != nil, stderr)
	if err != nil {
		return err
	}
	defer s.close()

	dir := *keep
	if dir == "" {
		dir, err = os.MkdirTemp(s.scratch, "gate-results-*")
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	plan := gp.experiments(s.scratch, s.collectorBinary())
	defer func() {
		for _, e := range plan {
			if e.Close != nil {
				e.Close()
			}
		}
	}()
	runs, cost := bench.Budget(plan, *reps, 1)
	fmt.Fprintf(stderr, "bench: gate run: %d cell runs (%d counted repetitions + 1 warm-up), planned %s\n", runs, *reps, cost.Round(time.Second))
	r := &bench.Runner{
		Dir: dir, Meta: s.meta, Header: header(s.meta, *seed),
		Reps: *reps, Warmup: 1, Seed: *seed,
		Progress: bench.NewProgress(stderr, runs, cost),
	}
	err = r.Run(ctx, plan)
	r.Progress.Finish()
	s.finish()
	if err != nil {
		return fmt.Errorf("gate run: %w", err)
	}
	run, err := record.ReadRun(dir)
	if err != nil {
		return err
	}
	if s.meta.Load.Busy {
		fmt.Fprintf(stdout, "note: %s\n", s.meta.Load.Note)
	}
	failed := evaluate(stdout, gates, run)
	if *keep != "" {
		fmt.Fprintf(stdout, "results kept in %s\n", dir)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d gates failed (thresholds: %s)", failed, len(gates), *thresholds)
	}
	fmt.Fprintf(stdout, "all %d gates passed\n", len(gates))
	return nil
}

// evaluate checks every gate against the run, prints each verdict, and
// returns how many failed.
func evaluate(stdout io.Writer, gates []gate.Gate, run *record.Run) (failed int) {
	for _, g := range gates {
		v := gate.Evaluate(g, run.Files[g.Experiment])
		fmt.Fprintln(stdout, v)
		if v.Status == gate.Fail {
			failed++
		}
	}
	return failed
}

// gatePlan is what a gate run measures: the throughput cells the mode
// gates compare, and the peer experiment's load cells of our collector that
// the delivery gates read (nil when no gate names them).
type gatePlan struct {
	throughput *storebench.Throughput
	delivery   *peer.Config
}

// experiments returns the plan's experiments, with their databases under
// scratch and collector as the binary the delivery cells run.
func (gp gatePlan) experiments(scratch, collector string) []*bench.Experiment {
	var plan []*bench.Experiment
	if gp.throughput != nil {
		th := *gp.throughput
		th.DBDir = scratch
		plan = append(plan, th.Experiment())
	}
	if gp.delivery != nil {
		d := *gp.delivery
		d.Dir, d.Collector = scratch, collector
		plan = append(plan, d.Experiment())
	}
	return plan
}

// gatePlanOf returns what the gates need: throughput/Throughput gates are
// mode ratios of the store in process; peer/PeerLoad gates read our
// collector's load cells (the binary, delivering to the harness's
// receiver), at the batch sizes and connections they name. Other
// experiments are not gated.
func gatePlanOf(gates []gate.Gate) (gatePlan, error) {
	var gp gatePlan
	var th []gate.Gate
	for _, g := range gates {
		switch {
		case g.Experiment == "throughput" && g.Benchmark == "Throughput":
			th = append(th, g)
		case g.Experiment == "peer" && g.Benchmark == "PeerLoad":
			if err := addDeliveryGate(&gp, g); err != nil {
				return gp, err
			}
		default:
			return gp, fmt.Errorf("gate %s: only throughput/Throughput and peer/PeerLoad gates are run by `bench gate`", g.Name)
		}
	}
	if len(th) > 0 {
		p, err := gateExperiment(th)
		if err != nil {
			return gp, err
		}
		gp.throughput = &p
	}
	if gp.throughput == nil && gp.delivery == nil {
		return gp, errors.New("no gates")
	}
	return gp, nil
}

// addDeliveryGate adds a peer/PeerLoad gate's cells to the plan: our
// systems only (the peer's binary is not CI's), a short load (2 s after
// 0.5 s dropped), no kill check.
func addDeliveryGate(gp *gatePlan, g gate.Gate) error {
	if gp.delivery == nil {
		gp.delivery = &peer.Config{Conns: 16, Warm: 500 * time.Millisecond, Dur: 2 * time.Second,
			Timeout: 5 * time.Second, DrainTimeout: 30 * time.Second}
	}
	d := gp.delivery
	for _, m := range []string{g.Num, g.Den} {
		sys := peer.System(m)
		if !slices.Contains([]peer.System{peer.OursGroup, peer.OursSerialized, peer.OursGroupK1}, sys) {
			return fmt.Errorf("gate %s: mode %q: a delivery gate runs our collector only (ours-group, ours-serialized, ours-group-k1)", g.Name, m)
		}
		if !slices.Contains(d.Systems, sys) {
			d.Systems = append(d.Systems, sys)
		}
	}
	for _, kv := range g.Where {
		n, err := strconv.Atoi(kv.Value)
		switch {
		case kv.Key != "batch" && kv.Key != "conns":
			return fmt.Errorf("gate %s: unknown key %q (batch, conns)", g.Name, kv.Key)
		case err != nil || n < 1:
			return fmt.Errorf("gate %s: %s=%q", g.Name, kv.Key, kv.Value)
		case kv.Key == "batch" && !slices.Contains(d.Batches, n):
			d.Batches = append(d.Batches, n)
		case kv.Key == "conns":
			d.Conns = n
		}
	}
	if len(d.Batches) == 0 {
		return fmt.Errorf("gate %s: must name batch=", g.Name)
	}
	return nil
}

// gateExperiment returns the throughput cells the gates need: the modes
// they compare (the A/A control among them) at the producer counts and
// index choices they name.
func gateExperiment(gates []gate.Gate) (storebench.Throughput, error) {
	p := storebench.ThroughputFor(bench.Quick)
	p.Modes, p.Control, p.Producers, p.Indexed = nil, "", nil, nil
	for _, g := range gates {
		if g.Experiment != "throughput" || g.Benchmark != "Throughput" {
			return p, fmt.Errorf("gate %s: only throughput/Throughput gates are run by `bench gate`", g.Name)
		}
		for _, m := range []string{g.Num, g.Den} {
			if base, ok := strings.CutSuffix(m, storebench.ControlSuffix); ok {
				p.Control = store.Mode(base)
				m = base
			}
			mode, err := store.ParseMode(m)
			if err != nil {
				return p, fmt.Errorf("gate %s: %w", g.Name, err)
			}
			if !slices.Contains(p.Modes, mode) {
				p.Modes = append(p.Modes, mode)
			}
		}
		for _, kv := range g.Where {
			switch kv.Key {
			case "producers":
				n, err := strconv.Atoi(kv.Value)
				if err != nil || n < 1 {
					return p, fmt.Errorf("gate %s: producers=%q", g.Name, kv.Value)
				}
				if !slices.Contains(p.Producers, n) {
					p.Producers = append(p.Producers, n)
				}
			case "indexed":
				b, err := strconv.ParseBool(kv.Value)
				if err != nil {
					return p, fmt.Errorf("gate %s: indexed=%q", g.Name, kv.Value)
				}
				if !slices.Contains(p.Indexed, b) {
					p.Indexed = append(p.Indexed, b)
				}
			default:
				return p, fmt.Errorf("gate %s: unknown key %q (producers, indexed)", g.Name, kv.Key)
			}
		}
	}
	if len(p.Producers) == 0 || len(p.Indexed) == 0 {
		return p, errors.New("gates must name producers= and indexed=")
	}
	// The baseline first, as in a full run.
	slices.SortStableFunc(p.Modes, func(a, b store.Mode) int { return slices.Index(store.Modes, a) - slices.Index(store.Modes, b) })
	return p, nil
}

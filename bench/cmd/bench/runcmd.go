package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/experiments"
	"edgecollector/bench/record"
)

// runOptions is a parsed `bench run` command line.
type runOptions struct {
	session sessionFlags
	profile bench.Profile
	specs   []*bench.Spec // the experiments to run, in the registry's order
	seed    uint64
	root    string // the results directory
	machine string
	dryRun  bool
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRun(args, stderr)
	if err != nil {
		return err
	}
	if o.dryRun {
		printPlan(stdout, o)
		return nil
	}
	// Before the machine checks and builds: a missing prerequisite is the
	// user's next step, not a failure minutes into the run.
	for _, s := range o.specs {
		if s.Check != nil {
			if err := s.Check(); err != nil {
				return err
			}
		}
	}
	needCollector := slices.ContainsFunc(o.specs, func(s *bench.Spec) bool { return s.Collector })
	s, err := openSession(ctx, o.session, o.profile.Name, needCollector, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	if o.machine != "" {
		s.meta.MachineID = o.machine
	}
	return measure(ctx, o, s, stdout, stderr)
}

// parseRun parses the command line of `bench run`: the session's flags,
// the run's and every experiment's own.
func parseRun(args []string, stderr io.Writer) (runOptions, error) {
	fs := flag.NewFlagSet("bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	names := strings.Join(experiments.Names(), ", ")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: bench run [flags] [experiment ...]

Runs the experiments (default: all of %s) with the modes interleaved, a
dropped warm-up repetition, and a correctness check in every cell, and writes
results/<machine>/<timestamp>/: one Go benchmark format file per experiment
(benchstat reads them) and machine.json.

Flags:
`, names)
		fs.PrintDefaults()
	}
	var (
		o            runOptions
		quick        bool
		reps, warmup int
		skip         string
	)
	o.session.register(fs)
	fs.BoolVar(&quick, "quick", false, "smoke run: fewer cells, shorter, 6 counted repetitions (a few minutes)")
	fs.IntVar(&reps, "reps", 0, "counted repetitions per cell (default: the profile's, 10 full, 6 quick)")
	fs.IntVar(&warmup, "warmup", -1, "leading repetitions run and dropped (default 1)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated events and row choices")
	fs.StringVar(&o.root, "results", "results", "results `directory`")
	fs.BoolVar(&o.dryRun, "n", false, "print the cell plan and its planned duration, and measure nothing")
	fs.StringVar(&skip, "skip", "", "comma-separated `experiments` to leave out (e.g. peer when time is short)")
	fs.StringVar(&o.machine, "machine", "", "machine id for the results path (default: derived from CPU model and /etc/machine-id)")
	for _, s := range experiments.All {
		if s.Flags != nil {
			s.Flags(fs)
		}
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return o, err
		}
		return o, usageError{err}
	}
	o.profile = bench.Full
	if quick {
		o.profile = bench.Quick
	}
	if reps != 0 {
		o.profile.Reps = reps
	}
	if warmup >= 0 {
		o.profile.Warmup = warmup
	}
	if o.profile.Reps < 1 {
		return o, usageError{fmt.Errorf("-reps must be at least 1")}
	}
	var err error
	if o.specs, err = selectSpecs(fs.Args(), skip, names); err != nil {
		return o, err
	}
	o.specs, err = machineCan(o.specs, len(fs.Args()) > 0, stderr)
	return o, err
}

// machineCan drops the experiments this machine cannot run (Spec.Needs),
// saying why; when they were named, it fails instead.
func machineCan(specs []*bench.Spec, named bool, stderr io.Writer) ([]*bench.Spec, error) {
	var out []*bench.Spec
	for _, s := range specs {
		if s.Needs != nil {
			if err := s.Needs(); err != nil {
				if named {
					return nil, fmt.Errorf("%s: %w", s.Name, err)
				}
				fmt.Fprintf(stderr, "bench: %s left out: %v\n", s.Name, err)
				continue
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// selectSpecs returns the experiments named (all when none), less those
// skip names, in the registry's order.
func selectSpecs(named []string, skip, names string) ([]*bench.Spec, error) {
	for _, n := range named {
		if experiments.Lookup(n) == nil {
			return nil, usageError{fmt.Errorf("unknown experiment %q (want %s)", n, names)}
		}
	}
	skipped := make(map[string]bool)
	if skip != "" {
		for _, n := range strings.Split(skip, ",") {
			if n = strings.TrimSpace(n); experiments.Lookup(n) == nil {
				return nil, usageError{fmt.Errorf("-skip: unknown experiment %q (want %s)", n, names)}
			}
			skipped[n] = true
		}
	}
	var specs []*bench.Spec
	for _, s := range experiments.All {
		if (len(named) == 0 || slices.Contains(named, s.Name)) && !skipped[s.Name] {
			specs = append(specs, s)
		}
	}
	if len(specs) == 0 {
		return nil, usageError{fmt.Errorf("-skip leaves no experiment to run")}
	}
	return specs, nil
}

// instantiate returns the selected experiments for the run's profile.
func instantiate(o runOptions, env bench.Env) []*bench.Experiment {
	exps := make([]*bench.Experiment, len(o.specs))
	for i, s := range o.specs {
		exps[i] = s.New(o.profile, env)
	}
	return exps
}

// printPlan prints each experiment's cells, repetitions and planned
// duration (bench run -n).
func printPlan(w io.Writer, o runOptions) {
	p := o.profile
	exps := instantiate(o, bench.Env{})
	for _, e := range exps {
		n, c := bench.Budget([]*bench.Experiment{e}, p.Reps, p.Warmup)
		reps, warmup := e.Repetitions(p.Reps, p.Warmup)
		fmt.Fprintf(w, "%-11s %3d cells x %d repetitions (+%d warm-up) = %4d cell runs, planned %s\n",
			e.Name, len(e.Cells), reps, warmup, n, c.Round(time.Second))
	}
	runs, cost := bench.Budget(exps, p.Reps, p.Warmup)
	fmt.Fprintf(w, "%-11s %42d cell runs, planned %s (plus ~10 s of setup: machine capture, fsync ceiling, builds)\n", "total", runs, cost.Round(time.Second))
}

// measure runs the experiments of o into a new run directory.
func measure(ctx context.Context, o runOptions, s *session, stdout, stderr io.Writer) error {
	p := o.profile
	exps := instantiate(o, bench.Env{Scratch: s.scratch, Collector: s.collectorBinary()})
	started := time.Now()
	dir := filepath.Join(o.root, s.meta.MachineID, started.UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	runs, cost := bench.Budget(exps, p.Reps, p.Warmup)
	var names []string
	for _, e := range exps {
		names = append(names, e.Name)
	}
	fmt.Fprintf(stderr, "bench: %s run: %s; %d cell runs (%d counted repetitions + %d warm-up, unless an experiment plans its own), planned %s; seed %d\n",
		p.Name, strings.Join(names, ", "), runs, p.Reps, p.Warmup, cost.Round(time.Second), o.seed)
	fmt.Fprintf(stderr, "bench: writing %s\n", dir)
	r := &bench.Runner{
		Dir:      dir,
		Meta:     s.meta,
		Header:   header(s.meta, o.seed),
		Reps:     p.Reps,
		Warmup:   p.Warmup,
		Seed:     o.seed,
		Progress: bench.NewProgress(stderr, runs, cost),
	}
	err := r.Run(ctx, exps)
	r.Progress.Finish()
	s.finish()
	if werr := record.WriteMeta(dir, s.meta); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", dir, err)
	}
	fmt.Fprintf(stdout, "%s\n", dir)
	fmt.Fprintf(stderr, "bench: done in %s; `bench report -results %s -out DIR` writes a report of it (make report: results/ into reports/)\n",
		time.Since(started).Round(time.Second), o.root)
	return nil
}

// header is the file-wide configuration of every results file: what
// benchstat prints above its tables.
func header(m *record.Meta, seed uint64) []record.KV {
	return []record.KV{
		{Key: "goos", Value: runtime.GOOS},
		{Key: "goarch", Value: runtime.GOARCH},
		{Key: "cpu", Value: m.Machine.CPU},
		{Key: "machine", Value: m.MachineID},
		{Key: "commit", Value: m.Software.GitRevision},
		{Key: "profile", Value: m.Run.Profile},
		{Key: "seed", Value: strconv.FormatUint(seed, 10)},
	}
}

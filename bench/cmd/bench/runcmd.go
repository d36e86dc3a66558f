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
	"edgecollector/bench/faultfs"
	"edgecollector/bench/peer"
	"edgecollector/bench/results"
)

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: bench run [flags] [experiment ...]

Runs the experiments (default: all of %s) with the modes interleaved, a
dropped warm-up repetition, and a correctness check in every cell, and writes
results/<machine>/<timestamp>/: one Go benchmark format file per experiment
(benchstat reads them) and machine.json.

Flags:
`, strings.Join(experimentNames, ", "))
		fs.PrintDefaults()
	}
	var (
		sf      sessionFlags
		quick   bool
		reps    int
		warmup  int
		seed    uint64
		root    string
		machine string
		dryRun  bool
		skip    string
		fuzz    time.Duration
	)
	sf.register(fs)
	fs.BoolVar(&quick, "quick", false, "smoke run: fewer cells, shorter, 6 counted repetitions (a few minutes)")
	fs.IntVar(&reps, "reps", 0, "counted repetitions per cell (default: the profile's, 10 full, 6 quick)")
	fs.IntVar(&warmup, "warmup", -1, "leading repetitions run and dropped (default 1)")
	fs.Uint64Var(&seed, "seed", 1, "seed of the generated events and row choices")
	fs.StringVar(&root, "results", "results", "results `directory`")
	fs.BoolVar(&dryRun, "n", false, "print the cell plan and its planned duration, and measure nothing")
	fs.StringVar(&skip, "skip", "", "comma-separated `experiments` to leave out (e.g. peer when time is short)")
	fs.DurationVar(&fuzz, "fuzztime", 0, "fuzz experiment: how long to fuzz each target (default: the profile's, 30s full, 10s quick)")
	fs.StringVar(&machine, "machine", "", "machine id for the results path (default: derived from CPU model and /etc/machine-id)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	exps := fs.Args()
	if len(exps) == 0 {
		exps = experimentNames
	}
	for _, e := range exps {
		if !slices.Contains(experimentNames, e) {
			return usageError{fmt.Errorf("unknown experiment %q (want %s)", e, strings.Join(experimentNames, ", "))}
		}
	}
	if skip != "" {
		for _, e := range strings.Split(skip, ",") {
			if e = strings.TrimSpace(e); !slices.Contains(experimentNames, e) {
				return usageError{fmt.Errorf("-skip: unknown experiment %q (want %s)", e, strings.Join(experimentNames, ", "))}
			}
			exps = slices.DeleteFunc(slices.Clone(exps), func(x string) bool { return x == e })
		}
		if len(exps) == 0 {
			return usageError{fmt.Errorf("-skip leaves no experiment to run")}
		}
	}
	if err := faultfs.Usable(); err != nil {
		named := fs.NArg() > 0
		for _, e := range fuseExperiments {
			if !slices.Contains(exps, e) {
				continue
			}
			if named {
				return fmt.Errorf("%s: %w", e, err)
			}
			exps = slices.DeleteFunc(slices.Clone(exps), func(x string) bool { return x == e })
			fmt.Fprintf(stderr, "bench: %s left out: %v\n", e, err)
		}
	}
	p := profiles()["full"]
	if quick {
		p = profiles()["quick"]
	}
	if reps != 0 {
		p.reps = reps
	}
	if warmup >= 0 {
		p.warmup = warmup
	}
	if fuzz < 0 {
		return usageError{fmt.Errorf("-fuzztime must not be negative")}
	}
	if fuzz > 0 {
		p.fuzz.Time = fuzz
	}
	if p.reps < 1 {
		return usageError{fmt.Errorf("-reps must be at least 1")}
	}

	if dryRun {
		plan := buildExperiments(p, exps, &session{meta: &results.Meta{}})
		runs, cost := bench.Plan(plan, p.reps, p.warmup)
		for _, e := range plan {
			n, c := bench.Plan([]*bench.Experiment{e}, p.reps, p.warmup)
			reps, warmup := e.Repetitions(p.reps, p.warmup)
			fmt.Fprintf(stdout, "%-11s %3d cells x %d repetitions (+%d warm-up) = %4d cell runs, planned %s\n",
				e.Name, len(e.Cells), reps, warmup, n, c.Round(time.Second))
		}
		fmt.Fprintf(stdout, "%-11s %42d cell runs, planned %s (plus ~10 s of setup: machine capture, fsync ceiling, builds)\n", "total", runs, cost.Round(time.Second))
		return nil
	}
	if slices.Contains(exps, "peer") {
		// Before the machine checks and builds: a missing peer is the
		// user's next step, not a failure minutes into the run.
		if err := peer.CheckPeer(sf.peer); err != nil {
			return fmt.Errorf("-peer %s: %w (or skip it: -skip peer, make reproduce SKIP=peer)", sf.peer, err)
		}
	}
	s, err := openSession(ctx, sf, p.name, slices.ContainsFunc(exps, func(e string) bool { return slices.Contains(collectorExperiments, e) }), stderr)
	if err != nil {
		return err
	}
	defer s.close()
	if machine != "" {
		s.meta.MachineID = machine
	}
	plan := buildExperiments(p, exps, s)

	started := time.Now()
	dir := filepath.Join(root, s.meta.MachineID, started.UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	runs, cost := bench.Plan(plan, p.reps, p.warmup)
	fmt.Fprintf(stderr, "bench: %s run: %s; %d cell runs (%d counted repetitions + %d warm-up, unless an experiment plans its own), planned %s; seed %d\n",
		p.name, strings.Join(exps, ", "), runs, p.reps, p.warmup, cost.Round(time.Second), seed)
	fmt.Fprintf(stderr, "bench: writing %s\n", dir)
	r := &bench.Runner{
		Dir:      dir,
		Meta:     s.meta,
		Header:   header(s.meta, seed),
		Reps:     p.reps,
		Warmup:   p.warmup,
		Seed:     seed,
		Progress: bench.NewProgress(stderr, runs, cost),
	}
	err = r.Run(ctx, plan)
	r.Progress.Finish()
	s.finish()
	if werr := results.WriteMeta(dir, s.meta); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", dir, err)
	}
	fmt.Fprintf(stdout, "%s\n", dir)
	fmt.Fprintf(stderr, "bench: done in %s; `make report` regenerates reports/ from results/\n", time.Since(started).Round(time.Second))
	return nil
}

// buildExperiments instantiates the named experiments of profile p.
func buildExperiments(p profile, names []string, s *session) []*bench.Experiment {
	var exps []*bench.Experiment
	for _, name := range experimentNames { // always in the canonical order
		if !slices.Contains(names, name) {
			continue
		}
		switch name {
		case "throughput":
			t := p.throughput
			t.DBDir = s.scratch
			e := t.Experiment()
			if p.throughputReps > 0 && p.throughputReps < p.reps {
				e.Reps, e.Warmup = p.throughputReps, p.warmup
			}
			exps = append(exps, e)
		case "http":
			h := p.http
			h.DBDir, h.Binary = s.scratch, s.collectorBinary()
			exps = append(exps, h.Experiment())
		case "contention":
			c := p.contention
			c.DBDir = s.scratch
			exps = append(exps, c.Experiment())
		case "disjoint":
			d := p.disjoint
			d.DBDir = s.scratch
			exps = append(exps, d.Experiment())
		case "torture":
			t := p.torture
			t.DBDir, t.Binary = s.scratch, s.collectorBinary()
			exps = append(exps, t.Experiment())
		case "soak":
			k := p.soak
			k.DBDir, k.Binary = s.scratch, s.collectorBinary()
			exps = append(exps, k.Experiment())
		case "fuzz":
			f := p.fuzz
			f.ModuleDir = moduleRoot()
			exps = append(exps, f.Experiment())
		case "fleet":
			f := p.fleet
			f.DBDir, f.Binary = s.scratch, s.collectorBinary()
			exps = append(exps, f.Experiment())
		case "peer":
			pc := p.peer
			pc.Dir, pc.Collector, pc.Peer = s.scratch, s.collectorBinary(), s.peer
			exps = append(exps, pc.Experiment())
		case "powercut":
			pc := p.powercut
			pc.DBDir, pc.Binary = s.scratch, s.collectorBinary()
			if peer.CheckPeer(s.peer) == nil {
				pc.Peer = s.peer
			}
			exps = append(exps, pc.Experiment())
		case "storage":
			sc := p.storage
			sc.DBDir, sc.Binary = s.scratch, s.collectorBinary()
			if peer.CheckPeer(s.peer) == nil {
				sc.Peer = s.peer
			}
			exps = append(exps, sc.Experiment())
		}
	}
	return exps
}

// header is the file-wide configuration of every results file: what
// benchstat prints above its tables.
func header(m *results.Meta, seed uint64) []results.KV {
	return []results.KV{
		{Key: "goos", Value: runtime.GOOS},
		{Key: "goarch", Value: runtime.GOARCH},
		{Key: "cpu", Value: m.Machine.CPU},
		{Key: "machine", Value: m.MachineID},
		{Key: "commit", Value: m.Software.GitRevision},
		{Key: "profile", Value: m.Run.Profile},
		{Key: "seed", Value: strconv.FormatUint(seed, 10)},
	}
}

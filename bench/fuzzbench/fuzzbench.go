// Package fuzzbench records what the collector's fuzz targets did: it runs
// `go test -fuzz` on each target for a fixed time and writes the figures Go
// prints (execs, new interesting inputs) as results, with a crasher as a
// failed check. The targets themselves live beside the code they fuzz
// (collector/server/fuzz_test.go).
package fuzzbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/record"
)

// Config configures the fuzz experiment.
type Config struct {
	// ModuleDir is the module's root, where `go test` runs.
	ModuleDir string
	// Package holds the targets, relative to ModuleDir: "./collector/server/".
	Package string
	Targets []string
	// Time is each target's -fuzztime.
	Time time.Duration
}

// Default is the collector's fuzz targets.
var Default = Config{
	Package: "./collector/server/",
	Targets: []string{"FuzzDecodeEvents", "FuzzDecodeAgainstReference", "FuzzPostEvents"},
	Time:    20 * time.Second,
}

// Units of the fuzz experiment.
var (
	unitSeconds     = record.Unit{Name: "fuzz-sec", Better: 0}
	unitExecs       = record.Unit{Name: "execs", Better: 1}
	unitRate        = record.Unit{Name: "execs/s", Better: 1}
	unitInteresting = record.Unit{Name: "new-interesting", Better: 0}
	unitCorpus      = record.Unit{Name: "corpus", Better: 0}
	unitCrashers    = record.Unit{Name: "crashers", Better: -1}
	units           = []record.Unit{unitSeconds, unitExecs, unitRate, unitInteresting, unitCorpus, unitCrashers}
)

// compileCost is what `go test -fuzz` spends before fuzzing: building the
// instrumented test binary and replaying the seed corpus.
const compileCost = 20 * time.Second

// Experiment returns the fuzz experiment: one cell per target, run once.
func (cfg Config) Experiment() *bench.Experiment {
	e := &bench.Experiment{
		Name: "fuzz",
		Plan: fmt.Sprintf("go test -fuzz on each target of %s for %s (-fuzzminimizetime 0, -parallel GOMAXPROCS), seeded from testdata/events and the package's corpus; "+
			"figures from go test's last progress line; any failure is a crasher.", cfg.Package, cfg.Time),
		Units: units,
		// One run per target: a fuzz run is a search, not a measurement to
		// repeat for a confidence interval.
		Reps: 1,
	}
	for _, t := range cfg.Targets {
		e.Cells = append(e.Cells, bench.Cell{
			Name:   "Fuzz",
			Config: []record.KV{{Key: "target", Value: t}, {Key: "fuzztime", Value: cfg.Time.String()}},
			Cost:   cfg.Time + compileCost,
			Run:    cfg.run(t),
		})
	}
	return e
}

func (cfg Config) run(target string) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, _ bench.Rep) (bench.Sample, error) {
		if cfg.ModuleDir == "" {
			return bench.Sample{}, errors.New("fuzz: no module to run go test in: run bench from the repository")
		}
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+target+"$",
			"-fuzztime", cfg.Time.String(), "-fuzzminimizetime", "0", cfg.Package)
		cmd.Dir = cfg.ModuleDir
		cmd.Env = os.Environ()
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return bench.Sample{}, ctx.Err()
		}
		f := Parse(out)
		var s bench.Sample
		if err != nil {
			if !f.Failed {
				// Not a finding: go test could not run (a build error, ...).
				return s, fmt.Errorf("go test -fuzz %s: %v: %s", target, err, tail(out))
			}
			f.Crashers = 1
			msg := fmt.Sprintf("%s found a failing input", target)
			if f.Input != "" {
				msg += " (written to " + f.Input + ")"
			}
			s.Problems = append(s.Problems, msg+": "+tail(out))
		}
		rate := 0.0
		if f.Seconds > 0 {
			rate = float64(int64(float64(f.Execs)/f.Seconds*10+0.5)) / 10
		}
		s.Iters = int(f.Execs)
		s.Values = []record.Value{
			{Value: f.Seconds, Unit: unitSeconds.Name},
			{Value: float64(f.Execs), Unit: unitExecs.Name},
			{Value: rate, Unit: unitRate.Name},
			{Value: float64(f.NewInteresting), Unit: unitInteresting.Name},
			{Value: float64(f.Corpus), Unit: unitCorpus.Name},
			{Value: float64(f.Crashers), Unit: unitCrashers.Name},
		}
		return s, nil
	}
}

// Figures is what one `go test -fuzz` run printed.
type Figures struct {
	Seconds        float64
	Execs          int64
	NewInteresting int64
	Corpus         int64 // the total after "new interesting"
	Failed         bool  // go test reported a failure
	Input          string
	Crashers       int
}

var (
	progressRE = regexp.MustCompile(`(?m)^fuzz: elapsed: (\d+)s, execs: (\d+) \(\d+/sec\), new interesting: (\d+) \(total: (\d+)\)`)
	failRE     = regexp.MustCompile(`(?m)^--- FAIL: `)
	inputRE    = regexp.MustCompile(`Failing input written to (\S+)`)
)

// Parse reads go test -fuzz output: the figures of its last progress line,
// and whether it failed and where it wrote the failing input.
func Parse(out []byte) Figures {
	var f Figures
	if m := progressRE.FindAllSubmatch(out, -1); len(m) > 0 {
		last := m[len(m)-1]
		f.Seconds, _ = strconv.ParseFloat(string(last[1]), 64)
		f.Execs, _ = strconv.ParseInt(string(last[2]), 10, 64)
		f.NewInteresting, _ = strconv.ParseInt(string(last[3]), 10, 64)
		f.Corpus, _ = strconv.ParseInt(string(last[4]), 10, 64)
	}
	f.Failed = failRE.Match(out)
	if m := inputRE.FindSubmatch(out); m != nil {
		f.Input = string(m[1])
	}
	return f
}

// tail is the end of go test's output, for an error message.
func tail(out []byte) string {
	out = bytes.TrimSpace(out)
	if len(out) > 600 {
		out = append([]byte("..."), out[len(out)-600:]...)
	}
	return string(out)
}

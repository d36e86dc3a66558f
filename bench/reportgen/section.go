package reportgen

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"edgecollector/bench/record"
	"edgecollector/bench/stats"
)

// Baseline is the mode every ratio is taken against.
const Baseline = "serialized"

// Section is the report of one machine: its primary run and, per
// experiment, the run the experiment's results come from.
type Section struct {
	run        *record.Run // primary: heads the section
	byExp      map[string]*record.Run
	id         string
	path       string // the primary run's directory as the reader finds it, slash-separated
	resultsDir string
	figures    []figure // rendered plots, in order
}

func newSection(primary *record.Run, byExp map[string]*record.Run, resultsDir string) *Section {
	s := &Section{run: primary, byExp: byExp, id: primary.Meta.MachineID, resultsDir: resultsDir}
	s.path = s.relPath(primary)
	return s
}

// relPath is a run's directory as the reader of the report finds it.
func (s *Section) relPath(r *record.Run) string {
	rel, err := filepath.Rel(filepath.Dir(filepath.Clean(s.resultsDir)), r.Dir)
	if err != nil {
		rel = r.Dir
	}
	return filepath.ToSlash(rel)
}

// Meta is the primary run's machine.json.
func (s *Section) Meta() *record.Meta { return &s.run.Meta }

// Results returns the results of experiment exp, from the run selected for
// it, or nil when no run on this machine measured it.
func (s *Section) Results(exp string) *Results {
	if r := s.byExp[exp]; r != nil && r.Files[exp] != nil {
		return &Results{r.Files[exp]}
	}
	return nil
}

// Results is one experiment's results file, with the questions the report
// asks of it: a summary, a median, a ratio to the baseline, per benchmark,
// unit, mode and configuration (the configuration without its mode).
type Results struct{ *record.File }

// where is the configuration of p without its mode: what identifies a
// comparison between modes.
func where(p *record.Point) []record.KV {
	var kv []record.KV
	for _, c := range p.Config {
		switch c.Key {
		case "mode", "goos", "goarch", "cpu", "machine", "commit", "profile", "seed":
			continue
		}
		kv = append(kv, c)
	}
	return kv
}

// Configs returns the distinct mode-less configurations of benchmark
// bench, in the order they were measured.
func (r *Results) Configs(bench string) [][]record.KV {
	var out [][]record.KV
	seen := make(map[string]bool)
	for i := range r.Points {
		p := &r.Points[i]
		if p.Name != bench {
			continue
		}
		w := where(p)
		key := fmt.Sprint(w)
		if !seen[key] {
			seen[key] = true
			out = append(out, w)
		}
	}
	return out
}

// FirstConfig is the first configuration of bench, nil when there is none
// (or no results).
func (r *Results) FirstConfig(bench string) []record.KV {
	if r == nil {
		return nil
	}
	if cs := r.Configs(bench); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

// Stat summarises unit for mode in configuration w.
func (r *Results) Stat(bench, unit, mode string, w []record.KV) stats.Summary {
	return stats.Summarize(r.Sample(bench, unit, WithMode(w, mode)...))
}

// Median is the median of unit for mode in w, NaN when nothing was
// measured (formatted as "–").
func (r *Results) Median(bench, unit, mode string, w []record.KV) float64 {
	s := r.Stat(bench, unit, mode, w)
	if s.N == 0 {
		return math.NaN()
	}
	return s.Center
}

// Total sums unit for mode in w over every repetition; NaN when nothing
// was measured.
func (r *Results) Total(bench, unit, mode string, w []record.KV) float64 {
	xs := r.Sample(bench, unit, WithMode(w, mode)...)
	if len(xs) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum
}

// Worst is the largest value of unit for mode in w; NaN when nothing was
// measured.
func (r *Results) Worst(bench, unit, mode string, w []record.KV) float64 {
	xs := r.Sample(bench, unit, WithMode(w, mode)...)
	if len(xs) == 0 {
		return math.NaN()
	}
	return slices.Max(xs)
}

// VsBase compares mode to the baseline in configuration w. ok is false for
// the baseline itself or when the baseline was not measured.
func (r *Results) VsBase(bench, unit, mode string, w []record.KV) (ratio stats.Ratio, ok bool) {
	if mode == Baseline {
		return ratio, false
	}
	base := r.Sample(bench, unit, WithMode(w, Baseline)...)
	if len(base) == 0 {
		return ratio, false
	}
	return stats.Compare(r.Sample(bench, unit, WithMode(w, mode)...), base), true
}

// WithMode is configuration w with mode first; w itself when mode is "".
func WithMode(w []record.KV, mode string) []record.KV {
	if mode == "" {
		return w
	}
	return append([]record.KV{{Key: "mode", Value: mode}}, w...)
}

// Get is the value of key k in configuration w, "" when it has none.
func Get(w []record.KV, k string) string {
	for _, kv := range w {
		if kv.Key == k {
			return kv.Value
		}
	}
	return ""
}

// Atof reads a configuration value as a number.
func Atof(s string) float64 {
	var x float64
	fmt.Sscan(s, &x)
	return x
}

// ModeLabel names a mode for a reader: the A/A control says so.
func ModeLabel(m string) string {
	if strings.HasSuffix(m, "-aa") {
		return strings.TrimSuffix(m, "-aa") + " (A/A control)"
	}
	return m
}

// Side is +1 when a ratio's interval lies above 1, -1 below, 0 otherwise.
func Side(r stats.Ratio) int {
	switch {
	case r.HasCI() && r.Lo > 1:
		return 1
	case r.HasCI() && r.Hi < 1:
		return -1
	}
	return 0
}

// Verdict says whether a ratio's interval lies above 1, below it, or
// straddles it.
func Verdict(r stats.Ratio, above, below string) string {
	switch {
	case !r.HasCI():
		return "too few repetitions to say"
	case r.Lo > 1:
		return "significantly " + above
	case r.Hi < 1:
		return "significantly " + below
	}
	return "not distinguishable from 1 at this run's noise"
}

package reportgen

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"edgecollector/bench/record"
	"edgecollector/bench/stats"
)

// baseline is the mode every ratio is taken against.
const baseline = "serialized"

// section is the report of one machine: its primary run and, per
// experiment, the run the experiment's results come from.
type section struct {
	run        *record.Run // primary: heads the section
	byExp      map[string]*record.Run
	id         string
	path       string // the primary run's directory as the reader finds it, slash-separated
	resultsDir string
	figures    []figure // rendered plots, in order
}

func newSection(primary *record.Run, byExp map[string]*record.Run, resultsDir string) *section {
	s := &section{run: primary, byExp: byExp, id: primary.Meta.MachineID, resultsDir: resultsDir}
	s.path = s.relPath(primary)
	return s
}

// relPath is a run's directory as the reader of the report finds it.
func (s *section) relPath(r *record.Run) string {
	rel, err := filepath.Rel(filepath.Dir(filepath.Clean(s.resultsDir)), r.Dir)
	if err != nil {
		rel = r.Dir
	}
	return filepath.ToSlash(rel)
}

// file returns the results of experiment exp, from the run selected for it,
// or nil when no run on this machine measured it.
func (s *section) file(exp string) *record.File {
	if r := s.runOf(exp); r != nil {
		return r.Files[exp]
	}
	return nil
}

// runOf returns the run experiment exp's results come from, or nil.
func (s *section) runOf(exp string) *record.Run { return s.byExp[exp] }

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

// configs returns the distinct mode-less configurations of benchmark name,
// in the order they were measured.
func configs(f *record.File, name string) [][]record.KV {
	var out [][]record.KV
	seen := make(map[string]bool)
	for i := range f.Points {
		p := &f.Points[i]
		if p.Name != name {
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

func withMode(w []record.KV, mode string) []record.KV {
	return append([]record.KV{{Key: "mode", Value: mode}}, w...)
}

func get(w []record.KV, k string) string {
	for _, kv := range w {
		if kv.Key == k {
			return kv.Value
		}
	}
	return ""
}

// stat summarises unit for mode in configuration w.
func stat(f *record.File, name, unit, mode string, w []record.KV) stats.Summary {
	return stats.Summarize(f.Sample(name, unit, withMode(w, mode)...))
}

// vsBase compares mode to the baseline in configuration w. ok is false for
// the baseline itself or when the baseline was not measured.
func vsBase(f *record.File, name, unit, mode string, w []record.KV) (r stats.Ratio, ok bool) {
	if mode == baseline {
		return r, false
	}
	base := f.Sample(name, unit, withMode(w, baseline)...)
	if len(base) == 0 {
		return r, false
	}
	return stats.Compare(f.Sample(name, unit, withMode(w, mode)...), base), true
}

// ratioCells formats a comparison as "ratio (lo – hi)" and its p-value.
func ratioCells(r stats.Ratio, ok bool) (string, string) {
	if !ok {
		return "1 (baseline)", ""
	}
	return withCI(r.Summary, ratio), pvalue(r.P)
}

func modeLabel(m string) string {
	if strings.HasSuffix(m, "-aa") {
		return strings.TrimSuffix(m, "-aa") + " (A/A control)"
	}
	return m
}

// median is the median of unit for mode in w, NaN when nothing was measured
// (formatted as "?").
func median(f *record.File, name, unit, mode string, w []record.KV) float64 {
	s := stat(f, name, unit, mode, w)
	if s.N == 0 {
		return math.NaN()
	}
	return s.Center
}

func (s *section) throughputTable() string {
	f := s.file("throughput")
	if f == nil {
		return ""
	}
	t := newTable("<indexed", "producers", "<mode", "events/s (95% CI)", "vs serialized (95% CI)", "p", "p50", "p99", "Jain", "min/max")
	for _, w := range configs(f, "Throughput") {
		for _, m := range f.Distinct("Throughput", "mode") {
			sum := stat(f, "Throughput", "events/s", m, w)
			if sum.N == 0 {
				continue
			}
			r, ok := vsBase(f, "Throughput", "events/s", m, w)
			rc, pc := ratioCells(r, ok)
			t.add(get(w, "indexed"), get(w, "producers"), modeLabel(m), withCI(sum, count), rc, pc,
				seconds(median(f, "Throughput", "p50-sec/insert", m, w)),
				seconds(median(f, "Throughput", "p99-sec/insert", m, w)),
				sig(median(f, "Throughput", "jain-fairness", m, w)),
				sig(median(f, "Throughput", "minmax-fairness", m, w)))
		}
	}
	return t.String()
}

func (s *section) httpMaxTable() string {
	f := s.file("http")
	if f == nil {
		return ""
	}
	t := newTable("events/request", "<mode", "requests/s", "events/s (95% CI)", "vs serialized (95% CI)", "p", "p50", "p99", "503s", "drained events/s", "peak RSS")
	for _, w := range configs(f, "HTTPMax") {
		for _, m := range f.Distinct("HTTPMax", "mode") {
			sum := stat(f, "HTTPMax", "events/s", m, w)
			if sum.N == 0 {
				continue
			}
			r, ok := vsBase(f, "HTTPMax", "events/s", m, w)
			rc, pc := ratioCells(r, ok)
			t.add(get(w, "batch"), m, count(median(f, "HTTPMax", "req/s", m, w)), withCI(sum, count), rc, pc,
				seconds(median(f, "HTTPMax", "p50-sec/req", m, w)),
				seconds(median(f, "HTTPMax", "p99-sec/req", m, w)),
				fraction(median(f, "HTTPMax", "backpressure-ratio", m, w)),
				count(median(f, "HTTPMax", "drained-events/s", m, w)),
				mib(median(f, "HTTPMax", "peak-rss-bytes", m, w)))
		}
	}
	return t.String()
}

// mib formats a byte count in MiB ("–" when it was not measured).
func mib(x float64) string {
	if math.IsNaN(x) || x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", x/(1<<20))
}

func (s *section) httpSweepTable() string {
	f := s.file("http")
	if f == nil {
		return ""
	}
	t := newTable("offered req/s", "<mode", "achieved req/s", "served", "503s", "p50", "p90", "p99 (95% CI)", "max")
	for _, w := range configs(f, "HTTPSweep") {
		for _, m := range f.Distinct("HTTPSweep", "mode") {
			sum := stat(f, "HTTPSweep", "req/s", m, w)
			if sum.N == 0 {
				continue
			}
			t.add(count(atof(get(w, "rate"))), m, count(sum.Center),
				fraction(median(f, "HTTPSweep", "success-ratio", m, w)),
				fraction(median(f, "HTTPSweep", "backpressure-ratio", m, w)),
				seconds(median(f, "HTTPSweep", "p50-sec/req", m, w)),
				seconds(median(f, "HTTPSweep", "p90-sec/req", m, w)),
				withCI(stat(f, "HTTPSweep", "p99-sec/req", m, w), seconds),
				seconds(median(f, "HTTPSweep", "max-sec/req", m, w)))
		}
	}
	return t.String()
}

func (s *section) contentionTable() string {
	f := s.file("contention")
	if f == nil {
		return ""
	}
	t := newTable("<mode", "p50", "p90", "p99 (95% CI)", "max", "p99 vs serialized (95% CI)", "p", "inserts/s", "checkpoints/s", "rows/checkpoint")
	for _, w := range configs(f, "Contention") {
		for _, m := range f.Distinct("Contention", "mode") {
			sum := stat(f, "Contention", "p99-sec/insert", m, w)
			if sum.N == 0 {
				continue
			}
			r, ok := vsBase(f, "Contention", "p99-sec/insert", m, w)
			rc, pc := ratioCells(r, ok)
			t.add(m, seconds(median(f, "Contention", "p50-sec/insert", m, w)),
				seconds(median(f, "Contention", "p90-sec/insert", m, w)),
				withCI(sum, seconds),
				seconds(median(f, "Contention", "max-sec/insert", m, w)),
				rc, pc,
				count(median(f, "Contention", "events/s", m, w)),
				count(median(f, "Contention", "checkpoints/s", m, w)),
				count(median(f, "Contention", "rows/checkpoint", m, w)))
		}
	}
	return t.String()
}

func (s *section) disjointTable() string {
	f := s.file("disjoint")
	if f == nil {
		return ""
	}
	t := newTable("<mode", "updates/s (95% CI)", "vs serialized (95% CI)", "p", "conflicts per cell", "p50 per tx", "p99 per tx", "Jain")
	for _, w := range configs(f, "Disjoint") {
		for _, m := range f.Distinct("Disjoint", "mode") {
			sum := stat(f, "Disjoint", "updates/s", m, w)
			if sum.N == 0 {
				continue
			}
			r, ok := vsBase(f, "Disjoint", "updates/s", m, w)
			rc, pc := ratioCells(r, ok)
			t.add(m, withCI(sum, count), rc, pc,
				count(median(f, "Disjoint", "conflicts", m, w)),
				seconds(median(f, "Disjoint", "p50-sec/tx", m, w)),
				seconds(median(f, "Disjoint", "p99-sec/tx", m, w)),
				sig(median(f, "Disjoint", "jain-fairness", m, w)))
		}
	}
	return t.String()
}

func atof(s string) float64 {
	var x float64
	fmt.Sscan(s, &x)
	return x
}

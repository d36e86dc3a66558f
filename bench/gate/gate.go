// Package gate checks the ratios between write modes against thresholds
// kept in one checked-in file, for CI. A gate fails only when the whole 95%
// confidence interval of its paired ratio lies past its threshold: a ratio
// whose interval straddles the threshold is not evidence of a regression.
package gate

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"golang.org/x/perf/benchunit"

	"edgecollector/bench/record"
	"edgecollector/bench/stats"
)

// A Gate is one line of the thresholds file:
//
//	name experiment benchmark unit where num/den check
//
// where is key=value[,key=value...] (the configuration without the mode),
// and check is ">= X", "<= X" or "in X Y". unit may be two units,
// num-unit:den-unit, for a ratio of two values of one cell (the same mode
// as num and den): what it delivered over what it accepted, say.
type Gate struct {
	Name       string
	Experiment string // results file: "throughput"
	Benchmark  string // "Throughput"
	Unit       string // as written in results files: "events/s"
	DenUnit    string // the denominator's unit: Unit unless the line names two
	Where      []record.KV
	Num, Den   string  // modes
	Min, Max   float64 // NaN when unbounded
	Line       int
}

// Parse reads a thresholds file. Blank lines and lines starting with # are
// ignored.
func Parse(r io.Reader, file string) ([]Gate, error) {
	var gates []Gate
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		g, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		g.Line = n
		for _, o := range gates {
			if o.Name == g.Name {
				return nil, fmt.Errorf("%s:%d: gate %q defined twice (first on line %d)", file, n, g.Name, o.Line)
			}
		}
		gates = append(gates, g)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(gates) == 0 {
		return nil, fmt.Errorf("%s: no gates", file)
	}
	return gates, nil
}

func parseLine(line string) (Gate, error) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return Gate{}, fmt.Errorf("want: name experiment benchmark unit where num/den check, got %q", line)
	}
	g := Gate{Name: f[0], Experiment: f[1], Benchmark: f[2], Unit: f[3], Min: math.NaN(), Max: math.NaN()}
	if u, d, ok := strings.Cut(f[3], ":"); ok {
		if u == "" || d == "" {
			return Gate{}, fmt.Errorf("unit: want unit or num-unit:den-unit, got %q", f[3])
		}
		g.Unit, g.DenUnit = u, d
	} else {
		g.DenUnit = g.Unit
	}
	for _, kv := range strings.Split(f[4], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return Gate{}, fmt.Errorf("where: want key=value[,key=value...], got %q", f[4])
		}
		g.Where = append(g.Where, record.KV{Key: k, Value: v})
	}
	var ok bool
	if g.Num, g.Den, ok = strings.Cut(f[5], "/"); !ok || g.Num == "" || g.Den == "" {
		return Gate{}, fmt.Errorf("ratio: want num/den modes, got %q", f[5])
	}
	num := func(s string) (float64, error) {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || x <= 0 {
			return 0, fmt.Errorf("threshold: want a positive number, got %q", s)
		}
		return x, nil
	}
	var err error
	switch check := f[6:]; {
	case check[0] == ">=" && len(check) == 2:
		g.Min, err = num(check[1])
	case check[0] == "<=" && len(check) == 2:
		g.Max, err = num(check[1])
	case check[0] == "in" && len(check) == 3:
		if g.Min, err = num(check[1]); err == nil {
			g.Max, err = num(check[2])
		}
		if err == nil && g.Min >= g.Max {
			err = fmt.Errorf("band: want low < high, got %v %v", g.Min, g.Max)
		}
	default:
		err = fmt.Errorf(`check: want ">= X", "<= X" or "in LOW HIGH", got %q`, strings.Join(check, " "))
	}
	return g, err
}

// Threshold describes the check: ">= 3", "in [0.8, 1.25]".
func (g Gate) Threshold() string {
	switch {
	case !math.IsNaN(g.Min) && !math.IsNaN(g.Max):
		return fmt.Sprintf("in [%v, %v]", g.Min, g.Max)
	case !math.IsNaN(g.Min):
		return fmt.Sprintf(">= %v", g.Min)
	}
	return fmt.Sprintf("<= %v", g.Max)
}

// What describes what is compared: "group/serialized events/s (producers=16 indexed=false)".
func (g Gate) What() string {
	var w []string
	for _, kv := range g.Where {
		w = append(w, kv.Key+"="+kv.Value)
	}
	if g.DenUnit != g.Unit {
		return fmt.Sprintf("%s %s / %s %s at %s", g.Num, g.Unit, g.Den, g.DenUnit, strings.Join(w, " "))
	}
	return fmt.Sprintf("%s/%s %s at %s", g.Num, g.Den, g.Unit, strings.Join(w, " "))
}

// Status is a verdict's outcome.
type Status int

const (
	Pass Status = iota
	Fail
)

func (s Status) String() string {
	if s == Pass {
		return "PASS"
	}
	return "FAIL"
}

// Verdict is the outcome of one gate.
type Verdict struct {
	Gate   Gate
	Ratio  stats.Ratio
	Status Status
	Reason string // why, in a sentence
}

// Evaluate checks g against the results file of its experiment (nil when
// the run has none).
func Evaluate(g Gate, f *record.File) Verdict {
	v := Verdict{Gate: g}
	if f == nil {
		v.Status, v.Reason = Fail, fmt.Sprintf("the run has no %s results", g.Experiment)
		return v
	}
	_, unit := benchunit.Tidy(1, g.Unit) // results are read tidied: ns -> sec
	denUnit := unit
	if g.DenUnit != "" {
		_, denUnit = benchunit.Tidy(1, g.DenUnit)
	}
	withMode := func(m string) []record.KV { return append([]record.KV{{Key: "mode", Value: m}}, g.Where...) }
	num := f.Sample(g.Benchmark, unit, withMode(g.Num)...)
	den := f.Sample(g.Benchmark, denUnit, withMode(g.Den)...)
	if len(num) == 0 || len(den) == 0 {
		v.Status = Fail
		v.Reason = fmt.Sprintf("no samples (%s: %d, %s: %d): the run did not measure this cell", g.Num, len(num), g.Den, len(den))
		return v
	}
	v.Ratio = stats.Compare(num, den)
	r := v.Ratio
	if !r.HasCI() {
		v.Status = Fail
		v.Reason = fmt.Sprintf("%d paired repetitions are too few for a 95%% confidence interval (need 6 or more)", r.N)
		return v
	}
	switch {
	case !math.IsNaN(g.Min) && r.Hi < g.Min:
		v.Status = Fail
		v.Reason = fmt.Sprintf("the whole 95%% CI [%.3g, %.3g] lies below %v: %s is %.3g×, not the %v× or more it must be",
			r.Lo, r.Hi, g.Min, g.Num+"/"+g.Den, r.Center, g.Min)
	case !math.IsNaN(g.Max) && r.Lo > g.Max:
		v.Status = Fail
		v.Reason = fmt.Sprintf("the whole 95%% CI [%.3g, %.3g] lies above %v: %s is %.3g×, not the %v× or less it must be",
			r.Lo, r.Hi, g.Max, g.Num+"/"+g.Den, r.Center, g.Max)
	default:
		v.Reason = "the 95% CI reaches the allowed range"
		if (!math.IsNaN(g.Min) && r.Lo < g.Min) || (!math.IsNaN(g.Max) && r.Hi > g.Max) {
			v.Reason = "the 95% CI straddles the threshold: no evidence of a regression, but close"
		}
	}
	return v
}

func (v Verdict) String() string {
	r := v.Ratio
	got := "no ratio"
	if r.N > 0 {
		got = fmt.Sprintf("%.3g× (95%% CI %.3g–%.3g, n=%d, p=%.3f)", r.Center, r.Lo, r.Hi, r.N, r.P)
	}
	return fmt.Sprintf("%s  %-18s %s: %s, threshold %s: %s", v.Status, v.Gate.Name, v.Gate.What(), got, v.Gate.Threshold(), v.Reason)
}

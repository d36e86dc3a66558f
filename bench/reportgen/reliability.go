package reportgen

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"edgecollector/bench/record"
)

// The reliability sub-section: crash torture, sink outage soak, fuzzing.
// Their figures are counts summed over repetitions and worst cases, not
// medians with intervals: one lost event is a failure however rare.

// total sums unit over every repetition of a mode's cell.
func total(f *record.File, name, unit, mode string) float64 {
	xs := f.Sample(name, unit, record.KV{Key: "mode", Value: mode})
	if len(xs) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum
}

// worst is the largest value of unit over a mode's repetitions.
func worst(f *record.File, name, unit, mode string) float64 {
	xs := f.Sample(name, unit, record.KV{Key: "mode", Value: mode})
	if len(xs) == 0 {
		return math.NaN()
	}
	return slices.Max(xs)
}

// middle is the median of unit over a mode's repetitions.
func middle(f *record.File, name, unit, mode string) float64 {
	return median(f, name, unit, mode, nil)
}

// lostCell shows a loss count so that a non-zero one cannot be missed.
func lostCell(x float64) string {
	if x > 0 {
		return "**" + count(x) + " (FAILED)**"
	}
	return count(x)
}

func (s *section) tortureTable() string {
	f := s.file("torture")
	if f == nil {
		return ""
	}
	t := newTable("<mode", "repetitions", "kills", "in upload window", "acknowledged events", "lost", "duplicates delivered", "unanswered requests", "ready p50 / max", "recovered p50 / max")
	for _, m := range f.Distinct("Torture", "mode") {
		reps := len(f.Sample("Torture", "kills", record.KV{Key: "mode", Value: m}))
		if reps == 0 {
			continue
		}
		t.add(m, fmt.Sprint(reps), count(total(f, "Torture", "kills", m)), count(total(f, "Torture", "kills-in-upload", m)),
			count(total(f, "Torture", "acked-events", m)), lostCell(total(f, "Torture", "lost-events", m)),
			count(total(f, "Torture", "duplicate-deliveries", m)), count(total(f, "Torture", "unanswered-requests", m)),
			seconds(middle(f, "Torture", "ready-p50-sec", m))+" / "+seconds(worst(f, "Torture", "ready-max-sec", m)),
			seconds(middle(f, "Torture", "recovery-p50-sec", m))+" / "+seconds(worst(f, "Torture", "recovery-max-sec", m)))
	}
	return t.String()
}

func (s *section) soakTable() string {
	f := s.file("soak")
	if f == nil {
		return ""
	}
	t := newTable("<mode", "backlog cap", "peak backlog", "503s", "200s", "acknowledged events", "lost", "duplicates delivered", "drain time", "peak RSS", "sink requests")
	for _, m := range f.Distinct("Soak", "mode") {
		if len(f.Sample("Soak", "peak-backlog", record.KV{Key: "mode", Value: m})) == 0 {
			continue
		}
		t.add(m, count(worst(f, "Soak", "backlog-cap", m)), count(worst(f, "Soak", "peak-backlog", m)),
			count(total(f, "Soak", "rejected-503", m)), count(total(f, "Soak", "acked-requests", m)),
			count(total(f, "Soak", "acked-events", m)), lostCell(total(f, "Soak", "lost-events", m)),
			count(total(f, "Soak", "duplicate-deliveries", m)),
			seconds(worst(f, "Soak", "drain-sec", m)), mib(worst(f, "Soak", "peak-rss-bytes", m)),
			count(total(f, "Soak", "sink-requests", m)))
	}
	return t.String()
}

func (s *section) fuzzTable() string {
	f := s.file("fuzz")
	if f == nil {
		return ""
	}
	t := newTable("<target", "fuzzing time", "execs", "execs/s", "new interesting", "corpus", "crashers")
	for _, target := range f.Distinct("Fuzz", "target") {
		w := record.KV{Key: "target", Value: target}
		one := func(unit string) float64 {
			xs := f.Sample("Fuzz", unit, w)
			if len(xs) == 0 {
				return math.NaN()
			}
			return xs[len(xs)-1]
		}
		crashers := count(one("crashers"))
		if one("crashers") > 0 {
			crashers = "**" + crashers + " (FAILED)**"
		}
		t.add(target, seconds(one("fuzz-sec")), count(one("execs")), count(one("execs/s")),
			count(one("new-interesting")), count(one("corpus")), crashers)
	}
	return t.String()
}

// torturePlot shows the time to recover after a kill, per mode: the
// median over repetitions of each one's median, and the worst.
func (s *section) torturePlot() (*plot.Plot, error) {
	f := s.file("torture")
	if f == nil {
		return nil, nil
	}
	p := newPlot("Recovery after SIGKILL: restart exec to first acknowledged event", "", "seconds")
	p.Legend.Left = false
	modes := f.Distinct("Torture", "mode")
	var ticks plot.ConstantTicks
	top := 0.0
	for i, m := range modes {
		p50, mx := middle(f, "Torture", "recovery-p50-sec", m), worst(f, "Torture", "recovery-max-sec", m)
		if math.IsNaN(p50) {
			continue
		}
		b, err := plotter.NewBarChart(plotter.Values{p50}, vg.Points(60))
		if err != nil {
			return nil, err
		}
		b.XMin = float64(i)
		b.Color = colorOf(m)
		b.LineStyle.Width = 0
		w, err := plotter.NewScatter(plotter.XYs{{X: float64(i), Y: mx}})
		if err != nil {
			return nil, err
		}
		w.GlyphStyle.Shape = draw.PyramidGlyph{}
		w.GlyphStyle.Radius = vg.Points(4)
		w.GlyphStyle.Color = colorOf(m)
		p.Add(b, w)
		if i == 0 {
			p.Legend.Add("worst", w)
		}
		top = max(top, mx, p50)
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: m})
	}
	p.X.Tick.Marker = ticks
	p.X.Min, p.X.Max = -0.75, float64(len(modes))-0.25
	p.Y.Min = 0
	if top > 0 {
		p.Y.Max = top * 1.15 // room for the worst-case marks
	}
	return p, nil
}

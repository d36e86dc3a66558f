package reportgen

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"edgecollector/bench/record"
	"edgecollector/bench/stats"
)

// figure is one plot of a section, rendered as PNG and SVG.
type figure struct {
	name    string // file base name under the machine's directory
	caption string
}

// Plot sizes and the one palette every plot uses, so a mode keeps its
// colour from plot to plot.
const (
	plotW = 6.5 * vg.Inch
	plotH = 4 * vg.Inch
)

var modeColors = map[string]color.Color{
	"serialized":    color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"concurrent":    color.RGBA{R: 0xd6, G: 0x61, B: 0x0e, A: 0xff},
	"group":         color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"serialized-aa": color.RGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff},
}

func colorOf(mode string) color.Color {
	if c, ok := modeColors[mode]; ok {
		return c
	}
	return color.Black
}

// plots renders the section's figures into files (path -> bytes).
func (s *section) plots(files map[string][]byte) error {
	for _, f := range figureSpecs {
		p, err := f.make(s)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if p == nil {
			continue // the run has no such experiment
		}
		for _, format := range []string{"png", "svg"} {
			w, err := p.WriterTo(plotW, plotH, format)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if _, err := w.WriteTo(&buf); err != nil {
				return err
			}
			files[s.id+"/"+f.name+"."+format] = buf.Bytes()
		}
		s.figures = append(s.figures, figure{name: f.name, caption: f.caption})
	}
	return nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// series is a line with error bars: x, the median, its interval.
type series struct {
	plotter.XYs
	plotter.YErrors
}

func (s *series) add(x float64, sum stats.Summary, scale float64) {
	if sum.N == 0 {
		return
	}
	lo, hi := sum.Center, sum.Center
	if sum.HasCI() {
		lo, hi = sum.Lo, sum.Hi
	}
	s.XYs = append(s.XYs, plotter.XY{X: x, Y: sum.Center * scale})
	s.YErrors = append(s.YErrors, struct{ Low, High float64 }{(sum.Center - lo) * scale, (hi - sum.Center) * scale})
}

// addLine adds s to p as a line with points and error bars.
func addLine(p *plot.Plot, s *series, label string, c color.Color, dashed bool) error {
	if len(s.XYs) == 0 {
		return nil
	}
	l, pts, err := plotter.NewLinePoints(s.XYs)
	if err != nil {
		return err
	}
	l.Color, pts.Color = c, c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		pts.Shape = draw.PyramidGlyph{}
	} else {
		pts.Shape = draw.CircleGlyph{}
	}
	eb, err := plotter.NewYErrorBars(s)
	if err != nil {
		return err
	}
	eb.Color = c
	p.Add(l, pts, eb)
	if label != "" {
		p.Legend.Add(label, l, pts)
	}
	return nil
}

func (s *section) throughputPlot() (*plot.Plot, error) {
	f := s.file("throughput")
	if f == nil {
		return nil, nil
	}
	p := newPlot("Durable insert throughput", "producers", "events/s")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	var xt plot.ConstantTicks
	for _, n := range f.Distinct("Throughput", "producers") {
		xt = append(xt, plot.Tick{Value: atof(n), Label: n})
	}
	p.X.Tick.Marker = xt
	for _, indexed := range f.Distinct("Throughput", "indexed") {
		for _, m := range f.Distinct("Throughput", "mode") {
			var line series
			for _, n := range f.Distinct("Throughput", "producers") {
				w := []record.KV{{Key: "indexed", Value: indexed}, {Key: "producers", Value: n}}
				line.add(atof(n), stat(f, "Throughput", "events/s", m, w), 1)
			}
			label := modeLabel(m)
			if indexed == "true" {
				label += ", indexed"
			}
			if err := addLine(p, &line, label, colorOf(m), indexed == "true"); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func (s *section) sweepPlot() (*plot.Plot, error) {
	f := s.file("http")
	if f == nil || len(f.Distinct("HTTPSweep", "rate")) == 0 {
		return nil, nil
	}
	p := newPlot("Latency against offered load (HTTP, open loop)", "offered requests/s", "latency (ms)")
	p.Legend.Top, p.Legend.Left = false, false // the lines rise to the right; the bottom right is empty
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = logTicks{}, logTicks{}
	for _, m := range f.Distinct("HTTPSweep", "mode") {
		for _, q := range []string{"p99", "p50"} {
			var line series
			for _, r := range f.Distinct("HTTPSweep", "rate") {
				w := []record.KV{{Key: "batch", Value: "1"}, {Key: "rate", Value: r}}
				line.add(atof(r), positive(stat(f, "HTTPSweep", q+"-sec/req", m, w)), 1e3)
			}
			label := m + " " + q
			if err := addLine(p, &line, label, colorOf(m), q == "p50"); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func (s *section) contentionPlot() (*plot.Plot, error) {
	f := s.file("contention")
	if f == nil {
		return nil, nil
	}
	p := newPlot("Insert latency under a looping checkpoint", "", "latency (ms)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	qs := []string{"p50", "p90", "p99", "max"}
	p.X.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "p50"}, {Value: 1, Label: "p90"}, {Value: 2, Label: "p99"}, {Value: 3, Label: "max"}}
	p.X.Min, p.X.Max = -0.5, float64(len(qs))-0.5
	modes := f.Distinct("Contention", "mode")
	for i, m := range modes {
		var pts series
		off := (float64(i) - float64(len(modes)-1)/2) * 0.15
		for j, q := range qs {
			for _, w := range configs(f, "Contention") {
				pts.add(float64(j)+off, positive(stat(f, "Contention", q+"-sec/insert", m, w)), 1e3)
			}
		}
		sc, err := plotter.NewScatter(pts.XYs)
		if err != nil {
			return nil, err
		}
		sc.Color, sc.Shape, sc.Radius = colorOf(m), draw.CircleGlyph{}, vg.Points(4)
		eb, err := plotter.NewYErrorBars(&pts)
		if err != nil {
			return nil, err
		}
		eb.Color = colorOf(m)
		p.Add(sc, eb)
		p.Legend.Add(m, sc)
	}
	return p, nil
}

func (s *section) disjointPlot() (*plot.Plot, error) {
	f := s.file("disjoint")
	if f == nil {
		return nil, nil
	}
	p := newPlot("Disjoint-row writers, 20-update transactions", "", "updates/s")
	modes := f.Distinct("Disjoint", "mode")
	var ticks plot.ConstantTicks
	for i, m := range modes {
		var bar series
		for _, w := range configs(f, "Disjoint") {
			bar.add(float64(i), stat(f, "Disjoint", "updates/s", m, w), 1)
		}
		if len(bar.XYs) == 0 {
			continue
		}
		b, err := plotter.NewBarChart(plotter.Values{bar.XYs[0].Y}, vg.Points(60))
		if err != nil {
			return nil, err
		}
		b.XMin = float64(i)
		b.Color = colorOf(m)
		b.LineStyle.Width = 0
		eb, err := plotter.NewYErrorBars(&bar)
		if err != nil {
			return nil, err
		}
		eb.Width = vg.Points(1.5)
		p.Add(b, eb)
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: m})
	}
	p.X.Tick.Marker = ticks
	p.X.Min, p.X.Max = -0.75, float64(len(modes))-0.25
	p.Y.Min = 0
	return p, nil
}

// positive drops a summary that a log axis cannot show (a zero median).
func positive(s stats.Summary) stats.Summary {
	if s.Center <= 0 || (s.HasCI() && s.Lo <= 0) {
		return stats.Summary{}
	}
	return s
}

// logTicks labels 1, 2 and 5 times each power of ten on a log axis, and
// marks the other integers times it.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	if min <= 0 || max <= min {
		return nil
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		base := math.Pow(10, e)
		for i := 1; i < 10; i++ {
			v := float64(i) * base
			if v < min*0.999 || v > max*1.001 {
				continue
			}
			t := plot.Tick{Value: v}
			if i == 1 || i == 2 || i == 5 {
				t.Label = tickLabel(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

package reportgen

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

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

// modeColors are the write modes' colours.
var modeColors = map[string]color.Color{
	"serialized":    color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"concurrent":    color.RGBA{R: 0xd6, G: 0x61, B: 0x0e, A: 0xff},
	"group":         color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"serialized-aa": color.RGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff},
}

// ColorOf is a mode's colour in every plot.
func ColorOf(mode string) color.Color {
	if c, ok := modeColors[mode]; ok {
		return c
	}
	return color.Black
}

// plots renders the figures of parts into files (path -> bytes).
func (s *Section) plots(parts []Part, files map[string][]byte) error {
	for _, f := range figuresOf(parts) {
		p, err := f.Plot(s)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
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
			files[s.id+"/"+f.Name+"."+format] = buf.Bytes()
		}
		s.figures = append(s.figures, figure{name: f.Name, caption: f.Caption})
	}
	return nil
}

// NewPlot is a plot with the report's look: a grid, the legend top left.
func NewPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// Series is a line with error bars: x, the median, its interval.
type Series struct {
	plotter.XYs
	plotter.YErrors
}

// Add adds a point at x: the median of sum and its interval, times scale.
// A summary of nothing adds nothing.
func (s *Series) Add(x float64, sum stats.Summary, scale float64) {
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

// AddLine adds s to p as a line with points and error bars.
func AddLine(p *plot.Plot, s *Series, label string, c color.Color, dashed bool) error {
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

// Positive drops a summary that a log axis cannot show (a zero median).
func Positive(s stats.Summary) stats.Summary {
	if s.Center <= 0 || (s.HasCI() && s.Lo <= 0) {
		return stats.Summary{}
	}
	return s
}

// LogTicks labels 1, 2 and 5 times each power of ten on a log axis, and
// marks the other integers times it.
type LogTicks struct{}

// Ticks implements plot.Ticker.
func (LogTicks) Ticks(min, max float64) []plot.Tick {
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

// SortSeries orders a series by x, so its line does not double back.
func SortSeries(s *Series) {
	idx := make([]int, len(s.XYs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(s.XYs[a].X, s.XYs[b].X) })
	xys, errs := slices.Clone(s.XYs), slices.Clone(s.YErrors)
	for i, j := range idx {
		s.XYs[i], s.YErrors[i] = xys[j], errs[j]
	}
}

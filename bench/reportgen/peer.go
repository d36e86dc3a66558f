package reportgen

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"edgecollector/bench/record"
)

// The peer experiment: our collector beside the OpenTelemetry Collector
// with a persistent queue (bench/peer). Its modes are system names.

// peerPromise is what a 200 from each system means: the numbers are only
// comparable next to it.
var peerPromise = map[string]string{
	"ours-group":      "committed and fsync'd in SQLite",
	"ours-serialized": "committed and fsync'd in SQLite",
	"otel-fsync":      "committed to the bbolt queue, fsync'd",
	"otel-nofsync":    "in the bbolt queue, OS page cache only",
}

var peerColors = map[string]color.Color{
	"ours-group":      color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"ours-serialized": color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"otel-fsync":      color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	"otel-nofsync":    color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

const peerIntro = "Same events, same vegeta load (closed loop, same connections), same receiver, systems interleaved. " +
	"One of our events is one OTLP log record (attributes device_id, kind, ts; the payload as body). " +
	"**What a 200 promises differs**: ours answers once the events are committed and fsync'd in SQLite (every mode); " +
	"the OpenTelemetry Collector once the request is in its persistent queue (bbolt, `file_storage`), fsync'd only with `fsync: true`, " +
	"else in the OS page cache (lost on a power cut, not on a process crash). Neither means delivered: " +
	"*delivered/s* is what reached the receiver during the load, *drain* how long the rest took after it. " +
	"CPU is the system's own (utime+stime) from the start of the load to the end of the drain, per 1,000 acknowledged events. " +
	"*Lost* and *duplicates* are summed over every repetition and count the cell's clean stop (SIGTERM) too."

const peerKillIntro = "SIGKILL under load (100 events per request), restart on the same files, drain. *Backlog* is what was acknowledged but not yet " +
	"delivered at the kill; *lost* must be 0 for every system (a process crash leaves the page cache intact, so fsync off survives it too); " +
	"*duplicates* are events delivered twice (at-least-once delivery)."

func (s *section) peerTable() string {
	f := s.file("peer")
	if f == nil {
		return ""
	}
	t := newTable("events/request", "<system", "<a 200 means", "accepted events/s (95% CI)", "delivered events/s", "drain", "p50", "p99", "peak RSS", "CPU ms/1k events", "lost", "duplicates")
	for _, w := range configs(f, "PeerLoad") {
		for _, m := range f.Distinct("PeerLoad", "mode") {
			sum := stat(f, "PeerLoad", "accepted-events/s", m, w)
			if sum.N == 0 {
				continue
			}
			t.add(get(w, "batch"), m, peerPromise[m], withCI(sum, count),
				count(median(f, "PeerLoad", "delivered-events/s", m, w)),
				seconds(median(f, "PeerLoad", "drain-sec", m, w)),
				seconds(median(f, "PeerLoad", "p50-sec/req", m, w)),
				seconds(median(f, "PeerLoad", "p99-sec/req", m, w)),
				mib(median(f, "PeerLoad", "peak-rss-bytes", m, w)),
				sig(median(f, "PeerLoad", "cpu-ms/1k-events", m, w)),
				peerTotal(f, "PeerLoad", "lost-events", m, w),
				peerTotal(f, "PeerLoad", "dup-events", m, w))
		}
	}
	return t.String()
}

func (s *section) peerKillTable() string {
	f := s.file("peer")
	if f == nil {
		return ""
	}
	t := newTable("<system", "<a 200 means", "acknowledged", "backlog at the kill", "restart to drained", "lost (all reps)", "duplicates (all reps)")
	for _, w := range configs(f, "PeerKill") {
		for _, m := range f.Distinct("PeerKill", "mode") {
			sum := stat(f, "PeerKill", "acked-events", m, w)
			if sum.N == 0 {
				continue
			}
			t.add(m, peerPromise[m], count(sum.Center),
				count(median(f, "PeerKill", "backlog-events", m, w)),
				seconds(median(f, "PeerKill", "recovery-sec", m, w)),
				peerTotal(f, "PeerKill", "lost-events", m, w),
				peerTotal(f, "PeerKill", "dup-events", m, w))
		}
	}
	return t.String()
}

// peerTotal sums unit over the counted repetitions of one configuration: a
// loss in any one shows.
func peerTotal(f *record.File, name, unit, mode string, w []record.KV) string {
	xs := f.Sample(name, unit, withMode(w, mode)...)
	if len(xs) == 0 {
		return "–"
	}
	var n float64
	for _, x := range xs {
		n += x
	}
	return count(n)
}

// peerPlot places each system at its p99 acknowledgement latency and its
// accepted events/s, one point per request size (circle: single events,
// triangle: batches), log-log: up and left is better.
func (s *section) peerPlot() (*plot.Plot, error) {
	f := s.file("peer")
	if f == nil || len(f.Distinct("PeerLoad", "mode")) == 0 {
		return nil, nil
	}
	p := newPlot("Accepted events/s against p99 of the acknowledgement", "p99 latency of a 200 (ms)", "accepted events/s")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = logTicks{}, logTicks{}
	// Fast and slow systems sit at the top right and bottom left: the
	// legend goes bottom right, and the axes get a margin around the points.
	p.Legend.Top, p.Legend.Left = false, false
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}}
	batches := configs(f, "PeerLoad")
	for _, m := range f.Distinct("PeerLoad", "mode") {
		c := peerColors[m]
		if c == nil {
			c = color.Black
		}
		var label *plotter.Scatter
		for i, w := range batches {
			acc := positive(stat(f, "PeerLoad", "accepted-events/s", m, w))
			p99 := median(f, "PeerLoad", "p99-sec/req", m, w)
			if acc.N == 0 || math.IsNaN(p99) || p99 <= 0 {
				continue
			}
			var pt series
			pt.add(p99*1e3, acc, 1)
			lo, hi := acc.Center, acc.Center
			if acc.HasCI() {
				lo, hi = acc.Lo, acc.Hi
			}
			xmin, xmax = min(xmin, p99*1e3), max(xmax, p99*1e3)
			ymin, ymax = min(ymin, lo), max(ymax, hi)
			sc, err := plotter.NewScatter(pt.XYs)
			if err != nil {
				return nil, err
			}
			sc.Color, sc.Shape, sc.Radius = c, shapes[i%len(shapes)], vg.Points(4)
			eb, err := plotter.NewYErrorBars(&pt)
			if err != nil {
				return nil, err
			}
			eb.Color = c
			p.Add(sc, eb)
			if label == nil {
				label = sc
			}
		}
		if label != nil {
			p.Legend.Add(m, label)
		}
	}
	if xmin > xmax {
		return nil, nil // no point to show
	}
	p.X.Min, p.X.Max = xmin/1.5, xmax*1.5
	p.Y.Min, p.Y.Max = ymin/1.5, ymax*1.5
	return p, nil
}

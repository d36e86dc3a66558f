package peer

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	rg "edgecollector/bench/reportgen"
	"edgecollector/bench/stats"
)

// report is the peer experiment's part of the report. Its modes are system names.
var report = rg.Part{
	Doc: "**peer**: our collector (group, serialized) beside the OpenTelemetry Collector with a persistent queue on `file_storage` (fsync on and off), same events, same load, same receiver; accepted and delivered events/s, drain, acknowledgement latency, peak RSS, CPU per 1,000 events, and a kill -9 check.",
	Tables: []rg.Table{{
		Title: "Beside the OpenTelemetry Collector (persistent queue)",
		Intro: peerIntro,
		Bench: "PeerLoad", Need: "accepted-events/s",
		Columns: []rg.Column{
			rg.Key("events/request", "batch"), rg.ModeCol("<system"), promise,
			rg.CI("accepted events/s (95% CI)", "accepted-events/s", rg.Count),
			rg.Median("delivered events/s", "delivered-events/s", rg.Count), rg.Median("drain", "drain-sec", rg.Seconds),
			rg.Median("p50", "p50-sec/req", rg.Seconds), rg.Median("p99", "p99-sec/req", rg.Seconds),
			rg.Median("peak RSS", "peak-rss-bytes", rg.MiB), rg.Median("CPU ms/1k events", "cpu-ms/1k-events", rg.Sig),
			rg.Total("lost", "lost-events", rg.Count), rg.Total("duplicates", "dup-events", rg.Count),
		},
		Figure: "peer",
	}, {
		Title: "Beside the OpenTelemetry Collector: kill -9 under load",
		Intro: peerKillIntro,
		Bench: "PeerKill", Need: "acked-events",
		Columns: []rg.Column{
			rg.ModeCol("<system"), promise, rg.Median("acknowledged", "acked-events", rg.Count),
			rg.Median("backlog at the kill", "backlog-events", rg.Count), rg.Median("restart to drained", "recovery-sec", rg.Seconds),
			rg.Total("lost (all reps)", "lost-events", rg.Count), rg.Total("duplicates (all reps)", "dup-events", rg.Count),
		},
	}},
	Figures: []rg.Figure{{
		Name:    "peer",
		Caption: "Accepted events/s against the p99 of the acknowledgement, per system (log-log; circle: 1 event per request, triangle: 100; bars: 95% CI); up and left is better, read beside what each 200 promises",
		Plot:    peerPlot,
	}},
	Findings: findings,
}

// promise is the column that says what a 200 from the row's system means.
var promise = rg.Column{Head: "<a 200 means", Cell: func(r rg.Row) string { return peerPromise[r.Mode] }}

// peerPromise is what a 200 from each system means: the numbers are only
// comparable next to it.
var peerPromise = map[string]string{
	"ours-group":      "committed and fsync'd in SQLite",
	"ours-serialized": "committed and fsync'd in SQLite",
	"ours-group-k1":   "committed and fsync'd in SQLite",
	"otel-fsync":      "committed to the bbolt queue, fsync'd",
	"otel-nofsync":    "in the bbolt queue, OS page cache only",
}

var peerColors = map[string]color.Color{
	"ours-group":      color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"ours-serialized": color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"ours-group-k1":   color.RGBA{R: 0x98, G: 0xdf, B: 0x8a, A: 0xff},
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

// peerPlot places each system at its p99 acknowledgement latency and its
// accepted events/s, one point per request size (circle: single events,
// triangle: batches), log-log: up and left is better.
func peerPlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("peer")
	if f == nil || len(f.Distinct("PeerLoad", "mode")) == 0 {
		return nil, nil
	}
	p := rg.NewPlot("Accepted events/s against p99 of the acknowledgement", "p99 latency of a 200 (ms)", "accepted events/s")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = rg.LogTicks{}, rg.LogTicks{}
	// Fast and slow systems sit at the top right and bottom left: the
	// legend goes bottom right, and the axes get a margin around the points.
	p.Legend.Top, p.Legend.Left = false, false
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}}
	batches := f.Configs("PeerLoad")
	for _, m := range f.Distinct("PeerLoad", "mode") {
		c := peerColors[m]
		if c == nil {
			c = color.Black
		}
		var label *plotter.Scatter
		for i, w := range batches {
			acc := rg.Positive(f.Stat("PeerLoad", "accepted-events/s", m, w))
			p99 := f.Median("PeerLoad", "p99-sec/req", m, w)
			if acc.N == 0 || math.IsNaN(p99) || p99 <= 0 {
				continue
			}
			var pt rg.Series
			pt.Add(p99*1e3, acc, 1)
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

// findings: ours beside the peer with fsync, and with fsync off.
func findings(s *rg.Section) []string {
	f := s.Results("peer")
	if f == nil {
		return nil
	}
	var out []string
	for _, w := range f.Configs("PeerLoad") {
		ours := f.Sample("PeerLoad", "accepted-events/s", rg.WithMode(w, "ours-group")...)
		fsync := f.Sample("PeerLoad", "accepted-events/s", rg.WithMode(w, "otel-fsync")...)
		nofsync := f.Sample("PeerLoad", "accepted-events/s", rg.WithMode(w, "otel-nofsync")...)
		if len(ours) == 0 || len(fsync) == 0 {
			continue
		}
		r := stats.Compare(ours, fsync)
		line := fmt.Sprintf("**Beside the OpenTelemetry Collector** (%s event(s) per request): with both fsync'ing before the 200, ours (group) accepted %s the events/s of its persistent queue (%s against %s; 95%% CI %s) and delivered %s/s during the load against its %s/s.",
			rg.Get(w, "batch"), rg.Times(r.Center), rg.Count(stats.Summarize(ours).Center), rg.Count(stats.Summarize(fsync).Center), rg.Interval(r.Summary, rg.Times),
			rg.Count(f.Median("PeerLoad", "delivered-events/s", "ours-group", w)), rg.Count(f.Median("PeerLoad", "delivered-events/s", "otel-fsync", w)))
		if len(nofsync) > 0 {
			rn := stats.Compare(ours, nofsync)
			line += fmt.Sprintf(" With fsync off (a 200 then survives a process crash, not a power cut) it accepted %s/s: ours did %s of that.",
				rg.Count(stats.Summarize(nofsync).Center), rg.Times(rn.Center))
		}
		out = append(out, line)
	}
	return out
}

// Promise is what a 200 from system means, for the tables of the
// experiments that run the peer beside their own cells.
func Promise(system string) string { return peerPromise[system] }

// Color is system's colour in every plot.
func Color(system string) color.Color { return peerColors[system] }

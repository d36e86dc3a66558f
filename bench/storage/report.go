package storage

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"edgecollector/bench/peer"
	"edgecollector/bench/record"
	rg "edgecollector/bench/reportgen"
	"edgecollector/bench/stats"
)

// The storage experiment's part of the report: the write modes (and the
// peer) at the fsync latency of each storage class, on a faultfs mount.

const intro = "Every cell runs on one faultfs mount whose fsync costs the class's latency (plus up to 20% seeded jitter, one flush at a time) instead of the disk's flush; " +
	"*pass-through* flushes this machine's disk. The latencies are of the order an fsync takes on each kind of device, not measurements of any one device. " +
	"**Compare only within these tables**: the FUSE layer itself roughly halves the commit rate against the bare disk, " +
	"so these rates are not comparable with the throughput and HTTP tables. In-process: the store, one event per durable transaction; " +
	"HTTP: the collector binary, single-event requests, closed loop. Ratios are paired, against serialized in the same class."

const peerIntro = "The OpenTelemetry Collector (`fsync: true`: its 200 is fsync'd too) under the same HTTP load on the same mount, where measured; " +
	"the ratio is against our collector's serialized mode over HTTP in the same class."

var report = rg.Part{
	Doc: "**storage**: the write modes (in-process and over HTTP) and the OpenTelemetry Collector at the fsync latency of each storage class (pass-through, NVMe, SATA SSD, eMMC, SD card), emulated on a faultfs mount: durable events/s, p99, ratios to serialized.",
	Tables: []rg.Table{{
		Title: "Storage classes: the write modes at the cost of an fsync", Intro: intro,
		Bench: "StorageStore", Need: "events/s",
		Columns: []rg.Column{
			{Head: "<storage class", Cell: func(r rg.Row) string { return classOf(r).Label }},
			{Head: "fsync", Cell: func(r rg.Row) string { return fsyncLabel(classOf(r)) }},
			rg.ModeCol("<mode"),
			rg.CI("in-process events/s (95% CI)", "events/s", rg.Count),
			rg.VsBase("vs serialized (95% CI)", "events/s"),
			rg.Median("p99", "p99-sec/insert", rg.Seconds),
			{Head: "HTTP events/s (95% CI)", Cell: func(r rg.Row) string {
				return rg.WithCI(r.R.Stat("StorageHTTP", "events/s", r.Mode, classW(r.R, "StorageHTTP", r.Get("class"))), rg.Count)
			}},
			{Head: "vs serialized (95% CI)", Cell: func(r rg.Row) string {
				ratio, ok := r.R.VsBase("StorageHTTP", "events/s", r.Mode, classW(r.R, "StorageHTTP", r.Get("class")))
				if !ok {
					return "1 (baseline)"
				}
				return rg.WithCI(ratio.Summary, rg.Times)
			}},
			{Head: "p99", Cell: func(r rg.Row) string {
				return rg.Seconds(r.R.Median("StorageHTTP", "p99-sec/req", r.Mode, classW(r.R, "StorageHTTP", r.Get("class"))))
			}},
		},
		Figure: "storage",
	}, {
		Title: "Storage classes: the OpenTelemetry Collector", Intro: peerIntro,
		Bench: "StoragePeer", Need: "accepted-events/s",
		Columns: []rg.Column{
			{Head: "<storage class", Cell: func(r rg.Row) string { return classOf(r).Label }},
			{Head: "fsync", Cell: func(r rg.Row) string { return fsyncLabel(classOf(r)) }},
			rg.ModeCol("<system"),
			rg.CI("HTTP events/s (95% CI)", "accepted-events/s", rg.Count),
			{Head: "vs ours serialized (95% CI)", Cell: func(r rg.Row) string {
				base := r.R.Sample("StorageHTTP", "events/s", rg.WithMode(classW(r.R, "StorageHTTP", r.Get("class")), rg.Baseline)...)
				if len(base) == 0 {
					return "–"
				}
				return rg.WithCI(stats.Compare(r.Sample("accepted-events/s"), base).Summary, rg.Times)
			}},
			rg.Median("p99", "p99-sec/req", rg.Seconds),
		},
	}},
	Figures: []rg.Figure{{
		Name:    "storage",
		Caption: "Durable events/s against the fsync latency of each storage class, per mode (in-process solid, HTTP dashed; squares: the OpenTelemetry Collector with fsync: true; log scale; bars: 95% CI); all on one FUSE mount",
		Plot:    storagePlot,
	}},
	Findings: findings,
}

// classW is the configuration of benchmark name in class.
func classW(f *rg.Results, name, class string) []record.KV {
	for _, w := range f.Configs(name) {
		if rg.Get(w, "class") == class {
			return w
		}
	}
	return nil
}

// classOf is a row's class: from the sweep's list, else from its fsync-ms.
func classOf(r rg.Row) Class {
	name := r.Get("class")
	if c, ok := ClassOf(name); ok {
		return c
	}
	ms, _ := strconv.ParseFloat(r.Get("fsync-ms"), 64)
	return Class{Name: name, Label: name, Latency: time.Duration(ms * float64(time.Millisecond))}
}

// classesIn are the classes measured, in the sweep's order.
func classesIn(f *rg.Results) []Class {
	var out []Class
	for _, name := range f.Distinct("StorageStore", "class") {
		c, ok := ClassOf(name)
		if !ok {
			ms, _ := strconv.ParseFloat(rg.Get(classW(f, "StorageStore", name), "fsync-ms"), 64)
			c = Class{Name: name, Label: name, Latency: time.Duration(ms * float64(time.Millisecond))}
		}
		out = append(out, c)
	}
	return out
}

func fsyncLabel(c Class) string {
	if c.Latency == 0 {
		return "pass-through"
	}
	return rg.Sig(c.Latency.Seconds()*1000) + " ms"
}

// storagePlot is durable events/s against the fsync latency of each class,
// per mode: in-process solid, over HTTP dashed, the peer as squares.
func storagePlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("storage")
	if f == nil {
		return nil, nil
	}
	classes := classesIn(f)
	if len(classes) == 0 {
		return nil, nil
	}
	p := rg.NewPlot("Durable events/s against the cost of an fsync (FUSE mount)", "fsync latency (storage class)", "events/s")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = rg.LogTicks{}
	var xt plot.ConstantTicks
	for i, c := range classes {
		xt = append(xt, plot.Tick{Value: float64(i), Label: fsyncLabel(c) + "\n" + c.Name})
	}
	p.X.Tick.Marker = xt
	p.X.Min, p.X.Max = -0.3, float64(len(classes))-0.7
	for _, name := range []string{"StorageStore", "StorageHTTP"} {
		suffix := ", in-process"
		if name == "StorageHTTP" {
			suffix = ", HTTP"
		}
		for _, m := range f.Distinct(name, "mode") {
			var line rg.Series
			for i, c := range classes {
				line.Add(float64(i), rg.Positive(f.Stat(name, "events/s", m, classW(f, name, c.Name))), 1)
			}
			if err := rg.AddLine(p, &line, m+suffix, rg.ColorOf(m), name == "StorageHTTP"); err != nil {
				return nil, err
			}
		}
	}
	for _, m := range f.Distinct("StoragePeer", "mode") {
		var pts plotter.XYs
		for i, c := range classes {
			if w := classW(f, "StoragePeer", c.Name); w != nil {
				if sum := f.Stat("StoragePeer", "accepted-events/s", m, w); sum.N > 0 && sum.Center > 0 {
					pts = append(pts, plotter.XY{X: float64(i), Y: sum.Center})
				}
			}
		}
		if len(pts) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Shape = draw.BoxGlyph{}
		sc.GlyphStyle.Radius = vg.Points(4)
		if c := peer.Color(m); c != nil {
			sc.GlyphStyle.Color = c
		}
		p.Add(sc)
		p.Legend.Add(m+", HTTP", sc)
	}
	p.Legend.Top, p.Legend.Left = false, true
	return p, nil
}

// findings: the FUSE caveat, then a sentence per storage class.
func findings(s *rg.Section) []string {
	f := s.Results("storage")
	if f == nil {
		return nil
	}
	var parts []string
	for _, c := range classesIn(f) {
		ws, wh := classW(f, "StorageStore", c.Name), classW(f, "StorageHTTP", c.Name)
		r, ok := f.VsBase("StorageStore", "events/s", "group", ws)
		if !ok || r.N == 0 {
			continue
		}
		where := fmt.Sprintf("At %s per fsync (%s)", fsyncLabel(c), c.Label)
		if c.Latency == 0 {
			where = "On " + c.Label
		}
		line := fmt.Sprintf("%s, group does %s serialized in process (95%% CI %s, %s events/s)",
			where, rg.Times(r.Center), rg.Interval(r.Summary, rg.Times), rg.Count(f.Median("StorageStore", "events/s", "group", ws)))
		if rh, okh := f.VsBase("StorageHTTP", "events/s", "group", wh); okh && rh.N > 0 {
			line += fmt.Sprintf(" and %s over HTTP (%s)", rg.Times(rh.Center), rg.Interval(rh.Summary, rg.Times))
		}
		if rc, okc := f.VsBase("StorageStore", "events/s", "concurrent", ws); okc && rc.N > 0 {
			line += fmt.Sprintf("; concurrent does %s", rg.Times(rc.Center))
		}
		if wp := classW(f, "StoragePeer", c.Name); wp != nil {
			otel := f.Sample("StoragePeer", "accepted-events/s", rg.WithMode(wp, string(peer.OtelFsync))...)
			ours := f.Sample("StorageHTTP", "events/s", rg.WithMode(wh, "group")...)
			if len(otel) > 0 && len(ours) > 0 {
				line += fmt.Sprintf("; the OpenTelemetry Collector (fsync: true) accepts %s events/s over HTTP, ours (group) %s that",
					rg.Count(stats.Summarize(otel).Center), rg.Times(stats.Compare(ours, otel).Center))
			}
		}
		parts = append(parts, line+".")
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{"**Storage classes** (all on a FUSE mount, whose layer roughly halves the commit rate against the bare disk: compare systems and modes only within this setting). " + strings.Join(parts, " ")}
}

package report

import (
	"fmt"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"edgecollector/bench/results"
	"edgecollector/bench/stats"
	"edgecollector/bench/storage"
)

// The storage experiment: the write modes (and the peer) at the fsync
// latency of each storage class, on a faultfs mount (bench/storage).

const storageIntro = "Every cell runs on one faultfs mount whose fsync costs the class's latency (plus up to 20% seeded jitter, one flush at a time) instead of the disk's flush; " +
	"*pass-through* flushes this machine's disk. The latencies are of the order an fsync takes on each kind of device, not measurements of any one device. " +
	"**Compare only within this table**: the FUSE layer itself roughly halves the commit rate against the bare disk (see the Finding for this machine's figure), " +
	"so these rates are not comparable with the throughput and HTTP tables above. In-process: the store, one event per durable transaction; " +
	"HTTP: the collector binary, single-event requests, closed loop; the OpenTelemetry Collector (`fsync: true`, its 200 also fsync'd) under the same HTTP load where measured. " +
	"Ratios are paired, against serialized in the same class (the peer: against ours serialized over HTTP)."

// storageW is the configuration of benchmark name in class.
func storageW(f *results.File, name, class string) []results.KV {
	for _, w := range configs(f, name) {
		if get(w, "class") == class {
			return w
		}
	}
	return nil
}

// storageClasses are the classes measured, in the sweep's order.
func storageClasses(f *results.File) []storage.Class {
	var out []storage.Class
	for _, name := range f.Distinct("StorageStore", "class") {
		c, ok := storage.ClassOf(name)
		if !ok {
			w := storageW(f, "StorageStore", name)
			c = storage.Class{Name: name, Label: name, Latency: time.Duration(atof(get(w, "fsync-ms")) * float64(time.Millisecond))}
		}
		out = append(out, c)
	}
	return out
}

func (s *section) storageTable() string {
	f := s.file("storage")
	if f == nil {
		return ""
	}
	t := newTable("<storage class", "fsync", "<mode", "in-process events/s (95% CI)", "vs serialized (95% CI)", "p99", "HTTP events/s (95% CI)", "vs serialized (95% CI)", "p99")
	for _, c := range storageClasses(f) {
		ws, wh, wp := storageW(f, "StorageStore", c.Name), storageW(f, "StorageHTTP", c.Name), storageW(f, "StoragePeer", c.Name)
		for _, m := range f.Distinct("StorageStore", "mode") {
			in := stat(f, "StorageStore", "events/s", m, ws)
			if in.N == 0 {
				continue
			}
			ri, oki := vsBase(f, "StorageStore", "events/s", m, ws)
			ric, _ := ratioCells(ri, oki)
			hc, rhc, hp := "–", "", "–"
			if wh != nil {
				if h := stat(f, "StorageHTTP", "events/s", m, wh); h.N > 0 {
					rh, okh := vsBase(f, "StorageHTTP", "events/s", m, wh)
					hc = withCI(h, count)
					rhc, _ = ratioCells(rh, okh)
					hp = seconds(median(f, "StorageHTTP", "p99-sec/req", m, wh))
				}
			}
			t.add(c.Label, fsyncLabel(c), m, withCI(in, count), ric, seconds(median(f, "StorageStore", "p99-sec/insert", m, ws)), hc, rhc, hp)
		}
		if wp != nil {
			for _, m := range f.Distinct("StoragePeer", "mode") {
				p := stat(f, "StoragePeer", "accepted-events/s", m, wp)
				if p.N == 0 {
					continue
				}
				rc := "–"
				if base := f.Sample("StorageHTTP", "events/s", withMode(wh, baseline)...); len(base) > 0 {
					rc = withCI(stats.Compare(f.Sample("StoragePeer", "accepted-events/s", withMode(wp, m)...), base).Summary, ratio)
				}
				t.add(c.Label, fsyncLabel(c), m, "–", "", "", withCI(p, count), rc, seconds(median(f, "StoragePeer", "p99-sec/req", m, wp)))
			}
		}
	}
	return t.String()
}

func fsyncLabel(c storage.Class) string {
	if c.Latency == 0 {
		return "pass-through"
	}
	return fmt.Sprintf("%s ms", sig(c.Latency.Seconds()*1000))
}

// storagePlot is durable events/s against the fsync latency of each class,
// per mode: in-process solid, over HTTP dashed, the peer as points.
func (s *section) storagePlot() (*plot.Plot, error) {
	f := s.file("storage")
	if f == nil {
		return nil, nil
	}
	classes := storageClasses(f)
	if len(classes) == 0 {
		return nil, nil
	}
	p := newPlot("Durable events/s against the cost of an fsync (FUSE mount)", "fsync latency (storage class)", "events/s")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	var xt plot.ConstantTicks
	for i, c := range classes {
		xt = append(xt, plot.Tick{Value: float64(i), Label: fsyncLabel(c) + "\n" + c.Name})
	}
	p.X.Tick.Marker = xt
	p.X.Min, p.X.Max = -0.3, float64(len(classes))-0.7
	for _, http := range []bool{false, true} {
		name, suffix := "StorageStore", ", in-process"
		if http {
			name, suffix = "StorageHTTP", ", HTTP"
		}
		for _, m := range f.Distinct(name, "mode") {
			var line series
			for i, c := range classes {
				line.add(float64(i), positive(stat(f, name, "events/s", m, storageW(f, name, c.Name))), 1)
			}
			if err := addLine(p, &line, m+suffix, colorOf(m), http); err != nil {
				return nil, err
			}
		}
	}
	for _, m := range f.Distinct("StoragePeer", "mode") {
		var pts plotter.XYs
		for i, c := range classes {
			if w := storageW(f, "StoragePeer", c.Name); w != nil {
				if sum := stat(f, "StoragePeer", "accepted-events/s", m, w); sum.N > 0 && sum.Center > 0 {
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
		if c, ok := peerColors[m]; ok {
			sc.GlyphStyle.Color = c
		}
		p.Add(sc)
		p.Legend.Add(m+", HTTP", sc)
	}
	p.Legend.Top, p.Legend.Left = false, true
	return p, nil
}

// storageFindings: the FUSE caveat with this machine's figure, then a
// sentence per storage class.
func (s *section) storageFindings() []string {
	f := s.file("storage")
	if f == nil {
		return nil
	}
	classes := storageClasses(f)
	if len(classes) == 0 {
		return nil
	}
	fuse := "**Storage classes** (all on a FUSE mount, whose layer roughly halves the commit rate against the bare disk: compare systems and modes only within this setting"
	// The bare-disk figure only from the same run: across runs the machine's
	// load differs more than FUSE costs.
	if tf, ws := s.file("throughput"), storageW(f, "StorageStore", "disk"); tf != nil && ws != nil && s.runOf("throughput") == s.runOf("storage") {
		bare := stat(tf, "Throughput", "events/s", baseline, []results.KV{{Key: "indexed", Value: "false"}, {Key: "producers", Value: get(ws, "producers")}})
		onFuse := stat(f, "StorageStore", "events/s", baseline, ws)
		if bare.N > 0 && onFuse.N > 0 && bare.Center > 0 {
			fuse += fmt.Sprintf("; in this run serialized committed %s events/s through FUSE pass-through against %s on the bare disk (throughput experiment), %s",
				count(onFuse.Center), count(bare.Center), ratio(onFuse.Center/bare.Center))
		}
	}
	fuse += ")."
	var parts []string
	for _, c := range classes {
		ws, wh := storageW(f, "StorageStore", c.Name), storageW(f, "StorageHTTP", c.Name)
		r, ok := vsBase(f, "StorageStore", "events/s", "group", ws)
		if !ok || r.N == 0 {
			continue
		}
		where := fmt.Sprintf("At %s per fsync (%s)", fsyncLabel(c), c.Label)
		if c.Latency == 0 {
			where = fmt.Sprintf("On %s", c.Label)
		}
		line := fmt.Sprintf("%s, group does %s serialized in process (95%% CI %s, %s events/s)",
			where, ratio(r.Center), ci(r.Summary, ratio), count(median(f, "StorageStore", "events/s", "group", ws)))
		if rh, okh := vsBase(f, "StorageHTTP", "events/s", "group", wh); okh && rh.N > 0 {
			line += fmt.Sprintf(" and %s over HTTP (%s)", ratio(rh.Center), ci(rh.Summary, ratio))
		}
		if rc, okc := vsBase(f, "StorageStore", "events/s", "concurrent", ws); okc && rc.N > 0 {
			line += fmt.Sprintf("; concurrent does %s", ratio(rc.Center))
		}
		if wp := storageW(f, "StoragePeer", c.Name); wp != nil {
			peer := f.Sample("StoragePeer", "accepted-events/s", withMode(wp, "otel-fsync")...)
			ours := f.Sample("StorageHTTP", "events/s", withMode(wh, "group")...)
			if len(peer) > 0 && len(ours) > 0 {
				line += fmt.Sprintf("; the OpenTelemetry Collector (fsync: true) accepts %s events/s over HTTP, ours (group) %s that",
					count(stats.Summarize(peer).Center), ratio(stats.Compare(ours, peer).Center))
			}
		}
		parts = append(parts, line+".")
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{fuse + " " + strings.Join(parts, " ")}
}

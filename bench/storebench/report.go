package storebench

import (
	"fmt"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"edgecollector/bench/record"
	rg "edgecollector/bench/reportgen"
)

// What the store experiments add to the report.

// throughputReport is the throughput experiment's part of the report.
var throughputReport = rg.Part{
	Doc: "**throughput**: the store in-process; durable single-event inserts by 1 to 64 producers; events/s, p50/p99 per insert, and fairness between producers (Jain's index, 1 = perfectly fair; and the least over the most served producer).",
	Tables: []rg.Table{{
		Title: "Throughput (in-process, durable inserts)",
		Intro: "Events/s with the median's 95% CI; latency and fairness columns are medians over repetitions.",
		Bench: "Throughput", Need: "events/s",
		Columns: []rg.Column{
			rg.Key("<indexed", "indexed"), rg.Key("producers", "producers"), rg.ModeCol("<mode"),
			rg.CI("events/s (95% CI)", "events/s", rg.Count), rg.VsBase("vs serialized (95% CI)", "events/s"), rg.P("events/s"),
			rg.Median("p50", "p50-sec/insert", rg.Seconds), rg.Median("p99", "p99-sec/insert", rg.Seconds),
			rg.Median("Jain", "jain-fairness", rg.Sig), rg.Median("min/max", "minmax-fairness", rg.Sig),
		},
		Figure: "throughput",
	}},
	Figures: []rg.Figure{{
		Name:    "throughput",
		Caption: "Durable events/s against producers, per mode (log-log; bars: 95% CI of the median; dashed: indexed)",
		Plot:    throughputPlot,
	}},
	Findings: throughputFindings,
}

// p16 and p64 are the unindexed cells the findings read.
var (
	p16 = []record.KV{{Key: "indexed", Value: "false"}, {Key: "producers", Value: "16"}}
	p64 = []record.KV{{Key: "indexed", Value: "false"}, {Key: "producers", Value: "64"}}
)

func throughputPlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("throughput")
	if f == nil {
		return nil, nil
	}
	p := rg.NewPlot("Durable insert throughput", "producers", "events/s")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.Y.Tick.Marker = rg.LogTicks{}
	var xt plot.ConstantTicks
	for _, n := range f.Distinct("Throughput", "producers") {
		xt = append(xt, plot.Tick{Value: rg.Atof(n), Label: n})
	}
	p.X.Tick.Marker = xt
	for _, indexed := range f.Distinct("Throughput", "indexed") {
		for _, m := range f.Distinct("Throughput", "mode") {
			var line rg.Series
			for _, n := range f.Distinct("Throughput", "producers") {
				w := []record.KV{{Key: "indexed", Value: indexed}, {Key: "producers", Value: n}}
				line.Add(rg.Atof(n), f.Stat("Throughput", "events/s", m, w), 1)
			}
			label := rg.ModeLabel(m)
			if indexed == "true" {
				label += ", indexed"
			}
			if err := rg.AddLine(p, &line, label, rg.ColorOf(m), indexed == "true"); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func throughputFindings(s *rg.Section) []string {
	tf := s.Results("throughput")
	if tf == nil {
		return nil
	}
	var out []string
	ser := tf.Stat("Throughput", "events/s", rg.Baseline, p16)
	grp := tf.Stat("Throughput", "events/s", "group", p16)
	con := tf.Stat("Throughput", "events/s", "concurrent", p16)
	if ser.N > 0 && grp.N > 0 {
		r, _ := tf.VsBase("Throughput", "events/s", "group", p16)
		head := map[int]string{1: "Group commit wins.", 0: "Group commit is not distinguishable from serialized here.", -1: "Group commit lost here."}[rg.Side(r)]
		out = append(out, fmt.Sprintf("**%s** With 16 producers it sustained %s durable events/s against %s for one serialized writer: %s (95%% CI %s), at about %s events per commit.",
			head, rg.Count(grp.Center), rg.Count(ser.Center), rg.Times(r.Center), rg.Interval(r.Summary, rg.Times),
			rg.Sig(tf.Median("Throughput", "events/commit", "group", p16))))
	}
	if ser.N > 0 && con.N > 0 {
		r, _ := tf.VsBase("Throughput", "events/s", "concurrent", p16)
		head := map[int]string{1: "Concurrent transactions are faster.", 0: "Concurrent transactions are no faster.", -1: "Concurrent transactions are slower."}[rg.Side(r)]
		why := ""
		if rg.Side(r) <= 0 {
			why = " SQLite admits one writer at a time, so a pool of connections adds lock waits and retries, not parallelism."
		}
		out = append(out, fmt.Sprintf("**%s** They reached %s of serialized's events/s at 16 producers (95%% CI %s; %s); the original measured 0.91× on SQLRite.%s",
			head, rg.Times(r.Center), rg.Interval(r.Summary, rg.Times), rg.Verdict(r, "faster", "slower"), why))
	}
	if fs := s.Meta().Machine.FsyncPerSec; fs > 0 && ser.N > 0 && grp.N > 0 {
		out = append(out, fmt.Sprintf("**Why.** This disk's fsync ceiling is %s/s. A mode that commits each event alone is held near it (serialized: %s events/s, %s of it); group commit covers many events with one fsync and reached %s of it.",
			rg.Count(fs), rg.Count(ser.Center), rg.Times(ser.Center/fs), rg.Times(grp.Center/fs)))
	}
	if j := tf.Stat("Throughput", "jain-fairness", "concurrent", p64); j.N > 0 {
		js := tf.Stat("Throughput", "jain-fairness", rg.Baseline, p64)
		jg := tf.Stat("Throughput", "jain-fairness", "group", p64)
		why := ""
		if js.N > 0 && j.Center < js.Center {
			why = ": concurrent writers wait in SQLite's busy handler, which serves them in no order, so some starve while others commit"
		}
		out = append(out, fmt.Sprintf("**Fairness.** At 64 producers, Jain's index was %s for concurrent, %s for serialized and %s for group (1 is perfectly fair)%s.",
			rg.Sig(j.Center), rg.Sig(js.Center), rg.Sig(jg.Center), why))
	}
	if aa := tf.Stat("Throughput", "events/s", rg.Baseline+ControlSuffix, p16); aa.N > 0 {
		r, _ := tf.VsBase("Throughput", "events/s", rg.Baseline+ControlSuffix, p16)
		out = append(out, fmt.Sprintf("**Noise floor.** The A/A control (serialized against itself) came out at %s (95%% CI %s, p=%s): ratio differences inside that band are noise.",
			rg.Times(r.Center), rg.Interval(r.Summary, rg.Times), rg.PValue(r.P)))
	}
	return out
}

// contentionReport is the contention experiment's part of the report.
var contentionReport = rg.Part{
	Doc: "**contention**: insert latency (p50/p90/p99/max) while a background writer loops the uploader's wide checkpoint transaction.",
	Tables: []rg.Table{{
		Title: "Contention: inserts beside the looping checkpoint",
		Intro: "Latency columns are medians over repetitions; the ratio compares p99 (lower is better).",
		Bench: "Contention", Need: "p99-sec/insert",
		Columns: []rg.Column{
			rg.ModeCol("<mode"), rg.Median("p50", "p50-sec/insert", rg.Seconds), rg.Median("p90", "p90-sec/insert", rg.Seconds),
			rg.CI("p99 (95% CI)", "p99-sec/insert", rg.Seconds), rg.Median("max", "max-sec/insert", rg.Seconds),
			rg.VsBase("p99 vs serialized (95% CI)", "p99-sec/insert"), rg.P("p99-sec/insert"),
			rg.Median("inserts/s", "events/s", rg.Count), rg.Median("checkpoints/s", "checkpoints/s", rg.Count),
			rg.Median("rows/checkpoint", "rows/checkpoint", rg.Count),
		},
		Figure: "contention",
	}},
	Figures: []rg.Figure{{
		Name:    "contention",
		Caption: "Insert latency percentiles while the checkpoint loops (log scale; bars: 95% CI)",
		Plot:    contentionPlot,
	}},
	Findings: func(s *rg.Section) []string {
		cf := s.Results("contention")
		if cf == nil {
			return nil
		}
		w := cf.FirstConfig("Contention")
		var parts []string
		for _, m := range cf.Distinct("Contention", "mode") {
			parts = append(parts, fmt.Sprintf("%s %s", m, rg.Seconds(cf.Median("Contention", "p99-sec/insert", m, w))))
		}
		if len(parts) == 0 {
			return nil
		}
		return []string{fmt.Sprintf("**Under a looping checkpoint** (%s-row transactions), p99 insert latency was %s; the original saw concurrent's tail 2× worse than serialized's.",
			rg.Get(w, "checkpoint-rows"), strings.Join(parts, ", "))}
	},
}

func contentionPlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("contention")
	if f == nil {
		return nil, nil
	}
	p := rg.NewPlot("Insert latency under a looping checkpoint", "", "latency (ms)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = rg.LogTicks{}
	qs := []string{"p50", "p90", "p99", "max"}
	p.X.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "p50"}, {Value: 1, Label: "p90"}, {Value: 2, Label: "p99"}, {Value: 3, Label: "max"}}
	p.X.Min, p.X.Max = -0.5, float64(len(qs))-0.5
	modes := f.Distinct("Contention", "mode")
	for i, m := range modes {
		var pts rg.Series
		off := (float64(i) - float64(len(modes)-1)/2) * 0.15
		for j, q := range qs {
			for _, w := range f.Configs("Contention") {
				pts.Add(float64(j)+off, rg.Positive(f.Stat("Contention", q+"-sec/insert", m, w)), 1e3)
			}
		}
		sc, err := plotter.NewScatter(pts.XYs)
		if err != nil {
			return nil, err
		}
		sc.Color, sc.Shape, sc.Radius = rg.ColorOf(m), draw.CircleGlyph{}, vg.Points(4)
		eb, err := plotter.NewYErrorBars(&pts)
		if err != nil {
			return nil, err
		}
		eb.Color = rg.ColorOf(m)
		p.Add(sc, eb)
		p.Legend.Add(m, sc)
	}
	return p, nil
}

// disjointReport is the disjoint experiment's part of the report.
var disjointReport = rg.Part{
	Doc: "**disjoint**: writers that each own a row range, 20-UPDATE transactions; updates/s and conflicts.",
	Tables: []rg.Table{{
		Title: "Disjoint-row writers",
		Bench: "Disjoint", Need: "updates/s",
		Columns: []rg.Column{
			rg.ModeCol("<mode"), rg.CI("updates/s (95% CI)", "updates/s", rg.Count),
			rg.VsBase("vs serialized (95% CI)", "updates/s"), rg.P("updates/s"),
			rg.Median("conflicts per cell", "conflicts", rg.Count), rg.Median("p50 per tx", "p50-sec/tx", rg.Seconds),
			rg.Median("p99 per tx", "p99-sec/tx", rg.Seconds), rg.Median("Jain", "jain-fairness", rg.Sig),
		},
		Figure: "disjoint",
	}},
	Figures: []rg.Figure{{
		Name:    "disjoint",
		Caption: "Disjoint 20-update transactions: updates/s per mode (bars: 95% CI)",
		Plot:    disjointPlot,
	}},
	Findings: disjointFindings,
}

func disjointPlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("disjoint")
	if f == nil {
		return nil, nil
	}
	p := rg.NewPlot("Disjoint-row writers, 20-update transactions", "", "updates/s")
	modes := f.Distinct("Disjoint", "mode")
	var ticks plot.ConstantTicks
	for i, m := range modes {
		var bar rg.Series
		for _, w := range f.Configs("Disjoint") {
			bar.Add(float64(i), f.Stat("Disjoint", "updates/s", m, w), 1)
		}
		if len(bar.XYs) == 0 {
			continue
		}
		b, err := plotter.NewBarChart(plotter.Values{bar.XYs[0].Y}, vg.Points(60))
		if err != nil {
			return nil, err
		}
		b.XMin = float64(i)
		b.Color = rg.ColorOf(m)
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

func disjointFindings(s *rg.Section) []string {
	df := s.Results("disjoint")
	if df == nil {
		return nil
	}
	var out []string
	w := df.FirstConfig("Disjoint")
	if r, ok := df.VsBase("Disjoint", "updates/s", "concurrent", w); ok {
		out = append(out, fmt.Sprintf("**Disjoint rows** (%s writers, %s-update transactions), the textbook case for concurrent writers: concurrent did %s of serialized's updates/s (95%% CI %s; %s), with %s busy conflicts per cell.",
			rg.Get(w, "writers"), rg.Get(w, "tx-updates"), rg.Times(r.Center), rg.Interval(r.Summary, rg.Times), rg.Verdict(r, "faster", "slower"),
			rg.Count(df.Median("Disjoint", "conflicts", "concurrent", w))))
	}
	if r, ok := df.VsBase("Disjoint", "updates/s", "group", w); ok && slices.Contains(df.Distinct("Disjoint", "mode"), "group") {
		out = append(out, fmt.Sprintf("Group commit, which shares one commit among the transactions queued, did %s of serialized's updates/s there (95%% CI %s; %s).",
			rg.Times(r.Center), rg.Interval(r.Summary, rg.Times), rg.Verdict(r, "faster", "slower")))
	}
	return out
}

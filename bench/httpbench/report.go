package httpbench

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot"

	"edgecollector/bench/record"
	rg "edgecollector/bench/reportgen"
)

// report is the http experiment's part of the report.
var report = rg.Part{
	Doc: "**http**: the real collector binary driven over loopback by vegeta (as a library): the most each mode sustains with single-event requests on 16, 64 and 256 connections and 100-event requests on 16, and an open-loop sweep of offered rates past saturation with achieved rate, share served, and latency percentiles; in every cell the collector's CPU per request and per event, and, in one profiled cell, where that CPU goes.",
	Tables: []rg.Table{{
		Title: "HTTP: the most each mode sustains",
		Intro: "The collector binary, closed loop (each connection sends its next request when the last is answered). " +
			"*CPU* is the collector process's own (utime+stime from /proc) over the attack, per request and per event acknowledged in it; the load generator runs on the same cores.",
		Bench: "HTTPMax", Need: "events/s",
		Columns: []rg.Column{
			rg.Key("events/request", "batch"), rg.Key("connections", "conns"), rg.ModeCol("<mode"), rg.Median("requests/s", "req/s", rg.Count),
			rg.CI("events/s (95% CI)", "events/s", rg.Count), rg.VsBase("vs serialized (95% CI)", "events/s"), rg.P("events/s"),
			rg.Median("p50", "p50-sec/req", rg.Seconds), rg.Median("p99", "p99-sec/req", rg.Seconds),
			rg.Median("503s", "backpressure-ratio", rg.Percent), rg.Median("drained events/s", "drained-events/s", rg.Count),
			rg.Median("CPU µs/request", "cpu-us/req", rg.Sig), rg.Median("CPU µs/event", "cpu-us/event", rg.Sig),
			rg.Median("peak RSS", "peak-rss-bytes", rg.MiB),
		},
	}, {
		Title: "HTTP: where the collector's CPU goes",
		Intro: "Group mode under the closed loop above, with the collector's CPU profiled (its `-pprof-addr`) during the window, each sample put in the first part whose code is on its stack: " +
			"GC (the background mark and sweep, and the assists an allocating goroutine pays), the uploader (fetch, ship, mark: the sink and `collector/uploader`), the store (insert and group commit: SQLite, the WAL write, the fsync), " +
			"the handler (`collector/server`: body, decoding, limits, metrics, the answer), net/http (reading requests and writing answers on the sockets), the Go scheduler, and the rest.",
		Bench: "HTTPProfile", Need: "cpu-share-http",
		Columns: []rg.Column{
			rg.Key("events/request", "batch"), rg.Key("connections", "conns"), rg.ModeCol("<mode"),
			rg.Median("net/http", "cpu-share-http", rg.Percent), rg.Median("handler", "cpu-share-handler", rg.Percent),
			rg.Median("store", "cpu-share-store", rg.Percent), rg.Median("uploader", "cpu-share-uploader", rg.Percent),
			rg.Median("GC", "cpu-share-gc", rg.Percent), rg.Median("scheduler", "cpu-share-runtime", rg.Percent),
			rg.Median("other", "cpu-share-other", rg.Percent),
		},
	}, {
		Title: "HTTP: latency against offered load",
		Intro: "Open loop, single-event requests. *Served* is the share of the requests due in the window that got a 200; latency counts from when a request was due.",
		Bench: "HTTPSweep", Need: "req/s",
		Columns: []rg.Column{
			{Head: "offered req/s", Cell: func(r rg.Row) string { return rg.Count(rg.Atof(r.Get("rate"))) }},
			rg.ModeCol("<mode"), rg.Median("achieved req/s", "req/s", rg.Count),
			rg.Median("served", "success-ratio", rg.Percent), rg.Median("503s", "backpressure-ratio", rg.Percent),
			rg.Median("p50", "p50-sec/req", rg.Seconds), rg.Median("p90", "p90-sec/req", rg.Seconds),
			rg.CI("p99 (95% CI)", "p99-sec/req", rg.Seconds), rg.Median("max", "max-sec/req", rg.Seconds),
			rg.Median("CPU µs/request", "cpu-us/req", rg.Sig),
		},
		Figure: "http-latency",
	}},
	Figures: []rg.Figure{{
		Name:    "http-latency",
		Caption: "p99 latency against offered load over HTTP, single-event requests (log-log; dashed: p50; bars: 95% CI)",
		Plot:    sweepPlot,
	}},
	Findings: findings,
}

func sweepPlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("http")
	if f == nil || len(f.Distinct("HTTPSweep", "rate")) == 0 {
		return nil, nil
	}
	p := rg.NewPlot("Latency against offered load (HTTP, open loop)", "offered requests/s", "latency (ms)")
	p.Legend.Top, p.Legend.Left = false, false // the lines rise to the right; the bottom right is empty
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = rg.LogTicks{}, rg.LogTicks{}
	for _, m := range f.Distinct("HTTPSweep", "mode") {
		for _, q := range []string{"p99", "p50"} {
			var line rg.Series
			for _, r := range f.Distinct("HTTPSweep", "rate") {
				line.Add(rg.Atof(r), rg.Positive(f.Stat("HTTPSweep", q+"-sec/req", m, sweepCell(r))), 1e3)
			}
			if err := rg.AddLine(p, &line, m+" "+q, rg.ColorOf(m), q == "p50"); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// sweepCell is the configuration of the sweep's cell at rate r.
func sweepCell(r string) []record.KV {
	return []record.KV{{Key: "batch", Value: "1"}, {Key: "rate", Value: r}}
}

// findings: the write modes over HTTP, beside the in-process throughput;
// whether the uploader kept up; where each mode saturates.
func findings(s *rg.Section) []string {
	hf := s.Results("http")
	if hf == nil {
		return nil
	}
	var out []string
	w := hf.FirstConfig("HTTPMax")
	ser, grp := hf.Stat("HTTPMax", "req/s", rg.Baseline, w), hf.Stat("HTTPMax", "req/s", "group", w)
	if ser.N > 0 && grp.N > 0 {
		r, _ := hf.VsBase("HTTPMax", "req/s", "group", w)
		note := ""
		p16 := []record.KV{{Key: "indexed", Value: "false"}, {Key: "producers", Value: "16"}}
		if tf := s.Results("throughput"); tf != nil {
			if in, ok := tf.VsBase("Throughput", "events/s", "group", p16); ok && in.N > 0 && r.Center < in.Center {
				note = fmt.Sprintf("; narrower than in-process (%s), since the HTTP stack and the load generator take their share of the same cores", rg.Times(in.Center))
			}
		}
		out = append(out, fmt.Sprintf("**Over HTTP**, with the real binary and %s connections sending single events, group served %s requests/s against serialized's %s (%s, 95%% CI %s)%s.",
			rg.Get(w, "conns"), rg.Count(grp.Center), rg.Count(ser.Center), rg.Times(r.Center), rg.Interval(r.Summary, rg.Times), note))
	}
	if wb := []record.KV{{Key: "batch", Value: "100"}, {Key: "conns", Value: rg.Get(w, "conns")}}; len(hf.Sample("HTTPMax", "events/s", rg.WithMode(wb, "group")...)) > 0 {
		in, drained := hf.Median("HTTPMax", "events/s", "group", wb), hf.Median("HTTPMax", "drained-events/s", "group", wb)
		verb := "kept up with"
		if drained < 0.9*in {
			verb = "fell behind"
		}
		out = append(out, fmt.Sprintf("**Drain.** With 100-event requests, group ingested %s events/s while the uploader (its default batches of 1,000, to a local webhook) drained %s/s: the drain %s ingest; a backlog that keeps growing ends in 503 backpressure at -max-backlog.",
			rg.Count(in), rg.Count(drained), verb))
	}
	out = append(out, cpuFinding(hf)...)
	var knees []string
	for _, m := range hf.Distinct("HTTPSweep", "mode") {
		knees = append(knees, fmt.Sprintf("%s %s", m, knee(hf, m)))
	}
	if len(knees) > 0 {
		out = append(out, "**Saturation.** The highest offered rate served in full (99% of requests with a 200, p99 under 100 ms): "+strings.Join(knees, ", ")+".")
	}
	return out
}

// knee is the highest offered rate mode served in full, or a note.
func knee(f *rg.Results, mode string) string {
	best := ""
	for _, r := range f.Distinct("HTTPSweep", "rate") {
		served := f.Median("HTTPSweep", "success-ratio", mode, sweepCell(r))
		p99 := f.Median("HTTPSweep", "p99-sec/req", mode, sweepCell(r))
		if served >= 0.99 && p99 < 0.1 {
			best = r
		}
	}
	if best == "" {
		return "none of the offered rates"
	}
	return rg.Count(rg.Atof(best)) + " req/s"
}

// cpuFinding: what a single-event request costs the collector in CPU at 64
// connections, against a 100-event request's cost per event, and where it
// goes by the profiled cell.
func cpuFinding(hf *rg.Results) []string {
	single := []record.KV{{Key: "batch", Value: "1"}, {Key: "conns", Value: "64"}}
	grp := hf.Median("HTTPMax", "cpu-us/req", "group", single)
	if math.IsNaN(grp) {
		return nil
	}
	var others []string
	for _, m := range hf.Distinct("HTTPMax", "mode") {
		if v := hf.Median("HTTPMax", "cpu-us/req", m, single); m != "group" && !math.IsNaN(v) {
			others = append(others, fmt.Sprintf("%s %s", m, rg.Sig(v)))
		}
	}
	line := fmt.Sprintf("**CPU per request.** With 64 connections sending single events the collector spent %s µs of CPU per request in group mode", rg.Sig(grp))
	if len(others) > 0 {
		line += " (" + strings.Join(others, ", ") + ")"
	}
	if ev := hf.Median("HTTPMax", "cpu-us/event", "group", []record.KV{{Key: "batch", Value: "100"}, {Key: "conns", Value: "16"}}); !math.IsNaN(ev) {
		line += fmt.Sprintf(", against %s µs per event in 100-event requests: most of a single event's cost is the request's, not the event's", rg.Sig(ev))
	}
	share := func(part string) float64 {
		return hf.Median("HTTPProfile", shareUnit(part), "group", single)
	}
	if h := share("http"); !math.IsNaN(h) {
		line += fmt.Sprintf(". A CPU profile of that load puts %s of it in net/http (reading requests, writing answers), %s in the store (insert and group commit, the fsync included), %s in the handler, %s in the uploader, %s in GC and %s in the Go scheduler",
			rg.Percent(h), rg.Percent(share("store")), rg.Percent(share("handler")), rg.Percent(share("uploader")), rg.Percent(share("gc")), rg.Percent(share("runtime")))
	}
	return []string{line + "."}
}

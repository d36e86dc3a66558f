package peer

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"

	rg "edgecollector/bench/reportgen"
)

// sustainedReport is the sustained experiment's part of the report.
var sustainedReport = rg.Part{
	Doc: "**sustained**: the highest offered rate each system takes forever (open loop; >= 99% 200s, delivered >= 0.99x offered, a flat backlog), ours (group, one upload batch in flight and the default) beside the OpenTelemetry Collector (fsync on and off), 100-event requests and single events.",
	Tables: []rg.Table{{
		Title: "Sustained rate: what each system takes forever",
		Intro: sustainedIntro,
		Bench: "Sustained", Need: "sustained-events/s",
		Columns: []rg.Column{
			rg.Key("events/request", "batch"), rg.ModeCol("<system"), promise,
			rg.Median("sustained events/s", "sustained-events/s", rg.Count),
			rg.Median("coarse knee", "knee-events/s", rg.Count),
			vsNoFsync,
			rg.Median("200s", "ok-ratio", rg.Percent),
			rg.Median("delivered / offered", "delivered-ratio", rg.Sig),
			rg.Median("backlog slope / rate", "backlog-slope-ratio", rg.Sig),
			rg.Median("steps", "steps", rg.Count),
		},
		Figure: "sustained",
	}},
	Figures: []rg.Figure{{
		Name:    "sustained",
		Caption: "Backlog (acknowledged, not yet delivered) over the long window at each system's sustained rate, 100 events per request: flat is sustained",
		Plot:    sustainedPlot,
	}},
	Findings: sustainedFindings,
}

const sustainedIntro = "Open loop: requests are sent on schedule whatever the answers, each step on a fresh system, all delivering to one receiver in the harness; " +
	"the loader runs on the same cores. A step passes when >= 99% of its requests got a 200, the receiver got >= 0.99x the offered events/s during the window, " +
	"and the backlog grew over the window's second half by at most 1% of the rate per second. The *coarse knee* is the last short step that passed; " +
	"the *sustained* rate the long window that passed at it (or below it); 0 when none did. The last three columns are that long window's. " +
	"`ours-group-k1` is our collector with `-upload-inflight 1`: one upload batch in flight, the uploader before the pipeline. One repetition: a search, not a median."

// vsNoFsync is a row's sustained rate over otel-nofsync's at the same batch.
var vsNoFsync = rg.Column{Head: "vs otel-nofsync", Cell: func(r rg.Row) string {
	base := r.R.Median(r.Bench, "sustained-events/s", string(OtelNoFsync), r.Where)
	x := r.Median("sustained-events/s")
	if math.IsNaN(base) || base <= 0 || math.IsNaN(x) {
		return ""
	}
	return rg.Times(x / base)
}}

// sustainedPlot draws each system's backlog over the long window at its
// sustained rate, for 100-event requests (or the first batch size run).
func sustainedPlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("sustained")
	if f == nil {
		return nil, nil
	}
	configs := f.Configs("Sustained")
	if len(configs) == 0 {
		return nil, nil
	}
	w := configs[0]
	for _, c := range configs {
		if rg.Get(c, "batch") == "100" {
			w = c
		}
	}
	p := rg.NewPlot(fmt.Sprintf("Backlog at the sustained rate, %s events per request", rg.Get(w, "batch")), "time into the window (s)", "backlog (events)")
	p.Legend.Top, p.Legend.Left = true, false
	p.Y.Min = 0
	drawn := false
	for _, m := range f.Distinct("Sustained", "mode") {
		win := f.Median("Sustained", "window-sec", m, w)
		if math.IsNaN(win) || f.Median("Sustained", "sustained-events/s", m, w) <= 0 {
			continue
		}
		var line rg.Series
		for i := 1; i <= traceN; i++ {
			b := f.Stat("Sustained", traceUnit(i), m, w)
			line.Add(win*float64(i)/traceN, b, 1)
		}
		c := peerColors[m]
		if c == nil {
			c = color.Black
		}
		if err := rg.AddLine(p, &line, m, c, false); err != nil {
			return nil, err
		}
		drawn = drawn || len(line.XYs) > 0
	}
	if !drawn {
		return nil, nil
	}
	return p, nil
}

// sustainedFindings: ours beside the peer, per request size.
func sustainedFindings(s *rg.Section) []string {
	f := s.Results("sustained")
	if f == nil {
		return nil
	}
	var out []string
	for _, w := range f.Configs("Sustained") {
		rate := func(m System) float64 { return f.Median("Sustained", "sustained-events/s", string(m), w) }
		ours, k1 := rate(OursGroup), rate(OursGroupK1)
		if math.IsNaN(ours) {
			continue
		}
		line := fmt.Sprintf("**Sustained** (%s event(s) per request, open loop): ours (group) took %s events/s forever",
			rg.Get(w, "batch"), rg.Count(ours))
		if !math.IsNaN(k1) && k1 > 0 {
			line += fmt.Sprintf(" (%s with one upload batch in flight)", rg.Times(ours/k1))
		}
		var cmp []string
		for _, o := range []System{OtelNoFsync, OtelFsync} {
			if x := rate(o); !math.IsNaN(x) && x > 0 {
				cmp = append(cmp, fmt.Sprintf("%s the %s of the OpenTelemetry Collector with %s", rg.Times(ours/x), rg.Count(x), map[System]string{OtelNoFsync: "fsync off", OtelFsync: "fsync on"}[o]))
			} else if x == 0 {
				cmp = append(cmp, fmt.Sprintf("the OpenTelemetry Collector with %s sustained none of the steps", map[System]string{OtelNoFsync: "fsync off", OtelFsync: "fsync on"}[o]))
			}
		}
		switch len(cmp) {
		case 0:
			line += "."
		case 1:
			line += ": " + cmp[0] + "."
		default:
			line += ": " + cmp[0] + ", and " + cmp[1] + "."
		}
		out = append(out, line)
	}
	return out
}

package fleet

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"

	"edgecollector/bench/record"
	rg "edgecollector/bench/reportgen"
)

// report is the fleet experiment's part of the report.
var report = rg.Part{
	Doc: "**fleet**: N collector processes (the binary, `-sink nats`), each under its own open-loop producer, feeding one JetStream stream on a server embedded in the harness: events/s stored in the stream, latency from each 200 to the stream, backlogs, and effectively-once (duplicates and lost acknowledged events in the stream, both must be 0).",
	Tables: []rg.Table{{
		Title: "Fleet: N collectors into one JetStream stream",
		Intro: "Each collector is offered the same load; medians over repetitions. *Acknowledged* is what the producers got 200s for (on a busy box they can fall short of the offer); *into the stream* is what the stream stored in the same window. Latency runs from the producer's 200 to the message's stored time in the stream (an event the uploader ships before its 200 reaches the producer counts 0). The backlog by quarter of the window shows whether it grows (a fleet that does not keep up) or holds. Refused, duplicates and lost are summed over all repetitions.",
		Bench: cellName, Need: "events/s",
		Columns: []rg.Column{
			rg.Key("collectors", "collectors"), rg.Median("offered events/s", "offered-events/s", rg.Count),
			rg.Median("acknowledged events/s", "acked-events/s", rg.Count), rg.CI("into the stream, events/s (95% CI)", "events/s", rg.Count),
			rg.Median("p50 200→stream", "p50-sec/event", rg.Seconds), rg.Median("p99 200→stream", "p99-sec/event", rg.Seconds),
			rg.Median("mean backlog per collector", "mean-backlog-events", rg.Count),
			{Head: "by quarter of the window", Cell: quarters},
			rg.Median("peak backlog", "peak-backlog-events", rg.Count), rg.Median("drain after load", "drain-sec", rg.Seconds),
			rg.Total("refused or skipped requests", "refused-requests", rg.Count),
			rg.Total("duplicates", "duplicates", rg.Count), rg.Total("lost", "lost-events", rg.Count),
		},
		Figure: "fleet",
	}},
	Figures: []rg.Figure{{
		Name:    "fleet",
		Caption: "Fleet: events/s stored in one JetStream stream against the number of collectors (bars: 95% CI; dashed: offered)",
		Plot:    fleetPlot,
	}},
	Findings: findings,
}

// cellName is the benchmark name of the fleet's cells.
const cellName = "Fleet"

// quarters is the median backlog per collector in each quarter of the
// window, "q1 / q2 / q3 / q4": the backlog over time in one cell.
func quarters(r rg.Row) string {
	var qs []string
	for q := 1; q <= 4; q++ {
		qs = append(qs, rg.Count(r.Median(fmt.Sprintf("backlog-q%d-events", q))))
	}
	return strings.Join(qs, " / ")
}

// fleetPlot: events/s into the stream against fleet size, beside what was
// offered; p99 latency on the figure's second line would need a second axis,
// so it stays in the table.
func fleetPlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("fleet")
	if f == nil {
		return nil, nil
	}
	p := rg.NewPlot("Fleet: N collectors into one JetStream stream", "collectors", "events/s into the stream")
	var got, offered rg.Series
	for _, w := range f.Configs(cellName) {
		x := rg.Atof(rg.Get(w, "collectors"))
		got.Add(x, f.Stat(cellName, "events/s", "group", w), 1)
		offered.Add(x, f.Stat(cellName, "offered-events/s", "group", w), 1)
	}
	rg.SortSeries(&got)
	rg.SortSeries(&offered)
	if err := rg.AddLine(p, &offered, "offered", color.Gray{Y: 140}, true); err != nil {
		return nil, err
	}
	if err := rg.AddLine(p, &got, "stored in the stream (median, 95% CI)", rg.ColorOf("group"), false); err != nil {
		return nil, err
	}
	p.X.Min, p.Y.Min = 0, 0
	return p, nil
}

// findings: where the stream topped out, whether the backlog grew, and
// effectively-once over every fleet size.
func findings(s *rg.Section) []string {
	f := s.Results("fleet")
	if f == nil {
		return nil
	}
	cfgs := f.Configs(cellName)
	if len(cfgs) == 0 {
		return nil
	}
	size := func(w []record.KV) float64 { return rg.Atof(rg.Get(w, "collectors")) }
	into := func(w []record.KV) float64 { return f.Median(cellName, "events/s", "group", w) }
	largest := slices.MaxFunc(cfgs, func(a, b []record.KV) int { return cmp.Compare(size(a), size(b)) })
	best := slices.MaxFunc(cfgs, func(a, b []record.KV) int { return cmp.Compare(into(a), into(b)) })
	if math.IsNaN(into(largest)) {
		return nil
	}
	var dups, lost float64
	for _, c := range cfgs {
		dups += f.Total(cellName, "duplicates", "group", c)
		lost += f.Total(cellName, "lost-events", "group", c)
	}
	line := fmt.Sprintf("**Fleet:** %s collector processes offered %s events/s to one JetStream stream, which took %s/s (p99 %s from a producer's 200 to the stream)",
		rg.Get(largest, "collectors"), rg.Count(f.Median(cellName, "offered-events/s", "group", largest)), rg.Count(into(largest)),
		rg.Seconds(f.Median(cellName, "p99-sec/event", "group", largest)))
	q1 := f.Median(cellName, "backlog-q1-events", "group", largest)
	q4 := f.Median(cellName, "backlog-q4-events", "group", largest)
	if q4 > 1.5*q1 {
		line += fmt.Sprintf("; the fleet fell behind, each collector's backlog growing from %s to %s events over the window", rg.Count(q1), rg.Count(q4))
	}
	if rg.Get(best, "collectors") != rg.Get(largest, "collectors") {
		line += fmt.Sprintf(". The most the stream took was %s/s, with %s collectors: on this machine the fleet, its producers and the server share the same cores", rg.Count(into(best)), rg.Get(best, "collectors"))
	}
	line += fmt.Sprintf(". Across every fleet size, %s duplicates and %s lost events in the stream.", rg.Count(dups), rg.Count(lost))
	return []string{line}
}

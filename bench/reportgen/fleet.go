package reportgen

import (
	"fmt"
	"image/color"
	"slices"
	"strings"

	"gonum.org/v1/plot"

	"edgecollector/bench/record"
)

// The fleet experiment: N collector processes feeding one JetStream stream.

const fleetName = "Fleet"

func (s *section) fleetTable() string {
	f := s.file("fleet")
	if f == nil {
		return ""
	}
	t := newTable("collectors", "offered events/s", "acknowledged events/s", "into the stream, events/s (95% CI)", "p50 200→stream", "p99 200→stream",
		"mean backlog per collector", "by quarter of the window", "peak backlog", "drain after load", "refused or skipped requests", "duplicates", "lost")
	for _, w := range configs(f, fleetName) {
		n := get(w, "collectors")
		sum := stat(f, fleetName, "events/s", "group", w)
		if sum.N == 0 {
			continue
		}
		t.add(n,
			count(median(f, fleetName, "offered-events/s", "group", w)),
			count(median(f, fleetName, "acked-events/s", "group", w)),
			withCI(sum, count),
			seconds(median(f, fleetName, "p50-sec/event", "group", w)),
			seconds(median(f, fleetName, "p99-sec/event", "group", w)),
			count(median(f, fleetName, "mean-backlog-events", "group", w)),
			quarters(f, w),
			count(median(f, fleetName, "peak-backlog-events", "group", w)),
			seconds(median(f, fleetName, "drain-sec", "group", w)),
			count(sumOf(f.Sample(fleetName, "refused-requests", withMode(w, "group")...))),
			count(sumOf(f.Sample(fleetName, "duplicates", withMode(w, "group")...))),
			count(sumOf(f.Sample(fleetName, "lost-events", withMode(w, "group")...))))
	}
	return t.String()
}

// quarters is the median backlog per collector in each quarter of the
// window, "q1 / q2 / q3 / q4": the backlog over time in one cell.
func quarters(f *record.File, w []record.KV) string {
	var qs []string
	for q := 1; q <= 4; q++ {
		qs = append(qs, count(median(f, fleetName, fmt.Sprintf("backlog-q%d-events", q), "group", w)))
	}
	return strings.Join(qs, " / ")
}

func sumOf(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

// fleetPlot: events/s into the stream against fleet size, beside what was
// offered; p99 latency on the figure's second line would need a second axis,
// so it stays in the table.
func (s *section) fleetPlot() (*plot.Plot, error) {
	f := s.file("fleet")
	if f == nil {
		return nil, nil
	}
	p := newPlot("Fleet: N collectors into one JetStream stream", "collectors", "events/s into the stream")
	var got, offered series
	for _, w := range configs(f, fleetName) {
		x := atof(get(w, "collectors"))
		got.add(x, stat(f, fleetName, "events/s", "group", w), 1)
		offered.add(x, stat(f, fleetName, "offered-events/s", "group", w), 1)
	}
	sortSeries(&got)
	sortSeries(&offered)
	if err := addLine(p, &offered, "offered", color.Gray{Y: 140}, true); err != nil {
		return nil, err
	}
	if err := addLine(p, &got, "stored in the stream (median, 95% CI)", colorOf("group"), false); err != nil {
		return nil, err
	}
	p.X.Min, p.Y.Min = 0, 0
	return p, nil
}

// sortSeries orders a series by x, so its line does not double back.
func sortSeries(s *series) {
	idx := make([]int, len(s.XYs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case s.XYs[a].X < s.XYs[b].X:
			return -1
		case s.XYs[a].X > s.XYs[b].X:
			return 1
		}
		return 0
	})
	xys, errs := slices.Clone(s.XYs), slices.Clone(s.YErrors)
	for i, j := range idx {
		s.XYs[i], s.YErrors[i] = xys[j], errs[j]
	}
}

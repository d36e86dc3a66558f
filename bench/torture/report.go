package torture

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	rg "edgecollector/bench/reportgen"
)

// What the reliability experiments add to the report. Their figures are
// counts summed over repetitions and worst cases, not medians with
// intervals: one lost event is a failure however rare.

// tortureReport is the torture experiment's part of the report.
var tortureReport = rg.Part{
	Doc: "**torture**: crash torture; the real binary under load is SIGKILLed again and again (some kills aimed between the uploader's ship and mark), restarted on the same file, then drained and held to a ledger of every answer and every delivery.",
	Tables: []rg.Table{{
		Title: "Reliability: crash torture",
		Intro: "The promise: every event acknowledged with a 200 is in the database with the bytes sent and is delivered at least once with the same bytes; a request is stored whole or not at all; ids are never reused, not even across a crash; the file each kill leaves passes SQLite's quick_check. *Lost* must be 0 (anything else fails the run). Duplicates are the price of at-least-once: a batch delivered but not yet marked when the kill landed is shipped again. *Unanswered* requests were cut off by a kill: stored whole or not at all. Ready is restart exec to `/healthz` 200; recovered, to the first acknowledged event (medians over repetitions of each one's median / the worst). Counts are totals over repetitions.",
		Bench: "Torture", Rows: rg.ByMode, Need: "kills",
		Columns: []rg.Column{
			rg.ModeCol("<mode"),
			{Head: "repetitions", Cell: func(r rg.Row) string { return fmt.Sprint(len(r.Sample("kills"))) }},
			rg.Total("kills", "kills", rg.Count), rg.Total("in upload window", "kills-in-upload", rg.Count),
			rg.Total("acknowledged events", "acked-events", rg.Count), rg.Total("lost", "lost-events", rg.Lost),
			rg.Total("duplicates delivered", "duplicate-deliveries", rg.Count), rg.Total("unanswered requests", "unanswered-requests", rg.Count),
			medianOverWorst("ready p50 / max", "ready-p50-sec", "ready-max-sec"),
			medianOverWorst("recovered p50 / max", "recovery-p50-sec", "recovery-max-sec"),
		},
		Figure: "torture-recovery",
	}},
	Figures: []rg.Figure{{
		Name:    "torture-recovery",
		Caption: "Time from restart exec to the first acknowledged event after a SIGKILL, per mode (bars: median over repetitions of each one's median; triangles: the worst)",
		Plot:    torturePlot,
	}},
	Findings: tortureFindings,
}

// medianOverWorst shows "median / worst" of two time units.
func medianOverWorst(head, median, worst string) rg.Column {
	return rg.Column{Head: head, Cell: func(r rg.Row) string {
		return rg.Seconds(r.Median(median)) + " / " + rg.Seconds(r.Worst(worst))
	}}
}

// torturePlot shows the time to recover after a kill, per mode: the
// median over repetitions of each one's median, and the worst.
func torturePlot(s *rg.Section) (*plot.Plot, error) {
	f := s.Results("torture")
	if f == nil {
		return nil, nil
	}
	p := rg.NewPlot("Recovery after SIGKILL: restart exec to first acknowledged event", "", "seconds")
	p.Legend.Left = false
	modes := f.Distinct("Torture", "mode")
	var ticks plot.ConstantTicks
	top := 0.0
	for i, m := range modes {
		p50, mx := f.Median("Torture", "recovery-p50-sec", m, nil), f.Worst("Torture", "recovery-max-sec", m, nil)
		if math.IsNaN(p50) {
			continue
		}
		b, err := plotter.NewBarChart(plotter.Values{p50}, vg.Points(60))
		if err != nil {
			return nil, err
		}
		b.XMin = float64(i)
		b.Color = rg.ColorOf(m)
		b.LineStyle.Width = 0
		w, err := plotter.NewScatter(plotter.XYs{{X: float64(i), Y: mx}})
		if err != nil {
			return nil, err
		}
		w.GlyphStyle.Shape = draw.PyramidGlyph{}
		w.GlyphStyle.Radius = vg.Points(4)
		w.GlyphStyle.Color = rg.ColorOf(m)
		p.Add(b, w)
		if i == 0 {
			p.Legend.Add("worst", w)
		}
		top = max(top, mx, p50)
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: m})
	}
	p.X.Tick.Marker = ticks
	p.X.Min, p.X.Max = -0.75, float64(len(modes))-0.25
	p.Y.Min = 0
	if top > 0 {
		p.Y.Max = top * 1.15 // room for the worst-case marks
	}
	return p, nil
}

func tortureFindings(s *rg.Section) []string {
	f := s.Results("torture")
	if f == nil {
		return nil
	}
	var kills, acked, lost, dups float64
	var modes []string
	recovered := 0.0
	for _, m := range f.Distinct("Torture", "mode") {
		if math.IsNaN(f.Total("Torture", "kills", m, nil)) {
			continue
		}
		modes = append(modes, m)
		kills += f.Total("Torture", "kills", m, nil)
		acked += f.Total("Torture", "acked-events", m, nil)
		lost += f.Total("Torture", "lost-events", m, nil)
		dups += f.Total("Torture", "duplicate-deliveries", m, nil)
		recovered = max(recovered, f.Worst("Torture", "recovery-max-sec", m, nil))
	}
	if len(modes) == 0 {
		return nil
	}
	head := "**Crash torture: nothing acknowledged was lost.**"
	if lost > 0 {
		head = fmt.Sprintf("**Crash torture: %s acknowledged events were LOST.**", rg.Count(lost))
	}
	return []string{fmt.Sprintf("%s %s SIGKILLs under load across %s, %s events acknowledged: every one stored with its bytes and delivered; %s deliveries were duplicates (at-least-once: batches shipped but not yet marked at the kill). The slowest restart took %s from exec to the first acknowledged event.",
		head, rg.Count(kills), strings.Join(modes, ", "), rg.Count(acked), rg.Count(dups), rg.Seconds(recovered))}
}

// soakReport is the soak experiment's part of the report.
var soakReport = rg.Part{
	Doc: "**soak**: a long sink outage (connection refused, 500s, timeouts, slow answers) under load, until the backlog cap pushes producers back; then recovery and drain, and the same ledger.",
	Tables: []rg.Table{{
		Title: "Reliability: sink outage soak",
		Intro: "The promise: while the sink is down the backlog stops at its cap, producers get 503 with Retry-After (never a lost or half-stored request), `/healthz` answers 503 naming the uploader's error and the full buffer, memory stays bounded; once the sink recovers the backlog drains to zero and everything acknowledged is delivered. Drain time runs from the sink's recovery to an empty backlog; peak RSS is the collector's VmHWM. Duplicates here come from answers that arrived after the collector's timeout (a slow sink on a loaded machine, or a connection cut mid-answer): the batch was taken, the collector could not know, and shipped it again.",
		Bench: "Soak", Rows: rg.ByMode, Need: "peak-backlog",
		Columns: []rg.Column{
			rg.ModeCol("<mode"), rg.Worst("backlog cap", "backlog-cap", rg.Count), rg.Worst("peak backlog", "peak-backlog", rg.Count),
			rg.Total("503s", "rejected-503", rg.Count), rg.Total("200s", "acked-requests", rg.Count),
			rg.Total("acknowledged events", "acked-events", rg.Count), rg.Total("lost", "lost-events", rg.Lost),
			rg.Total("duplicates delivered", "duplicate-deliveries", rg.Count),
			rg.Worst("drain time", "drain-sec", rg.Seconds), rg.Worst("peak RSS", "peak-rss-bytes", rg.MiB),
			rg.Total("sink requests", "sink-requests", rg.Count),
		},
	}},
	Findings: soakFindings,
}

func soakFindings(s *rg.Section) []string {
	f := s.Results("soak")
	if f == nil {
		return nil
	}
	var rejected, lost, drain, rss, peak, limit float64
	n := 0
	for _, m := range f.Distinct("Soak", "mode") {
		if math.IsNaN(f.Total("Soak", "rejected-503", m, nil)) {
			continue
		}
		n++
		rejected += f.Total("Soak", "rejected-503", m, nil)
		lost += f.Total("Soak", "lost-events", m, nil)
		drain = max(drain, f.Worst("Soak", "drain-sec", m, nil))
		rss = max(rss, f.Worst("Soak", "peak-rss-bytes", m, nil))
		peak = max(peak, f.Worst("Soak", "peak-backlog", m, nil))
		limit = max(limit, f.Worst("Soak", "backlog-cap", m, nil))
	}
	if n == 0 {
		return nil
	}
	return []string{fmt.Sprintf("**Sink outage soak:** with the sink down, the backlog stopped at its cap (peak %s against %s; the cap is checked before a request is read, so requests in flight can pass it together), producers got %s 503s with Retry-After, memory peaked at %s; once the sink was back every backlog drained within %s, and %s acknowledged events were lost.",
		rg.Count(peak), rg.Count(limit), rg.Count(rejected), rg.MiB(rss), rg.Seconds(drain), rg.Count(lost))}
}

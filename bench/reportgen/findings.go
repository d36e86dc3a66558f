package reportgen

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"edgecollector/bench/record"
	"edgecollector/bench/stats"
)

// The Finding's sentences for the experiments beyond the write modes:
// reliability, the fleet, the peer. Each says nothing when its experiment
// has no results on the machine.

func (s *section) reliabilityFindings() []string {
	var out []string
	if f := s.file("torture"); f != nil {
		var kills, acked, lost, dups float64
		var modes []string
		recovered := 0.0
		for _, m := range f.Distinct("Torture", "mode") {
			if math.IsNaN(total(f, "Torture", "kills", m)) {
				continue
			}
			modes = append(modes, m)
			kills += total(f, "Torture", "kills", m)
			acked += total(f, "Torture", "acked-events", m)
			lost += total(f, "Torture", "lost-events", m)
			dups += total(f, "Torture", "duplicate-deliveries", m)
			recovered = max(recovered, worst(f, "Torture", "recovery-max-sec", m))
		}
		if len(modes) > 0 {
			head := "**Crash torture: nothing acknowledged was lost.**"
			if lost > 0 {
				head = fmt.Sprintf("**Crash torture: %s acknowledged events were LOST.**", count(lost))
			}
			out = append(out, fmt.Sprintf("%s %s SIGKILLs under load across %s, %s events acknowledged: every one stored with its bytes and delivered; %s deliveries were duplicates (at-least-once: batches shipped but not yet marked at the kill). The slowest restart took %s from exec to the first acknowledged event.",
				head, count(kills), strings.Join(modes, ", "), count(acked), count(dups), seconds(recovered)))
		}
	}
	if f := s.file("soak"); f != nil {
		var rejected, lost, drain, rss, peak, cap float64
		n := 0
		for _, m := range f.Distinct("Soak", "mode") {
			if math.IsNaN(total(f, "Soak", "rejected-503", m)) {
				continue
			}
			n++
			rejected += total(f, "Soak", "rejected-503", m)
			lost += total(f, "Soak", "lost-events", m)
			drain = max(drain, worst(f, "Soak", "drain-sec", m))
			rss = max(rss, worst(f, "Soak", "peak-rss-bytes", m))
			peak = max(peak, worst(f, "Soak", "peak-backlog", m))
			cap = max(cap, worst(f, "Soak", "backlog-cap", m))
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("**Sink outage soak:** with the sink down, the backlog stopped at its cap (peak %s against %s; the cap is checked before a request is read, so requests in flight can pass it together), producers got %s 503s with Retry-After, memory peaked at %s; once the sink was back every backlog drained within %s, and %s acknowledged events were lost.",
				count(peak), count(cap), count(rejected), mib(rss), seconds(drain), count(lost)))
		}
	}
	return out
}

func (s *section) fleetFindings() []string {
	f := s.file("fleet")
	if f == nil {
		return nil
	}
	cfgs := configs(f, fleetName)
	if len(cfgs) == 0 {
		return nil
	}
	size := func(w []record.KV) float64 { return atof(get(w, "collectors")) }
	into := func(w []record.KV) float64 { return median(f, fleetName, "events/s", "group", w) }
	largest := slices.MaxFunc(cfgs, func(a, b []record.KV) int { return cmp.Compare(size(a), size(b)) })
	best := slices.MaxFunc(cfgs, func(a, b []record.KV) int { return cmp.Compare(into(a), into(b)) })
	if math.IsNaN(into(largest)) {
		return nil
	}
	var dups, lost float64
	for _, c := range cfgs {
		dups += sumOf(f.Sample(fleetName, "duplicates", withMode(c, "group")...))
		lost += sumOf(f.Sample(fleetName, "lost-events", withMode(c, "group")...))
	}
	line := fmt.Sprintf("**Fleet:** %s collector processes offered %s events/s to one JetStream stream, which took %s/s (p99 %s from a producer's 200 to the stream)",
		get(largest, "collectors"), count(median(f, fleetName, "offered-events/s", "group", largest)), count(into(largest)),
		seconds(median(f, fleetName, "p99-sec/event", "group", largest)))
	q1 := median(f, fleetName, "backlog-q1-events", "group", largest)
	q4 := median(f, fleetName, "backlog-q4-events", "group", largest)
	if q4 > 1.5*q1 {
		line += fmt.Sprintf("; the fleet fell behind, each collector's backlog growing from %s to %s events over the window", count(q1), count(q4))
	}
	if get(best, "collectors") != get(largest, "collectors") {
		line += fmt.Sprintf(". The most the stream took was %s/s, with %s collectors: on this machine the fleet, its producers and the server share the same cores", count(into(best)), get(best, "collectors"))
	}
	line += fmt.Sprintf(". Across every fleet size, %s duplicates and %s lost events in the stream.", count(dups), count(lost))
	return []string{line}
}

func (s *section) peerFindings() []string {
	f := s.file("peer")
	if f == nil {
		return nil
	}
	var out []string
	for _, w := range configs(f, "PeerLoad") {
		ours := f.Sample("PeerLoad", "accepted-events/s", withMode(w, "ours-group")...)
		fsync := f.Sample("PeerLoad", "accepted-events/s", withMode(w, "otel-fsync")...)
		nofsync := f.Sample("PeerLoad", "accepted-events/s", withMode(w, "otel-nofsync")...)
		if len(ours) == 0 || len(fsync) == 0 {
			continue
		}
		r := stats.Compare(ours, fsync)
		line := fmt.Sprintf("**Beside the OpenTelemetry Collector** (%s event(s) per request): with both fsync'ing before the 200, ours (group) accepted %s the events/s of its persistent queue (%s against %s; 95%% CI %s) and delivered %s/s during the load against its %s/s.",
			get(w, "batch"), ratio(r.Center), count(stats.Summarize(ours).Center), count(stats.Summarize(fsync).Center), ci(r.Summary, ratio),
			count(median(f, "PeerLoad", "delivered-events/s", "ours-group", w)), count(median(f, "PeerLoad", "delivered-events/s", "otel-fsync", w)))
		if len(nofsync) > 0 {
			rn := stats.Compare(ours, nofsync)
			line += fmt.Sprintf(" With fsync off (a 200 then survives a process crash, not a power cut) it accepted %s/s: ours did %s of that.",
				count(stats.Summarize(nofsync).Center), ratio(rn.Center))
		}
		out = append(out, line)
	}
	return out
}

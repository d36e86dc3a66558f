package torture

import (
	"fmt"
	"math"
	"strings"

	"edgecollector/bench/peer"
	"edgecollector/bench/record"
	rg "edgecollector/bench/reportgen"
)

// The powercut experiment's part of the report: like the torture's,
// totals over repetitions, not medians.

const powercutIntro = "Each cut is a power cut, not a process crash: SIGKILL, then the filesystem under the buffer (faultfs, a FUSE filesystem with its own page cache) " +
	"forgets every write not fsync'd and undoes every create, unlink and rename whose directory was not fsync'd after it (the POSIX worst case), " +
	"optionally keeping a random share of the 512-byte sectors written since the last fsync (torn writes); then restart on the same file. " +
	"The promise: every event acknowledged with a 200 is in the database with the bytes sent and delivered at least once with the same bytes; " +
	"a request is stored whole or not at all; an id is never given to two events, not even across a cut that rolls the id counter back " +
	"(each delivered `(collector_id, id)` maps to one payload, ever); the file each cut leaves passes SQLite's `integrity_check`. " +
	"*Lost* must be 0 for every mode (anything else fails the run). The **negative control** is the same collector built with " +
	"`-tags harness_syncoff` (synchronous=OFF, not a production option), installed first (started, stopped, its files fsync'd): it must lose acknowledged events in the same run, or the experiment fails, " +
	"because a cut that forgets nothing proves nothing. *Pages forgotten* counts the 4 KiB pages each cut dropped (SQLite's `-shm` index alone is 8); " +
	"counts are totals over repetitions."

const powercutPeerIntro = "The same cut under our collector and the OpenTelemetry Collector (persistent queue on `file_storage`), on their own mount: " +
	"each system is installed first (started and stopped, then the harness fsyncs every file and directory of its cell, as a sync after an installation would), " +
	"then takes events while the uplink is down (the receiver answers 503), so everything acknowledged waits in its queue when the power is cut; " +
	"then restart and drain. *Lost* is what was acknowledged before the cut and never arrived; for ours it must be 0, for the peer it is the finding: " +
	"what its 200 is worth when the power goes. *Restarts failed* counts cuts after which the system would not start on what was left " +
	"(its queue file corrupt, say; the process exits at every start): everything that waited in its queue is lost."

var powercutReport = rg.Part{
	Doc: "**powercut**: power cuts, not process crashes: the real binary's buffer on faultfs, a FUSE filesystem with its own page cache that forgets everything not fsync'd at a cut (and undoes creates, unlinks and renames whose directory was not fsync'd); SIGKILL, cut, restart, again and again under load, then the torture's ledger; a negative control with durability off that must lose; and the OpenTelemetry Collector (fsync on and off) under the same cut.",
	Tables: []rg.Table{{
		Title: "Reliability: power cuts", Intro: powercutIntro,
		Bench: "Powercut", Rows: rg.ByMode, Need: "cuts",
		Columns: []rg.Column{
			{Head: "<mode", Cell: func(r rg.Row) string {
				if r.Mode == ControlMode {
					return "group, durability off (negative control)"
				}
				return r.Mode
			}},
			{Head: "repetitions", Cell: func(r rg.Row) string { return fmt.Sprint(len(r.Sample("cuts"))) }},
			rg.Total("cuts", "cuts", rg.Count), rg.Total("in upload window", "cuts-in-upload", rg.Count),
			rg.Total("acknowledged events", "acked-events", rg.Count),
			{Head: "lost", Cell: func(r rg.Row) string {
				lost := r.Total("lost-events")
				switch {
				case r.Mode != ControlMode:
					return rg.Lost(lost)
				case lost == 0:
					return "**0 (FAILED: the control lost nothing)**"
				}
				return rg.Count(lost) + " (must lose)"
			}},
			{Head: "ids given twice", Cell: func(r rg.Row) string {
				if r.Mode == ControlMode {
					return rg.Count(r.Total("reused-ids"))
				}
				return rg.Lost(r.Total("reused-ids"))
			}},
			rg.Total("integrity failures", "integrity-failures", rg.Count),
			rg.Total("duplicates delivered", "duplicate-deliveries", rg.Count),
			rg.Total("pages forgotten", "forgotten-pages", rg.Count),
			rg.Total("torn sectors kept", "torn-sectors", rg.Count),
			medianOverWorst("recovered p50 / max", "recovery-p50-sec", "recovery-max-sec"),
		},
	}, {
		Title: "Power cuts beside the OpenTelemetry Collector", Intro: powercutPeerIntro,
		Bench: "PowercutPeer", Rows: rg.ByMode, Need: "acked-events",
		Columns: []rg.Column{
			rg.ModeCol("<system"),
			{Head: "<a 200 means", Cell: func(r rg.Row) string { return peer.Promise(r.Mode) }},
			{Head: "cuts", Cell: func(r rg.Row) string { return fmt.Sprint(len(r.Sample("acked-events"))) }},
			rg.Total("acknowledged", "acked-events", rg.Count),
			rg.Total("waiting at the cut", "backlog-events", rg.Count),
			{Head: "lost (all cuts)", Cell: func(r rg.Row) string {
				if strings.HasPrefix(r.Mode, "ours") {
					return rg.Lost(r.Total("lost-events"))
				}
				return rg.Count(r.Total("lost-events"))
			}},
			rg.Total("restarts failed", "restart-failed", rg.Count),
			rg.Total("duplicates", "dup-events", rg.Count),
		},
	}},
	Findings: powercutFindings,
}

func powercutFindings(s *rg.Section) []string {
	f := s.Results("powercut")
	if f == nil {
		return nil
	}
	total := func(bench, unit, mode string) float64 { return f.Total(bench, unit, mode, nil) }
	var cuts, acked, lost, reused, integrity float64
	var modes []string
	for _, m := range f.Distinct("Powercut", "mode") {
		if m == ControlMode || math.IsNaN(total("Powercut", "cuts", m)) {
			continue
		}
		modes = append(modes, m)
		cuts += total("Powercut", "cuts", m)
		acked += total("Powercut", "acked-events", m)
		lost += total("Powercut", "lost-events", m)
		reused += total("Powercut", "reused-ids", m)
		integrity += total("Powercut", "integrity-failures", m)
	}
	if len(modes) == 0 {
		return nil
	}
	head := "**Power cuts: nothing acknowledged was lost.**"
	if lost > 0 {
		head = fmt.Sprintf("**Power cuts: %s acknowledged events were LOST.**", rg.Count(lost))
	}
	line := fmt.Sprintf("%s %s cuts (SIGKILL, then the filesystem forgets everything not fsync'd) across %s: %s events acknowledged, %s lost, %s ids given to two events, %s files failing SQLite's integrity_check.",
		head, rg.Count(cuts), strings.Join(modes, ", "), rg.Count(acked), rg.Count(lost), rg.Count(reused), rg.Count(integrity))
	if c := total("Powercut", "cuts", ControlMode); !math.IsNaN(c) {
		if cl := total("Powercut", "lost-events", ControlMode); cl > 0 {
			line += fmt.Sprintf(" The negative control (the same collector with synchronous=OFF) lost %s of %s acknowledged events over %s cuts and gave %s ids to two events: the cut has teeth.",
				rg.Count(cl), rg.Count(total("Powercut", "acked-events", ControlMode)), rg.Count(c), rg.Count(total("Powercut", "reused-ids", ControlMode)))
		} else {
			line += fmt.Sprintf(" **The negative control (synchronous=OFF) lost nothing over %s cuts: the experiment proves nothing.**", rg.Count(c))
		}
	}
	return []string{line + peerCutSentence(f)}
}

// peerCutSentence is what the same cut cost the OpenTelemetry Collector.
func peerCutSentence(f *rg.Results) string {
	var parts []string
	for _, m := range []string{string(peer.OtelFsync), string(peer.OtelNoFsync)} {
		a := f.Total("PowercutPeer", "acked-events", m, nil)
		if math.IsNaN(a) {
			continue
		}
		n := len(f.Sample("PowercutPeer", "acked-events", record.KV{Key: "mode", Value: m}))
		setting := "true"
		if m == string(peer.OtelNoFsync) {
			setting = "false"
		}
		cuts := fmt.Sprintf("%d cuts", n)
		if n == 1 {
			cuts = "1 cut"
		}
		if r := f.Total("PowercutPeer", "restart-failed", m, nil); r > 0 {
			cuts += fmt.Sprintf(", after %s of which it could not restart", rg.Count(r))
		}
		parts = append(parts, fmt.Sprintf("%s of %s with `fsync: %s` (%s)", rg.Count(f.Total("PowercutPeer", "lost-events", m, nil)), rg.Count(a), setting, cuts))
	}
	if len(parts) == 0 {
		return ""
	}
	line := " Under the same cut, with the uplink down so everything acknowledged waited in its queue, the OpenTelemetry Collector lost " + strings.Join(parts, ", and ") + "."
	if a := f.Total("PowercutPeer", "acked-events", string(peer.OursGroup), nil); !math.IsNaN(a) {
		line += fmt.Sprintf(" Ours (group) lost %s of %s there.", rg.Count(f.Total("PowercutPeer", "lost-events", string(peer.OursGroup), nil)), rg.Count(a))
	}
	return line
}

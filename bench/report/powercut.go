package report

import (
	"fmt"
	"math"
	"strings"

	"edgecollector/bench/results"
)

// The powercut experiment: the torture's kills, each followed by a power
// cut of the filesystem under the buffer (bench/faultfs), our modes, the
// negative control, and the OpenTelemetry Collector under the same cut.
// Like the reliability tables: totals over repetitions, not medians.

// controlMode is the negative control's mode label (torture.ControlMode).
const controlMode = "group-syncoff"

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
	"(its queue file corrupt, say; the process exits at every start): " +
	"everything that waited in its queue is lost."

func (s *section) powercutTable() string {
	f := s.file("powercut")
	if f == nil {
		return ""
	}
	t := newTable("<mode", "repetitions", "cuts", "in upload window", "acknowledged events", "lost", "ids given twice", "integrity failures", "duplicates delivered", "pages forgotten", "torn sectors kept", "recovered p50 / max")
	for _, m := range f.Distinct("Powercut", "mode") {
		reps := len(f.Sample("Powercut", "cuts", results.KV{Key: "mode", Value: m}))
		if reps == 0 {
			continue
		}
		lost := total(f, "Powercut", "lost-events", m)
		label, lostC, reused := m, lostCell(lost), count(total(f, "Powercut", "reused-ids", m))
		if m == controlMode {
			label = "group, durability off (negative control)"
			lostC = count(lost) + " (must lose)"
			if lost == 0 {
				lostC = "**0 (FAILED: the control lost nothing)**"
			}
		} else if x := total(f, "Powercut", "reused-ids", m); x > 0 {
			reused = "**" + count(x) + " (FAILED)**"
		}
		t.add(label, fmt.Sprint(reps), count(total(f, "Powercut", "cuts", m)), count(total(f, "Powercut", "cuts-in-upload", m)),
			count(total(f, "Powercut", "acked-events", m)), lostC, reused,
			count(total(f, "Powercut", "integrity-failures", m)),
			count(total(f, "Powercut", "duplicate-deliveries", m)),
			count(total(f, "Powercut", "forgotten-pages", m)), count(total(f, "Powercut", "torn-sectors", m)),
			seconds(middle(f, "Powercut", "recovery-p50-sec", m))+" / "+seconds(worst(f, "Powercut", "recovery-max-sec", m)))
	}
	return t.String()
}

func (s *section) powercutPeerTable() string {
	f := s.file("powercut")
	if f == nil {
		return ""
	}
	t := newTable("<system", "<a 200 means", "cuts", "acknowledged", "waiting at the cut", "lost (all cuts)", "restarts failed", "duplicates")
	for _, m := range f.Distinct("PowercutPeer", "mode") {
		cuts := len(f.Sample("PowercutPeer", "acked-events", results.KV{Key: "mode", Value: m}))
		if cuts == 0 {
			continue
		}
		lost := count(total(f, "PowercutPeer", "lost-events", m))
		if strings.HasPrefix(m, "ours") {
			lost = lostCell(total(f, "PowercutPeer", "lost-events", m))
		}
		t.add(m, peerPromise[m], fmt.Sprint(cuts), count(total(f, "PowercutPeer", "acked-events", m)),
			count(total(f, "PowercutPeer", "backlog-events", m)), lost,
			count(total(f, "PowercutPeer", "restart-failed", m)), count(total(f, "PowercutPeer", "dup-events", m)))
	}
	return t.String()
}

func (s *section) powercutFindings() []string {
	f := s.file("powercut")
	if f == nil {
		return nil
	}
	var cuts, acked, lost, reused, integrity float64
	var modes []string
	for _, m := range f.Distinct("Powercut", "mode") {
		if m == controlMode || math.IsNaN(total(f, "Powercut", "cuts", m)) {
			continue
		}
		modes = append(modes, m)
		cuts += total(f, "Powercut", "cuts", m)
		acked += total(f, "Powercut", "acked-events", m)
		lost += total(f, "Powercut", "lost-events", m)
		reused += total(f, "Powercut", "reused-ids", m)
		integrity += total(f, "Powercut", "integrity-failures", m)
	}
	if len(modes) == 0 {
		return nil
	}
	head := "**Power cuts: nothing acknowledged was lost.**"
	if lost > 0 {
		head = fmt.Sprintf("**Power cuts: %s acknowledged events were LOST.**", count(lost))
	}
	line := fmt.Sprintf("%s %s cuts (SIGKILL, then the filesystem forgets everything not fsync'd) across %s: %s events acknowledged, %s lost, %s ids given to two events, %s files failing SQLite's integrity_check.",
		head, count(cuts), strings.Join(modes, ", "), count(acked), count(lost), count(reused), count(integrity))
	if c := total(f, "Powercut", "cuts", controlMode); !math.IsNaN(c) {
		cl := total(f, "Powercut", "lost-events", controlMode)
		if cl > 0 {
			line += fmt.Sprintf(" The negative control (the same collector with synchronous=OFF) lost %s of %s acknowledged events over %s cuts and gave %s ids to two events: the cut has teeth.",
				count(cl), count(total(f, "Powercut", "acked-events", controlMode)), count(c), count(total(f, "Powercut", "reused-ids", controlMode)))
		} else {
			line += fmt.Sprintf(" **The negative control (synchronous=OFF) lost nothing over %s cuts: the experiment proves nothing.**", count(c))
		}
	}
	var peer []string
	for _, m := range []string{"otel-fsync", "otel-nofsync"} {
		a := total(f, "PowercutPeer", "acked-events", m)
		if math.IsNaN(a) {
			continue
		}
		n := len(f.Sample("PowercutPeer", "acked-events", results.KV{Key: "mode", Value: m}))
		setting := "true"
		if m == "otel-nofsync" {
			setting = "false"
		}
		cuts := fmt.Sprintf("%d cuts", n)
		if n == 1 {
			cuts = "1 cut"
		}
		if r := total(f, "PowercutPeer", "restart-failed", m); r > 0 {
			cuts += fmt.Sprintf(", after %s of which it could not restart", count(r))
		}
		peer = append(peer, fmt.Sprintf("%s of %s with `fsync: %s` (%s)", count(total(f, "PowercutPeer", "lost-events", m)), count(a), setting, cuts))
	}
	if len(peer) > 0 {
		line += " Under the same cut, with the uplink down so everything acknowledged waited in its queue, the OpenTelemetry Collector lost " + strings.Join(peer, ", and ") + "."
		if a := total(f, "PowercutPeer", "acked-events", "ours-group"); !math.IsNaN(a) {
			line += fmt.Sprintf(" Ours (group) lost %s of %s there.", count(total(f, "PowercutPeer", "lost-events", "ours-group")), count(a))
		}
	}
	return []string{line}
}

package report

import "gonum.org/v1/plot"

// The report's registry: what each experiment contributes to a machine's
// section. An experiment adds its entries here, one line each, and keeps
// its tables and plots in its own file.

// experimentDocs say what each experiment measures, for "What was measured";
// the run's plan (cells, durations) follows each.
var experimentDocs = []struct{ exp, what string }{
	{"throughput", "**throughput**: the store in-process; durable single-event inserts by 1 to 64 producers; events/s, p50/p99 per insert, and fairness between producers (Jain's index, 1 = perfectly fair; and the least over the most served producer)."},
	{"http", "**http**: the real collector binary driven over loopback by vegeta (as a library): the most each mode sustains with single-event and 100-event requests, and an open-loop sweep of offered rates past saturation with achieved rate, share served, and latency percentiles."},
	{"contention", "**contention**: insert latency (p50/p90/p99/max) while a background writer loops the uploader's wide checkpoint transaction."},
	{"disjoint", "**disjoint**: writers that each own a row range, 20-UPDATE transactions; updates/s and conflicts."},
	{"torture", "**torture**: crash torture; the real binary under load is SIGKILLed again and again (some kills aimed between the uploader's ship and mark), restarted on the same file, then drained and held to a ledger of every answer and every delivery."},
	{"soak", "**soak**: a long sink outage (connection refused, 500s, timeouts, slow answers) under load, until the backlog cap pushes producers back; then recovery and drain, and the same ledger."},
	{"fuzz", "**fuzz**: `go test -fuzz` on the event decoder and on the real handler over a real store; the figures Go prints, and any crasher."},
	{"fleet", "**fleet**: N collector processes (the binary, `-sink nats`), each under its own open-loop producer, feeding one JetStream stream on a server embedded in the harness: events/s stored in the stream, latency from each 200 to the stream, backlogs, and effectively-once (duplicates and lost acknowledged events in the stream, both must be 0)."},
	{"powercut", "**powercut**: power cuts, not process crashes: the real binary's buffer on faultfs, a FUSE filesystem with its own page cache that forgets everything not fsync'd at a cut (and undoes creates, unlinks and renames whose directory was not fsync'd); SIGKILL, cut, restart, again and again under load, then the torture's ledger; a negative control with durability off that must lose; and the OpenTelemetry Collector (fsync on and off) under the same cut."},
	{"storage", "**storage**: the write modes (in-process and over HTTP) and the OpenTelemetry Collector at the fsync latency of each storage class (pass-through, NVMe, SATA SSD, eMMC, SD card), emulated on a faultfs mount: durable events/s, p99, ratios to serialized."},
	{"peer", "**peer**: our collector (group, serialized) beside the OpenTelemetry Collector with a persistent queue on `file_storage` (fsync on and off), same events, same load, same receiver; accepted and delivered events/s, drain, acknowledgement latency, peak RSS, CPU per 1,000 events, and a kill -9 check."},
}

// part is one table of a machine's section, with the figure shown under it.
type part struct {
	exp   string // the experiment whose results the table reads
	title string
	intro string
	table func(*section) string // "" when there are no such results
	fig   string                // a figureSpecs name, or ""
}

var parts = []part{
	{"throughput", "Throughput (in-process, durable inserts)", "Events/s with the median's 95% CI; latency and fairness columns are medians over repetitions.", (*section).throughputTable, "throughput"},
	{"http", "HTTP: the most each mode sustains", "The collector binary, closed loop (each connection sends its next request when the last is answered).", (*section).httpMaxTable, ""},
	{"http", "HTTP: latency against offered load", "Open loop, single-event requests. *Served* is the share of the requests due in the window that got a 200; latency counts from when a request was due.", (*section).httpSweepTable, "http-latency"},
	{"contention", "Contention: inserts beside the looping checkpoint", "Latency columns are medians over repetitions; the ratio compares p99 (lower is better).", (*section).contentionTable, "contention"},
	{"disjoint", "Disjoint-row writers", "", (*section).disjointTable, "disjoint"},
	{"torture", "Reliability: crash torture", "The promise: every event acknowledged with a 200 is in the database with the bytes sent and is delivered at least once with the same bytes; a request is stored whole or not at all; ids are never reused, not even across a crash; the file each kill leaves passes SQLite's quick_check. *Lost* must be 0 (anything else fails the run). Duplicates are the price of at-least-once: a batch delivered but not yet marked when the kill landed is shipped again. *Unanswered* requests were cut off by a kill: stored whole or not at all. Ready is restart exec to `/healthz` 200; recovered, to the first acknowledged event (medians over repetitions of each one's median / the worst). Counts are totals over repetitions.", (*section).tortureTable, "torture-recovery"},
	{"soak", "Reliability: sink outage soak", "The promise: while the sink is down the backlog stops at its cap, producers get 503 with Retry-After (never a lost or half-stored request), `/healthz` answers 503 naming the uploader's error and the full buffer, memory stays bounded; once the sink recovers the backlog drains to zero and everything acknowledged is delivered. Drain time runs from the sink's recovery to an empty backlog; peak RSS is the collector's VmHWM. Duplicates here come from answers that arrived after the collector's timeout (a slow sink on a loaded machine, or a connection cut mid-answer): the batch was taken, the collector could not know, and shipped it again.", (*section).soakTable, ""},
	{"fuzz", "Reliability: fuzzing", "The promise: no input panics the decoder or the handler, every answer is a well-formed 200 or 4xx JSON error, a 200 stores exactly what it acknowledges and a 4xx stores nothing. Crashers must be 0. New interesting inputs are those that reached new code in this run (Go's fuzzing cache keeps earlier ones).", (*section).fuzzTable, ""},
	{"fleet", "Fleet: N collectors into one JetStream stream", "Each collector is offered the same load; medians over repetitions. *Acknowledged* is what the producers got 200s for (on a busy box they can fall short of the offer); *into the stream* is what the stream stored in the same window. Latency runs from the producer's 200 to the message's stored time in the stream (an event the uploader ships before its 200 reaches the producer counts 0). The backlog by quarter of the window shows whether it grows (a fleet that does not keep up) or holds. Refused, duplicates and lost are summed over all repetitions.", (*section).fleetTable, "fleet"},
	{"peer", "Beside the OpenTelemetry Collector (persistent queue)", peerIntro, (*section).peerTable, "peer"},
	{"peer", "Beside the OpenTelemetry Collector: kill -9 under load", peerKillIntro, (*section).peerKillTable, ""},
	{"powercut", "Reliability: power cuts", powercutIntro, (*section).powercutTable, ""},
	{"powercut", "Power cuts beside the OpenTelemetry Collector", powercutPeerIntro, (*section).powercutPeerTable, ""},
	{"storage", "Storage classes: the write modes at the cost of an fsync", storageIntro, (*section).storageTable, "storage"},
}

// figureSpec is one plot; make returns nil when there are no results for it.
type figureSpec struct {
	name, caption string
	make          func(*section) (*plot.Plot, error)
}

var figureSpecs = []figureSpec{
	{"throughput", "Durable events/s against producers, per mode (log-log; bars: 95% CI of the median; dashed: indexed)", (*section).throughputPlot},
	{"http-latency", "p99 latency against offered load over HTTP, single-event requests (log-log; dashed: p50; bars: 95% CI)", (*section).sweepPlot},
	{"contention", "Insert latency percentiles while the checkpoint loops (log scale; bars: 95% CI)", (*section).contentionPlot},
	{"disjoint", "Disjoint 20-update transactions: updates/s per mode (bars: 95% CI)", (*section).disjointPlot},
	{"torture-recovery", "Time from restart exec to the first acknowledged event after a SIGKILL, per mode (bars: median over repetitions of each one's median; triangles: the worst)", (*section).torturePlot},
	{"fleet", "Fleet: events/s stored in one JetStream stream against the number of collectors (bars: 95% CI; dashed: offered)", (*section).fleetPlot},
	{"storage", "Durable events/s against the fsync latency of each storage class, per mode (in-process solid, HTTP dashed; squares: the OpenTelemetry Collector with fsync: true; log scale; bars: 95% CI); all on one FUSE mount", (*section).storagePlot},
	{"peer", "Accepted events/s against the p99 of the acknowledgement, per system (log-log; circle: 1 event per request, triangle: 100; bars: 95% CI); up and left is better, read beside what each 200 promises", (*section).peerPlot},
}

// findingFuncs add sentences to the Finding, after the write-mode ones.
var findingFuncs = []func(*section) []string{
	(*section).reliabilityFindings,
	(*section).fleetFindings,
	(*section).peerFindings,
	(*section).powercutFindings,
	(*section).storageFindings,
}

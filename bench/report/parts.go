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
	{"peer", "Beside the OpenTelemetry Collector (persistent queue)", peerIntro, (*section).peerTable, "peer"},
	{"peer", "Beside the OpenTelemetry Collector: kill -9 under load", peerKillIntro, (*section).peerKillTable, ""},
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
	{"peer", "Accepted events/s against the p99 of the acknowledgement, per system (log-log; circle: 1 event per request, triangle: 100; bars: 95% CI); up and left is better, read beside what each 200 promises", (*section).peerPlot},
}

// findingFuncs add sentences to the Finding, after the write-mode ones.
var findingFuncs = []func(*section) []string{}

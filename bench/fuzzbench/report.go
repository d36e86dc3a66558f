package fuzzbench

import rg "edgecollector/bench/reportgen"

// report is the fuzz experiment's part of the report.
var report = rg.Part{
	Doc: "**fuzz**: `go test -fuzz` on the event decoder and on the real handler over a real store; the figures Go prints, and any crasher.",
	Tables: []rg.Table{{
		Title: "Reliability: fuzzing",
		Intro: "The promise: no input panics the decoder or the handler, every answer is a well-formed 200 or 4xx JSON error, a 200 stores exactly what it acknowledges and a 4xx stores nothing. Crashers must be 0. New interesting inputs are those that reached new code in this run (Go's fuzzing cache keeps earlier ones).",
		Bench: "Fuzz", Rows: rg.ByKey("target"),
		Columns: []rg.Column{
			rg.Key("<target", "target"), rg.Last("fuzzing time", "fuzz-sec", rg.Seconds), rg.Last("execs", "execs", rg.Count),
			rg.Last("execs/s", "execs/s", rg.Count), rg.Last("new interesting", "new-interesting", rg.Count),
			rg.Last("corpus", "corpus", rg.Count), rg.Last("crashers", "crashers", rg.Lost),
		},
	}},
}

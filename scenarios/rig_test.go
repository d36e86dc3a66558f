package scenarios

// The commands that stand on the rig (edgecollector/internal/rig): the
// recording receiver, the producers and the ledger.

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"edgecollector/internal/rig"
)

// receiver is a script's recording webhook endpoint and what it took.
type receiver struct {
	*rig.Receiver
	got rig.Deliveries
}

// receiver start|fail|stall|recover|wait|count NAME [ARG]
func cmdReceiver(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "receiver")
	const usage = "receiver start|fail|stall|recover|wait|count NAME [ARG]"
	verb, name := verbName(ts, usage, args)
	st := stateOf(ts)
	r := st.receivers[name]
	switch {
	case verb == "start" && r != nil:
		ts.Fatalf("receiver %s is already started", name)
	case verb == "start":
		r = &receiver{}
		var err error
		r.Receiver, err = rig.StartReceiver(&r.got)
		ts.Check(err)
		st.receivers[name] = r
		ts.Setenv(name+"_URL", r.URL)
		return
	case r == nil:
		ts.Fatalf("receiver: no receiver called %q (receiver start %s)", name, name)
	}
	switch verb {
	case "fail":
		status := http.StatusServiceUnavailable
		if len(args) > 2 {
			var err error
			if status, err = strconv.Atoi(args[2]); err != nil || status < 400 {
				ts.Fatalf("receiver fail: status %q: want an HTTP error status", args[2])
			}
		}
		ts.Check(r.Set(rig.Fail(status)))
	case "stall":
		ts.Check(r.Set(rig.Stall))
	case "recover":
		ts.Check(r.Set(rig.Take))
	case "wait":
		if len(args) != 3 {
			ts.Fatalf("usage: receiver wait NAME N")
		}
		n, err := strconv.ParseInt(args[2], 10, 64)
		ts.Check(err)
		if !waitFor(defaultWait, func() bool { return r.Taken() >= n }) {
			ts.Fatalf("receiver %s: took %d events in %s, want at least %d", name, r.Taken(), defaultWait, n)
		}
	case "count":
		fmt.Fprintf(ts.Stdout(), "taken: %d events\n", r.Taken())
	default:
		ts.Fatalf("usage: %s", usage)
	}
}

// load start NAME [-c C] [-events E] [-n N] | sent NAME N | acked NAME N | wait NAME | stop NAME
func cmdLoad(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "load")
	const usage = "load start NAME [-c C] [-events E] [-n N] | load sent|acked NAME N | load wait|stop NAME"
	verb, name := verbName(ts, usage, args)
	st := stateOf(ts)
	l := st.loads[name]
	switch {
	case verb == "start" && l != nil:
		ts.Fatalf("load %s is already started", name)
	case verb == "start":
		l = &rig.Load{Name: name, Target: &st.target, Ledger: &st.ledger}
		parseFlags(ts, "load", usage, args[2:], func(fs *flag.FlagSet) {
			fs.IntVar(&l.Workers, "c", 4, "")
			fs.IntVar(&l.Batch, "events", 1, "")
			fs.Int64Var(&l.Limit, "n", 0, "")
		})
		if l.Workers < 1 || l.Batch < 1 || l.Limit < 0 {
			ts.Fatalf("load: -c and -events must be at least 1, -n not negative")
		}
		st.loads[name] = l
		l.Start()
		return
	case l == nil:
		ts.Fatalf("load: no load called %q (load start %s)", name, name)
	}
	switch verb {
	case "sent", "acked":
		if len(args) != 3 {
			ts.Fatalf("usage: load %s NAME N", verb)
		}
		n, err := strconv.ParseInt(args[2], 10, 64)
		ts.Check(err)
		count, what := l.Acked, "acknowledged"
		if verb == "sent" {
			count, what = l.Sent, "sent"
		}
		if !waitFor(defaultWait, func() bool { return count() >= n }) {
			ts.Fatalf("load %s: %d requests %s in %s, want at least %d", name, count(), what, defaultWait, n)
		}
	case "wait":
		if l.Limit == 0 {
			ts.Fatalf("load wait %s: it runs until stopped (no -n); use load stop", name)
		}
		if !l.Wait(2 * defaultWait) {
			ts.Fatalf("load %s: requests still unanswered after %s", name, 2*defaultWait)
		}
		report(ts, l)
	case "stop":
		l.Stop()
		report(ts, l)
	default:
		ts.Fatalf("usage: %s", usage)
	}
}

// verbName splits the arguments of a `CMD VERB NAME [ARG...]` command.
func verbName(ts *testscript.TestScript, usage string, args []string) (verb, name string) {
	if len(args) < 2 {
		ts.Fatalf("usage: %s", usage)
	}
	return args[0], args[1]
}

func report(ts *testscript.TestScript, l *rig.Load) {
	fmt.Fprintf(ts.Stdout(), "requests: %d acknowledged, %d failed\n", l.Acked(), l.Failed())
	fmt.Fprintf(ts.Stdout(), "events: %d acknowledged\n", l.AckedEvents())
	for why, n := range l.Failures() {
		ts.Logf("load %s: %d requests failed: %s", l.Name, n, why)
	}
}

// ledger [-receiver NAME] DB
func cmdLedger(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "ledger")
	const usage = "ledger [-receiver NAME] DB"
	var recv string
	rest := parseFlags(ts, "ledger", usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&recv, "receiver", "", "")
	})
	if len(rest) != 1 {
		ts.Fatalf("usage: %s", usage)
	}
	st := stateOf(ts)
	rows, err := rig.ReadRows(context.Background(), ts.MkAbs(rest[0]))
	if err != nil {
		ts.Fatalf("ledger: %v", err)
	}
	var r *receiver
	var delivered map[rig.Key]rig.Delivery
	if recv != "" {
		if r = st.receivers[recv]; r == nil {
			ts.Fatalf("ledger: no receiver called %q", recv)
		}
		delivered = r.got.Snapshot()
	}
	v := st.ledger.Check(rows, delivered, nil)
	fmt.Fprintf(ts.Stdout(), "acknowledged: %d events\n", v.Acked)
	fmt.Fprintf(ts.Stdout(), "stored: %d of %d (the database holds %d events)\n", v.Stored, v.Acked, v.Rows)
	if r != nil {
		if bad := r.Bad(); bad > 0 {
			v.Problems = append(v.Problems, fmt.Sprintf("the receiver took %d batches that were not JSON arrays of events", bad))
		}
		fmt.Fprintf(ts.Stdout(), "delivered: %d of %d (%d deliveries)\n", v.Delivered, v.Acked, v.Deliveries)
		if v.Duplicates == 0 {
			fmt.Fprintf(ts.Stdout(), "duplicates: 0\n")
		} else {
			// Ids start at the clock's microseconds: name events by their
			// place in the buffer, the first being 1.
			first := slices.Min(slices.Collect(maps.Keys(rows)))
			fmt.Fprintf(ts.Stdout(), "duplicates: %d (events %s)\n", v.Duplicates, idRanges(v.DuplicateIDs, first-1))
		}
	}
	if len(v.Problems) > 0 {
		ts.Fatalf("ledger: %d problems:\n\t%s", len(v.Problems), strings.Join(v.Problems, "\n\t"))
	}
}

// idRanges renders sorted ids, less base, compactly: 1-4,7,9-10.
func idRanges(ids []int64, base int64) string {
	ids = slices.Compact(slices.Clone(ids))
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.FormatInt(ids[i]-base, 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i]-base, ids[j]-base))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

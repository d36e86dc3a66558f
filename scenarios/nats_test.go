package scenarios

// NATS commands (nats-crash-reship.txtar, nats-outage.txtar):
//
//	natsserver start NAME        start a JetStream server embedded in the test
//	                             process, on loopback, its store in
//	                             $WORK/NAME.store; $NAME_URL is its URL. Started
//	                             again after stop, it comes back on the same
//	                             port with its streams and messages
//	natsserver stop NAME         shut it down (clients see it go away)
//	natsstream NAME STREAM DB    the stream's side of the ledger: every message
//	                             is an event of DB, shipped byte for byte (the
//	                             body is what the collector ships for the row);
//	                             every acknowledged event and every row marked
//	                             uploaded is in the stream. It prints
//	                             `messages: N`, `events: N` (distinct
//	                             collector:id message ids) and `duplicates: N`
//	                             (messages for an event already there), and
//	                             fails on loss or mismatch
//
// The servers of a script are shut down when it ends.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rogpeppe/go-internal/testscript"

	"edgecollector/collector"
	"edgecollector/internal/natstest"
	"edgecollector/internal/rig"
)

func init() {
	commands["natsserver"] = cmdNATSServer
	commands["natsstream"] = cmdNATSStream
}

// natsServers are a script's servers, by name; the map is keyed by script.
type natsServers struct {
	mu      sync.Mutex
	running map[string]*server.Server
	ports   map[string]int
}

var natsByScript sync.Map // *testscript.TestScript -> *natsServers

func natsOf(ts *testscript.TestScript) *natsServers {
	v, loaded := natsByScript.LoadOrStore(ts, &natsServers{running: map[string]*server.Server{}, ports: map[string]int{}})
	n := v.(*natsServers)
	if !loaded {
		ts.Defer(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			for _, s := range n.running {
				natstest.Stop(s)
			}
			natsByScript.Delete(ts)
		})
	}
	return n
}

// natsserver start|stop NAME
func cmdNATSServer(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "natsserver")
	if len(args) != 2 {
		ts.Fatalf("usage: natsserver start|stop NAME")
	}
	n := natsOf(ts)
	n.mu.Lock()
	defer n.mu.Unlock()
	name := args[1]
	switch args[0] {
	case "start":
		if n.running[name] != nil {
			ts.Fatalf("natsserver: %s is running", name)
		}
		s, err := natstest.Start(natstest.Options{Dir: filepath.Join(ts.Getenv("WORK"), name+".store"), Port: n.ports[name], Name: name})
		ts.Check(err)
		n.running[name] = s
		u := s.ClientURL()
		port, err := strconv.Atoi(u[strings.LastIndex(u, ":")+1:])
		ts.Check(err)
		n.ports[name] = port
		ts.Setenv(name+"_URL", u)
	case "stop":
		s := n.running[name]
		if s == nil {
			ts.Fatalf("natsserver: %s is not running", name)
		}
		natstest.Stop(s)
		delete(n.running, name)
	default:
		ts.Fatalf("usage: natsserver start|stop NAME")
	}
}

// natsstream NAME STREAM DB
func cmdNATSStream(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "natsstream")
	if len(args) != 3 {
		ts.Fatalf("usage: natsstream NAME STREAM DB")
	}
	url := ts.Getenv(args[0] + "_URL")
	if url == "" {
		ts.Fatalf("natsstream: no server %s started", args[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
	defer cancel()
	msgs, err := natstest.ReadStream(ctx, url, args[1])
	ts.Check(err)
	rows, err := rig.ReadRows(ctx, ts.MkAbs(args[2]))
	ts.Check(err)

	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	seen := map[string]bool{}
	have := map[int64]bool{}
	dups := 0
	for _, m := range msgs {
		msgID := m.Header.Get(jetstream.MsgIDHeader)
		if seen[msgID] {
			dups++
			continue
		}
		seen[msgID] = true
		var e collector.Shipped
		if err := json.Unmarshal(m.Data, &e); err != nil {
			problem("message %d is not a shipped event: %v", m.Seq, err)
			continue
		}
		if want := e.CollectorID + ":" + strconv.FormatInt(e.ID, 10); msgID != want || m.Header.Get("Collector-Id") != e.CollectorID {
			problem("message %d: id %q and header %q for body %s", m.Seq, msgID, m.Header.Get("Collector-Id"), want)
		}
		have[e.ID] = true
		r := rows[e.ID]
		if r == nil {
			problem("event %d is in the stream but not in the database", e.ID)
			continue
		}
		// The body, rebuilt from the row as the collector ships it.
		want := shippedJSON(e.CollectorID, e.ID, r)
		if string(m.Data) != want {
			problem("event %d: message body\n\t%s\nwant\n\t%s", e.ID, m.Data, want)
		}
	}
	for _, id := range stateOf(ts).ledger.AckedIDs() {
		if !have[id] {
			problem("event %d was acknowledged but is not in the stream", id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		if rows[id].Uploaded && !have[id] {
			problem("event %d is marked uploaded but is not in the stream: lost", id)
		}
	}
	fmt.Fprintf(ts.Stdout(), "messages: %d\nevents: %d\nduplicates: %d\n", len(msgs), len(seen), dups)
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
		}
		ts.Fatalf("natsstream: %d problems:\n\t%s", len(problems), strings.Join(problems, "\n\t"))
	}
}

// shippedJSON is the wire form of a stored row (collector.Shipped's
// fields in order, the payload verbatim), as collector/sink writes it.
func shippedJSON(collectorID string, id int64, r *rig.Row) string {
	str := func(s string) string { // as the sink writes strings: <, > and & left as they are
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		return strings.TrimSuffix(b.String(), "\n")
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"collector_id":%s,"id":%d,"device_id":%s,"kind":%s`, str(collectorID), id, str(r.DeviceID), str(r.Kind))
	if r.Payload != nil {
		b.WriteString(`,"payload":` + string(r.Payload))
	}
	fmt.Fprintf(&b, `,"ts":%d}`, r.TS)
	return b.String()
}

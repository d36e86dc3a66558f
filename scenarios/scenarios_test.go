package scenarios

// The runner. Every script runs once per write mode, as its own subtest
// (TestScenarios/<mode>/<script>, so -run 'TestScenarios/group/crash'
// picks some), with $MODE set to that mode: the scripts pass -mode $MODE to
// the collector, so one script covers serialized, concurrent and group
// alike. All of them run in all three modes: every scenario writes.
//
// Every collector in the scripts runs with -max-commit-bytes 4096, the
// original engine's hard cap, so that the commit-size path stays real
// everywhere, not only in chunking-4k (docs/ARCHITECTURE.md, The promises:
// no transaction exceeds the commit-size cap).
//
// Environment every script gets:
//
//	$MODE          serialized | concurrent | group (see above)
//	$TESTDATA      the repository's shared fixtures (../testdata)
//	$COLLECTOR_BIN the real binary, built once per `go test` run (see TestMain)
//	$ADDR          set by waitready: where the collector listens. Collectors
//	               bind -addr 127.0.0.1:0, so no two ever contend for a port;
//	               a restarted one gets a new address, found the same way
//
// Programs (run them with exec; RequireExplicitExec is on):
//
//	collector ARGS...            the real collector binary (built by TestMain
//	                             with rig.Build: CGO_ENABLED=0, as released,
//	                             or with -race when the tests run with -race;
//	                             the registered command
//	                             execs it, so the pid, signals and exit status
//	                             are the binary's own)
//	holdlock DB MAX READY        another process takes the SQLite write lock
//	                             on DB (BEGIN IMMEDIATE), creates the file
//	                             READY, and holds the lock until `kill -INT`
//	                             (then commits, exit 0) or for at most MAX
//	                             (then commits and fails)
//
// Commands (in-process; see cmds_test.go and rig_test.go):
//
//	waitready NAME [-timeout D]  wait until the collector just started as
//	                             `exec collector ... &NAME&` listens (its own
//	                             socket, read from /proc) and answers GET
//	                             /healthz there (any status), polling with a
//	                             deadline; sets $ADDR, and names the process
//	                             for `signal`. Later commands talk to it
//	signal SIG NAME              send SIGTERM, SIGINT, SIGKILL, SIGQUIT or
//	                             SIGHUP (SIG: TERM, INT, ...) to that collector
//	waitclosed [-timeout D]      wait until nothing accepts connections on
//	                             $ADDR: the collector has stopped listening
//	                             (its shutdown has begun)
//	waitfile [-timeout D] FILE   wait until FILE exists
//	post [flags] STATUS BODY     POST BODY (inline text, or @FILE) to
//	                             $ADDR/events and require STATUS; the response
//	                             (status line, headers but Date and
//	                             Content-Length, blank line, body) becomes
//	                             stdout. On 200 every event of the request is
//	                             recorded with its id in the script's ledger
//	                             (internal/rig's Ledger). Flags: -path P,
//	                             -X METHOD, -H 'Name: value' (repeatable),
//	                             -o FILE (also save the body)
//	get [-wait D] STATUS PATH    GET $ADDR/PATH and require STATUS; with -wait,
//	                             poll until it answers STATUS, for at most D
//	stats [-f FILE] [-o FILE] [-wait D] [COND...]
//	                             GET /stats (or read FILE), optionally save it,
//	                             and check each COND, written PATH OP VALUE
//	                             with OP one of == != < <= > >= and VALUE an
//	                             integer (or true/false with == !=), for
//	                             example store.retries>0. With -wait, poll
//	                             until all hold, for at most D. No COND:
//	                             print the JSON
//	sql [-wait D] DB QUERY [WANT]
//	                             run QUERY on DB opened read-only (modernc,
//	                             not the CLI); rows become stdout, one a line,
//	                             columns joined by |, NULL empty: the sqlite3
//	                             CLI's default format, so `cmp` can compare.
//	                             With WANT, the output must be WANT; with
//	                             -wait, poll until it is, for at most D
//	capture VAR...               split the last stdout on white space into the
//	                             named environment variables
//	genevents FILE N SIZE        write a JSON array of N events whose payloads
//	                             are SIZE bytes each, over four devices
//	receiver start NAME          start a recording webhook receiver on
//	                             loopback (internal/rig's Receiver); $NAME_URL
//	                             is its URL. It keeps every event it takes, the
//	                             bytes the collector sent, before it answers
//	receiver fail NAME [STATUS]  answer every batch STATUS (default 503),
//	                             taking nothing
//	receiver stall NAME          take the next batches, then hold the answer
//	                             until recover (or the client goes away)
//	receiver recover NAME        take and answer 200 again; frees stalled batches
//	receiver wait NAME N         wait until NAME has taken at least N events
//	                             (duplicates included)
//	receiver count NAME          stdout: `taken: N events`
//	load start NAME [-c C] [-events E] [-n N]
//	                             C goroutines POST requests of E events each,
//	                             N requests in all (0: until stopped); every
//	                             request and its answer go into the ledger.
//	                             Payloads carry {"load","req","i","n"} so a
//	                             half-written request shows in SQL
//	load sent NAME N             wait until at least N of its requests were
//	                             written whole to their connections
//	load acked NAME N            wait until at least N of its requests got 200
//	load wait NAME               wait until all N requests are answered
//	load stop NAME               stop issuing, wait for those in flight
//	                             (wait and stop print `requests: A
//	                             acknowledged, F failed` and `events: E
//	                             acknowledged`)
//	ledger [-receiver NAME] DB   the end-to-end check (internal/rig's
//	                             Ledger.Check): every event id that got a 200
//	                             was acknowledged once (ids never reused), is
//	                             in DB with the payload sent byte for byte,
//	                             and (with -receiver) reached the receiver at
//	                             least once with the same bytes; every request
//	                             is stored whole or not at all (a refused one
//	                             not at all), no row is there that no request
//	                             sent, and none is marked uploaded without
//	                             having been delivered. It prints counts and
//	                             the duplicates (numbered from the buffer's
//	                             first event), and fails on any loss or
//	                             mismatch
//
// The NATS commands (natsserver, natsstream: a JetStream server embedded in
// the test process, and the stream's side of the ledger) are documented in
// nats_test.go.
//
// Every wait is bounded (10s unless told) and polls; nothing sleeps to
// synchronise. Everything listens on 127.0.0.1 only.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

func TestMain(m *testing.M) {
	testscript.Main(buildFirst{m}, map[string]func(){
		"collector": execCollector,
		"holdlock":  holdLock,
	})
}

// buildFirst builds the collector binary before the tests run. It runs only
// in the top-level test process: in the copies of the test binary that
// testscript.Main starts as "collector" or "holdlock", Run is never called.
type buildFirst struct{ m *testing.M }

// collectorBin is the built binary, set by buildFirst.Run.
var collectorBin string

// raceBuild is set when the tests run under -race (race_test.go): the
// collector is then built with -race as well, and its race reports go to
// files in raceDir (GORACE log_path), which fail the run when any appears.
// A script cannot see them itself: a background process's exit status is
// ignored once the script has ended.
var (
	raceBuild bool
	raceDir   string
)

func (b buildFirst) Run() int {
	dir, err := os.MkdirTemp("", "scenarios-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenarios:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if raceBuild {
		raceDir = filepath.Join(dir, "races")
		if err := os.Mkdir(raceDir, 0o777); err != nil {
			fmt.Fprintln(os.Stderr, "scenarios:", err)
			return 1
		}
	}
	// One line before the long part: cold, the build alone takes minutes.
	fmt.Fprintln(os.Stderr, "scenarios: building the collector, then every script in every write mode")
	if collectorBin, err = rig.Build(context.Background(), dir, raceBuild); err != nil {
		fmt.Fprintln(os.Stderr, "scenarios:", err)
		return 1
	}
	code := b.m.Run()
	if raceDir != "" {
		reports, _ := filepath.Glob(filepath.Join(raceDir, "*"))
		for _, r := range reports {
			b, _ := os.ReadFile(r)
			fmt.Fprintf(os.Stderr, "scenarios: the collector reported a data race (%s):\n%s\n", filepath.Base(r), b)
			code = 1
		}
	}
	return code
}

func TestScenarios(t *testing.T) {
	testdata, err := filepath.Abs(filepath.Join("..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range store.Modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testscript.Run(t, testscript.Params{
				Dir:                 ".",
				RequireExplicitExec: true,
				RequireUniqueNames:  true,
				Setup: func(env *testscript.Env) error {
					env.Setenv("MODE", string(mode))
					env.Setenv("TESTDATA", testdata)
					env.Setenv("COLLECTOR_BIN", collectorBin)
					if raceDir != "" {
						env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" log_path="+filepath.Join(raceDir, "race")))
					}
					st := newState(env.WorkDir)
					env.Values[stateKey{}] = st
					env.Defer(st.close)
					return nil
				},
				Cmds: commands,
			})
		})
	}
}

// stateKey keys a script's *state in testscript's per-script values.
type stateKey struct{}

func stateOf(ts *testscript.TestScript) *state {
	return ts.Value(stateKey{}).(*state)
}

//go:build linux

package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"edgecollector/collector/store"
)

// This file holds the tests of what the process does with its pipes,
// files, locks and signals, through the real binary.

// binary is the collector built once for this file's tests.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "collector-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "collector")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build collector: %v\n%s", err, out)
	}
	return bin, nil
})

func mustBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the collector binary")
	}
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// runningCollector is one run of the binary.
type runningCollector struct {
	cmd     *exec.Cmd
	addr    string
	logs    *syncWriter
	exited  chan struct{} // closed once reaped
	waitErr error
}

// startCollector runs the binary with args plus -addr; stdout goes to
// stdout (nil: discarded), stderr to the returned logs (or to stderr when
// given). It does not wait for readiness.
func launch(t *testing.T, stdout, stderr *os.File, args ...string) *runningCollector {
	t.Helper()
	p := &runningCollector{addr: freeAddr(t), logs: &syncWriter{}, exited: make(chan struct{})}
	p.cmd = exec.Command(mustBinary(t), append(args, "-addr", p.addr)...)
	p.cmd.Stdout = io.Discard
	if stdout != nil {
		p.cmd.Stdout = stdout // the child's fd 1 is this file itself, not a copier
	}
	p.cmd.Stderr = p.logs
	if stderr != nil {
		p.cmd.Stderr = stderr
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // owned: ends with the process; the cleanup kills it if need be
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// ready waits for /healthz to answer (any status): the process serves.
func (p *runningCollector) ready(t *testing.T) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		select {
		case <-p.exited:
			t.Fatalf("collector exited: %v: %s", p.waitErr, p.logs)
		default:
		}
		if resp, err := http.Get("http://" + p.addr + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("collector not serving within 15s: %s", p.logs)
}

// alive fails the test if the process has exited.
func (p *runningCollector) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("collector exited: %v (%s): %s", p.waitErr, exitStatus(p.cmd), p.logs)
	default:
	}
}

// stop sends SIGTERM and waits for the exit.
func (p *runningCollector) stop(t *testing.T) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t, 30*time.Second)
}

func (p *runningCollector) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(d):
		t.Fatalf("collector did not exit within %v: %s", d, p.logs)
		return nil
	}
}

// exitStatus says how a process ended: "exit 1", "signal broken pipe".
func exitStatus(cmd *exec.Cmd) string {
	if cmd.ProcessState == nil {
		return "running"
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", cmd.ProcessState.ExitCode())
}

// post sends body to /events and returns the status and the answer.
func (p *runningCollector) post(t *testing.T, body string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+p.addr+"/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// get answers a GET of path: status and body.
func (p *runningCollector) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHealth polls /healthz until its status is want and its body holds
// every one of words, for at most 15 s.
func (p *runningCollector) waitHealth(t *testing.T, want int, words ...string) string {
	t.Helper()
	var code int
	var body string
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		p.alive(t)
		code, body = p.get(t, "/healthz")
		if code != want {
			continue
		}
		all := true
		for _, w := range words {
			all = all && strings.Contains(body, w)
		}
		if all {
			return body
		}
	}
	t.Fatalf("/healthz = %d %s; want %d naming %q", code, body, want, words)
	return ""
}

// storeStats reads /stats' store part.
func (p *runningCollector) storeStats(t *testing.T) store.Stats {
	t.Helper()
	code, body := p.get(t, "/stats")
	var st struct{ Store store.Stats }
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("/stats = %d %s: %v", code, body, err)
	}
	return st.Store
}

// countRows counts rows in the file at path, read-only, after the collector stopped.
func countRows(t *testing.T, path, query string) int64 {
	t.Helper()
	db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: time.Second, ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func eventsBody(n int, tag string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"device_id":"%s-%d","kind":"t","payload":{"i":%d}}`, tag, i%3, i)
	}
	b.WriteByte(']')
	return b.String()
}

// With -sink log and stdout piped into a reader that exits (collector |
// head), the write fails with EPIPE: the cycle fails, the backlog stays,
// /healthz says why, the process lives on. What was marked uploaded is
// exactly what the reader read.
func TestBrokenStdoutPipeFailsTheCycleNotTheProcess(t *testing.T) {
	db := filepath.Join(t.TempDir(), "events.db")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := launch(t, w, nil, "-db", db, "-sink", "log", "-upload-interval", "20ms", "-upload-max-backoff", "100ms")
	w.Close() // the child holds the write end
	p.ready(t)

	// The reader reads the first 5 events' lines, then goes away.
	if code, body := p.post(t, eventsBody(5, "a")); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}
	lines := make(chan string)
	go func() { // owned: ends when r is closed
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for i := range 5 {
		select {
		case l := <-lines:
			if !strings.Contains(l, `"kind":"t"`) {
				t.Fatalf("line %d = %q", i, l)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("read %d of 5 lines in 15s", i)
		}
	}
	for p.storeStats(t).Uploaded < 5 { // marked after the write returned
		p.alive(t)
		time.Sleep(10 * time.Millisecond)
	}
	r.Close()
	for range lines {
	}

	if code, body := p.post(t, eventsBody(7, "b")); code != 200 {
		t.Fatalf("post after the reader left: %d %s", code, body)
	}
	p.waitHealth(t, http.StatusServiceUnavailable, "broken pipe")
	time.Sleep(300 * time.Millisecond) // a few more failing cycles (100ms backoff)
	p.alive(t)
	if st := p.storeStats(t); st.Uploaded != 5 || st.Backlog != 7 {
		t.Errorf("uploaded %d, backlog %d; want 5 (what the reader read) and 7", st.Uploaded, st.Backlog)
	}
	if err := p.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v (%s): %s", err, exitStatus(p.cmd), p.logs)
	}
	if got := countRows(t, db, `SELECT count(*) FROM backlog`); got != 7 {
		t.Errorf("backlog on disk = %d, want 7", got)
	}

	// Restarted with stdout and stderr both broken from the start (the
	// reader never came back): it serves, keeps the backlog, says why.
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
	p = launch(t, w2, w2, "-db", db, "-sink", "log", "-upload-interval", "20ms", "-upload-max-backoff", "100ms")
	w2.Close()
	p.ready(t)
	p.waitHealth(t, http.StatusServiceUnavailable, "broken pipe")
	if code, body := p.post(t, eventsBody(2, "c")); code != 200 {
		t.Fatalf("post with both pipes broken: %d %s", code, body)
	}
	time.Sleep(300 * time.Millisecond)
	p.alive(t)
	if st := p.storeStats(t); st.Backlog != 9 || st.Uploaded != 0 {
		t.Errorf("backlog %d, uploaded %d; want 9 and 0", st.Backlog, st.Uploaded)
	}
	if err := p.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v (%s)", err, exitStatus(p.cmd))
	}
}

// SIGHUP (the terminal went away) drains like SIGTERM: the backlog is
// shipped and the process exits 0, instead of dying at once.
func TestSIGHUPDrains(t *testing.T) {
	db := filepath.Join(t.TempDir(), "events.db")
	var mu sync.Mutex
	got := 0
	hook := newHook(t, func(n int) { mu.Lock(); got += n; mu.Unlock() })
	p := launch(t, nil, nil, "-db", db, "-sink", "webhook", "-webhook-url", hook.URL, "-upload-interval", "1h")
	p.ready(t)
	if code, body := p.post(t, eventsBody(4, "h")); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGHUP: %v (%s): %s", err, exitStatus(p.cmd), p.logs)
	}
	mu.Lock()
	defer mu.Unlock()
	if got != 4 {
		t.Errorf("webhook received %d events, want the 4 drained", got)
	}
	if !strings.Contains(p.logs.String(), "signal=hangup") {
		t.Errorf("no drain logged for the hangup: %s", p.logs)
	}
}

// newHook is a webhook receiver that reports how many events each batch held.
func newHook(t *testing.T, got func(n int)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got(len(batch))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// One collector per buffer file: a second start on the same -db is
// refused at once (exit 1), naming the file and the holder's pid; the
// read-only diagnostics run beside the first; once it stops, the file is
// free.
func TestSecondCollectorOnOneFileIsRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "events.db")
	// A sink that refuses every connection: the backlog stays put (the
	// uploader's first cycle, at start, must not race the counts below).
	first := launch(t, nil, nil, "-db", db, "-upload-interval", "1h", "-collector-id", "first",
		"-sink", "webhook", "-webhook-url", "http://"+freeAddr(t))
	first.ready(t)
	if code, body := first.post(t, eventsBody(3, "a")); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}

	second := launch(t, nil, nil, "-db", db, "-collector-id", "second")
	select {
	case <-second.exited:
	case <-time.After(10 * time.Second):
		second.cmd.Process.Kill()
		t.Fatalf("a second collector on %s was not refused: it ran for 10s", db)
	}
	if got := second.cmd.ProcessState.ExitCode(); got != 1 {
		t.Errorf("second collector: %s, want exit 1", exitStatus(second.cmd))
	}
	msg := second.logs.String()
	if !strings.Contains(msg, db) || !strings.Contains(msg, fmt.Sprintf("process %d", first.cmd.Process.Pid)) {
		t.Errorf("refusal %q does not name the file and pid %d", msg, first.cmd.Process.Pid)
	}

	// The diagnostics do not take the lock: they run beside the first.
	for _, args := range [][]string{
		{"query", "-db", db, "SELECT count(*) FROM events"},
		{"stats", "-db", db},
		{"check", "-db", db},
	} {
		out, err := exec.Command(mustBinary(t), args...).CombinedOutput()
		if err != nil {
			t.Errorf("%v beside the collector: %v: %s", args, err, out)
		}
	}
	first.alive(t)
	if code, body := first.post(t, eventsBody(2, "b")); code != 200 {
		t.Errorf("the first collector after the refusal: %d %s", code, body)
	}
	if st := first.storeStats(t); st.Backlog != 5 || st.WAL.LimitBytes != store.DefaultMaxWALBytes {
		t.Errorf("first collector's stats = %+v, want a backlog of 5 and the WAL's bound", st)
	}
	_, m := first.get(t, "/metrics")
	for _, want := range []string{"\ncollector_buffer_healthy 1\n", "\ncollector_wal_bytes ", "\ncollector_wal_limit_bytes 6.7108864e+07\n",
		"\ncollector_wal_checkpoints_total 0\n", "\ncollector_wal_last_checkpoint_ok 1\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := first.stop(t); err != nil {
		t.Fatalf("first stop: %v", err)
	}

	// Free again.
	third := launch(t, nil, nil, "-db", db, "-upload-interval", "1h")
	third.ready(t)
	if err := third.stop(t); err != nil {
		t.Errorf("third stop: %v", err)
	}
}

// The buffer deleted (rm events.db events.db-wal) or its symlink swapped
// underneath a running collector, in every mode: POSTs answer 503 (they
// answered 200 into a file nobody would find again), /healthz answers 503
// naming the file, an error is logged naming it; the events acknowledged
// before are still shipped (by the drain), and nothing of the file the path
// names now is shipped under this collector's id.
func TestReplacedBufferIsRefusedNotAcknowledged(t *testing.T) {
	for _, mode := range store.Modes {
		for _, swap := range []string{"rm", "symlink"} {
			t.Run(string(mode)+"/"+swap, func(t *testing.T) {
				dir := t.TempDir()
				db := filepath.Join(dir, "events.db")
				if swap == "symlink" {
					if err := os.Symlink(filepath.Join(dir, "a.db"), db); err != nil {
						t.Fatal(err)
					}
					// Another buffer, with backlog events of its own (ids 1...).
					other := launch(t, nil, nil, "-db", filepath.Join(dir, "b.db"), "-upload-interval", "1h",
						"-sink", "webhook", "-webhook-url", "http://"+freeAddr(t))
					other.ready(t)
					other.post(t, eventsBody(20, "other"))
					if err := other.stop(t); err != nil {
						t.Fatal(err)
					}
				}
				out, err := os.Create(filepath.Join(dir, "stdout"))
				if err != nil {
					t.Fatal(err)
				}
				defer out.Close()
				p := launch(t, out, nil, "-db", db, "-mode", string(mode), "-upload-interval", "1h", "-max-conns", "2")
				p.ready(t)
				if code, body := p.post(t, eventsBody(5, "a")); code != 200 {
					t.Fatalf("post: %d %s", code, body)
				}

				switch swap {
				case "rm":
					if err := os.Remove(db); err != nil {
						t.Fatal(err)
					}
					if err := os.Remove(db + "-wal"); err != nil {
						t.Fatal(err)
					}
				case "symlink":
					if err := os.Symlink(filepath.Join(dir, "b.db"), db+".new"); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(db+".new", db); err != nil {
						t.Fatal(err)
					}
				}

				// Concurrent requests: concurrent mode would open new connections.
				var wg sync.WaitGroup
				codes := make([]int, 6)
				bodies := make([]string, 6)
				for i := range codes {
					wg.Add(1)
					go func() { // owned: wg
						defer wg.Done()
						codes[i], bodies[i] = p.post(t, eventsBody(2, "late"))
					}()
				}
				wg.Wait()
				for i, code := range codes {
					if code != http.StatusServiceUnavailable || !strings.Contains(bodies[i], "replaced") {
						t.Errorf("post after the %s: %d %s, want 503 naming the replaced file", swap, code, bodies[i])
					}
				}
				p.waitHealth(t, http.StatusServiceUnavailable, "deleted or replaced", dir)
				if _, m := p.get(t, "/metrics"); !strings.Contains(m, "\ncollector_buffer_healthy 0\n") {
					t.Errorf("/metrics does not say the buffer is unhealthy")
				}
				if !strings.Contains(p.logs.String(), "level=ERROR") || !strings.Contains(p.logs.String(), db) {
					t.Errorf("no error log naming %s: %s", db, p.logs)
				}
				p.stop(t) // its exit status is the drain's business; the ledger below is ours

				// The drain shipped the 5 acknowledged events, and only them.
				shipped, err := os.ReadFile(out.Name())
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSpace(string(shipped)), "\n")
				if len(lines) != 5 || strings.Contains(string(shipped), "other") || strings.Contains(string(shipped), "late") {
					t.Errorf("shipped after the %s:\n%s\nwant the 5 acknowledged events only", swap, shipped)
				}
			})
		}
	}
}

// A receiver that redirects, or refuses everything (404, 401), leaves the
// backlog whole through the real binary: /healthz answers 503 naming the
// cause, nothing is shipped or rejected, and once the receiver is right
// the backlog is delivered.
func TestMisconfiguredReceiverThroughTheBinary(t *testing.T) {
	var mode atomic.Value // "302", "404", "401" or "ok"
	var mu sync.Mutex
	var got int
	var redirected atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" { // a follower's GET: answered 200, receives nothing
			redirected.Add(1)
			return
		}
		switch m := mode.Load().(string); m {
		case "302":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "404":
			http.NotFound(w, r)
		case "401":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			var batch []json.RawMessage
			json.NewDecoder(r.Body).Decode(&batch)
			mu.Lock()
			got += len(batch)
			mu.Unlock()
		}
	}))
	defer hook.Close()
	mode.Store("302")
	db := filepath.Join(t.TempDir(), "events.db")
	p := launch(t, nil, nil, "-db", db, "-sink", "webhook", "-webhook-url", hook.URL+"/ingest",
		"-upload-interval", "20ms", "-upload-max-backoff", "100ms")
	p.ready(t)
	if code, body := p.post(t, eventsBody(30, "m")); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}
	for _, tc := range []struct{ mode, cause string }{
		{"302", "redirects are never followed"},
		{"404", "404 Not Found"},
		{"401", "401 Unauthorized"},
	} {
		mode.Store(tc.mode)
		p.waitHealth(t, http.StatusServiceUnavailable, tc.cause)
		if st := p.storeStats(t); st.Backlog != 30 || st.Uploaded != 0 {
			t.Errorf("%s: backlog %d, uploaded %d; want 30 and 0", tc.mode, st.Backlog, st.Uploaded)
		}
	}
	_, stats := p.get(t, "/stats")
	if !strings.Contains(stats, `"events_rejected":0`) || !strings.Contains(stats, `"events_shipped":0`) {
		t.Errorf("/stats = %s, want nothing shipped nor rejected", stats)
	}
	mode.Store("ok")
	p.waitHealth(t, http.StatusOK)
	for p.storeStats(t).Backlog > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got != 30 || redirected.Load() != 0 {
		t.Errorf("delivered %d (want 30), redirect target hit %d times (want 0)", got, redirected.Load())
	}
	if n := countRows(t, db, `SELECT count(*) FROM upload_runs WHERE status = 'rejected'`); n != 0 {
		t.Errorf("%d rejected audit rows, want 0", n)
	}
}

//go:build linux

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

// TestDiskFullThroughTheBinary is the disk-full promise end to end: the
// real collector binary, its database on a real 4 MiB tmpfs, producers
// filling it. Requests are refused with 507 (or 503) JSON errors and
// Retry-After, the process stays up and answers /healthz, nothing
// acknowledged is lost or changed, nothing refused is stored, and once a
// filler file is deleted ingest resumes by itself, without a restart.
func TestDiskFullThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the collector binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a size-limited tmpfs needs root")
	}
	bin, err := rig.Build(context.Background(), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range store.Modes {
		t.Run(string(mode), func(t *testing.T) { diskFullBinary(t, bin, mode) })
	}
}

// ackedEvent is an event acknowledged with a 200: its id and the payload sent.
type ackedEvent struct {
	id      int64
	payload string
}

func diskFullBinary(t *testing.T, bin string, mode store.Mode) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): disk-full is not testable on this machine", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	filler := filepath.Join(dir, "filler")
	// The filler is larger than what the producers can write in the rest:
	// until it is checkpointed, everything sits in the WAL, and folding the
	// WAL into the main file at shutdown needs about as much room again. A
	// smaller filler frees too little, and the clean stop fails with disk
	// full (everything acknowledged stays safe in the WAL).
	if err := os.WriteFile(filler, make([]byte, 5<<19), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "events.db")
	p := startCollector(t, bin, "-db", db, "-mode", string(mode),
		"-max-backlog", "0", "-upload-interval", "1h", "-drain-timeout", "5s")
	f := &fillers{addr: p.addr}
	f.fill()
	if len(f.refused) == 0 {
		t.Fatalf("the disk never filled: %d events acknowledged, no 507/503", len(f.acked))
	}
	if len(f.other) > 0 {
		t.Errorf("answers other than 200, 507 and 503 (JSON, Retry-After): %q", f.other[:min(5, len(f.other))])
	}
	t.Logf("%s: %d events acknowledged, then %d refusals, first %q", mode, len(f.acked), len(f.refused), f.refused[0])

	// Still up: the process runs and answers.
	select {
	case <-p.exited:
		t.Fatalf("collector exited on a full disk: %v: %s", p.waitErr, p.logs.String())
	default:
	}
	if resp, err := http.Get("http://" + p.addr + "/healthz"); err != nil {
		t.Fatalf("/healthz on a full disk: %v", err)
	} else {
		resp.Body.Close()
	}

	// Space returns: ingest resumes by itself (polled, bounded).
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	resumed := false
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		if f.post() == http.StatusOK {
			resumed = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !resumed {
		t.Fatalf("ingest did not resume within 15 s of space returning: %s", p.logs.String())
	}

	// A clean stop, then the ledger against the file.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("collector exit after SIGTERM: %v: %s", p.waitErr, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("collector did not stop within 30 s of SIGTERM")
	}
	checkLedger(t, db, f.acked)
}

// collectorProc is the collector binary running on a free loopback port.
type collectorProc struct {
	cmd     *exec.Cmd
	addr    string
	logs    *syncWriter
	exited  chan struct{} // closed once the process is reaped
	waitErr error         // its exit status, once exited is closed
}

// startCollector runs bin with args on a free port and waits until it is
// healthy. The test's cleanup kills it if it still runs.
func startCollector(t *testing.T, bin string, args ...string) *collectorProc {
	t.Helper()
	p := &collectorProc{addr: freeAddr(t), logs: &syncWriter{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"-addr", p.addr}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // owned: ends with the process; the cleanup kills it if need be
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill() // fails harmlessly once it has exited
		<-p.exited
	})
	// done tells waitHealthy of an early exit.
	done := make(chan error, 1)
	go func() { // owned: ends when the process does
		<-p.exited
		done <- p.waitErr
	}()
	waitHealthy(t, p.addr, done)
	return p
}

// fillers are producers posting to addr, and what each answer was.
type fillers struct {
	addr    string
	mu      sync.Mutex
	acked   []ackedEvent
	refused []string // the error bodies
	other   []string
	seq     int
}

// fill fills the disk with 4 producers, until each has been refused 3
// times (bounded: 2,000 requests or 60 s).
func (f *fillers) fill() {
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for range 4 {
		wg.Add(1)
		go func() { // owned: wg
			defer wg.Done()
			refusals := 0
			for i := 0; i < 500 && refusals < 3 && time.Now().Before(deadline); i++ {
				if st := f.post(); st == http.StatusInsufficientStorage || st == http.StatusServiceUnavailable {
					refusals++
				}
			}
		}()
	}
	wg.Wait()
}

// post sends one 10-event request of ~1 KiB payloads, unique by seq, and
// files the answer.
func (f *fillers) post() int {
	f.mu.Lock()
	f.seq++
	n := f.seq
	f.mu.Unlock()
	var b strings.Builder
	payloads := make([]string, 10)
	b.WriteByte('[')
	for i := range payloads {
		payloads[i] = fmt.Sprintf(`{"req":%d,"i":%d,"pad":"%s"}`, n, i, strings.Repeat("x", 1000))
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"device_id":"d%d","kind":"fill","payload":%s}`, n%7, payloads[i])
	}
	b.WriteByte(']')
	resp, err := http.Post("http://"+f.addr+"/events", "application/json", strings.NewReader(b.String()))
	if err != nil {
		f.mu.Lock()
		f.other = append(f.other, err.Error())
		f.mu.Unlock()
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch resp.StatusCode {
	case http.StatusOK:
		var r struct{ IDs []int64 }
		if err := json.Unmarshal(body, &r); err != nil || len(r.IDs) != len(payloads) {
			f.other = append(f.other, fmt.Sprintf("200 with body %s", body))
			return resp.StatusCode
		}
		for i, id := range r.IDs {
			f.acked = append(f.acked, ackedEvent{id, payloads[i]})
		}
	case http.StatusInsufficientStorage, http.StatusServiceUnavailable:
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			f.other = append(f.other, fmt.Sprintf("%d without a JSON error: %s", resp.StatusCode, body))
		} else if resp.Header.Get("Retry-After") == "" {
			f.other = append(f.other, fmt.Sprintf("%d without Retry-After: %s", resp.StatusCode, body))
		} else {
			f.refused = append(f.refused, fmt.Sprintf("%d %s", resp.StatusCode, e.Error))
		}
	default:
		f.other = append(f.other, fmt.Sprintf("%d %s", resp.StatusCode, body))
	}
	return resp.StatusCode
}

// checkLedger holds the file at db against what was acknowledged: every
// acknowledged event is there with the payload sent, and nothing else.
func checkLedger(t *testing.T, db string, acked []ackedEvent) {
	t.Helper()
	rodb, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(db, store.ConnConfig{BusyTimeout: time.Second, ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer rodb.Close()
	stored := make(map[int64]string)
	rows, err := rodb.Query(`SELECT id, payload_json FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var p string
		if err := rows.Scan(&id, &p); err != nil {
			t.Fatal(err)
		}
		stored[id] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	lost := 0
	for _, a := range acked {
		switch p, ok := stored[a.id]; {
		case !ok:
			lost++
		case p != a.payload:
			t.Errorf("id %d: stored payload differs from the one sent", a.id)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events lost", lost, len(acked))
	}
	if got, want := len(stored), len(acked); got != want {
		t.Errorf("%d events stored, %d acknowledged: a refused request left rows", got, want)
	}
}

// syncWriter is the process's log: written by exec's copier, read by the test.
type syncWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

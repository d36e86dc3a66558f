package rig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child process: with helperEnv set it acts
// out one role and exits, instead of running the tests.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		helper(role)
		os.Exit(0)
	}
	Main(m)
}

// helper is the child's side. Every role ends on its own within a minute,
// should the test that started it fail to.
func helper(role string) {
	time.AfterFunc(time.Minute, func() { os.Exit(9) })
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	started := func(addr string) {
		fmt.Fprintf(os.Stderr, `{"msg":"collector started","addr":%q}`+"\n", addr)
	}
	switch role {
	case "serve", "termfail", "stubborn":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, `{"msg":"opening","addr":"not-this-one"}`)
		fmt.Fprintln(os.Stderr, `{"msg":"profiler listening: unauthenticated, keep it private","addr":"127.0.0.1:6060"}`)
		started(ln.Addr().String())
		<-term
		switch role {
		case "termfail":
			fmt.Fprintln(os.Stderr, "drain failed")
			os.Exit(1)
		case "stubborn":
			select {} // ignores SIGTERM until killed
		}
	case "crash":
		for i := range 10 {
			fmt.Fprintf(os.Stderr, "line %d\n", i)
		}
		os.Exit(3)
	case "silent":
		select {}
	case "listen":
		// Serves on the address it was given, after a moment; its log line
		// names another, which must not count.
		started("127.0.0.1:1")
		fmt.Fprintln(os.Stdout, "on stdout")
		time.Sleep(50 * time.Millisecond)
		ln, err := net.Listen("tcp", os.Getenv("PROC_TEST_ADDR"))
		if err != nil {
			os.Exit(2)
		}
		defer ln.Close()
		<-term
	}
}

// start runs the test binary in role.
func start(t *testing.T, role string, o Options) (*Process, error) {
	t.Helper()
	t.Setenv(helperEnv, role) // inherited by the child only: TestMain has run
	// Under -race a child's clean exit would otherwise wait a second.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if o.Name == "" {
		o.Name = "helper"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	p, err := Start(context.Background(), os.Args[0], []string{"-test.run=^$"}, o)
	if p != nil {
		t.Cleanup(func() {
			if !p.Exited() {
				p.Kill()
			}
		})
	}
	return p, err
}

func TestStartFromLogLine(t *testing.T) {
	p, err := start(t, "serve", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr() == "" || p.Addr() == "not-this-one" {
		t.Fatalf("address %q, want the one in the started line", p.Addr())
	}
	if got, want := p.ProfilerAddr(), "127.0.0.1:6060"; got != want {
		t.Errorf("profiler address %q, want %q (its log line)", got, want)
	}
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		t.Fatalf("the address it serves on: %v", err)
	}
	c.Close()
	if runtime.GOOS == "linux" {
		if rss, err := p.PeakRSS(); err != nil || rss <= 0 {
			t.Errorf("peak RSS %d, %v", rss, err)
		}
		if _, err := p.CPUTime(); err != nil {
			t.Errorf("CPU time: %v", err)
		}
	}
	if p.Exited() {
		t.Error("exited while serving")
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !p.Exited() {
		t.Error("not exited after stop")
	}
	if err := p.Stop(time.Second); err == nil {
		t.Error("a second stop succeeded")
	}
	if err := p.Kill(); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill after stop: %v, want %v", err, os.ErrProcessDone)
	}
}

func TestStartExitedEarly(t *testing.T) {
	begin := time.Now()
	_, err := start(t, "crash", Options{Name: "collector c1"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"collector c1 exited before serving (exit status 3)", "line 2 | line 3", "line 9"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q, want it to hold %q", msg, want)
		}
	}
	if strings.Contains(msg, "line 1 ") {
		t.Errorf("error %q keeps more than the last 8 lines", msg)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("took %s to notice the exit", d)
	}
}

func TestStartTimeoutKills(t *testing.T) {
	_, err := start(t, "silent", Options{Timeout: 200 * time.Millisecond})
	if err == nil || err.Error() != "helper not serving after 200ms: (no log output)" {
		t.Fatalf("error %v", err)
	}
	// Start reaps what it killed: nothing to clean up, nothing left over.
}

func TestStartContextDone(t *testing.T) {
	t.Setenv(helperEnv, "silent")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := Start(ctx, os.Args[0], []string{"-test.run=^$"}, Options{Name: "helper", Timeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "helper not serving after 1m0s") {
		t.Fatalf("error %v", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("took %s after the context ended", d)
	}
}

func TestStartNoBinary(t *testing.T) {
	_, err := Start(context.Background(), "/nonexistent/collector", nil, Options{Name: "collector", Timeout: time.Second})
	if err == nil || !strings.HasPrefix(err.Error(), "start collector: ") {
		t.Fatalf("error %v", err)
	}
}

func TestStartAtAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("PROC_TEST_ADDR", addr)
	p, err := start(t, "listen", Options{Addr: addr, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Errorf("address %q, want %q (not the log line's)", p.Addr(), addr)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if tail := p.Tail(); !strings.Contains(tail, "on stdout") {
		t.Errorf("tail %q lacks stdout", tail)
	}
}

func TestStopExitStatus(t *testing.T) {
	p, err := start(t, "termfail", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Stop(10 * time.Second)
	if err == nil || !strings.HasPrefix(err.Error(), "helper exit after SIGTERM: exit status 1: ") || !strings.HasSuffix(err.Error(), "drain failed") {
		t.Fatalf("error %v", err)
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	p, err := start(t, "stubborn", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Stop(200 * time.Millisecond)
	if err == nil || !strings.HasPrefix(err.Error(), "helper still running 200ms after SIGTERM; killed: ") {
		t.Fatalf("error %v", err)
	}
	if !p.Exited() {
		t.Error("not reaped after the kill")
	}
}

func TestKill(t *testing.T) {
	p, err := start(t, "serve", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Error("not reaped after the kill")
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("still serving after the kill")
	}
	if err := p.Kill(); err == nil || !strings.HasPrefix(err.Error(), "kill helper: ") {
		t.Errorf("second kill: %v", err)
	}
}

func TestLogTailFindsAddress(t *testing.T) {
	w := &logTail{ready: make(chan string, 1)}
	if got := w.tail(); got != "(no log output)" {
		t.Errorf("empty tail %q", got)
	}
	// Lines arrive in pieces; the address is taken from the started line only.
	w.Write([]byte(`{"msg":"opening","addr":"nope"}` + "\n" + `{"msg":"collector sta`))
	w.Write([]byte(`rted","addr":"127.0.0.1:4242"}` + "\n"))
	w.Write([]byte(`{"msg":"collector started","addr":"127.0.0.1:1"}` + "\n")) // only the first counts
	select {
	case got := <-w.ready:
		if got != "127.0.0.1:4242" {
			t.Errorf("address %q, want 127.0.0.1:4242", got)
		}
	default:
		t.Fatal("no address reported")
	}
	if tail := w.tail(); !strings.HasPrefix(tail, `{"msg":"opening"`) || strings.Count(tail, " | ") != 2 {
		t.Errorf("tail %q", tail)
	}
}

func TestParseCPUTime(t *testing.T) {
	// pid (comm) state ppid ... utime=250 stime=50 (fields 14, 15)
	stat := []byte("42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10\n")
	got, err := parseCPUTime(stat)
	if err != nil || got != 3*time.Second {
		t.Errorf("%s, %v; want 3s", got, err)
	}
	if _, err := parseCPUTime([]byte("42 (x) S 1")); err == nil {
		t.Error("short stat parsed")
	}
}

package natstest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// childEnv, set to a JSON Options, turns a test binary into a nats-server
// process (see ServeChildIfAsked): a node that a test can SIGKILL, which an
// embedded server's Shutdown (orderly: it flushes and says goodbye) is not.
const childEnv = "NATSTEST_CHILD"

// ServeChildIfAsked serves as a nats-server child and exits when the test
// binary was started as one by StartProc; otherwise it returns at once.
// Call it first thing in TestMain.
func ServeChildIfAsked() {
	cfg := os.Getenv(childEnv)
	if cfg == "" {
		return
	}
	os.Exit(serveChild(cfg))
}

func serveChild(cfg string) int {
	var o Options
	if err := json.Unmarshal([]byte(cfg), &o); err != nil {
		fmt.Fprintln(os.Stderr, "natstest child:", err)
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	s, err := Start(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natstest child:", err)
		return 1
	}
	fmt.Printf("ready %s\n", s.ClientURL())
	<-sigs
	Stop(s)
	return 0
}

// Proc is a nats-server running as a child process.
type Proc struct {
	Name string
	URL  string

	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{} // closed once the process is reaped
	once   sync.Once
}

// StartProc runs a server in a child process (this test binary again; its
// TestMain must call ServeChildIfAsked) and waits until it accepts clients.
// It is killed at cleanup if still running.
func StartProc(tb testing.TB, o Options) *Proc {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := json.Marshal(o)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proc{Name: o.Name, cmd: cmd, stderr: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start nats child: %v", err)
	}
	ready := make(chan string, 1)
	go func() { // owned: ends when the child closes its stdout (it exits)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- url
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(p.Kill)
	select {
	case p.URL = <-ready:
		return p
	case <-p.done:
		tb.Fatalf("nats child %s exited before ready: %s", o.Name, p.stderr)
	case <-time.After(ReadyTimeout):
		p.Kill()
		tb.Fatalf("nats child %s not ready in %s", o.Name, ReadyTimeout)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to be reaped.
func (p *Proc) Kill() {
	p.once.Do(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
}

// RunClusterProcs starts a JetStream cluster of n child processes on
// loopback and waits until JetStream answers through it.
func RunClusterProcs(tb testing.TB, n int) []*Proc {
	tb.Helper()
	ports, err := FreePorts(n)
	if err != nil {
		tb.Fatal(err)
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	dir := tb.TempDir()
	procs := make([]*Proc, n)
	for i := range n {
		procs[i] = StartProc(tb, Options{
			Dir:     filepath.Join(dir, fmt.Sprint("n", i)),
			Name:    fmt.Sprint("n", i),
			Cluster: &Cluster{Name: "edge", Port: ports[i], Routes: routes},
		})
	}
	url := procs[0].URL
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if jetStreamReady(url) {
			return procs
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatal("nats cluster: JetStream not available in 30s")
	return nil
}

func jetStreamReady(url string) bool {
	nc, err := nats.Connect(url)
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// ProcURLs is the client URLs of procs, comma-separated.
func ProcURLs(procs ...*Proc) string {
	urls := make([]string, len(procs))
	for i, p := range procs {
		urls[i] = p.URL
	}
	return strings.Join(urls, ",")
}

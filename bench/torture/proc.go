package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one collector process started by the harness. (httpbench
// has its own: the two experiments kill and restart differently, and this
// one must time each start from the exec.)
type process struct {
	cmd   *exec.Cmd
	log   *logWriter
	addr  string
	waitc chan error
	// started is when the exec was made: recovery times count from it.
	started time.Time
}

// startCollector runs bin with args (which must include -addr 127.0.0.1:0
// and -log-format json) and waits until it logs that it is serving, which it
// does only after binding its port.
func startCollector(ctx context.Context, bin string, args []string, timeout time.Duration) (*process, error) {
	lw := &logWriter{ready: make(chan string, 1)}
	cmd := exec.Command(bin, args...)
	// Its own process group: a Ctrl-C at the terminal reaches the harness,
	// which stops the collector itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = lw
	c := &process{cmd: cmd, log: lw, waitc: make(chan error, 1), started: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start collector: %w", err)
	}
	go func() { c.waitc <- cmd.Wait() }() // owned: ends when the process does; kill and stop reap it
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case c.addr = <-lw.ready:
		return c, nil
	case err := <-c.waitc:
		return nil, fmt.Errorf("collector exited before serving (%v): %s", err, lw.tail())
	case <-t.C:
	case <-ctx.Done():
	}
	cmd.Process.Kill()
	<-c.waitc
	return nil, fmt.Errorf("collector not serving after %s: %s", timeout, lw.tail())
}

// kill sends SIGKILL and reaps the process: a crash, nothing drained.
func (c *process) kill() error {
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill collector: %w", err)
	}
	<-c.waitc
	return nil
}

// stop sends SIGTERM (a clean drain) and waits for the exit, up to timeout;
// then it kills. Anything but a clean exit 0 is an error.
func (c *process) stop(timeout time.Duration) error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal collector: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-c.waitc:
		if err != nil {
			return fmt.Errorf("collector exit after SIGTERM: %v: %s", err, c.log.tail())
		}
		return nil
	case <-t.C:
		c.cmd.Process.Kill()
		<-c.waitc
		return fmt.Errorf("collector still running %s after SIGTERM; killed: %s", timeout, c.log.tail())
	}
}

// exited reports whether the process has ended (without reaping it twice).
func (c *process) exited() bool {
	select {
	case err := <-c.waitc:
		c.waitc <- err // keep it for kill/stop
		return true
	default:
		return false
	}
}

// peakRSS is the process's peak resident set size so far (VmHWM), in
// bytes. Linux only: elsewhere it fails and the value is left out.
func (c *process) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// logWriter takes the collector's JSON log lines: it reports the address
// from the "collector started" line, and keeps the last lines for errors.
type logWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
	ready chan string
	sent  bool
}

const keepLines = 8

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.lines = append(w.lines, line)
		if len(w.lines) > keepLines {
			w.lines = w.lines[1:]
		}
		if !w.sent {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "collector started" && rec.Addr != "" {
				w.sent = true
				w.ready <- rec.Addr
			}
		}
	}
	return len(p), nil
}

func (w *logWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) == 0 {
		return "(no log output)"
	}
	return strings.Join(w.lines, " | ")
}

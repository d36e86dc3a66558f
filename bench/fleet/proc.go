package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// collector is one collector process of the fleet.
type collector struct {
	id    string
	cmd   *exec.Cmd
	log   *logWriter
	addr  string
	waitc chan error
	// exited is set once stop or kill has reaped the process (by the
	// goroutine that called them).
	exited bool
}

// startCollector runs bin with args (which must include -addr 127.0.0.1:0
// and -log-format json) and waits until it logs that it serves: it does so
// only after binding its port and, with -sink nats, after the stream check.
func startCollector(ctx context.Context, id, bin string, args []string, timeout time.Duration) (*collector, error) {
	lw := &logWriter{ready: make(chan string, 1)}
	cmd := exec.Command(bin, args...)
	// Its own process group: a Ctrl-C at the terminal reaches the harness,
	// which stops the collectors itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = lw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start collector %s: %w", id, err)
	}
	c := &collector{id: id, cmd: cmd, log: lw, waitc: make(chan error, 1)}
	go func() { c.waitc <- cmd.Wait() }() // owned: ends with the process; stop/kill reap it
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case c.addr = <-lw.ready:
		return c, nil
	case err := <-c.waitc:
		return nil, fmt.Errorf("collector %s exited before serving (%v): %s", id, err, lw.tail())
	case <-t.C:
	case <-ctx.Done():
	}
	c.kill()
	return nil, fmt.Errorf("collector %s not serving after %s: %s", id, timeout, lw.tail())
}

// stop sends SIGTERM (a clean drain) and waits up to timeout, then kills.
// Anything but a clean exit is an error.
func (c *collector) stop(timeout time.Duration) error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal collector %s: %w", c.id, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-c.waitc:
		c.exited = true
		if err != nil {
			return fmt.Errorf("collector %s exit after SIGTERM: %v: %s", c.id, err, c.log.tail())
		}
		return nil
	case <-t.C:
		c.kill()
		return fmt.Errorf("collector %s still running %s after SIGTERM; killed: %s", c.id, timeout, c.log.tail())
	}
}

// kill ends the process at once and reaps it.
func (c *collector) kill() {
	c.cmd.Process.Kill()
	<-c.waitc
	c.exited = true
}

// logWriter takes a collector's JSON log lines: it reports the address from
// the "collector started" line and keeps the last lines for errors.
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

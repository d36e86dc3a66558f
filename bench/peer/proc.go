package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one system under test: our collector or the peer, started by
// the harness in its own process group.
type proc struct {
	cmd   *exec.Cmd
	log   *logTail
	addr  string // host:port it serves on
	waitc chan error
}

// start runs bin with args and waits until it serves: for our collector
// (addr "") its "collector started" log line names the address; for
// the peer, which listens on a port the harness chose, until addr accepts
// a connection.
func start(ctx context.Context, bin string, args []string, addr string, timeout time.Duration) (*proc, error) {
	lw := &logTail{ready: make(chan string, 1)}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lw, lw
	// Its own process group: a Ctrl-C at the terminal reaches the harness,
	// which stops the process itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, log: lw, waitc: make(chan error, 1)}
	go func() { p.waitc <- cmd.Wait() }() // owned: ends when the process does; stop and kill reap it
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case a := <-lw.ready:
			if addr == "" {
				p.addr = a
				return p, nil
			}
		case <-poll.C:
			if addr == "" {
				continue
			}
			if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
				c.Close()
				p.addr = addr
				return p, nil
			}
			continue
		case err := <-p.waitc:
			return nil, fmt.Errorf("%s exited before serving (%v): %s", bin, err, lw.tail())
		case <-deadline.C:
		case <-ctx.Done():
		}
		cmd.Process.Kill()
		<-p.waitc
		return nil, fmt.Errorf("%s not serving after %s: %s", bin, timeout, lw.tail())
	}
}

// stop sends SIGTERM and waits for a clean exit, up to timeout; then it
// kills. Anything but exit 0 is an error.
func (p *proc) stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-p.waitc:
		if err != nil {
			return fmt.Errorf("exit after SIGTERM: %v: %s", err, p.log.tail())
		}
		return nil
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.waitc
		return fmt.Errorf("still running %s after SIGTERM; killed: %s", timeout, p.log.tail())
	}
}

// kill sends SIGKILL, the crash the kill check is about, and reaps.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.waitc
}

// peakRSS is the process's peak resident set size so far (VmHWM), bytes.
func (p *proc) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
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

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux the harness runs on.
const clockTicks = 100

// cpuTime is the CPU time the process has used so far (utime + stime).
func (p *proc) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted after
	// its closing parenthesis: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// logTail keeps the last lines a process wrote, for error messages, and
// reports the address from our collector's "collector started" line.
type logTail struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
	ready chan string
	sent  bool
}

const keepLines = 8

func (w *logTail) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
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
	return len(b), nil
}

func (w *logTail) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) == 0 {
		return "(no log output)"
	}
	return strings.Join(w.lines, " | ")
}

// freePort returns a loopback address nothing listens on right now, for
// the peer, whose config needs a port before it starts.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

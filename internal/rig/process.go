package rig

// The process: how the harness runs the collector (and, in bench/peer, the
// OpenTelemetry Collector it is compared with). One home, because the
// experiments had grown four near-identical copies (own process group, one
// goroutine owning cmd.Wait, readiness from the "collector started" log line,
// SIGTERM then SIGKILL, the log tail in errors, VmHWM) that had begun to
// drift apart in small ways. Experiments differ in what they do with a
// process, not in how it is run.

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

// Options says how to run a process and how to tell that it serves.
type Options struct {
	// Name names the process in errors: "collector", "collector c3", or
	// the binary's path.
	Name string
	// Addr, when set, is the address the process was told to listen on: it
	// serves once Addr accepts a TCP connection (polled every 5ms). When
	// empty, it serves at its JSON log line
	// {"msg":"collector started","addr":...}, which the collector writes
	// only after binding its port, at the address that line names.
	Addr string
	// Stdout keeps standard output in the log tail as well as standard
	// error. Otherwise it is discarded (a collector with the webhook or
	// nats sink writes nothing there).
	Stdout bool
	// Timeout bounds the wait until it serves.
	Timeout time.Duration
}

// Process is one process started by Start. Its methods may be called from
// several goroutines.
type Process struct {
	name    string
	addr    string
	started time.Time // just before the exec
	cmd     *exec.Cmd
	log     *logTail
	// done is closed once cmd.Wait has returned; err is its result.
	done chan struct{}
	err  error
}

// Start runs bin with args in its own process group (a Ctrl-C at the
// terminal reaches the harness, which stops the process itself) and waits
// until it serves, see Options. If it exits first, or does not serve within
// o.Timeout or before ctx ends, it is killed and reaped, and the error
// carries the last lines it wrote.
func Start(ctx context.Context, bin string, args []string, o Options) (*Process, error) {
	lw := &logTail{ready: make(chan string, 1)}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = lw
	if o.Stdout {
		cmd.Stdout = lw
	}
	cmd.SysProcAttr = ownGroup()
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Name, err)
	}
	p := &Process{name: o.Name, started: started, cmd: cmd, log: lw, done: make(chan struct{})}
	go func() { // owned: ends when the process does; Stop and Kill reap it
		p.err = cmd.Wait()
		close(p.done)
	}()

	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	ready := lw.ready
	var poll <-chan time.Time
	if o.Addr != "" {
		ready = nil // the log line does not count
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case a := <-ready:
			p.addr = a
			return p, nil
		case <-poll:
			if c, err := net.DialTimeout("tcp", o.Addr, 100*time.Millisecond); err == nil {
				c.Close()
				p.addr = o.Addr
				return p, nil
			}
			continue
		case <-p.done:
			return nil, fmt.Errorf("%s exited before serving (%v): %s", o.Name, p.err, lw.tail())
		case <-deadline.C:
		case <-ctx.Done():
		}
		cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("%s not serving after %s: %s", o.Name, o.Timeout, lw.tail())
	}
}

// Addr is the host:port the process serves on.
func (p *Process) Addr() string { return p.addr }

// URL is path on the process: "http://" + Addr() + path.
func (p *Process) URL(path string) string { return "http://" + p.addr + path }

// Started is when the process was exec'd: a restart's recovery counts from it.
func (p *Process) Started() time.Time { return p.started }

// ProfilerAddr is the host:port of the collector's profiler when it was
// started with -pprof-addr (127.0.0.1:0 picks a free port), else "".
func (p *Process) ProfilerAddr() string {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	return p.log.profiler
}

// Tail is the last lines the process wrote (at most 8), joined by " | ",
// for error messages.
func (p *Process) Tail() string { return p.log.tail() }

// Stop sends SIGTERM (a clean drain) and waits for the exit, up to
// timeout; then it kills. Anything but a clean exit 0 is an error, as is a
// process that had already ended and been reaped.
func (p *Process) Stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s exit after SIGTERM: %v: %s", p.name, p.err, p.log.tail())
		}
		return nil
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s still running %s after SIGTERM; killed: %s", p.name, timeout, p.log.tail())
	}
}

// Kill sends SIGKILL (a crash: nothing drained) and reaps the process. It
// fails, without waiting, when the signal cannot be sent: when the process
// had already ended on its own and been reaped, for one.
func (p *Process) Kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// Wait waits, at most timeout, for the process to end on its own, and
// returns its exit error (nil for status 0); exited is false when it is
// still running.
func (p *Process) Wait(timeout time.Duration) (exited bool, err error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true, p.err
	case <-t.C:
		return false, nil
	}
}

// Exited reports whether the process has ended and been reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// PeakRSS is the process's peak resident set size so far (VmHWM), in
// bytes. Linux only: elsewhere it fails and the value is left out.
func (p *Process) PeakRSS() (int64, error) {
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

// CPUTime is the CPU time the process has used so far (utime + stime).
// Linux only, like PeakRSS.
func (p *Process) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return parseCPUTime(b)
}

// parseCPUTime reads utime + stime from the contents of /proc/<pid>/stat.
func parseCPUTime(b []byte) (time.Duration, error) {
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

// logTail takes what a process writes: it keeps the last lines for error
// messages and reports the address from the first JSON "collector started"
// line on ready.
type logTail struct {
	mu    sync.Mutex
	buf   []byte
	lines []string
	ready chan string // buffered: one address, sent once
	sent  bool
	// profiler is the address of the collector's -pprof-addr listener,
	// from its "profiler listening" line (logged before "collector started").
	profiler string
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
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Addr != "" {
				switch {
				case rec.Msg == "collector started":
					w.sent = true
					w.ready <- rec.Addr
				case strings.HasPrefix(rec.Msg, "profiler listening"):
					w.profiler = rec.Addr
				}
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

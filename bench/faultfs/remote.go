package faultfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// A Remote is a faultfs served by a child process: this executable, run
// again with ChildMain taking over. The harness uses it so that no process
// that serves a mount ever maps a file on it (the page-fault deadlock the
// package doc warns of): the harness reads the databases on the mount
// in-process, and runs the store there in the storage experiment.
//
// The child exits, unmounting, when its standard input closes: a harness
// that dies, even by SIGKILL, leaves no mount behind.
type Remote struct {
	mountpoint, data string

	mu   sync.Mutex // one request at a time
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	done chan struct{} // closed once the child was reaped
	err  error         // its exit
}

// childEnv carries a child's configuration; its presence makes ChildMain serve.
const childEnv = "EDGECOLLECTOR_FAULTFS_CHILD"

type childConfig struct {
	Dir, Mountpoint string
	Options         Options
}

// request and reply are the control protocol, one JSON line each way.
type request struct {
	Op      string        `json:"op"` // cut, fail-fsync, latency, budget, stats
	Pattern string        `json:"pattern,omitempty"`
	Errno   int           `json:"errno,omitempty"`
	Latency time.Duration `json:"latency,omitempty"`
	Jitter  time.Duration `json:"jitter,omitempty"`
	N       int64         `json:"n,omitempty"`
}

type reply struct {
	Err   string    `json:"err,omitempty"`
	Cut   *CutStats `json:"cut,omitempty"`
	Stats *Stats    `json:"stats,omitempty"`
	Data  string    `json:"data,omitempty"`
}

// StartRemote mounts a faultfs at mountpoint over dir from a child process
// (see Remote) and returns once it is mounted. The executable must call
// ChildMain first thing in main (or TestMain).
func StartRemote(dir, mountpoint string, o Options) (*Remote, error) {
	if err := Usable(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	cfg, _ := json.Marshal(childConfig{Dir: dir, Mountpoint: mountpoint, Options: o})
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	cmd.Stderr = os.Stderr
	// Its own process group: a Ctrl-C at the terminal reaches the harness,
	// which closes the mount in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("faultfs: start server: %w", err)
	}
	r := &Remote{mountpoint: mountpoint, cmd: cmd, in: in, out: bufio.NewScanner(outPipe), done: make(chan struct{})}
	r.out.Buffer(make([]byte, 64<<10), 1<<20)
	go func() { // owned: ends when the child does; Close waits for it
		r.err = cmd.Wait()
		close(r.done)
	}()
	rep, err := r.read()
	if err != nil {
		in.Close()
		<-r.done
		return nil, fmt.Errorf("faultfs: server did not mount: %w (%v)", err, r.err)
	}
	r.data = rep.Data
	return r, nil
}

// Mountpoint is where the filesystem is mounted.
func (r *Remote) Mountpoint() string { return r.mountpoint }

// DataDir is the backing directory (see FS.DataDir).
func (r *Remote) DataDir() string { return r.data }

// Cut is FS.Cut in the child.
func (r *Remote) Cut() (CutStats, error) {
	rep, err := r.call(request{Op: "cut"})
	if err != nil || rep.Cut == nil {
		return CutStats{}, err
	}
	return *rep.Cut, nil
}

// FailFsync is FS.FailFsync in the child.
func (r *Remote) FailFsync(pattern string, errno syscall.Errno) error {
	_, err := r.call(request{Op: "fail-fsync", Pattern: pattern, Errno: int(errno)})
	return err
}

// SetFsyncLatency is FS.SetFsyncLatency in the child.
func (r *Remote) SetFsyncLatency(latency, jitter time.Duration) error {
	_, err := r.call(request{Op: "latency", Latency: latency, Jitter: jitter})
	return err
}

// SetSpaceBudget is FS.SetSpaceBudget in the child.
func (r *Remote) SetSpaceBudget(n int64) error {
	_, err := r.call(request{Op: "budget", N: n})
	return err
}

// Stats is FS.Stats in the child.
func (r *Remote) Stats() (Stats, error) {
	rep, err := r.call(request{Op: "stats"})
	if err != nil || rep.Stats == nil {
		return Stats{}, err
	}
	return *rep.Stats, nil
}

// Close has the child close the filesystem (FS.Close: DataDir then holds
// what a cut would leave) and waits for it to exit.
func (r *Remote) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.in.Close()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		return errors.New("faultfs: server did not exit within 30s of its close; killed")
	}
	if r.err != nil {
		return fmt.Errorf("faultfs: server: %w", r.err)
	}
	return nil
}

func (r *Remote) call(q request) (reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(q)
	if _, err := r.in.Write(append(b, '\n')); err != nil {
		return reply{}, fmt.Errorf("faultfs: %s: %w", q.Op, err)
	}
	rep, err := r.read()
	if err != nil {
		return rep, fmt.Errorf("faultfs: %s: %w", q.Op, err)
	}
	return rep, nil
}

func (r *Remote) read() (reply, error) {
	if !r.out.Scan() {
		if err := r.out.Err(); err != nil {
			return reply{}, err
		}
		return reply{}, errors.New("server exited")
	}
	var rep reply
	if err := json.Unmarshal(r.out.Bytes(), &rep); err != nil {
		return reply{}, fmt.Errorf("bad reply %q: %w", r.out.Bytes(), err)
	}
	if rep.Err != "" {
		return rep, errors.New(rep.Err)
	}
	return rep, nil
}

// ChildMain serves a faultfs when this process was started by StartRemote,
// and returns false at once otherwise. Call it first thing in main and in
// TestMain; when it returns true the process must exit, with status 1 if
// err is not nil.
func ChildMain() (child bool, err error) {
	spec, ok := os.LookupEnv(childEnv)
	if !ok {
		return false, nil
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		return true, fmt.Errorf("faultfs child: %w", err)
	}
	out := json.NewEncoder(os.Stdout)
	f, err := Mount(cfg.Dir, cfg.Mountpoint, cfg.Options)
	if err != nil {
		out.Encode(reply{Err: err.Error()})
		return true, err
	}
	out.Encode(reply{Data: f.DataDir()})
	// SIGTERM and SIGINT are ignored: the parent ends the child by closing
	// its input, after the processes using the mount are gone.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var q request
		var rep reply
		if err := json.Unmarshal(in.Bytes(), &q); err != nil {
			rep.Err = err.Error()
			out.Encode(rep)
			continue
		}
		switch q.Op {
		case "cut":
			cs, err := f.Cut()
			rep.Cut = &cs
			if err != nil {
				rep.Err = err.Error()
			}
		case "fail-fsync":
			f.FailFsync(q.Pattern, syscall.Errno(q.Errno))
		case "latency":
			f.SetFsyncLatency(q.Latency, q.Jitter)
		case "budget":
			f.SetSpaceBudget(q.N)
		case "stats":
			st := f.Stats()
			rep.Stats = &st
		default:
			rep.Err = fmt.Sprintf("unknown op %q", q.Op)
		}
		out.Encode(rep)
	}
	return true, f.Close()
}

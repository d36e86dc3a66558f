package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"edgecollector/bench/record"
	"edgecollector/bench/sysinfo"
	"edgecollector/internal/rig"
)

// sessionFlags are the flags every measuring command shares.
type sessionFlags struct {
	dbDir     string
	collector string
	allowBusy bool
	maxBusy   float64
}

func (f *sessionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dbDir, "dbdir", os.TempDir(), "`directory` for the cells' databases (a disk-backed filesystem: fsync is what is measured)")
	fs.StringVar(&f.collector, "collector", "", "collector `binary` for the experiments that run it (default: build it with CGO_ENABLED=0)")
	fs.BoolVar(&f.allowBusy, "allow-busy", false, "run on a busy machine anyway, and mark the results so")
	fs.Float64Var(&f.maxBusy, "max-busy", 0.25, "refuse to start when more than this `fraction` of all CPUs is busy before the run")
}

// session is the measuring context of one command: a scratch directory for
// databases, the machine description, and the meter of foreign CPU use.
type session struct {
	meta    *record.Meta
	scratch string
	meter   *sysinfo.Meter
	stderr  io.Writer
}

// openSession checks the machine can be measured on, describes it, and
// builds the collector when an experiment needs it.
func openSession(ctx context.Context, f sessionFlags, profile string, needCollector bool, stderr io.Writer) (*session, error) {
	if f.maxBusy <= 0 || f.maxBusy > 1 {
		return nil, usageError{fmt.Errorf("-max-busy: want a fraction in (0, 1], not %v", f.maxBusy)}
	}
	if err := os.MkdirAll(f.dbDir, 0o755); err != nil {
		return nil, fmt.Errorf("-dbdir: %w", err)
	}
	scratch, err := os.MkdirTemp(f.dbDir, "edgecollector-bench-*")
	if err != nil {
		return nil, fmt.Errorf("-dbdir: %w", err)
	}
	s := &session{scratch: scratch, stderr: stderr}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()

	m, sw := sysinfo.Capture(ctx, scratch)
	switch m.Filesystem {
	case "tmpfs", "ramfs":
		return nil, fmt.Errorf("-dbdir %s is on %s, where fsync costs nothing: the results would mean nothing; pass -dbdir on a disk-backed filesystem", f.dbDir, m.Filesystem)
	}
	s.meta = &record.Meta{MachineID: sysinfo.MachineID(m), Machine: m, Software: sw}
	s.meta.Run.CommandLine = append([]string{"bench"}, os.Args[1:]...)
	s.meta.Run.Profile = profile

	fmt.Fprintf(stderr, "bench: machine %s: %s, %d cores, %s on %s\n", s.meta.MachineID, m.CPU, m.Cores, m.Filesystem, f.dbDir)
	busy, known := sysinfo.SampleBusy(ctx, 2*time.Second)
	s.meta.Load.LoadAvg = sysinfo.LoadAvg()
	s.meta.Load.BusyAtStart = round3(busy)
	if known && busy > f.maxBusy {
		msg := fmt.Sprintf("machine busy: %.0f%% of all CPUs in use by other processes before the start (limit %.0f%%; load average %.2f)",
			100*busy, 100*f.maxBusy, s.meta.Load.LoadAvg[0])
		if !f.allowBusy {
			return nil, fmt.Errorf("%s; refusing to measure: wait until it is idle, or pass -allow-busy to run anyway with the results marked busy", msg)
		}
		s.meta.Load.Busy, s.meta.Load.Note = true, msg
		fmt.Fprintf(stderr, "bench: WARNING: %s; results will be marked busy\n", msg)
	}
	if s.meta.Machine.FsyncPerSec, err = sysinfo.FsyncCeiling(scratch, time.Second); err != nil {
		return nil, fmt.Errorf("measure fsync ceiling: %w", err)
	}
	s.meta.Machine.FsyncPerSec = float64(int64(s.meta.Machine.FsyncPerSec))
	fmt.Fprintf(stderr, "bench: fsync ceiling %.0f/s (4 KiB append + fsync)\n", s.meta.Machine.FsyncPerSec)

	if needCollector {
		if f.collector == "" {
			fmt.Fprintf(stderr, "bench: building the collector (pass -collector to use a built one)\n")
			bin, err := rig.Build(ctx, scratch, false)
			if err != nil {
				return nil, fmt.Errorf("%w (run bench from the repository, or pass -collector)", err)
			}
			f.collector = bin
		}
		if _, err := os.Stat(f.collector); err != nil {
			return nil, fmt.Errorf("-collector: %w", err)
		}
		s.meta.Software.CollectorPath = f.collector
	}
	s.meter = sysinfo.StartMeter()
	ok = true
	return s, nil
}

// collectorBinary is the binary the experiments that run the collector run.
func (s *session) collectorBinary() string { return s.meta.Software.CollectorPath }

// finish records how busy the machine was during the run.
func (s *session) finish() {
	foreign := s.meter.Foreign()
	s.meta.Load.ForeignCPU = round3(foreign)
	const limit = 0.15
	if foreign > limit {
		msg := fmt.Sprintf("other processes used %.0f%% of all CPUs during the run (limit %.0f%%)", 100*foreign, 100*limit)
		s.meta.Load.Busy = true
		if s.meta.Load.Note != "" {
			s.meta.Load.Note += "; "
		}
		s.meta.Load.Note += msg
		fmt.Fprintf(s.stderr, "bench: WARNING: %s; results marked busy\n", msg)
	}
}

func (s *session) close() {
	os.RemoveAll(s.scratch)
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// Package storage is the storage-class experiment: "which write mode wins,
// and by how much" depends on what an fsync costs, and edge boxes run on SD
// cards and eMMC, not NVMe. It sweeps the fsync latency of a faultfs mount
// (each point labelled with the storage class it stands for) and measures,
// at each point, the three write modes in-process (storebench's throughput
// cell) and over HTTP (httpbench's closed-loop cell), and the
// OpenTelemetry Collector with fsync: true (the peer's load cell) at a few
// points: durable events/s and p99.
//
// Every cell runs on the same FUSE mount, the pass-through point too, so
// the systems and modes are compared within the FUSE setting: the FUSE
// layer itself costs a share of the commit rate that bare disk does not.
package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/httpbench"
	"edgecollector/bench/peer"
	"edgecollector/bench/record"
	"edgecollector/bench/storebench"
	"edgecollector/collector/store"
)

// A Class is a point of the sweep: an fsync latency and the storage it
// stands for.
type Class struct {
	Name    string        // the cells' class: "sdcard"
	Latency time.Duration // 0: pass-through to the disk under the mount
	Label   string        // for the report: "SD card"
}

// Classes are the points of the full sweep. The latencies are of the order
// an fsync (a cache flush) takes on each kind of device; they are not
// measurements of any one device.
var Classes = []Class{
	{"disk", 0, "this machine's disk (pass-through)"},
	{"nvme", 500 * time.Microsecond, "NVMe SSD"},
	{"ssd", 2 * time.Millisecond, "SATA SSD"},
	{"emmc", 10 * time.Millisecond, "eMMC or a hard disk"},
	{"sdcard", 25 * time.Millisecond, "SD card"},
}

// ClassOf returns the class named name.
func ClassOf(name string) (Class, bool) {
	i := slices.IndexFunc(Classes, func(c Class) bool { return c.Name == name })
	if i < 0 {
		return Class{}, false
	}
	return Classes[i], true
}

// Config configures the storage experiment.
type Config struct {
	Binary string // the collector
	Peer   string // the OpenTelemetry Collector build; empty leaves its cells out
	DBDir  string // where the mount and its backing directory go (disk-backed)
	Modes  []store.Mode
	// Classes are the sweep's points; PeerClasses those where the peer runs.
	Classes     []Class
	PeerClasses []string
	// Jitter is the seeded jitter added to each fsync, as a fraction of its
	// latency (0.2: up to +20%).
	Jitter float64

	Producers int           // in-process cells: producers, one event per durable transaction
	Conns     int           // HTTP and peer cells: connections in a closed loop, single-event requests
	Warm, Dur time.Duration // in-process cells
	// HTTPWarm and HTTPDur are the HTTP and peer cells' ramp and window.
	HTTPWarm, HTTPDur time.Duration

	// Reps and Warmup are the experiment's own repetitions (bench.Experiment).
	Reps, Warmup int
}

// mount is the experiment's one faultfs mount, made on first use.
type mount struct {
	dir  string
	once sync.Once
	fs   *faultfs.Remote
	err  error
}

func (m *mount) get() (*faultfs.Remote, error) {
	m.once.Do(func() {
		mnt := filepath.Join(m.dir, "mnt")
		if m.err = os.MkdirAll(mnt, 0o755); m.err != nil {
			return
		}
		m.fs, m.err = faultfs.StartRemote(filepath.Join(m.dir, "state"), mnt, faultfs.Options{Seed: 1})
	})
	return m.fs, m.err
}

// Experiment returns the storage experiment: per class, the in-process
// cells of every mode, the HTTP cells, and the peer's where it runs.
func (cfg Config) Experiment() *bench.Experiment {
	m := &mount{dir: filepath.Join(cfg.DBDir, "storage")}
	mnt := filepath.Join(m.dir, "mnt")
	inner := []*bench.Experiment{
		storebench.Throughput{DBDir: mnt, Modes: cfg.Modes, Producers: []int{cfg.Producers}, Indexed: []bool{false}, Warm: cfg.Warm, Dur: cfg.Dur}.Experiment(),
		httpbench.Config{Binary: cfg.Binary, DBDir: mnt, Modes: cfg.Modes, Loads: []httpbench.Load{{Conns: cfg.Conns, Batch: 1}},
			Warm: cfg.HTTPWarm, Dur: cfg.HTTPDur, Timeout: 10 * time.Second, MaxBacklog: 0}.Experiment(),
	}
	if cfg.Peer != "" && len(cfg.PeerClasses) > 0 {
		inner = append(inner, peer.Config{Collector: cfg.Binary, Peer: cfg.Peer, Dir: mnt, Systems: []peer.System{peer.OtelFsync},
			Conns: cfg.Conns, Batches: []int{1}, Warm: cfg.HTTPWarm, Dur: cfg.HTTPDur,
			Timeout: 10 * time.Second, DrainTimeout: 60 * time.Second}.Experiment())
	}
	var names []string
	for _, c := range cfg.Classes {
		names = append(names, fmt.Sprintf("%s %s", c.Name, latencyLabel(c.Latency)))
	}
	e := &bench.Experiment{
		Name: "storage",
		Plan: fmt.Sprintf("Every cell on one faultfs mount whose fsync costs a class's latency (plus up to %.0f%% seeded jitter; one flush at a time) instead of the disk's flush: %s. "+
			"In-process: the store, %d producers, one event per durable transaction, %s ramp dropped, %s measured. "+
			"HTTP: the collector binary, %d connections in a closed loop, single-event requests, %s ramp, %s measured. "+
			"Peer: the OpenTelemetry Collector (fsync: true) under the same HTTP load at %v.",
			cfg.Jitter*100, strings.Join(names, ", "), cfg.Producers, cfg.Warm, cfg.Dur, cfg.Conns, cfg.HTTPWarm, cfg.HTTPDur, cfg.PeerClasses),
		Reps:   cfg.Reps,
		Warmup: cfg.Warmup,
	}
	for _, x := range inner {
		for _, u := range x.Units {
			if !slices.ContainsFunc(e.Units, func(v record.Unit) bool { return v.Name == u.Name }) {
				e.Units = append(e.Units, u)
			}
		}
	}
	e.Close = func() error {
		var errs []error
		for _, x := range inner {
			if x.Close != nil {
				errs = append(errs, x.Close())
			}
		}
		if m.fs != nil {
			errs = append(errs, m.fs.Close())
		}
		os.RemoveAll(m.dir)
		return errors.Join(errs...)
	}
	names2 := map[string]string{"Throughput": "StorageStore", "HTTPMax": "StorageHTTP", "PeerLoad": "StoragePeer"}
	for _, c := range cfg.Classes {
		for _, x := range inner {
			for _, ic := range x.Cells {
				if ic.Name == "PeerLoad" && !slices.Contains(cfg.PeerClasses, c.Name) {
					continue
				}
				e.Cells = append(e.Cells, cfg.wrap(m, c, names2[ic.Name], ic))
			}
		}
	}
	return e
}

// wrap makes an inner cell a storage cell: the class's latency is set on
// the mount before it runs, and the class goes into its configuration.
func (cfg Config) wrap(m *mount, c Class, name string, ic bench.Cell) bench.Cell {
	conf := []record.KV{ic.Config[0], {Key: "class", Value: c.Name}, {Key: "fsync-ms", Value: strconv.FormatFloat(c.Latency.Seconds()*1000, 'f', -1, 64)}}
	for _, kv := range ic.Config[1:] {
		if kv.Key == "producers" || kv.Key == "conns" {
			conf = append(conf, kv)
		}
	}
	run := ic.Run
	return bench.Cell{
		Name:   name,
		Config: conf,
		Cost:   ic.Cost,
		Run: func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
			fs, err := m.get()
			if err != nil {
				return bench.Sample{}, err
			}
			if err := fs.SetFsyncLatency(c.Latency, time.Duration(float64(c.Latency)*cfg.Jitter)); err != nil {
				return bench.Sample{}, err
			}
			return run(ctx, rep)
		},
	}
}

func latencyLabel(d time.Duration) string {
	if d == 0 {
		return "(pass-through)"
	}
	return fmt.Sprintf("(%s ms)", strconv.FormatFloat(d.Seconds()*1000, 'f', -1, 64))
}

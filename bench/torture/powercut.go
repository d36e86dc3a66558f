package torture

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/faultfs"
	"edgecollector/bench/peer"
	"edgecollector/bench/record"
	"edgecollector/collector/store"
	"edgecollector/internal/rig"
)

// Powercut configures the powercut experiment: the torture's kills, each
// followed by a power cut of the filesystem the collector's buffer lives
// on (a faultfs mount, which forgets everything not fsync'd), then the same
// ledger. A SIGKILL alone never tests the 200: the page cache outlives the
// process.
type Powercut struct {
	Binary string // the collector
	// SyncOffBinary is the negative control: the collector built with
	// -tags harness_syncoff, whose buffer runs synchronous=OFF. When empty
	// it is built on first use.
	SyncOffBinary string
	// Peer is the OpenTelemetry Collector build; empty leaves its cells out.
	Peer  string
	DBDir string // where the mounts and their backing directories go (disk-backed)
	Modes []store.Mode

	// Reps and Warmup are the experiment's own repetitions (bench.Experiment).
	Reps, Warmup int
	// Cuts is how many times one repetition cuts the power, per mode;
	// ControlCuts for the negative control.
	Cuts, ControlCuts int
	// MinUp and MaxUp bound how long a collector serves before a cut.
	MinUp, MaxUp time.Duration
	// Torn makes each cut keep a seeded share of the sectors written since
	// the last fsync (faultfs.Options.Torn).
	Torn bool
	Load LoadConfig

	// The peer cells: per repetition, one cut of each system under
	// PeerConns connections of PeerBatch-event requests, PeerKillAfter in.
	PeerConns, PeerBatch int
	PeerKillAfter        time.Duration
}

// The negative control's mode label and build tag.
const (
	ControlMode = "group-syncoff"
	syncOffTag  = "harness_syncoff"
)

var (
	unitCuts       = record.Unit{Name: "cuts", Better: 0}
	unitCutsUpload = record.Unit{Name: "cuts-in-upload", Better: 0}
	unitForgotten  = record.Unit{Name: "forgotten-pages", Better: 0}
	unitTorn       = record.Unit{Name: "torn-sectors", Better: 0}
	unitIntegrity  = record.Unit{Name: "integrity-failures", Better: -1}
	unitReused     = record.Unit{Name: "reused-ids", Better: -1}
)

func powercutUnits() []record.Unit {
	units := []record.Unit{unitCuts, unitCutsUpload, unitAcked, unitLost, unitDups, unitReused, unitIntegrity, unitForgotten, unitTorn, unitUnanswered, unitRecP50, unitRecMax, unitReadyP50, unitReadyMax}
	for _, u := range peer.CutUnits {
		if !slices.ContainsFunc(units, func(v record.Unit) bool { return v.Name == u.Name }) {
			units = append(units, u)
		}
	}
	return units
}

// PowercutPeerSystems are the systems of the peer cells: ours beside the
// OpenTelemetry Collector with fsync on and off, under the same cut.
var PowercutPeerSystems = []peer.System{peer.OursGroup, peer.OtelFsync, peer.OtelNoFsync}

// pcShared is what the cells of one experiment share.
type pcShared struct {
	shared
	dir       string // scratch for the control's build and the peer's mount
	buildOnce sync.Once
	syncOff   string
	buildErr  error

	peerMu  sync.Mutex
	peerFS  *faultfs.Remote
	peerExp *bench.Experiment
}

func (sh *pcShared) close() error {
	err := sh.shared.close()
	if sh.peerExp != nil && sh.peerExp.Close != nil {
		err = errors.Join(err, sh.peerExp.Close())
	}
	if sh.peerFS != nil {
		err = errors.Join(err, sh.peerFS.Close())
	}
	if sh.dir != "" {
		os.RemoveAll(sh.dir)
	}
	return err
}

// Experiment returns the powercut experiment: a cell per mode, the
// negative control, and (with a peer) a cell per peer system.
func (cfg Powercut) Experiment() *bench.Experiment {
	sh := &pcShared{}
	e := &bench.Experiment{
		Name: "powercut",
		Plan: fmt.Sprintf("The collector binary with its buffer on a faultfs mount (a FUSE filesystem with its own page cache: a cut drops everything not fsync'd, "+
			"and undoes creates, unlinks and renames whose directory was not fsync'd after them; torn writes %v), -sink webhook to a recording receiver in the harness "+
			"(-upload-interval 20ms, -upload-batch 200). %d producers send single events and %d send %d-event batches, closed loop, payloads with hostile text. "+
			"Each repetition cuts the power %d times per mode after %s-%s of service (a third while the receiver holds a batch unanswered, a third just after it answered): "+
			"SIGKILL, cut (unmount, forget, remount), SQLite's integrity_check on what the cut left, restart on the same file; then it drains and checks the ledger. "+
			"Negative control: the same cells with the collector built with -tags %s (synchronous=OFF), %d cuts, which must lose acknowledged events. "+
			"Peer: per repetition one cut of each of %v on another mount, the uplink down during %d connections of %d-event requests for %s, after a first start and stop whose directories the harness fsyncs; then restart and drain; lost acknowledged events counted.",
			cfg.Torn, cfg.Load.Singles, cfg.Load.Batchers, cfg.Load.Batch, cfg.Cuts, cfg.MinUp, cfg.MaxUp, syncOffTag, cfg.ControlCuts,
			PowercutPeerSystems, cfg.PeerConns, cfg.PeerBatch, cfg.PeerKillAfter),
		Units:  powercutUnits(),
		Close:  sh.close,
		Reps:   cfg.Reps,
		Warmup: cfg.Warmup,
	}
	cost := func(cuts int) time.Duration {
		return time.Duration(cuts)*((cfg.MinUp+cfg.MaxUp)/6+2*cfg.MinUp/3+400*time.Millisecond) + 2*time.Second
	}
	for _, m := range cfg.Modes {
		e.Cells = append(e.Cells, bench.Cell{
			Name:   "Powercut",
			Config: []record.KV{{Key: "mode", Value: string(m)}, {Key: "cuts", Value: strconv.Itoa(cfg.Cuts)}},
			Cost:   cost(cfg.Cuts),
			Run:    cfg.run(sh, m, false),
		})
	}
	if cfg.ControlCuts > 0 {
		e.Cells = append(e.Cells, bench.Cell{
			Name:   "Powercut",
			Config: []record.KV{{Key: "mode", Value: ControlMode}, {Key: "cuts", Value: strconv.Itoa(cfg.ControlCuts)}},
			Cost:   cost(cfg.ControlCuts),
			Run:    cfg.run(sh, store.Group, true),
		})
	}
	if cfg.Peer != "" {
		for _, sys := range PowercutPeerSystems {
			e.Cells = append(e.Cells, bench.Cell{
				Name:   "PowercutPeer",
				Config: []record.KV{{Key: "mode", Value: string(sys)}, {Key: "batch", Value: strconv.Itoa(cfg.PeerBatch)}, {Key: "conns", Value: strconv.Itoa(cfg.PeerConns)}},
				Cost:   cfg.PeerKillAfter + 5*time.Second,
				Run:    cfg.runPeer(sh, sys),
			})
		}
	}
	return e
}

// scratch is the experiment's own directory under DBDir.
func (cfg Powercut) scratch(sh *pcShared) (string, error) {
	if sh.dir == "" {
		d, err := os.MkdirTemp(cfg.DBDir, "powercut-*")
		if err != nil {
			return "", err
		}
		sh.dir = d
	}
	return sh.dir, nil
}

// syncOffBinary returns the negative control's binary, built on first use.
func (cfg Powercut) syncOffBinary(ctx context.Context, sh *pcShared) (string, error) {
	if cfg.SyncOffBinary != "" {
		return cfg.SyncOffBinary, nil
	}
	sh.buildOnce.Do(func() {
		dir, err := cfg.scratch(sh)
		if err != nil {
			sh.buildErr = err
			return
		}
		sh.syncOff, sh.buildErr = BuildSyncOff(ctx, dir)
	})
	return sh.syncOff, sh.buildErr
}

// BuildSyncOff builds the negative control, the collector with -tags
// harness_syncoff, into dir, from the module the current directory belongs to.
func BuildSyncOff(ctx context.Context, dir string) (string, error) {
	root, err := rig.ModuleRoot(ctx)
	if err != nil {
		return "", fmt.Errorf("build the negative control: %w", err)
	}
	bin := filepath.Join(dir, "collector-syncoff")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", syncOffTag, "-o", bin, "./collector/cmd/collector")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the negative control: %v: %s", err, out)
	}
	return bin, nil
}

// mountCell mounts a fresh faultfs for a cell under dir, with a directory
// for the buffer made durable first (mkdir and fsync of its parent, as an
// installer would).
func mountCell(dir string, o faultfs.Options) (*faultfs.Remote, string, error) {
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return nil, "", err
	}
	r, err := faultfs.StartRemote(filepath.Join(dir, "state"), mnt, o)
	if err != nil {
		return nil, "", err
	}
	buf := filepath.Join(mnt, "buffer")
	if err := os.Mkdir(buf, 0o755); err != nil {
		r.Close()
		return nil, "", err
	}
	if err := fsyncDir(mnt); err != nil {
		r.Close()
		return nil, "", err
	}
	return r, buf, nil
}

func fsyncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (cfg Powercut) run(sh *pcShared, mode store.Mode, control bool) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		bin, cuts := cfg.Binary, cfg.Cuts
		if control {
			b, err := cfg.syncOffBinary(ctx, sh)
			if err != nil {
				return bench.Sample{}, err
			}
			bin, cuts = b, cfg.ControlCuts
		}
		if bin == "" {
			return bench.Sample{}, errNoBinary
		}
		if err := sh.startReceiver(); err != nil {
			return bench.Sample{}, err
		}
		dir, err := os.MkdirTemp(cfg.DBDir, "powercut-cell-*")
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		ffs, buf, err := mountCell(dir, faultfs.Options{Torn: cfg.Torn, Seed: rep.Seed})
		if err != nil {
			return bench.Sample{}, err
		}
		defer ffs.Close()
		pc := &cutCell{tortureCell: tortureCell{
			cfg: Config{Kills: cuts, MinUp: cfg.MinUp, MaxUp: cfg.MaxUp}, recv: sh.recv, got: &sh.got,
			c: rig.Collector{
				Bin: bin, DB: filepath.Join(buf, "events.db"), Mode: string(mode), ID: "powercut", Webhook: sh.recv.URL,
				Flags: []string{"-webhook-timeout", "5s", "-upload-interval", "20ms", "-upload-batch", "200",
					"-upload-max-backoff", "200ms", "-max-backlog", "0", "-drain-timeout", "10s"},
			},
			prod: cfg.Load.producers(rep.Seed),
			rng:  rand.New(rand.NewPCG(rep.Seed, 1)),
		}, ffs: ffs, control: control}
		pc.crashed, pc.checkName = pc.cut, "integrity_check"
		pc.setAside = control
		defer pc.prod.stop()
		if control {
			if err := pc.install(ctx, buf); err != nil {
				return bench.Sample{}, err
			}
		}
		if pc.proc, err = pc.c.Start(ctx, startTimeout); err != nil {
			return bench.Sample{}, err
		}
		defer func() {
			if pc.proc != nil && !pc.proc.Exited() { // nil: a restart failed
				pc.proc.Kill()
			}
		}()
		pc.prod.target.Set(pc.proc.URL("/events"), 0)
		pc.prod.start()
		for k := range cuts {
			if err := pc.killAndRestart(ctx, k); err != nil {
				return bench.Sample{}, err
			}
		}
		rig.Sleep(ctx, cfg.MinUp)
		return pc.check(ctx)
	}
}

// cutCell is one repetition of a powercut cell: a torture cell whose kills
// each come with a power cut.
type cutCell struct {
	tortureCell
	ffs       *faultfs.Remote
	control   bool // the negative control: its losses are the point
	forgotten int64
	torn      int
	integrity int // files failing integrity_check
}

// install starts the collector once, stops it and makes every file under
// the cell durable, as a sync after an installation would. The negative
// control gets it: a collector that never fsyncs would otherwise lose its
// database's creation too, and a cut can bring back the rollback journal
// of its switch to WAL, on which the start-up checks refuse to start.
// What its cuts then take is what it acknowledged.
func (pc *cutCell) install(ctx context.Context, buf string) error {
	p, err := pc.c.Start(ctx, startTimeout)
	if err != nil {
		return err
	}
	if err := p.Stop(stopTimeout); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return faultfs.SyncTree(filepath.Dir(buf))
}

// cut is the power cut after kill k, and what it left: the largest id ever
// handed out and SQLite's integrity_check.
func (pc *cutCell) cut(ctx context.Context, k int) (int64, string, error) {
	cs, err := pc.ffs.Cut()
	if err != nil {
		return 0, "", fmt.Errorf("cut %d: %w", k+1, err)
	}
	pc.forgotten += cs.DirtyPages
	pc.torn += cs.TornSectors
	hw, check, err := cutState(ctx, pc.c.DB)
	if err == nil && check != "ok" {
		pc.integrity++
		if pc.control {
			check = "ok" // expected of the control, counted, not a failure
		}
	}
	return hw, check, err
}

// check finishes the cell and holds it to the ledger; the negative control
// must have lost acknowledged events.
func (pc *cutCell) check(ctx context.Context) (bench.Sample, error) {
	v, err := pc.finish(ctx)
	if err != nil {
		return bench.Sample{}, err
	}
	cuts := pc.cfg.Kills
	lost := v.Acked - v.Intact
	s := bench.Sample{Iters: cuts}
	if pc.control {
		if lost == 0 {
			s.Problems = []string{fmt.Sprintf("the negative control (synchronous=OFF) lost no acknowledged event over %d cuts: the cut does not forget, and the experiment proves nothing", cuts)}
		}
	} else {
		s.Problems = append(pc.problems, v.Problems...)
	}
	if v.Acked == 0 {
		return s, errors.New("no event was acknowledged")
	}
	slices.Sort(pc.recovery)
	slices.Sort(pc.ready)
	s.Values = []record.Value{
		{Value: float64(cuts), Unit: unitCuts.Name},
		{Value: float64(pc.trapped), Unit: unitCutsUpload.Name},
		{Value: float64(v.Acked), Unit: unitAcked.Name},
		{Value: float64(lost), Unit: unitLost.Name},
		{Value: float64(v.Duplicates), Unit: unitDups.Name},
		{Value: float64(v.ReusedIDs), Unit: unitReused.Name},
		{Value: float64(pc.integrity), Unit: unitIntegrity.Name},
		{Value: float64(pc.forgotten), Unit: unitForgotten.Name},
		{Value: float64(pc.torn), Unit: unitTorn.Name},
		{Value: float64(pc.prod.ledger.Statuses()[0]), Unit: unitUnanswered.Name},
		{Value: float64(pctl(pc.recovery, 0.5)), Unit: unitRecP50.Name},
		{Value: float64(pctl(pc.recovery, 1)), Unit: unitRecMax.Name},
		{Value: float64(pctl(pc.ready, 0.5)), Unit: unitReadyP50.Name},
		{Value: float64(pctl(pc.ready, 1)), Unit: unitReadyMax.Name},
	}
	return s, nil
}

// isCorrupt reports SQLite's word that a file is damaged (SQLITE_CORRUPT,
// SQLITE_NOTADB).
func isCorrupt(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "malformed") || strings.Contains(msg, "not a database")
}

// cutState reads what a cut left: the largest id ever handed out and
// SQLite's full integrity_check. It opens a copy (the file, its WAL and any
// rollback journal, read through the remounted filesystem), read-write, so
// SQLite recovers it exactly as the restarted collector will, without
// touching the file the collector restarts on. A file the cut took away
// entirely, or whose schema was not durable yet, reads as empty.
func cutState(ctx context.Context, path string) (maxID int64, check string, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, "ok", nil
	}
	tmp, err := os.MkdirTemp("", "powercut-state-*")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(tmp)
	cp := filepath.Join(tmp, filepath.Base(path))
	for _, suffix := range []string{"", "-wal", "-journal"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, fs.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			return 0, "", err
		}
		if err := os.WriteFile(cp+suffix, b, 0o644); err != nil {
			return 0, "", err
		}
	}
	db, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(cp, store.ConnConfig{BusyTimeout: 5 * time.Second, Synchronous: "FULL"}))
	if err != nil {
		return 0, "", err
	}
	defer db.Close()
	var n sql.NullInt64
	err = db.QueryRowContext(ctx, `SELECT max(x) FROM (SELECT seq AS x FROM sqlite_sequence WHERE name = 'events' UNION ALL SELECT max(id) FROM events)`).Scan(&n)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return 0, "ok", nil
		}
		if isCorrupt(err) { // a failed check, not a failed harness (the negative control's file)
			return 0, "max id: " + err.Error(), nil
		}
		return 0, "", fmt.Errorf("max id: %w", err)
	}
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil {
		if isCorrupt(err) {
			return n.Int64, "integrity_check: " + err.Error(), nil
		}
		return 0, "", fmt.Errorf("integrity_check: %w", err)
	}
	return n.Int64, check, nil
}

// runPeer is a peer cell: one cut of sys, on the experiment's peer mount.
func (cfg Powercut) runPeer(sh *pcShared, sys peer.System) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		run, err := cfg.peerCell(sh, sys)
		if err != nil {
			return bench.Sample{}, err
		}
		return run(ctx, rep)
	}
}

// peerCell returns the peer experiment's kill check of sys, with a cut:
// the mount and the peer experiment are made on first use and shared.
func (cfg Powercut) peerCell(sh *pcShared, sys peer.System) (func(context.Context, bench.Rep) (bench.Sample, error), error) {
	sh.peerMu.Lock()
	defer sh.peerMu.Unlock()
	if sh.peerExp == nil {
		dir, err := cfg.scratch(sh)
		if err != nil {
			return nil, err
		}
		pdir := filepath.Join(dir, "peer")
		if err := os.Mkdir(pdir, 0o755); err != nil {
			return nil, err
		}
		ffs, buf, err := mountCell(pdir, faultfs.Options{Torn: cfg.Torn, Seed: 1})
		if err != nil {
			return nil, err
		}
		sh.peerFS = ffs
		sh.peerExp = peer.Config{
			Collector: cfg.Binary, Peer: cfg.Peer, Dir: buf,
			Systems: PowercutPeerSystems, Conns: cfg.PeerConns,
			Timeout: 5 * time.Second, DrainTimeout: 60 * time.Second, DrainQuiet: 3 * time.Second,
			KillBatch: cfg.PeerBatch, KillAfter: cfg.PeerKillAfter,
			Cut: func() error { _, err := ffs.Cut(); return err },
		}.Experiment()
	}
	for _, c := range sh.peerExp.Cells {
		if c.Name == "PeerKill" && c.Config[0].Value == string(sys) {
			return c.Run, nil
		}
	}
	return nil, fmt.Errorf("no peer kill cell for %s", sys)
}

package torture

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"edgecollector/internal/rig"
)

// LoadConfig shapes the producers.
type LoadConfig struct {
	Singles  int           // producers sending one event per request
	Batchers int           // producers sending Batch events per request
	Batch    int           // events per batch request
	RetryCap time.Duration // most a producer waits on a 503's Retry-After
	// Pause, when set, is a producer's pause between requests (a gentler load).
	Pause time.Duration
}

// DefaultLoad is the torture's producers: four sending single events,
// two sending 100-event batches.
var DefaultLoad = LoadConfig{Singles: 4, Batchers: 2, Batch: 100, RetryCap: time.Second}

// producers are one repetition's loads, single events and batches, posting
// hostile events to one target; every answer goes into one ledger. probe
// sends the odd request from outside the loads.
type producers struct {
	ledger *rig.Ledger
	target *rig.Target
	loads  []*rig.Load
	probe  *rig.Load
}

func (lc LoadConfig) producers(seed uint64) *producers {
	p := &producers{ledger: &rig.Ledger{}, target: &rig.Target{}}
	load := func(name string, workers, batch int, seed uint64) *rig.Load {
		return &rig.Load{
			Name: name, Workers: workers, Batch: batch, Seed: seed, Events: rig.Hostile,
			Target: p.target, Ledger: p.ledger, RetryCap: lc.RetryCap, Pause: lc.Pause,
		}
	}
	p.loads = []*rig.Load{load("single", lc.Singles, 1, seed), load("batch", lc.Batchers, lc.Batch, seed^1)}
	p.probe = load("probe", 0, 1, seed^2)
	return p
}

func (p *producers) start() {
	for _, l := range p.loads {
		l.Start()
	}
}

// stop stops the loads and waits for the requests in flight.
func (p *producers) stop() {
	for _, l := range p.loads {
		l.Stop()
	}
	p.probe.Stop()
}

// shared is what the cells of one experiment share: the receiver, started
// by the first cell that runs, and what it takes.
type shared struct {
	once sync.Once
	recv *rig.Receiver
	got  rig.Deliveries
	err  error
}

// begin readies a repetition of a cell: the receiver emptied and taking,
// and a fresh directory under dbDir for the database, which done removes.
func (s *shared) begin(bin, dbDir string) (db string, done func(), err error) {
	if bin == "" {
		return "", nil, errNoBinary
	}
	if err := s.startReceiver(); err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(dbDir, "cell-*")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, "events.db"), func() { os.RemoveAll(dir) }, nil
}

// startReceiver starts the receiver on first use, empties it and has it
// take every batch.
func (s *shared) startReceiver() error {
	s.once.Do(func() { s.recv, s.err = rig.StartReceiver(&s.got) })
	if s.err != nil {
		return s.err
	}
	s.recv.Reset()
	return s.recv.Set(rig.Take)
}

var errNoBinary = errors.New("no collector binary")

func (s *shared) close() error {
	if s.recv != nil {
		return s.recv.Close()
	}
	return nil
}

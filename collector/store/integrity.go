package store

import (
	"context"
	"fmt"
	"sync"

	"edgecollector/collector"
)

// Integrity is what the damage check (preflight.go) found.
type Integrity struct {
	// State: "checked at start" (quick_check passed before Open returned),
	// "new" (a new file), "checking" (the background check is under way),
	// "ok", "damaged" or "unchecked" (the check could not run; Findings
	// says why).
	State    string `json:"state"`
	Findings string `json:"findings,omitempty"`
}

// Damaged reports whether the check found damage.
func (i Integrity) Damaged() bool { return i.State == "damaged" }

// integrity runs the full damage check in the background for a file too
// large to check at start. Found damage stops ingest (Insert fails with
// collector.ErrDamaged) and /healthz reports it; the uploader carries on
// shipping what it can read.
type integrity struct {
	mu     sync.Mutex
	state  Integrity
	cancel context.CancelFunc
	done   chan struct{}
}

func (in *integrity) set(st Integrity) {
	in.mu.Lock()
	in.state = st
	in.mu.Unlock()
}

func (in *integrity) get() Integrity {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

// start runs quick_check on its own read-only connection, so it reads a
// snapshot beside the writers (WAL) and changes nothing. The snapshot holds
// back checkpoints while it lasts, so the WAL grows by what is written
// meanwhile.
func (in *integrity) start(path string) {
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel, in.done = cancel, make(chan struct{})
	in.set(Integrity{State: "checking"})
	go func() { // owned: stop cancels and waits
		defer close(in.done)
		r, err := OpenReadOnly(ctx, path)
		if err != nil {
			in.set(Integrity{State: "unchecked", Findings: err.Error()})
			return
		}
		defer r.Close()
		findings, err := quickCheck(ctx, r)
		switch {
		case ctx.Err() != nil:
			in.set(Integrity{State: "unchecked", Findings: "stopped before it finished"})
		case err != nil && SQLite.classify(err) == classNotDB:
			in.set(Integrity{State: "damaged", Findings: err.Error()})
		case err != nil:
			in.set(Integrity{State: "unchecked", Findings: err.Error()})
		case findings != "":
			in.set(Integrity{State: "damaged", Findings: findings})
		default:
			in.set(Integrity{State: "ok"})
		}
	}()
}

// stop ends a check under way and waits for it.
func (in *integrity) stop() {
	if in.cancel != nil {
		in.cancel()
		<-in.done
	}
}

// err is what a write meets once damage was found.
func (in *integrity) err() error {
	if st := in.get(); st.Damaged() {
		return fmt.Errorf("%w: %s (see `collector check`)", collector.ErrDamaged, st.Findings)
	}
	return nil
}

// Integrity reports what the damage check found, or that it is under way.
func (s *Store) Integrity() Integrity { return s.integ.get() }

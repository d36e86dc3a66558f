package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"edgecollector/bench/record"
)

// Runner runs experiments into one run directory.
type Runner struct {
	Dir    string       // the run directory, already created
	Meta   *record.Meta // written at the start, after every repetition and at the end
	Header []record.KV  // file-wide configuration of every results file
	Reps   int          // counted repetitions per cell
	Warmup int          // leading repetitions run and dropped
	Seed   uint64

	Progress *Progress
}

// Budget returns how many cell runs the experiments take and their planned cost.
func Budget(exps []*Experiment, reps, warmup int) (runs int, cost time.Duration) {
	for _, e := range exps {
		n, w := e.Repetitions(reps, warmup)
		for _, c := range e.Cells {
			runs += n + w
			cost += time.Duration(n+w) * c.Cost
		}
	}
	return runs, cost
}

// Repetitions returns the experiment's counted and warm-up repetitions: its own
// when it sets them, else the run's.
func (e *Experiment) Repetitions(reps, warmup int) (int, int) {
	if e.Reps > 0 {
		return e.Reps, e.Warmup
	}
	return reps, warmup
}

// Run runs each experiment in turn. Within an experiment every repetition
// runs every cell once, in order, so the modes of one configuration run
// next to each other (A B C A B C ...): drift of the machine hits them
// alike, and the i-th repetitions of two modes form a pair.
//
// Results files are rewritten after every repetition, so an interrupted run
// keeps what it measured. A failed correctness check does not stop the
// run; it is recorded in the results and Run returns an error at the end.
// Any other error stops the run.
func (r *Runner) Run(ctx context.Context, exps []*Experiment) (err error) {
	started := time.Now()
	r.Meta.Run.Reps, r.Meta.Run.Warmup, r.Meta.Run.Seed = r.Reps, r.Warmup, r.Seed
	r.Meta.Run.Started = started.UTC().Format(time.RFC3339)
	r.Meta.Run.Plan = make(map[string]string)
	for _, e := range exps {
		r.Meta.Run.Experiments = append(r.Meta.Run.Experiments, e.Name)
		r.Meta.Run.Cells += len(e.Cells)
		r.Meta.Run.Plan[e.Name] = e.Plan
		if e.Reps > 0 {
			if r.Meta.Run.ExperimentReps == nil {
				r.Meta.Run.ExperimentReps = make(map[string][2]int)
			}
			r.Meta.Run.ExperimentReps[e.Name] = [2]int{e.Reps, e.Warmup}
		}
	}
	if err := record.WriteMeta(r.Dir, r.Meta); err != nil {
		return err
	}
	defer func() {
		for _, e := range exps {
			if e.Close != nil {
				if cerr := e.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("%s: close: %w", e.Name, cerr)
				}
			}
		}
		r.Meta.Run.Finished = time.Now().UTC().Format(time.RFC3339)
		r.Meta.Run.Seconds = time.Since(started).Round(time.Second).Seconds()
		if werr := record.WriteMeta(r.Dir, r.Meta); werr != nil && err == nil {
			err = werr
		}
	}()
	for _, e := range exps {
		if err := r.runExperiment(ctx, e); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		r.Meta.Run.Done = append(r.Meta.Run.Done, e.Name)
		if err := record.WriteMeta(r.Dir, r.Meta); err != nil {
			return err
		}
	}
	r.Meta.Run.Complete = true
	if n := len(r.Meta.Failures); n > 0 {
		return fmt.Errorf("%d correctness check(s) failed; see %s: %s", n, filepath.Join(r.Dir, record.MetaFile), r.Meta.Failures[0])
	}
	return nil
}

func (r *Runner) runExperiment(ctx context.Context, e *Experiment) error {
	file := &record.File{Header: r.Header, Units: e.Units}
	path := filepath.Join(r.Dir, e.Name+".txt")
	reps, warmup := e.Repetitions(r.Reps, r.Warmup)
	total := warmup + reps
	for rep := range total {
		warm := rep < warmup
		for i := range e.Cells {
			c := &e.Cells[i]
			if err := ctx.Err(); err != nil {
				return err
			}
			step := fmt.Sprintf("[%s] rep %d/%d", e.Name, rep+1, total)
			if warm {
				step += " (warm-up)"
			}
			r.Progress.Step(step + "  " + c.Label())
			s, err := c.Run(ctx, Rep{Index: rep, Warmup: warm, Seed: cellSeed(r.Seed, e.Name, i, rep)})
			r.Progress.Done(c.Cost)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("%s %s rep %d: %w", c.Name, c.Label(), rep, err)
			}
			for _, p := range s.Problems {
				msg := fmt.Sprintf("%s %s %s rep %d: %s", e.Name, c.Name, c.Label(), rep, p)
				r.Meta.Failures = append(r.Meta.Failures, msg)
				r.Progress.Printf("bench: CORRECTNESS: %s\n", msg)
			}
			if warm {
				continue
			}
			file.Points = append(file.Points, record.Point{
				Name: c.Name, Config: c.Config, Iters: s.Iters, Values: s.Values,
			})
		}
		if !warm {
			if err := record.WriteFile(path, file.Encode()); err != nil {
				return err
			}
		}
		if len(r.Meta.Failures) > 0 {
			if err := record.WriteMeta(r.Dir, r.Meta); err != nil {
				return err
			}
		}
	}
	if len(file.Points) == 0 {
		return errors.New("no counted repetitions")
	}
	return nil
}

// Package reportgen regenerates reports/ from the raw results under results/:
// a README with the finding in plain sentences, what was measured, how, on
// what machine, the tables (median, 95% confidence interval, ratio to
// serialized with its p-value) and the plots, and the original's published
// table as a labelled reference.
//
// It holds the README's frame and the toolkit; each experiment brings its
// own Part (what it measures, its tables, figures and finding sentences),
// through the registry in bench/experiments. A Table is declared, not
// written: its rows come from the results (per configuration and mode), its
// columns are specs, the way benchstat builds its tables.
//
// The output is a function of the results files alone: no clock, no
// environment, files and maps visited in sorted order, plots rendered with
// the fonts compiled into gonum/plot. Running it twice leaves no diff.
package reportgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"edgecollector/bench/record"
)

// Generate reads every run under resultsDir and writes the report to outDir,
// replacing what a previous Generate wrote there. parts are what each
// experiment adds to it, in the order the report shows them.
func Generate(resultsDir, outDir string, parts []Part) error {
	if err := checkOwned(outDir); err != nil {
		return err // before the slow part
	}
	dirs, err := record.ListRuns(resultsDir)
	if err != nil {
		return err
	}
	var runs []*record.Run
	for _, d := range dirs {
		r, err := record.ReadRun(d)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	files := make(map[string][]byte) // path relative to outDir -> content
	var sections []*Section
	for _, m := range selectRuns(runs) {
		s := newSection(m.primary, m.byExp, resultsDir)
		if err := s.plots(parts, files); err != nil {
			return fmt.Errorf("plots for %s: %w", m.primary.Dir, err)
		}
		sections = append(sections, s)
	}
	files["README.md"] = readme(sections, parts, len(runs))
	return replaceDir(outDir, files)
}

// machineRuns is what the report shows of one machine: for each
// experiment, the run it comes from, and the primary run (the one of the
// throughput experiment, or failing that the newest) that the machine's
// section is headed by.
type machineRuns struct {
	primary *record.Run
	byExp   map[string]*record.Run
}

// selectRuns picks, per machine and per experiment, the newest full run
// that measured all of the experiment (fullFor), or failing that the newest run of any
// kind that did (a QUICK smoke run, say), which the report labels as such.
// So an experiment rerun alone (`bench run torture`) replaces only its own
// part of the report. Machines come in sorted order.
func selectRuns(runs []*record.Run) []machineRuns {
	byMachine := make(map[string][]*record.Run)
	var machines []string
	for _, r := range runs {
		id := r.Meta.MachineID
		if _, ok := byMachine[id]; !ok {
			machines = append(machines, id)
		}
		byMachine[id] = append(byMachine[id], r)
	}
	slices.Sort(machines)
	var sel []machineRuns
	for _, m := range machines {
		rs := byMachine[m]
		slices.SortFunc(rs, func(a, b *record.Run) int { return strings.Compare(a.Dir, b.Dir) })
		mr := machineRuns{byExp: make(map[string]*record.Run)}
		for i := len(rs) - 1; i >= 0; i-- { // newest first
			r := rs[i]
			for exp := range r.Files {
				have, ok := mr.byExp[exp]
				if !ok || (fullFor(r, exp) && !fullFor(have, exp)) {
					mr.byExp[exp] = r
				}
			}
		}
		mr.primary = rs[len(rs)-1]
		if r, ok := mr.byExp["throughput"]; ok {
			mr.primary = r
		}
		sel = append(sel, mr)
	}
	return sel
}

// fullFor reports whether r is a full run that ran every planned
// repetition of exp: the whole run completed, or exp among those it
// finished before a later one stopped it.
func fullFor(r *record.Run, exp string) bool {
	return r.Meta.Run.Profile == "full" && (r.Meta.Run.Complete || slices.Contains(r.Meta.Run.Done, exp))
}

// owned reports whether replaceDir may delete a file: what Generate writes.
func owned(name string) bool {
	switch filepath.Ext(name) {
	case ".md", ".png", ".svg":
		return true
	}
	return name == ".gitkeep"
}

// replaceDir makes dir hold exactly files. It writes a sibling directory
// and swaps it in, so a failed Generate leaves the old report whole. It
// refuses to remove a directory holding anything Generate does not write.
func replaceDir(dir string, files map[string][]byte) error {
	if err := checkOwned(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return err
	}
	return os.RemoveAll(old)
}

func checkOwned(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.IsDir() || owned(d.Name()) {
			return nil
		}
		return fmt.Errorf("report: %s holds %s, which the report generator did not write; refusing to replace the directory", dir, p)
	})
}

// Package record reads and writes what a run records under results/ (the
// data; this package is its format). A run is one directory,
// results/<machine>/<timestamp>/, holding one file per experiment in the Go
// benchmark format (which benchstat reads directly) and machine.json, the
// facts about the machine and the run. Every file is written atomically.
package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// MetaFile is the name of a run's machine and run description.
const MetaFile = "machine.json"

// KV is one configuration key and its value, as in a "mode: group" line.
type KV struct {
	Key, Value string
}

// Value is one measurement and its unit ("events/s", "p99-ns/insert").
type Value struct {
	Value float64
	Unit  string
}

// Unit describes a unit for the file's "Unit" metadata lines.
type Unit struct {
	Name   string
	Better int // +1: higher is better; -1: lower is better; 0: neither
}

// A Point is one counted repetition of one cell.
type Point struct {
	Name   string // benchmark name without the "Benchmark" prefix
	Config []KV   // the cell's configuration, in a stable key order
	Iters  int    // operations measured
	Values []Value
}

// Get returns the value of config key k, or "".
func (p *Point) Get(k string) string {
	for _, kv := range p.Config {
		if kv.Key == k {
			return kv.Value
		}
	}
	return ""
}

// Value returns the measurement in unit, which must be given tidied (base
// units: "sec", not "ns") when p was read from a file.
func (p *Point) Value(unit string) (float64, bool) {
	for _, v := range p.Values {
		if v.Unit == unit {
			return v.Value, true
		}
	}
	return 0, false
}

// File is one experiment's results: a header of run-wide configuration, the
// unit metadata, and the points in the order they were measured.
type File struct {
	Header []KV
	Units  []Unit
	Points []Point
}

// Encode renders f in the Go benchmark format.
func (f *File) Encode() []byte {
	var buf bytes.Buffer
	w := benchfmt.NewWriter(&buf)
	for _, u := range f.Units {
		if u.Better == 0 {
			continue
		}
		better := "higher"
		if u.Better < 0 {
			better = "lower"
		}
		w.Write(&benchfmt.UnitMetadata{
			UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: u.Name, Key: "better"},
			OrigUnit:        u.Name,
			Value:           better,
		})
	}
	if len(f.Units) > 0 {
		buf.WriteByte('\n')
	}
	for _, p := range f.Points {
		r := &benchfmt.Result{Name: benchfmt.Name(p.Name), Iters: p.Iters}
		for _, kv := range f.Header {
			r.Config = append(r.Config, benchfmt.Config{Key: kv.Key, Value: []byte(kv.Value), File: true})
		}
		for _, kv := range p.Config {
			r.Config = append(r.Config, benchfmt.Config{Key: kv.Key, Value: []byte(kv.Value), File: true})
		}
		for _, v := range p.Values {
			r.Values = append(r.Values, benchfmt.Value{Value: v.Value, Unit: v.Unit})
		}
		w.Write(r)
	}
	return buf.Bytes()
}

// ReadFile reads a results file. Every configuration key lands in each
// point's Config (the header is not told apart), and units are tidied the
// way benchstat tidies them: "ns" becomes "sec" and values are scaled.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &File{}
	r := benchfmt.NewReader(bytes.NewReader(data), path)
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.SyntaxError:
			return nil, rec
		case *benchfmt.Result:
			p := Point{Name: string(rec.Name), Iters: rec.Iters}
			for _, c := range rec.Config {
				if c.File {
					p.Config = append(p.Config, KV{c.Key, string(c.Value)})
				}
			}
			for _, v := range rec.Values {
				p.Values = append(p.Values, Value{v.Value, v.Unit})
			}
			f.Points = append(f.Points, p)
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for k, m := range r.Units() {
		if k.Key != "better" {
			continue
		}
		u := Unit{Name: k.Unit}
		switch m.Value {
		case "higher":
			u.Better = 1
		case "lower":
			u.Better = -1
		}
		f.Units = append(f.Units, u)
	}
	slices.SortFunc(f.Units, func(a, b Unit) int { return strings.Compare(a.Name, b.Name) })
	return f, nil
}

// Run is one run directory: its description and its experiments' files.
type Run struct {
	Dir   string
	Meta  Meta
	Files map[string]*File // by experiment name (file name without .txt)
}

// Experiments returns the names of the run's experiment files, sorted.
func (r *Run) Experiments() []string {
	var names []string
	for n := range r.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ReadRun reads the run in dir.
func ReadRun(dir string) (*Run, error) {
	data, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, fmt.Errorf("read run: %w", err)
	}
	run := &Run{Dir: dir, Files: make(map[string]*File)}
	if err := json.Unmarshal(data, &run.Meta); err != nil {
		return nil, fmt.Errorf("read run %s: %s: %w", dir, MetaFile, err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		f, err := ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read run %s: %w", dir, err)
		}
		run.Files[strings.TrimSuffix(filepath.Base(name), ".txt")] = f
	}
	return run, nil
}

// ListRuns returns the run directories under root (root/<machine>/<timestamp>
// with a machine.json), sorted by machine, then by timestamp.
func ListRuns(root string) ([]string, error) {
	metas, err := filepath.Glob(filepath.Join(root, "*", "*", MetaFile))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, m := range metas {
		dirs = append(dirs, filepath.Dir(m))
	}
	slices.Sort(dirs)
	return dirs, nil
}

// WriteMeta writes m as dir/machine.json, atomically.
func WriteMeta(dir string, m *Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, MetaFile), append(data, '\n'))
}

// Matches reports whether p is a result of benchmark name (any, when name
// is "") with every key of where set to its value.
func (p *Point) Matches(name string, where ...KV) bool {
	if name != "" && p.Name != name {
		return false
	}
	for _, kv := range where {
		if p.Get(kv.Key) != kv.Value {
			return false
		}
	}
	return true
}

// Sample returns the values in unit of the points that match name and
// where, in the order they were measured: the i-th value of one mode and the
// i-th of another come from the same interleaved repetition.
func (f *File) Sample(name, unit string, where ...KV) []float64 {
	var xs []float64
	for i := range f.Points {
		p := &f.Points[i]
		if !p.Matches(name, where...) {
			continue
		}
		if v, ok := p.Value(unit); ok {
			xs = append(xs, v)
		}
	}
	return xs
}

// Distinct returns the distinct values of config key k among the points of
// benchmark name, in order of first appearance.
func (f *File) Distinct(name, k string) []string {
	var vals []string
	for i := range f.Points {
		p := &f.Points[i]
		if p.Name != name {
			continue
		}
		if v := p.Get(k); !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	return vals
}

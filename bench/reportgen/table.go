package reportgen

import (
	"math"
	"strings"

	"edgecollector/bench/record"
	"edgecollector/bench/stats"
)

// Table is one results table of a machine's section, built the way
// benchstat builds its tables: the rows come from the results (one per
// configuration and mode of a benchmark, by default), the columns are specs
// that each say what one cell of a row shows.
type Table struct {
	Title string
	Intro string // Markdown under the title; may be empty
	Bench string // the benchmark whose points make the rows: "Throughput"
	// Rows says what a row is: ByConfigMode when nil.
	Rows Rows
	// Need, when set, leaves out the rows without a sample of this unit.
	Need    string
	Columns []Column
	// Figure names one of the part's figures, shown under the table.
	Figure string
}

// Column is one column of a Table: its head (a leading "<" aligns it left,
// as labels are; numbers align right) and what a row shows in it.
type Column struct {
	Head string
	Cell func(Row) string
}

// Row is one row's view of the results: a benchmark, a mode ("" when rows
// are not by mode) and a configuration without its mode.
type Row struct {
	R     *Results
	Bench string
	Mode  string
	Where []record.KV
}

// Rows makes the rows of a table from its benchmark's results.
type Rows func(r *Results, bench string) []Row

// ByConfigMode makes a row per configuration and, within it, per mode: the
// modes of one configuration side by side.
func ByConfigMode(r *Results, bench string) []Row {
	var rows []Row
	for _, w := range r.Configs(bench) {
		for _, m := range r.Distinct(bench, "mode") {
			rows = append(rows, Row{r, bench, m, w})
		}
	}
	return rows
}

// ByMode makes a row per mode, over all its configurations: for totals.
func ByMode(r *Results, bench string) []Row {
	var rows []Row
	for _, m := range r.Distinct(bench, "mode") {
		rows = append(rows, Row{R: r, Bench: bench, Mode: m})
	}
	return rows
}

// ByKey makes a row per value of a configuration key (a fuzz target).
func ByKey(key string) Rows {
	return func(r *Results, bench string) []Row {
		var rows []Row
		for _, v := range r.Distinct(bench, key) {
			rows = append(rows, Row{R: r, Bench: bench, Where: []record.KV{{Key: key, Value: v}}})
		}
		return rows
	}
}

// render writes the table of results r; "" when there are none, or no row
// has what the table needs (results from before it was measured).
func (t *Table) render(r *Results) string {
	if r == nil {
		return ""
	}
	heads := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		heads[i] = c.Head
	}
	md := newTable(heads...)
	rows := t.Rows
	if rows == nil {
		rows = ByConfigMode
	}
	for _, row := range rows(r, t.Bench) {
		if t.Need != "" && len(row.Sample(t.Need)) == 0 {
			continue
		}
		cells := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cells[i] = c.Cell(row)
		}
		md.add(cells...)
	}
	if len(md.rows) == 0 {
		return ""
	}
	return md.String()
}

// Sample is every counted repetition's value of unit in the row.
func (r Row) Sample(unit string) []float64 {
	return r.R.Sample(r.Bench, unit, WithMode(r.Where, r.Mode)...)
}

// Get is the row's value of a configuration key.
func (r Row) Get(key string) string { return Get(r.Where, key) }

// Stat summarises unit in the row.
func (r Row) Stat(unit string) stats.Summary { return r.R.Stat(r.Bench, unit, r.Mode, r.Where) }

// Median is the median of unit in the row, NaN when it was not measured.
func (r Row) Median(unit string) float64 { return r.R.Median(r.Bench, unit, r.Mode, r.Where) }

// Total sums unit over the row's repetitions, NaN when it was not measured.
func (r Row) Total(unit string) float64 { return r.R.Total(r.Bench, unit, r.Mode, r.Where) }

// Worst is the largest value of unit in the row, NaN when it was not measured.
func (r Row) Worst(unit string) float64 { return r.R.Worst(r.Bench, unit, r.Mode, r.Where) }

// Last is the last repetition's value of unit, NaN when it was not measured.
func (r Row) Last(unit string) float64 {
	xs := r.Sample(unit)
	if len(xs) == 0 {
		return math.NaN()
	}
	return xs[len(xs)-1]
}

// VsBase compares the row's mode to the baseline's in its configuration.
func (r Row) VsBase(unit string) (stats.Ratio, bool) {
	return r.R.VsBase(r.Bench, unit, r.Mode, r.Where)
}

// Format writes a number in a cell.
type Format func(float64) string

// Key shows the value of a configuration key.
func Key(head, key string) Column {
	return Column{head, func(r Row) string { return r.Get(key) }}
}

// ModeCol shows the row's mode.
func ModeCol(head string) Column {
	return Column{head, func(r Row) string { return ModeLabel(r.Mode) }}
}

// CI shows the median of unit with its 95% confidence interval.
func CI(head, unit string, f Format) Column {
	return Column{head, func(r Row) string { return WithCI(r.Stat(unit), f) }}
}

// Median shows the median of unit.
func Median(head, unit string, f Format) Column {
	return Column{head, func(r Row) string { return f(r.Median(unit)) }}
}

// Total shows unit summed over the repetitions.
func Total(head, unit string, f Format) Column {
	return Column{head, func(r Row) string { return f(r.Total(unit)) }}
}

// Worst shows the largest value of unit.
func Worst(head, unit string, f Format) Column {
	return Column{head, func(r Row) string { return f(r.Worst(unit)) }}
}

// Last shows the last repetition's value of unit (a run of one).
func Last(head, unit string, f Format) Column {
	return Column{head, func(r Row) string { return f(r.Last(unit)) }}
}

// VsBase shows the paired ratio of unit to the baseline mode's, with its
// 95% interval; P beside it shows its p-value.
func VsBase(head, unit string) Column {
	return Column{head, func(r Row) string {
		ratio, ok := r.VsBase(unit)
		if !ok {
			return "1 (baseline)"
		}
		return WithCI(ratio.Summary, Times)
	}}
}

// P shows the p-value of VsBase's ratio.
func P(unit string) Column {
	return Column{"p", func(r Row) string {
		ratio, ok := r.VsBase(unit)
		if !ok {
			return ""
		}
		return PValue(ratio.P)
	}}
}

// table is a Markdown table.
type table struct {
	head  []string
	align []byte // 'l' or 'r' per column
	rows  [][]string
}

func newTable(cols ...string) *table {
	t := &table{}
	for _, c := range cols {
		align := byte('r')
		if strings.HasPrefix(c, "<") {
			c, align = c[1:], 'l'
		}
		t.head = append(t.head, c)
		t.align = append(t.align, align)
	}
	return t
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) String() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for _, a := range t.align {
		if a == 'l' {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteByte('\n')
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

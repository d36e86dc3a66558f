package reportgen

import "gonum.org/v1/plot"

// Part is what one experiment adds to a machine's section of the report.
// Every field may be empty; a part whose experiment has no results on a
// machine adds nothing there.
type Part struct {
	// Exp is the experiment, and the name of the results file its tables
	// read (<exp>.txt). bench.Spec sets it to the spec's name.
	Exp string
	// Doc says what the experiment measures, for "What was measured"
	// (Markdown); the run's plan of its cells follows.
	Doc      string
	Tables   []Table
	Figures  []Figure
	Findings func(*Section) []string // sentences for the Finding
}

// Figure is one plot. Plot returns nil when there are no results for it.
type Figure struct {
	Name    string // its files: <machine>/<name>.png and .svg
	Caption string
	Plot    func(*Section) (*plot.Plot, error)
}

func figuresOf(parts []Part) []Figure {
	var out []Figure
	for _, p := range parts {
		out = append(out, p.Figures...)
	}
	return out
}

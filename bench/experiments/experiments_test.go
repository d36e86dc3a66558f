package experiments

import (
	"flag"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"edgecollector/bench"
	"edgecollector/bench/reportgen"
)

// The profiles keep their promises: the full run counts at least 10
// repetitions, and both give every median a 95% interval.
func TestProfiles(t *testing.T) {
	if bench.Full.Reps < 10 {
		t.Errorf("full profile counts %d repetitions, want 10 or more", bench.Full.Reps)
	}
	for _, p := range []bench.Profile{bench.Full, bench.Quick} {
		if p.Reps < 6 || p.Warmup < 1 {
			t.Errorf("%s: %d repetitions after %d warm-up; want 6+ after 1+", p.Name, p.Reps, p.Warmup)
		}
	}
}

// Every spec makes, in every profile, an experiment of its own name with
// cells that cost something, and its report part's figures are named once;
// the quick profile plans no more than the full one; flags do not clash.
func TestSpecs(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	names := make(map[string]bool)
	figures := make(map[string]bool)
	for _, s := range All {
		if names[s.Name] {
			t.Errorf("%s registered twice", s.Name)
		}
		names[s.Name] = true
		if s.Flags != nil {
			s.Flags(fs) // panics on a flag defined twice
		}
		costs := make(map[string]int64)
		for _, p := range []bench.Profile{bench.Full, bench.Quick} {
			e := s.New(p, bench.Env{Scratch: t.TempDir(), Collector: "collector"})
			if e.Name != s.Name {
				t.Errorf("spec %s makes experiment %s", s.Name, e.Name)
			}
			if len(e.Cells) == 0 || e.Plan == "" || len(e.Units) == 0 {
				t.Errorf("%s %s: %d cells, plan %q, %d units", s.Name, p.Name, len(e.Cells), e.Plan, len(e.Units))
			}
			_, cost := bench.Budget([]*bench.Experiment{e}, p.Reps, p.Warmup)
			costs[p.Name] = int64(cost)
			if e.Close != nil {
				e.Close()
			}
		}
		if costs["quick"] > costs["full"] {
			t.Errorf("%s: the quick profile plans more than the full one", s.Name)
		}
		part := s.Part()
		if part.Exp != s.Name || part.Doc == "" {
			t.Errorf("%s: report part for %q, doc %q", s.Name, part.Exp, part.Doc)
		}
		for _, f := range part.Figures {
			if figures[f.Name] {
				t.Errorf("%s: figure %s named twice", s.Name, f.Name)
			}
			figures[f.Name] = true
		}
		for _, tb := range part.Tables {
			if tb.Figure != "" && !hasFigure(part, tb.Figure) {
				t.Errorf("%s: table %q shows figure %q, not one of its part's", s.Name, tb.Title, tb.Figure)
			}
		}
	}
	if Lookup("throughput") != All[0] || Lookup("warp") != nil {
		t.Error("Lookup")
	}
}

// The power-cut and storage experiments keep what their issue asks of the
// full run: 50 cuts per mode, and 6 counted repetitions for a CI.
func TestPowercutAndStorageBudgets(t *testing.T) {
	env := bench.Env{Scratch: t.TempDir(), Collector: "collector"}
	for _, name := range []string{"powercut", "storage"} {
		e := Lookup(name).New(bench.Full, env)
		if e.Reps < 5 || (name == "storage" && e.Reps < 6) {
			t.Errorf("%s: %d counted repetitions", name, e.Reps)
		}
		if name == "powercut" {
			cuts := 0
			for _, c := range e.Cells {
				if c.Name == "Powercut" && c.Config[0].Value == "group" {
					n, _ := strconv.Atoi(c.Config[1].Value)
					cuts = n * e.Reps
				}
			}
			if cuts < 50 {
				t.Errorf("powercut: %d cuts per mode, want 50+", cuts)
			}
		}
		if e.Close != nil {
			e.Close()
		}
	}
}

func hasFigure(p reportgen.Part, name string) bool {
	return slices.ContainsFunc(p.Figures, func(f reportgen.Figure) bool { return f.Name == name })
}

// The quick profile's cells stay the quick ones when -reps or -warmup
// change its repetitions.
func TestQuickWithOtherReps(t *testing.T) {
	q := bench.Quick
	q.Reps, q.Warmup = 1, 0
	env := bench.Env{Scratch: t.TempDir()}
	for _, s := range All {
		a, b := s.New(bench.Quick, env), s.New(q, env)
		if a.Plan != b.Plan || len(a.Cells) != len(b.Cells) {
			t.Errorf("%s: -reps changed the quick plan:\n%s\n%s", s.Name, a.Plan, b.Plan)
		}
		for _, e := range []*bench.Experiment{a, b} {
			if e.Close != nil {
				e.Close()
			}
		}
	}
}

// The sustained experiment keeps its issue's budget: long windows of at
// least 30 s in the full run, and a quick run planned under a minute.
func TestSustainedBudget(t *testing.T) {
	env := bench.Env{Scratch: t.TempDir(), Collector: "collector"}
	s := Lookup("sustained")
	if s == nil {
		t.Fatal("sustained is not registered")
	}
	full, quick := s.New(bench.Full, env), s.New(bench.Quick, env)
	if !strings.Contains(full.Plan, "then 30s windows") {
		t.Errorf("full plan: %s; want 30 s long windows", full.Plan)
	}
	var cost time.Duration
	for _, c := range quick.Cells {
		cost += c.Cost
	}
	if cost >= time.Minute || len(quick.Cells) == 0 {
		t.Errorf("quick: %d cells planned %v, want under a minute", len(quick.Cells), cost)
	}
}

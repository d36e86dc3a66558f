package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgecollector/bench/gate"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"unknown experiment", []string{"run", "warp"}, `unknown experiment "warp"`},
		{"bad flag", []string{"run", "-reps", "x"}, "invalid value"},
		{"report argument", []string{"report", "extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want a usage error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestReportCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "reports")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"report", "-results", "../../testdata/results", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("report: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "README.md")); err != nil {
		t.Error(err)
	}
}

func TestGateExperiment(t *testing.T) {
	f, err := os.Open("../../gates.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gates, err := gate.Parse(f, "gates.txt")
	if err != nil {
		t.Fatal(err)
	}
	gp, err := gatePlanOf(gates)
	if err != nil {
		t.Fatal(err)
	}
	plan := gp.experiments(t.TempDir(), "collector")
	if len(plan) != 2 || plan[0].Name != "throughput" || plan[1].Name != "peer" {
		t.Fatalf("gate plan: %d experiments, want throughput then peer", len(plan))
	}
	var labels []string
	for _, e := range plan {
		for _, c := range e.Cells {
			labels = append(labels, e.Name+" "+c.Label())
		}
		if e.Close != nil {
			e.Close()
		}
	}
	// The baseline first, the A/A control last, only the gated cells; then
	// our collector's load cell for the delivery gate, and no kill check.
	want := []string{
		"throughput mode=serialized indexed=false producers=16",
		"throughput mode=concurrent indexed=false producers=16",
		"throughput mode=group indexed=false producers=16",
		"throughput mode=serialized-aa indexed=false producers=16",
		"peer mode=ours-group batch=100 conns=16",
	}
	if got := strings.Join(labels, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("gate cells:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

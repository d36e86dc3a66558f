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
	th, err := gateExperiment(gates)
	if err != nil {
		t.Fatal(err)
	}
	e := th.Experiment()
	var labels []string
	for _, c := range e.Cells {
		labels = append(labels, c.Label())
	}
	// The baseline first, the A/A control last, only the gated cells.
	want := []string{
		"mode=serialized indexed=false producers=16",
		"mode=concurrent indexed=false producers=16",
		"mode=group indexed=false producers=16",
		"mode=serialized-aa indexed=false producers=16",
	}
	if got := strings.Join(labels, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("gate cells:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

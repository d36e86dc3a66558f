package reportgen

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"edgecollector/bench/record"
)

func TestReplaceRemovesStale(t *testing.T) {
	out := filepath.Join(t.TempDir(), "reports")
	os.MkdirAll(filepath.Join(out, "gone-machine"), 0o755)
	os.WriteFile(filepath.Join(out, "gone-machine", "throughput.png"), []byte("old"), 0o644)
	if err := replaceDir(out, map[string][]byte{"README.md": []byte("new"), "m/x.svg": []byte("<svg/>")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "gone-machine")); !os.IsNotExist(err) {
		t.Errorf("stale plots of a machine no longer in results/ survived: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "m", "x.svg")); string(got) != "<svg/>" {
		t.Errorf("new file = %q", got)
	}
}

// stopped marks r as a run that finished done before it stopped.
func stopped(r *record.Run, done ...string) *record.Run {
	r.Meta.Run.Done = done
	return r
}

func TestSelectRuns(t *testing.T) {
	run := func(machine, ts, profile string, complete bool, exps ...string) *record.Run {
		r := &record.Run{Dir: filepath.Join("results", machine, ts), Files: make(map[string]*record.File),
			Meta: record.Meta{MachineID: machine, Run: record.RunInfo{Profile: profile, Complete: complete}}}
		for _, e := range exps {
			r.Files[e] = &record.File{}
		}
		return r
	}
	got := selectRuns([]*record.Run{
		run("b", "3", "quick", true, "throughput"),
		run("a", "1", "full", true, "throughput", "http"),
		run("a", "2", "quick", true, "throughput", "http"),                                // newer, but a smoke run
		run("a", "3", "full", false, "throughput"),                                        // newer, but incomplete
		run("a", "4", "full", true, "torture"),                                            // an experiment rerun alone
		run("a", "5", "quick", true, "soak"),                                              // the only run of soak: shown, labelled
		run("b", "1", "quick", true, "throughput"),                                        // b has no full run: its newest of any kind
		stopped(run("a", "6", "full", false, "http", "peer", "powercut"), "http", "peer"), // stopped in powercut: http and peer stand
		stopped(run("a", "7", "full", false, "http"), "peer"),                             // http not finished: the older one stands
	})
	var picks []string
	for _, m := range got {
		line := filepath.ToSlash(m.primary.Dir)
		var exps []string
		for e := range m.byExp {
			exps = append(exps, e)
		}
		slices.Sort(exps)
		for _, e := range exps {
			line += " " + e + "=" + filepath.Base(m.byExp[e].Dir)
		}
		picks = append(picks, line)
	}
	want := []string{
		"results/a/1 http=6 peer=6 powercut=6 soak=5 throughput=1 torture=4",
		"results/b/3 throughput=3",
	}
	if got := strings.Join(picks, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("selected\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

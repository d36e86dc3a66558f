package reportgen

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"edgecollector/bench/record"
)

var update = flag.Bool("update", false, "rewrite testdata/README.md.golden from the fixture")

// fixture is a QUICK run kept as test data; it is not a published result.
const fixture = "../testdata/results"

// generated renders the fixture's report once for the tests that only read
// it: plots are slow to render under the race detector.
var generated = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "report-test-*")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "reports")
	return out, Generate(fixture, out)
})

func generatedDir(t *testing.T) string {
	t.Helper()
	out, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if out, err := generated(); err == nil {
		os.RemoveAll(filepath.Dir(out))
	}
	os.Exit(code)
}

func TestGolden(t *testing.T) {
	out := generatedDir(t)
	got, err := os.ReadFile(filepath.Join(out, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "README.md.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./bench/reportgen -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("README.md differs from %s (go test ./bench/reportgen -update rewrites it):\n%s", golden, lineDiff(string(want), string(got)))
	}
}

// Plots are checked for what they are, not byte for byte: font rendering
// may differ across architectures.
func TestPlots(t *testing.T) {
	out := generatedDir(t)
	pngs, _ := filepath.Glob(filepath.Join(out, "*", "*.png"))
	if got, want := len(pngs), len(figureSpecs); got != want { // the fixture has results for every figure
		t.Fatalf("%d PNG plots, want %d: %v", got, want, pngs)
	}
	for _, p := range pngs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 250 {
			t.Errorf("%s: %dx%d, too small", p, b.Dx(), b.Dy())
		}
		svg, err := os.ReadFile(strings.TrimSuffix(p, ".png") + ".svg")
		if err != nil || !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s: no SVG beside it (%v)", p, err)
		}
	}
}

// Running it twice leaves no diff: that is what CI checks on reports/.
func TestDeterministic(t *testing.T) {
	a, b := generatedDir(t), filepath.Join(t.TempDir(), "b")
	if err := Generate(fixture, b); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs", rel)
		}
		return nil
	})
}

func TestReplaceRefusesForeignFiles(t *testing.T) {
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "notes.txt"), []byte("mine"), 0o644)
	if err := Generate(fixture, out); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Generate over a foreign file = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(out, "notes.txt")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
}

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

func TestNoResults(t *testing.T) {
	out := filepath.Join(t.TempDir(), "reports")
	if err := Generate(t.TempDir(), out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(out, "README.md"))
	if !bytes.Contains(got, []byte("No results yet")) {
		t.Errorf("README without results:\n%s", got)
	}
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
		run("a", "2", "quick", true, "throughput", "http"), // newer, but a smoke run
		run("a", "3", "full", false, "throughput"),         // newer, but incomplete
		run("a", "4", "full", true, "torture"),             // an experiment rerun alone
		run("a", "5", "quick", true, "soak"),               // the only run of soak: shown, labelled
		run("b", "1", "quick", true, "throughput"),         // b has no full run: its newest of any kind
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
		"results/a/1 http=1 soak=5 throughput=1 torture=4",
		"results/b/3 throughput=3",
	}
	if got := strings.Join(picks, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("selected\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  - " + wl + "\n  + " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

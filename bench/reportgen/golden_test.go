package reportgen_test

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"edgecollector/bench/experiments"
	"edgecollector/bench/reportgen"
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
	return out, reportgen.Generate(fixture, out, experiments.Parts())
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
	if got, want := len(pngs), figures(); got != want { // the fixture has results for every figure
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
	if err := reportgen.Generate(fixture, b, experiments.Parts()); err != nil {
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
	if err := reportgen.Generate(fixture, out, experiments.Parts()); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Generate over a foreign file = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(out, "notes.txt")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
}

func TestNoResults(t *testing.T) {
	out := filepath.Join(t.TempDir(), "reports")
	if err := reportgen.Generate(t.TempDir(), out, experiments.Parts()); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(out, "README.md"))
	if !bytes.Contains(got, []byte("No results yet")) {
		t.Errorf("README without results:\n%s", got)
	}
}

// figures counts the experiments' figures.
func figures() int {
	n := 0
	for _, p := range experiments.Parts() {
		n += len(p.Figures)
	}
	return n
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

package record

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.txt")
	for _, content := range []string{"first\n", "second, longer\n"} {
		if err := WriteFile(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("read %q, want %q", got, content)
		}
	}
	// Nothing but the file itself is left behind: no temporary files.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only x.txt", names)
	}
}

func TestWriteFileFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.txt")
	if err := WriteFile(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// A directory in the way of the rename: the write must fail and leave
	// neither a torn file nor a temporary one.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(blocked, []byte("new")); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("other file changed: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2 (no temporary file left)", len(entries))
	}
}

func testFile() *File {
	return &File{
		Header: []KV{{"goos", "linux"}, {"seed", "1"}},
		Units:  []Unit{{Name: "events/s", Better: 1}, {Name: "p99-ns/insert", Better: -1}},
		Points: []Point{
			{Name: "Throughput", Config: []KV{{"mode", "serialized"}, {"producers", "16"}}, Iters: 100,
				Values: []Value{{5900, "events/s"}, {4.7e6, "p99-ns/insert"}}},
			{Name: "Throughput", Config: []KV{{"mode", "group"}, {"producers", "16"}}, Iters: 600,
				Values: []Value{{36700, "events/s"}, {8e5, "p99-ns/insert"}}},
			{Name: "Throughput", Config: []KV{{"mode", "serialized"}, {"producers", "16"}}, Iters: 101,
				Values: []Value{{6000, "events/s"}, {4.5e6, "p99-ns/insert"}}},
		},
	}
}

func TestEncodeFormat(t *testing.T) {
	got := string(testFile().Encode())
	for _, want := range []string{
		"Unit events/s better=higher\n",
		"Unit p99-ns/insert better=lower\n",
		"goos: linux\n",
		"mode: serialized\nproducers: 16\n",
		"BenchmarkThroughput 100 5900 events/s 4.7e+06 p99-ns/insert\n",
		"mode: group\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("encoded file lacks %q:\n%s", want, got)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "throughput.txt")
	if err := WriteFile(path, testFile().Encode()); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(f.Points), 3; got != want {
		t.Fatalf("read %d points, want %d", got, want)
	}
	// In measurement order, for pairing.
	if got, want := f.Sample("Throughput", "events/s", KV{"mode", "serialized"}), []float64{5900, 6000}; !equal(got, want) {
		t.Errorf("serialized events/s = %v, want %v", got, want)
	}
	// ns units come back tidied to seconds, as benchstat reads them.
	if got, want := f.Sample("Throughput", "p99-sec/insert", KV{"mode", "group"}), []float64{8e-4}; !equal(got, want) {
		t.Errorf("group p99 = %v, want %v", got, want)
	}
	if got := f.Points[0].Get("seed"); got != "1" {
		t.Errorf("header key seed = %q, want 1", got)
	}
	if got, want := f.Distinct("Throughput", "mode"), []string{"serialized", "group"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("modes = %v, want %v", got, want)
	}
	better := map[string]int{}
	for _, u := range f.Units {
		better[u.Name] = u.Better
	}
	if better["events/s"] != 1 || better["p99-sec/insert"] != -1 {
		t.Errorf("unit metadata = %v", better)
	}
}

func TestListAndReadRun(t *testing.T) {
	root := t.TempDir()
	for _, ts := range []string{"20260102T000000Z", "20260101T000000Z"} {
		dir := filepath.Join(root, "m1", ts)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteMeta(dir, &Meta{MachineID: "m1", Run: RunInfo{Profile: "quick"}}); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(filepath.Join(dir, "throughput.txt"), testFile().Encode()); err != nil {
			t.Fatal(err)
		}
	}
	// A directory without machine.json is not a run.
	os.MkdirAll(filepath.Join(root, "m1", "partial"), 0o755)
	dirs, err := ListRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(dirs), 2; got != want {
		t.Fatalf("ListRuns found %d runs, want %d: %v", got, want, dirs)
	}
	if !strings.HasSuffix(dirs[0], "20260101T000000Z") {
		t.Errorf("runs not sorted: %v", dirs)
	}
	run, err := ReadRun(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if run.Meta.MachineID != "m1" || run.Files["throughput"] == nil {
		t.Errorf("ReadRun = %+v", run)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := a[i] - b[i]; d > 1e-12 || d < -1e-12 {
			return false
		}
	}
	return true
}

package gate

import (
	"math"
	"os"
	"strings"
	"testing"

	"edgecollector/bench/record"
)

func TestParse(t *testing.T) {
	in := `# comment

g1 throughput Throughput events/s producers=16,indexed=false group/serialized >= 3
g2 throughput Throughput events/s producers=16 concurrent/serialized in 0.5 1.5
g3 contention Contention p99-ns/insert producers=16 group/serialized <= 1
`
	gates, err := Parse(strings.NewReader(in), "gates.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(gates), 3; got != want {
		t.Fatalf("parsed %d gates, want %d", got, want)
	}
	g := gates[0]
	if g.Name != "g1" || g.Num != "group" || g.Den != "serialized" || g.Min != 3 || !math.IsNaN(g.Max) || g.Line != 3 {
		t.Errorf("g1 = %+v", g)
	}
	if got, want := len(g.Where), 2; got != want {
		t.Errorf("g1 where = %v", g.Where)
	}
	if g := gates[1]; g.Min != 0.5 || g.Max != 1.5 {
		t.Errorf("g2 band = [%v, %v]", g.Min, g.Max)
	}
	if g := gates[2]; !math.IsNaN(g.Min) || g.Max != 1 {
		t.Errorf("g3 = %+v", g)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		// Each names the line and what is wrong with it.
		{"short", "g throughput Throughput events/s p=1 a/b >=", "gates.txt:1: want: name"},
		{"ratio", "g throughput Throughput events/s p=1 ab >= 3", "ratio: want num/den"},
		{"where", "g throughput Throughput events/s p a/b >= 3", "where: want key=value"},
		{"check", "g throughput Throughput events/s p=1 a/b > 3", "check: want"},
		{"threshold", "g throughput Throughput events/s p=1 a/b >= x", "threshold: want a positive number"},
		{"band", "g throughput Throughput events/s p=1 a/b in 2 1", "band: want low < high"},
		{"twice", "g t T u p=1 a/b >= 1\ng t T u p=1 a/b >= 1", "defined twice"},
		{"empty", "# nothing\n", "no gates"},
	} {
		_, err := Parse(strings.NewReader(tc.in), "gates.txt")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// file returns a throughput file where mode num measured nums and serialized dens.
func file(num string, nums, dens []float64) *record.File {
	f := &record.File{}
	for i := range max(len(nums), len(dens)) {
		add := func(mode string, xs []float64) {
			if i < len(xs) {
				f.Points = append(f.Points, record.Point{Name: "Throughput",
					Config: []record.KV{{Key: "mode", Value: mode}, {Key: "producers", Value: "16"}},
					Values: []record.Value{{Value: xs[i], Unit: "events/s"}, {Value: xs[i] * 1e-9, Unit: "p99-sec/insert"}}})
			}
		}
		add("serialized", dens)
		add(num, nums)
	}
	return f
}

func scaled(xs []float64, k float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x * k
	}
	return out
}

func TestEvaluate(t *testing.T) {
	base := []float64{5900, 6100, 5800, 6000, 6050, 5950, 5900, 6020}
	noisy := []float64{2.0, 4.5, 2.2, 4.2, 2.4, 4.0, 2.1, 4.4} // ratios straddling 3
	gt3 := Gate{Name: "g", Experiment: "throughput", Benchmark: "Throughput", Unit: "events/s",
		Where: []record.KV{{Key: "producers", Value: "16"}}, Num: "group", Den: "serialized", Min: 3, Max: math.NaN()}
	band := gt3
	band.Min, band.Max = 0.8, 1.25
	p99 := gt3
	p99.Unit, p99.Min, p99.Max = "p99-ns/insert", math.NaN(), 1

	for _, tc := range []struct {
		name   string
		g      Gate
		f      *record.File
		status Status
		reason string
	}{
		// Clearly above the floor.
		{"pass", gt3, file("group", scaled(base, 6), base), Pass, "reaches"},
		// Every paired ratio below 3: the whole interval is, so it fails.
		{"regressed", gt3, file("group", scaled(base, 2), base), Fail, "lies below 3"},
		// Ratios on both sides of 3: noise, not a regression.
		{"straddles", gt3, file("group", func() []float64 {
			out := make([]float64, len(base))
			for i := range base {
				out[i] = base[i] * noisy[i]
			}
			return out
		}(), base), Pass, "straddles"},
		// A band fails from above too.
		{"above band", band, file("group", scaled(base, 1.5), base), Fail, "lies above 1.25"},
		{"in band", band, file("group", base, base), Pass, "reaches"},
		// ns units in the thresholds file match the tidied values.
		{"tidied unit", p99, file("group", scaled(base, 0.5), base), Pass, "reaches"},
		// Five pairs: no 95% interval, so no verdict but a failure that says so.
		{"too few", gt3, file("group", scaled(base[:5], 6), base[:5]), Fail, "too few"},
		{"no cell", gt3, file("concurrent", base, base), Fail, "no samples"},
		{"no file", gt3, nil, Fail, "no throughput results"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(tc.g, tc.f)
			if v.Status != tc.status || !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("got %v, want %v with a reason containing %q", v, tc.status, tc.reason)
			}
		})
	}
}

// The checked-in thresholds file parses.
func TestCheckedInGates(t *testing.T) {
	f, err := os.Open("../gates.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gates, err := Parse(f, "bench/gates.txt")
	if err != nil {
		t.Fatal(err)
	}
	var aa bool
	for _, g := range gates {
		aa = aa || strings.HasSuffix(g.Num, "-aa")
	}
	if !aa {
		t.Error("bench/gates.txt has no A/A control gate")
	}
}

// A gate on two units of one cell: what a system delivered during the load
// over what it accepted.
func TestUnitRatio(t *testing.T) {
	gates, err := Parse(strings.NewReader("d peer PeerLoad delivered-events/s:accepted-events/s batch=100 ours-group/ours-group >= 0.9\n"), "gates.txt")
	if err != nil {
		t.Fatal(err)
	}
	g := gates[0]
	if g.Unit != "delivered-events/s" || g.DenUnit != "accepted-events/s" || g.Num != "ours-group" || g.Den != "ours-group" {
		t.Fatalf("parsed %+v", g)
	}
	if want := "ours-group delivered-events/s / ours-group accepted-events/s at batch=100"; g.What() != want {
		t.Errorf("What = %q, want %q", g.What(), want)
	}
	accepted := []float64{50000, 52000, 49000, 51000, 50500, 49500, 50200, 50800}
	cell := func(k float64) *record.File {
		f := &record.File{}
		for _, a := range accepted {
			f.Points = append(f.Points, record.Point{Name: "PeerLoad",
				Config: []record.KV{{Key: "mode", Value: "ours-group"}, {Key: "batch", Value: "100"}},
				Values: []record.Value{{Value: a, Unit: "accepted-events/s"}, {Value: a * k, Unit: "delivered-events/s"}}})
		}
		return f
	}
	for _, tc := range []struct {
		k      float64
		status Status
	}{{0.98, Pass}, {0.6, Fail}} {
		if v := Evaluate(g, cell(tc.k)); v.Status != tc.status {
			t.Errorf("delivered %.2fx accepted: %v, want %v", tc.k, v, tc.status)
		}
	}
	for _, bad := range []string{":accepted-events/s", "delivered-events/s:"} {
		if _, err := Parse(strings.NewReader("d peer PeerLoad "+bad+" batch=100 a/a >= 0.9\n"), "gates.txt"); err == nil || !strings.Contains(err.Error(), "unit: want") {
			t.Errorf("unit %q: error %v", bad, err)
		}
	}
}

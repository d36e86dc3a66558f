package stats

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name   string
		xs     []float64
		center float64
		hasCI  bool
	}{
		// Too few samples: a median but no interval.
		{"five", []float64{5, 1, 4, 2, 3}, 3, false},
		// Six is the least that gives a 95% interval of the median.
		{"six", []float64{6, 1, 5, 2, 4, 3}, 3.5, true},
		{"ten", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5.5, true},
		{"empty", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Summarize(tc.xs)
			if got, want := s.Center, tc.center; got != want {
				t.Errorf("Center = %v, want %v", got, want)
			}
			if got, want := s.HasCI(), tc.hasCI; got != want {
				t.Errorf("HasCI = %v, want %v (lo %v hi %v)", got, want, s.Lo, s.Hi)
			}
			if s.HasCI() && (s.Lo > s.Center || s.Hi < s.Center) {
				t.Errorf("interval [%v, %v] does not hold the median %v", s.Lo, s.Hi, s.Center)
			}
		})
	}
}

func TestSummarizeDoesNotModify(t *testing.T) {
	xs := []float64{3, 1, 2}
	Summarize(xs)
	if xs[0] != 3 || xs[1] != 1 || xs[2] != 2 {
		t.Errorf("Summarize sorted its argument: %v", xs)
	}
}

func TestComparePairs(t *testing.T) {
	// The baseline drifts from repetition to repetition; the mode is always
	// twice it. Paired, the ratio is exactly 2 with no spread.
	base := []float64{100, 200, 150, 300, 120, 250, 180, 90}
	num := make([]float64, len(base))
	for i, b := range base {
		num[i] = 2 * b
	}
	r := Compare(num, base)
	if got, want := r.Center, 2.0; got != want {
		t.Errorf("ratio = %v, want %v", got, want)
	}
	if got, want := [2]float64{r.Lo, r.Hi}, [2]float64{2, 2}; got != want {
		t.Errorf("interval = %v, want %v", got, want)
	}
	if r.N != len(base) {
		t.Errorf("N = %d, want %d", r.N, len(base))
	}
}

func TestCompareSignificance(t *testing.T) {
	a := []float64{10, 11, 12, 10.5, 11.5, 10.2, 11.1, 10.9}
	b := []float64{20, 21, 22, 20.5, 21.5, 20.2, 21.1, 20.9}
	if r := Compare(b, a); !r.Significant() {
		t.Errorf("clearly different samples: p = %v, want <= 0.05", r.P)
	}
	if r := Compare(a, a); r.Significant() {
		t.Errorf("a sample against itself: p = %v, want > 0.05", r.P)
	}
}

func TestCompareZeroBaseline(t *testing.T) {
	r := Compare([]float64{1, 2}, []float64{0, 1})
	if r.N != 1 || len(r.Warnings) == 0 {
		t.Errorf("a zero baseline must be skipped with a warning: N=%d warnings=%v", r.N, r.Warnings)
	}
}

func TestPercentile(t *testing.T) {
	xs := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		q    float64
		want int64
	}{
		{0, 1}, {0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10},
	} {
		if got := Percentile(xs, tc.q); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := Percentile([]int64(nil), 0.5); got != 0 {
		t.Errorf("Percentile of nothing = %v, want 0", got)
	}
}

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		name string
		xs   []float64
		want float64
	}{
		{"equal", []float64{5, 5, 5, 5}, 1},
		{"one has all", []float64{8, 0, 0, 0}, 0.25},
		{"nothing", []float64{0, 0}, 1},
		{"half", []float64{1, 1, 0, 0}, 0.5},
	} {
		if got := Jain(tc.xs); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: Jain = %v, want %v", tc.name, got, tc.want)
		}
	}
}

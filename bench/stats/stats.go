// Package stats turns repeated measurements into what the report and the
// gate state: medians with distribution-free confidence intervals, and
// ratios between write modes, through golang.org/x/perf/benchmath (the
// statistics benchstat uses).
//
// Ratios are paired: the harness interleaves modes (A B C A B C ...), so
// the i-th repetition of mode A and of mode B ran seconds apart under the
// same machine conditions. The ratio's sample is B[i]/A[i] for each i, and
// its confidence interval is that of the median of those ratios. Pairing
// cancels slow drift of the machine (thermal, background work) that would
// widen an interval computed from the two samples separately.
package stats

import (
	"cmp"
	"fmt"
	"math"

	"golang.org/x/perf/benchmath"
)

// Confidence is the level of every interval the harness reports.
const Confidence = 0.95

// Summary is a sample's median and its confidence interval.
type Summary struct {
	N        int
	Center   float64 // median
	Lo, Hi   float64 // Confidence interval of the median; ±Inf when N is too small
	Warnings []string
}

// HasCI reports whether the interval is finite (enough samples).
func (s Summary) HasCI() bool {
	return s.N > 0 && !math.IsInf(s.Lo, 0) && !math.IsInf(s.Hi, 0)
}

// Summarize returns the median of xs and its confidence interval, making no
// assumption about the distribution. xs is not modified.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{Lo: math.Inf(-1), Hi: math.Inf(1), Warnings: []string{"no samples"}}
	}
	vals := append([]float64(nil), xs...)
	s := benchmath.NewSample(vals, &benchmath.DefaultThresholds)
	sum := benchmath.AssumeNothing.Summary(s, Confidence)
	out := Summary{N: len(xs), Center: sum.Center, Lo: sum.Lo, Hi: sum.Hi}
	for _, w := range sum.Warnings {
		out.Warnings = append(out.Warnings, w.Error())
	}
	return out
}

// Ratio compares a sample to a baseline.
type Ratio struct {
	Summary         // of the paired ratios num[i]/base[i]
	P       float64 // Mann-Whitney U test p-value of num against base
}

// Significant reports whether the difference is significant at alpha 0.05.
func (r Ratio) Significant() bool {
	return r.P <= benchmath.DefaultThresholds.CompareAlpha
}

// Compare returns the paired ratio num[i]/base[i] over the common prefix of
// the two samples (repetition i of each), and the p-value of a U test
// between the whole samples. A pair whose baseline is zero is skipped, and
// said so.
func Compare(num, base []float64) Ratio {
	n := min(len(num), len(base))
	var rs []float64
	skipped := 0
	for i := range n {
		if base[i] == 0 {
			skipped++
			continue
		}
		rs = append(rs, num[i]/base[i])
	}
	r := Ratio{Summary: Summarize(rs), P: 1}
	if skipped > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d pairs with a zero baseline skipped", skipped))
	}
	if len(num) > 0 && len(base) > 0 {
		s1 := benchmath.NewSample(append([]float64(nil), base...), &benchmath.DefaultThresholds)
		s2 := benchmath.NewSample(append([]float64(nil), num...), &benchmath.DefaultThresholds)
		c := benchmath.AssumeNothing.Compare(s1, s2)
		r.P = c.P
		for _, w := range c.Warnings {
			r.Warnings = append(r.Warnings, w.Error())
		}
	}
	return r
}

// Percentile returns the q-quantile (0..1) of sorted xs by the nearest-rank
// method: the smallest value with at least q of the sample at or below it.
// It returns 0 for an empty sample.
func Percentile[T cmp.Ordered](sorted []T, q float64) T {
	if len(sorted) == 0 {
		var zero T
		return zero
	}
	if q <= 0 {
		return sorted[0]
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Jain returns Jain's fairness index of xs: (Σx)² / (n·Σx²), 1 when every
// x is equal, 1/n when one x has everything. It returns 1 for an empty or
// all-zero sample (nobody was treated worse than anybody else).
func Jain(xs []float64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	if sq == 0 {
		return 1
	}
	return sum * sum / (float64(len(xs)) * sq)
}

package reportgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"edgecollector/bench/stats"
)

// Count formats a rate or count: thousands separated, a decimal under 100.
func Count(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	if math.Abs(x) < 100 && x != math.Trunc(x) {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Seconds formats a duration given in seconds with 3 significant digits.
func Seconds(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "–"
	case x == 0:
		return "0"
	case x < 1e-3:
		return Sig(x*1e6) + " µs"
	case x < 1:
		return Sig(x*1e3) + " ms"
	}
	return Sig(x) + " s"
}

// Sig formats x with 3 significant digits, without an exponent.
func Sig(x float64) string {
	switch ax := math.Abs(x); {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "–"
	case ax >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case ax >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

// Times formats a ratio: "1.23×".
func Times(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "?"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

// Percent formats a fraction as a percentage.
func Percent(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return strconv.FormatFloat(100*x, 'f', 1, 64) + "%"
}

// Interval formats a summary's 95% interval with f, or says it has none.
func Interval(s stats.Summary, f func(float64) string) string {
	if !s.HasCI() {
		return fmt.Sprintf("n=%d: too few", s.N)
	}
	return f(s.Lo) + " – " + f(s.Hi)
}

// WithCI formats "median (lo – hi)".
func WithCI(s stats.Summary, f func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	if !s.HasCI() {
		return f(s.Center) + " (n=" + strconv.Itoa(s.N) + ")"
	}
	return f(s.Center) + " (" + f(s.Lo) + " – " + f(s.Hi) + ")"
}

// PValue formats a p-value the way benchstat does, to three places.
func PValue(p float64) string {
	if p < 0.001 {
		return "<0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

// MiB formats a byte count in MiB ("–" when it was not measured).
func MiB(x float64) string {
	if math.IsNaN(x) || x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", x/(1<<20))
}

// Lost formats a loss count so that a non-zero one cannot be missed.
func Lost(x float64) string {
	if x > 0 {
		return "**" + Count(x) + " (FAILED)**"
	}
	return Count(x)
}

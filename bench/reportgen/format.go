package reportgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"edgecollector/bench/stats"
)

// count formats a rate or count: thousands separated, a decimal under 100.
func count(x float64) string {
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

// seconds formats a duration given in seconds with 3 significant digits.
func seconds(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "–"
	case x == 0:
		return "0"
	case x < 1e-3:
		return sig(x*1e6) + " µs"
	case x < 1:
		return sig(x*1e3) + " ms"
	}
	return sig(x) + " s"
}

// sig formats x with 3 significant digits, without an exponent.
func sig(x float64) string {
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

func ratio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "?"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

func fraction(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return strconv.FormatFloat(100*x, 'f', 1, 64) + "%"
}

// ci formats a summary's interval with f, or says it has none.
func ci(s stats.Summary, f func(float64) string) string {
	if !s.HasCI() {
		return fmt.Sprintf("n=%d: too few", s.N)
	}
	return f(s.Lo) + " – " + f(s.Hi)
}

// withCI formats "median (lo – hi)".
func withCI(s stats.Summary, f func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	if !s.HasCI() {
		return f(s.Center) + " (n=" + strconv.Itoa(s.N) + ")"
	}
	return f(s.Center) + " (" + f(s.Lo) + " – " + f(s.Hi) + ")"
}

// pvalue formats a p-value the way benchstat does, to three places.
func pvalue(p float64) string {
	if p < 0.001 {
		return "<0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

// table is a Markdown table.
type table struct {
	head  []string
	align []byte // 'l' or 'r' per column
	rows  [][]string
}

func newTable(cols ...string) *table {
	t := &table{}
	for _, c := range cols {
		align := byte('r')
		if strings.HasPrefix(c, "<") {
			c, align = c[1:], 'l'
		}
		t.head = append(t.head, c)
		t.align = append(t.align, align)
	}
	return t
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) String() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for _, a := range t.align {
		if a == 'l' {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteByte('\n')
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

package server

import (
	"strconv"
	"testing"
)

// parseInt64 reads every JSON integer literal as strconv.ParseInt does,
// and refuses what it refuses (fractions, exponents, out of range).
func TestParseInt64MatchesStrconv(t *testing.T) {
	lits := []string{"0", "-0", "7", "-7", "1748722000000", "946684800000",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
		"18446744073709551615", "18446744073709551616", "99999999999999999999", "-99999999999999999999",
		"1.5", "1e3", "1E3", "-1e-3", "10.0", "1000000000000000000000000000"}
	for n := int64(1); n > 0 && n < 1<<62; n = n*3 + 1 {
		lits = append(lits, strconv.FormatInt(n, 10), strconv.FormatInt(-n, 10))
	}
	for _, lit := range lits {
		want, err := strconv.ParseInt(lit, 10, 64)
		got, ok := parseInt64([]byte(lit))
		if ok != (err == nil) || (ok && got != want) {
			t.Errorf("parseInt64(%s) = %d, %v; strconv: %d, %v", lit, got, ok, want, err)
		}
	}
}

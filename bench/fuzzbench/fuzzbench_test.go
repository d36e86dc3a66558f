package fuzzbench

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want Figures
	}{
		{
			// A clean run: the last progress line counts.
			"pass",
			"fuzz: elapsed: 0s, gathering baseline coverage: 0/228 completed\n" +
				"fuzz: elapsed: 3s, execs: 1200 (400/sec), new interesting: 2 (total: 230)\n" +
				"fuzz: elapsed: 10s, execs: 52000 (7000/sec), new interesting: 5 (total: 233)\nPASS\nok  \tx\t10.2s\n",
			Figures{Seconds: 10, Execs: 52000, NewInteresting: 5, Corpus: 233},
		},
		{
			// Time ran out while the baseline was still being gathered.
			"baseline only",
			"fuzz: elapsed: 3s, gathering baseline coverage: 144/228 completed\nPASS\n",
			Figures{},
		},
		{
			// A crasher: failed, and where the input went.
			"crash",
			"fuzz: elapsed: 4s, execs: 900 (300/sec), new interesting: 1 (total: 10)\n--- FAIL: FuzzX (4.01s)\n" +
				"    Failing input written to testdata/fuzz/FuzzX/abc123\n    To re-run:\nFAIL\n",
			Figures{Seconds: 4, Execs: 900, NewInteresting: 1, Corpus: 10, Failed: true, Input: "testdata/fuzz/FuzzX/abc123"},
		},
	} {
		if got := Parse([]byte(tc.out)); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

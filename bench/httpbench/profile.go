package httpbench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"edgecollector/bench/record"
)

// Where the collector's CPU goes: a CPU profile of the collector (its
// -pprof-addr) taken during a cell's window, each sample put in the first
// part whose code is on its stack, in this order. GC comes first because a
// goroutine that allocates pays for GC assists on its own stack.
var parts = []struct {
	name     string
	prefixes []string
}{
	{"gc", []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcStart", "runtime.markroot"}},
	{"uploader", []string{"edgecollector/collector/uploader.", "edgecollector/collector/sink."}},
	{"store", []string{"edgecollector/collector/store."}},
	{"handler", []string{"edgecollector/collector/server."}},
	{"http", []string{"net/http.", "net.", "internal/poll.", "bufio."}},
	{"runtime", []string{"runtime."}},
}

// shareUnit is the unit of a part's share of the collector's CPU.
func shareUnit(part string) string { return "cpu-share-" + part }

// shareUnits are the units of every part's share, and of what none holds.
func shareUnits() []record.Unit {
	var us []record.Unit
	for _, p := range parts {
		us = append(us, record.Unit{Name: shareUnit(p.name)})
	}
	return append(us, record.Unit{Name: shareUnit("other")})
}

// cpuShares is each part's share of the CPU time in p: every part, and
// "other", as a value (shares sum to 1).
func cpuShares(p *profile.Profile) ([]record.Value, error) {
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("not a CPU profile (sample types %v)", p.SampleType)
	}
	by := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[vi]
		total += v
		by[partOf(s)] += v
	}
	if total == 0 {
		return nil, fmt.Errorf("empty CPU profile")
	}
	var vs []record.Value
	for _, name := range append(partNames(), "other") {
		vs = append(vs, record.Value{Value: round(float64(by[name])/float64(total), 4), Unit: shareUnit(name)})
	}
	return vs, nil
}

func partNames() []string {
	var ns []string
	for _, p := range parts {
		ns = append(ns, p.name)
	}
	return ns
}

// partOf is the part a sample's stack belongs to.
func partOf(s *profile.Sample) string {
	for _, p := range parts {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				for _, pre := range p.prefixes {
					if strings.HasPrefix(line.Function.Name, pre) {
						return p.name
					}
				}
			}
		}
	}
	return "other"
}

// takeProfile asks the profiler at addr for a CPU profile of secs seconds.
func takeProfile(ctx context.Context, addr string, secs int) (*profile.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("cpu profile: %s: %s", resp.Status, b)
	}
	return profile.Parse(resp.Body)
}

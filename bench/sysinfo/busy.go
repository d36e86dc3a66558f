package sysinfo

import (
	"context"
	"runtime"
	"time"
)

// SampleBusy returns the fraction of all CPUs that were busy during d while
// the caller waited. The one-minute load average lags by minutes (right
// after a build it still counts the compiler), so the decision to run is
// taken on this instant sample instead. ok is false where it cannot be known.
func SampleBusy(ctx context.Context, d time.Duration) (frac float64, ok bool) {
	b0, t0, ok := CPUTime()
	if !ok {
		return 0, false
	}
	own0 := OwnCPU()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, false
	}
	b1, t1, _ := CPUTime()
	if t1 <= t0 {
		return 0, false
	}
	return max(0, (b1-b0)-(OwnCPU()-own0)) / (t1 - t0), true
}

// Meter measures the CPU time used by others (not this process, not its
// waited-for children) since it started.
type Meter struct {
	busy0, own0 float64
	t0          time.Time
	ok          bool
}

// StartMeter starts measuring.
func StartMeter() *Meter {
	b, _, ok := CPUTime()
	return &Meter{busy0: b, own0: OwnCPU(), t0: time.Now(), ok: ok}
}

// Foreign returns the CPU time used by others since the start, as a
// fraction of all CPUs over the elapsed time. Kernel work done on the
// harness's behalf outside its threads (flushing the journal, say) counts
// as foreign, so an idle machine shows a few percent.
func (m *Meter) Foreign() float64 {
	if !m.ok {
		return 0
	}
	b, _, _ := CPUTime()
	wall := time.Since(m.t0).Seconds() * float64(runtime.NumCPU())
	if wall <= 0 {
		return 0
	}
	return max(0, (b-m.busy0)-(OwnCPU()-m.own0)) / wall
}

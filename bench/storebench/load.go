package storebench

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"edgecollector/collector"
)

// maxOpsPerProducer bounds a producer's loop in count, beside the time
// bound of the cell; no cell on any machine comes near it.
const maxOpsPerProducer = 10_000_000

// opTimeout bounds one operation; a durable insert takes milliseconds.
const opTimeout = 30 * time.Second

// load is what a closed-loop run of producers measured.
type load struct {
	window   time.Duration // length of the measured window
	perProd  []int         // operations completed in the window, per producer
	lat      []int64       // latency of each of those, ns, sorted
	ok       int64         // successful operations, warm-up included
	busy     int64         // operations that failed with ErrBusy (not acknowledged)
	firstErr error         // the first failure other than ErrBusy
}

func (l *load) total() int {
	n := 0
	for _, c := range l.perProd {
		n += c
	}
	return n
}

// span is a cell's timing: a dropped ramp, then the measured window.
type span struct {
	warm, dur time.Duration
	// minOps, when set, holds the window open past dur until every producer
	// has completed minOps operations in it (for at most maxHold): a
	// condition, not a clock, for tests on a loaded machine, where a short
	// window can see none complete. The profiles leave it 0: a fixed window.
	minOps int
}

// maxHold bounds how long minOps holds a window open past its dur.
const maxHold = time.Minute

// drive runs producers closed-loop: each calls op in a loop, as fast as op
// returns, through the span's ramp and window. Operations completed in the
// window count; their latencies are kept. op(ctx, producer, rng) does one
// operation; ErrBusy from it is counted, any other error stops the run.
// measuring is set during the measured window, so that a background task
// can count its own work over the same window.
func drive(ctx context.Context, producers int, sp span, seed uint64, measuring *atomic.Bool,
	op func(ctx context.Context, p int, rng *rand.Rand) error) *load {
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		mu   sync.Mutex
		l    = &load{perProd: make([]int, producers)}
		done = make([]atomic.Int64, producers) // operations in the window so far
	)
	if measuring == nil {
		measuring = new(atomic.Bool)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lats := make([][]int64, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(p)))
			lat := make([]int64, 0, 1024)
			var ok, busy int64
			for range maxOpsPerProducer {
				if stop.Load() {
					break
				}
				octx, ocancel := context.WithTimeout(ctx, opTimeout)
				t0 := time.Now()
				err := op(octx, p, rng)
				d := time.Since(t0)
				ocancel()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, collector.ErrBusy):
					busy++
					continue
				default:
					mu.Lock()
					if l.firstErr == nil && !stop.Load() {
						l.firstErr = err
					}
					mu.Unlock()
					stop.Store(true)
					cancel()
					continue
				}
				if measuring.Load() {
					lat = append(lat, int64(d))
					done[p].Add(1)
				}
			}
			mu.Lock()
			lats[p] = lat
			l.perProd[p] = len(lat)
			l.ok += ok
			l.busy += busy
			mu.Unlock()
		}()
	}
	sleep(ctx, sp.warm)
	t0 := time.Now()
	measuring.Store(true)
	sleep(ctx, sp.dur)
	for hold := time.Now().Add(maxHold); !enough(done, sp.minOps) && time.Now().Before(hold) && ctx.Err() == nil && !stop.Load(); {
		sleep(ctx, time.Millisecond)
	}
	measuring.Store(false)
	l.window = time.Since(t0)
	stop.Store(true)
	wg.Wait()
	for _, lat := range lats {
		l.lat = append(l.lat, lat...)
	}
	slices.Sort(l.lat)
	return l
}

// enough reports whether every producer has done at least n operations.
func enough(done []atomic.Int64, n int) bool {
	for i := range done {
		if done[i].Load() < int64(n) {
			return false
		}
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// devices is how many distinct device ids the generated events spread over.
const devices = 50

var kinds = []string{"telemetry", "telemetry", "telemetry", "heartbeat", "error"}

// event returns a generated event: a device of devices, a kind, and a small
// JSON payload, all drawn from rng.
func event(rng *rand.Rand, seq int) collector.Event {
	dev := rng.IntN(devices)
	payload := make([]byte, 0, 48)
	payload = append(payload, `{"seq":`...)
	payload = strconv.AppendInt(payload, int64(seq), 10)
	payload = append(payload, `,"temp_c":`...)
	payload = strconv.AppendFloat(payload, 15+float64(rng.IntN(200))/10, 'f', 1, 64)
	payload = append(payload, '}')
	return collector.Event{
		DeviceID: "sensor-" + strconv.Itoa(1000 + dev)[1:],
		Kind:     kinds[rng.IntN(len(kinds))],
		Payload:  payload,
		TS:       1_750_000_000_000 + int64(seq),
	}
}

// Package fleet is the fleet simulation: N collector processes (the real
// binary) on this machine, each under its own open-loop producer, all
// shipping with -sink nats into one JetStream stream on a server embedded in
// the harness. It measures what the fleet delivers into the stream
// (events/s), the end-to-end latency from a producer's 200 to the stream,
// how far each collector's backlog grows, and it checks effectively-once:
// no acknowledged event missing from the stream, none in it twice.
package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"edgecollector/bench"
	"edgecollector/bench/record"
	"edgecollector/bench/stats"
	"edgecollector/internal/natstest"
	"edgecollector/internal/rig"
)

// Config configures the fleet experiment.
type Config struct {
	Binary string // the collector
	DBDir  string // scratch: the collectors' databases and the server's store

	Collectors []int // fleet sizes, one cell each
	// Each collector's producer offers Rate requests/s of Batch events,
	// open loop, at most MaxInFlight requests in flight.
	Rate, Batch, MaxInFlight int
	Warm, Dur                time.Duration // dropped ramp, then the measured window

	// Reps and Warmup are the experiment's own repetitions (each cell starts
	// a server and N processes: a long cell).
	Reps, Warmup int
}

// Stream is the one stream the fleet feeds; subjects fleet.<collector>.<device>.
const (
	Stream  = "FLEET"
	subject = "fleet.{collector_id}.{device_id}"
)

var (
	unitEvents  = record.Unit{Name: "events/s", Better: 1}
	unitOffered = record.Unit{Name: "offered-events/s", Better: 0}
	// What the producers got acknowledged (requests sent in the window): on
	// a busy box the producers themselves can fall short of the offer.
	unitAcked   = record.Unit{Name: "acked-events/s", Better: 0}
	unitP50     = record.Unit{Name: "p50-ns/event", Better: -1}
	unitP99     = record.Unit{Name: "p99-ns/event", Better: -1}
	unitPeakBL  = record.Unit{Name: "peak-backlog-events", Better: -1}
	unitMeanBL  = record.Unit{Name: "mean-backlog-events", Better: -1}
	unitDrain   = record.Unit{Name: "drain-ns", Better: -1}
	unitDups    = record.Unit{Name: "duplicates", Better: -1}
	unitLost    = record.Unit{Name: "lost-events", Better: -1}
	unitReships = record.Unit{Name: "reships-dropped", Better: 0}
	unitRefused = record.Unit{Name: "refused-requests", Better: -1}
	// The backlog over time: the mean per collector in each quarter of the
	// measured window (a growing backlog is a fleet that does not keep up).
	unitQuarters = []record.Unit{
		{Name: "backlog-q1-events", Better: -1}, {Name: "backlog-q2-events", Better: -1},
		{Name: "backlog-q3-events", Better: -1}, {Name: "backlog-q4-events", Better: -1},
	}
	allUnits      = append([]record.Unit{unitEvents, unitOffered, unitAcked, unitP50, unitP99, unitPeakBL, unitMeanBL, unitDrain, unitDups, unitLost, unitReships, unitRefused}, unitQuarters...)
	startTimeout  = 15 * time.Second
	stopTimeout   = 30 * time.Second
	drainTimeout  = 30 * time.Second
	sampleEvery   = 200 * time.Millisecond
	uploadPeriod  = 50 * time.Millisecond
	requestBudget = 10 * time.Second
)

// Experiment returns the fleet experiment: one cell per fleet size.
func (cfg Config) Experiment() *bench.Experiment {
	e := &bench.Experiment{
		Name: "fleet",
		Plan: fmt.Sprintf("N collector processes (the binary, -mode group, -sink nats, -upload-interval %s) on 127.0.0.1, "+
			"each with its own database and its own open-loop producer (%d req/s of %d events, at most %d in flight), "+
			"all shipping into one JetStream stream (file storage, 1 replica) on a nats-server embedded in the harness. "+
			"Each cell: a fresh server and fresh databases, %s ramp dropped, %s measured, then the backlogs drain and the collectors stop (SIGTERM); "+
			"the stream is read back: events/s stored in the window, latency from each 200 to the message's stored time, "+
			"duplicates and lost acknowledged events (both must be 0).",
			uploadPeriod, cfg.Rate, cfg.Batch, cfg.MaxInFlight, cfg.Warm, cfg.Dur),
		Units:  allUnits,
		Reps:   cfg.Reps,
		Warmup: cfg.Warmup,
	}
	for _, n := range cfg.Collectors {
		e.Cells = append(e.Cells, bench.Cell{
			Name: cellName,
			Config: []record.KV{
				{Key: "mode", Value: "group"},
				{Key: "collectors", Value: strconv.Itoa(n)},
				{Key: "rate", Value: strconv.Itoa(cfg.Rate * cfg.Batch)}, // offered events/s per collector
			},
			Cost: cfg.Warm + cfg.Dur + time.Duration(n)*300*time.Millisecond + 2*time.Second,
			Run:  cfg.run(n),
		})
	}
	return e
}

// ack is one acknowledged event: its id and when its 200 came back.
type ack struct {
	id  int64
	t   int64 // unix ns
	win bool  // the request was sent in the measured window
}

// sample is one reading of a collector's backlog.
type sample struct {
	at      time.Time
	backlog int64
}

// member is one collector of the fleet with its producer's record.
type member struct {
	id string
	*rig.Process
	mu      sync.Mutex
	acks    []ack
	refused atomic.Int64 // answered other than 200, or failed
	skipped atomic.Int64 // not sent: MaxInFlight already in flight
	backlog []sample     // sampled in the window
	peak    int64
}

func (cfg Config) run(n int) func(context.Context, bench.Rep) (bench.Sample, error) {
	return func(ctx context.Context, rep bench.Rep) (bench.Sample, error) {
		if cfg.Binary == "" {
			return bench.Sample{}, errors.New("fleet: no collector binary")
		}
		dir, err := os.MkdirTemp(cfg.DBDir, "fleet-*")
		if err != nil {
			return bench.Sample{}, err
		}
		defer os.RemoveAll(dir)
		srv, err := natstest.Start(natstest.Options{Dir: filepath.Join(dir, "nats")})
		if err != nil {
			return bench.Sample{}, err
		}
		defer natstest.Stop(srv)
		url := srv.ClientURL()
		if err := createStream(ctx, url); err != nil {
			return bench.Sample{}, err
		}

		fleet, err := cfg.startFleet(ctx, n, dir, url)
		if err != nil {
			return bench.Sample{}, err
		}
		defer func() { // on an early return: nothing left running
			for _, m := range fleet {
				if !m.Exited() {
					m.Kill()
				}
			}
		}()

		client := &http.Client{Timeout: requestBudget, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.MaxInFlight}}
		defer client.CloseIdleConnections()
		start := time.Now()
		winFrom, winTo := start.Add(cfg.Warm), start.Add(cfg.Warm+cfg.Dur)
		loadCtx, stopLoad := context.WithDeadline(ctx, winTo)
		defer stopLoad()
		var wg sync.WaitGroup
		for i, m := range fleet {
			wg.Add(1)
			go func() { // owned: ends at the load's deadline, after its requests
				defer wg.Done()
				cfg.produce(loadCtx, client, m, i, winFrom, winTo)
			}()
		}
		wg.Add(1)
		go func() { // owned: samples backlogs until the load ends
			defer wg.Done()
			sampleBacklogs(loadCtx, fleet, winFrom)
		}()
		wg.Wait()

		// Drain: every backlog to 0, bounded.
		loadEnd := time.Now()
		reships, err := waitDrained(ctx, fleet, loadEnd.Add(drainTimeout))
		drain := time.Since(loadEnd)
		if err != nil {
			return bench.Sample{}, err
		}
		var stopErrs []error
		var swg sync.WaitGroup
		var smu sync.Mutex
		for _, m := range fleet {
			swg.Add(1)
			go func() { // owned: ends when the process has exited
				defer swg.Done()
				if err := m.Stop(stopTimeout); err != nil {
					smu.Lock()
					stopErrs = append(stopErrs, err)
					smu.Unlock()
				}
			}()
		}
		swg.Wait()
		if err := errors.Join(stopErrs...); err != nil {
			return bench.Sample{}, err
		}

		readCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		msgs, err := natstest.ReadStream(readCtx, url, Stream)
		if err != nil {
			return bench.Sample{}, err
		}
		return cfg.tally(fleet, msgs, winFrom, winTo, drain, reships), nil
	}
}

// createStream creates the fleet's stream before any collector starts, so
// that N collectors do not race to create it (each then only checks it).
func createStream(ctx context.Context, url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: Stream, Subjects: []string{"fleet.*.*"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	}); err != nil {
		return fmt.Errorf("fleet: create stream: %w", err)
	}
	return nil
}

func (cfg Config) startFleet(ctx context.Context, n int, dir, url string) ([]*member, error) {
	fleet := make([]*member, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // owned: ends when the collector serves or fails to
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			// It serves once it logs "collector started", after binding its
			// port and checking the stream.
			p, err := rig.Collector{
				Bin: cfg.Binary, Name: "collector " + id, DB: filepath.Join(dir, id+".db"), Mode: "group", ID: id,
				Flags: []string{
					"-sink", "nats", "-nats-url", url, "-nats-stream", Stream, "-nats-subject", subject,
					"-upload-interval", uploadPeriod.String(),
					"-drain-timeout", "5s",
				},
			}.Start(ctx, startTimeout)
			if err != nil {
				errs[i] = err
				return
			}
			fleet[i] = &member{id: id, Process: p}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, m := range fleet {
			if m != nil {
				m.Kill()
			}
		}
		return nil, err
	}
	return fleet, nil
}

// produce offers cfg.Rate requests/s to m until ctx ends, open loop: a
// request is due every 1/Rate s whether or not the last was answered; past
// MaxInFlight in flight, the due request is skipped and counted.
func (cfg Config) produce(ctx context.Context, client *http.Client, m *member, idx int, winFrom, winTo time.Time) {
	interval := time.Second / time.Duration(cfg.Rate)
	sem := make(chan struct{}, cfg.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for req := 0; ; req++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			m.skipped.Add(1)
			continue
		}
		sent := time.Now()
		body := requestBody(idx, req, cfg.Batch)
		wg.Add(1)
		go func() { // owned: produce waits for it
			defer wg.Done()
			defer func() { <-sem }()
			ids, err := post(client, m.Addr(), body)
			if err != nil {
				m.refused.Add(1)
				return
			}
			now := time.Now().UnixNano()
			win := !sent.Before(winFrom) && sent.Before(winTo)
			m.mu.Lock()
			for _, id := range ids {
				m.acks = append(m.acks, ack{id: id, t: now, win: win})
			}
			m.mu.Unlock()
		}()
	}
}

func requestBody(collector, req, batch int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"device_id":"dev-%d-%d","kind":"telemetry","payload":{"req":%d,"i":%d,"temp_c":21.5}}`, collector, i%4, req, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func post(client *http.Client, addr string, body []byte) ([]int64, error) {
	resp, err := client.Post("http://"+addr+"/events", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct{ IDs []int64 }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return out.IDs, nil
}

// sampleBacklogs records every collector's backlog every sampleEvery until
// ctx ends; samples taken in the window count toward the mean.
func sampleBacklogs(ctx context.Context, fleet []*member, winFrom time.Time) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, m := range fleet {
			st, err := m.Stats(ctx)
			if err != nil {
				continue // the load's end cancels a sample in flight
			}
			m.mu.Lock()
			m.peak = max(m.peak, st.Store.Backlog)
			if now := time.Now(); !now.Before(winFrom) {
				m.backlog = append(m.backlog, sample{now, st.Store.Backlog})
			}
			m.mu.Unlock()
		}
	}
}

// waitDrained polls until every backlog is empty, or deadline. It returns
// the re-ships the stream dropped as duplicates, summed over the fleet.
func waitDrained(ctx context.Context, fleet []*member, deadline time.Time) (int64, error) {
	for {
		var left, reships int64
		for _, m := range fleet {
			st, err := m.Stats(ctx)
			if err != nil {
				return 0, fmt.Errorf("fleet: %s: %w", m.id, err)
			}
			left += st.Store.Backlog
			reships += st.Uploader.Sink.Duplicates
		}
		if left == 0 {
			return reships, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("fleet: %d events still in the backlogs %s after the load", left, drainTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tally checks the stream against the acknowledgements and computes the
// cell's values.
func (cfg Config) tally(fleet []*member, msgs []natstest.Msg, winFrom, winTo time.Time, drain time.Duration, reships int64) bench.Sample {
	var s bench.Sample
	stored := make(map[string]int64, len(msgs)) // collector:id -> stored at, unix ns
	dups := 0
	inWindow := 0
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if _, seen := stored[id]; seen {
			dups++
			continue
		}
		stored[id] = m.Stored.UnixNano()
		if !m.Stored.Before(winFrom) && m.Stored.Before(winTo) {
			inWindow++
		}
	}
	var lat []int64
	lost, acked, ackedWin := 0, 0, 0
	var refused, skipped int64
	var peak int64
	var blSum, blN int64
	var qSum, qN [4]int64
	for _, m := range fleet {
		refused += m.refused.Load()
		skipped += m.skipped.Load()
		peak = max(peak, m.peak)
		for _, b := range m.backlog {
			blSum += b.backlog
			blN++
			q := min(int(4*b.at.Sub(winFrom)/winTo.Sub(winFrom)), 3)
			qSum[q] += b.backlog
			qN[q]++
		}
		for _, a := range m.acks {
			acked++
			at, ok := stored[m.id+":"+strconv.FormatInt(a.id, 10)]
			if !ok {
				lost++
				continue
			}
			if a.win {
				ackedWin++
				// The uploader can ship an event before its 200 has reached
				// the producer: that latency counts as 0, not negative.
				lat = append(lat, max(at-a.t, 0))
			}
		}
	}
	if dups > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d duplicate messages in the stream (effectively-once broken)", dups))
	}
	if lost > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d of %d acknowledged events missing from the stream: lost", lost, acked))
	}
	if extra := len(stored) - acked; extra > 0 && refused == 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d events in the stream that no 200 acknowledged, and no request failed", extra))
	}
	slices.Sort(lat)
	meanBL := 0.0 // per collector, over the window's samples
	if blN > 0 {
		meanBL = float64(blSum) / float64(blN)
	}
	s.Iters = max(inWindow, 1)
	s.Values = []record.Value{
		{Value: round(float64(inWindow) / cfg.Dur.Seconds()), Unit: unitEvents.Name},
		{Value: float64(len(fleet) * cfg.Rate * cfg.Batch), Unit: unitOffered.Name},
		{Value: round(float64(ackedWin) / cfg.Dur.Seconds()), Unit: unitAcked.Name},
		{Value: float64(stats.Percentile(lat, 0.50)), Unit: unitP50.Name},
		{Value: float64(stats.Percentile(lat, 0.99)), Unit: unitP99.Name},
		{Value: float64(peak), Unit: unitPeakBL.Name},
		{Value: round(meanBL), Unit: unitMeanBL.Name},
		{Value: float64(drain.Nanoseconds()), Unit: unitDrain.Name},
		{Value: float64(dups), Unit: unitDups.Name},
		{Value: float64(lost), Unit: unitLost.Name},
		{Value: float64(reships), Unit: unitReships.Name},
		{Value: float64(refused + skipped), Unit: unitRefused.Name},
	}
	for q, u := range unitQuarters {
		if qN[q] > 0 {
			s.Values = append(s.Values, record.Value{Value: round(float64(qSum[q]) / float64(qN[q])), Unit: u.Name})
		}
	}
	return s
}

func round(x float64) float64 {
	v, _ := strconv.ParseFloat(strings.TrimRight(strconv.FormatFloat(x, 'f', 1, 64), "."), 64)
	return v
}

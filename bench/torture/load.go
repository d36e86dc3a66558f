package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// target is where producers post: a restarted collector listens on a new
// port, and the epoch (restarts so far) tags every answer it gives.
type target struct {
	url   string // http://addr/events
	epoch int
}

// tag names a request: the producer and its request number. Every event of
// a request carries it in its payload, so a half-written request shows in
// the database as a short group.
type tag struct{ w, r int }

// sentEvent is an event as a producer sent it.
type sentEvent struct {
	deviceID, kind string
	payload        []byte // the raw JSON bytes sent
}

// ackedReq is a request answered 200: its events and the ids they got.
type ackedReq struct {
	tag    tag
	epoch  int
	events []sentEvent
	ids    []int64
}

// LoadConfig shapes the producers.
type LoadConfig struct {
	Singles  int           // producers sending one event per request
	Batchers int           // producers sending Batch events per request
	Batch    int           // events per batch request
	RetryCap time.Duration // most a producer waits on a 503's Retry-After
	// Pause, when set, is a producer's pause between requests (a gentler load).
	Pause time.Duration
}

// load is the producers: goroutines posting to the current target until
// stopped. Every answer is kept for the ledger.
type load struct {
	cfg    LoadConfig
	seed   uint64
	target atomic.Pointer[target]
	client *http.Client
	tr     *http.Transport
	stopc  chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	probes atomic.Int64 // request numbers of the recovery probe

	mu      sync.Mutex
	acked   []ackedReq
	refused []tag       // answered with an HTTP error: must have stored nothing
	unknown []tag       // no answer (the collector died): all or nothing
	sizes   map[tag]int // events per request, every request sent
	status  map[int]int // answers by status; 0: no answer
	events  int64       // events acknowledged
}

func newLoad(cfg LoadConfig, seed uint64) *load {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.Singles + cfg.Batchers + 2,
	}
	return &load{
		cfg: cfg, seed: seed, tr: tr,
		client: &http.Client{Transport: tr, Timeout: 20 * time.Second},
		stopc:  make(chan struct{}),
		sizes:  make(map[tag]int),
		status: make(map[int]int),
	}
}

// probeWorker is the producer number of recovery probes.
const probeWorker = 1 << 20

// start launches the producers.
func (l *load) start() {
	n := l.cfg.Singles + l.cfg.Batchers
	for w := range n {
		batch := 1
		if w >= l.cfg.Singles {
			batch = l.cfg.Batch
		}
		l.wg.Add(1)
		go func() { // owned: stop waits for it
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(l.seed, uint64(w)))
			for r := 0; ; r++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				status, retry := l.post(w, r, batch, rng)
				var pause time.Duration
				switch {
				case status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage:
					// Honour Retry-After loosely: somewhere in its second
					// half, never past RetryCap, so producers do not march
					// back in step.
					pause = min(retry, l.cfg.RetryCap)
					pause = pause/2 + time.Duration(rng.Int64N(int64(pause/2)+1))
				case status != http.StatusOK:
					// No answer (the collector is down) or an error: not
					// synchronisation, just no busy loop against a dead port.
					pause = 5*time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Millisecond)))
				default:
					pause = l.cfg.Pause
				}
				if pause > 0 {
					t := time.NewTimer(pause)
					select {
					case <-l.stopc:
						t.Stop()
						return
					case <-t.C:
					}
				}
			}
		}()
	}
}

// stop stops the producers and waits for requests in flight.
func (l *load) stop() {
	l.once.Do(func() { close(l.stopc) })
	l.wg.Wait()
	l.tr.CloseIdleConnections()
}

// probe posts one event to the current target and reports its status; rng
// may be nil.
func (l *load) probe(rng *rand.Rand) int {
	if rng == nil {
		rng = rand.New(rand.NewPCG(l.seed, probeWorker))
	}
	status, _ := l.post(probeWorker, int(l.probes.Add(1)), 1, rng)
	return status
}

// post sends request r of producer w (batch events) and records the answer.
// It returns the status (0: no answer) and the Retry-After asked for.
func (l *load) post(w, r, batch int, rng *rand.Rand) (int, time.Duration) {
	tgt := l.target.Load()
	if tgt == nil {
		return 0, 0
	}
	t := tag{w, r}
	events := makeEvents(rng, t, batch)
	body := encodeBody(events, batch == 1)
	l.mu.Lock()
	l.sizes[t] = batch
	l.mu.Unlock()

	status, retry, respBody := l.do(tgt.url, body)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status[status]++
	switch {
	case status == 0:
		l.unknown = append(l.unknown, t)
	case status != http.StatusOK:
		l.refused = append(l.refused, t)
	default:
		var resp struct {
			Accepted int     `json:"accepted"`
			IDs      []int64 `json:"ids"`
		}
		if err := json.Unmarshal(respBody, &resp); err != nil || resp.Accepted != batch || len(resp.IDs) != batch {
			// A 200 that does not say what it stored is a broken promise;
			// count it as no answer and let the ledger find the rows.
			l.status[http.StatusOK]--
			l.status[-1]++
			l.unknown = append(l.unknown, t)
			return -1, 0
		}
		l.acked = append(l.acked, ackedReq{tag: t, epoch: tgt.epoch, events: events, ids: resp.IDs})
		l.events += int64(batch)
	}
	return status, retry
}

func (l *load) do(url string, body []byte) (int, time.Duration, []byte) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, 0, nil // the answer was cut: we cannot know what it said
	}
	var retry time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retry = time.Duration(s) * time.Second
	}
	return resp.StatusCode, retry, b
}

// counts returns the answers by status so far.
func (l *load) counts() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int]int, len(l.status))
	for k, v := range l.status {
		out[k] = v
	}
	return out
}

func (l *load) ackedEvents() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events
}

// Hostile text: SQL injection, odd Unicode (astral planes, ZWJ sequences,
// combining marks, bidi overrides, zero-width), JSON escapes of every kind.
// It must be stored and shipped byte for byte.
var hostile = []string{
	`Robert'); DROP TABLE events;--`,
	`' OR '1'='1' --`,
	`"; DELETE FROM events WHERE 1=1; --`,
	`1; UPDATE events SET uploaded_at = 0`,
	`𝄞 music, 👩‍👩‍👧 family, 🇺🇦 flag`,
	"e\u0301 vs \u00e9 (NFD and NFC)",
	"\u202eRTL override\u202c and zero\u200bwidth\ufeff",
	`日本語のテキスト, Ελληνικά, עברית, العربية`,
	`<script>alert(1)</script> & %s %n %x`,
	`back\slash \\ and "quotes"`,
}

// rawEscapes are JSON string literals written as escapes, kept verbatim:
// a re-encoder would rewrite them.
var rawEscapes = []string{
	`"\u0000 NUL escaped"`,
	`"\ud83d\ude00 surrogate pair"`,
	`"\/ solidus \b\f\n\r\t"`,
	`"\u00e9\u0301"`,
	`"plain"`,
}

// makeEvents generates a request's events from rng: device ids and kinds
// with hostile text too, payloads carrying the request's tag, written with
// irregular spacing and number forms that only a byte-for-byte store keeps.
func makeEvents(rng *rand.Rand, t tag, n int) []sentEvent {
	evs := make([]sentEvent, n)
	for i := range evs {
		s, _ := json.Marshal(hostile[rng.IntN(len(hostile))])
		esc := rawEscapes[rng.IntN(len(rawEscapes))]
		var p []byte
		switch rng.IntN(3) {
		case 0:
			p = fmt.Appendf(nil, `{"w":%d,"r":%d,"i":%d,"n":%d,"s":%s,"e":%s,"v":%d.%d}`, t.w, t.r, i, n, s, esc, rng.IntN(100), rng.IntN(10))
		case 1:
			p = fmt.Appendf(nil, `{ "w" : %d , "r":%d,	"i":%d, "n":%d, "s" : %s, "e":[%s, 1.0e+2, -0, true, null] }`, t.w, t.r, i, n, s, esc)
		default:
			p = fmt.Appendf(nil, `{"w":%d,"r":%d,"i":%d,"n":%d,"nested":{"a":[{"s":%s}],"e":%s},"big":12345678901234567890}`, t.w, t.r, i, n, s, esc)
		}
		dev := fmt.Sprintf("sensor-%03d", rng.IntN(40))
		if rng.IntN(8) == 0 {
			dev = fmt.Sprintf("dev-%d-%s", rng.IntN(5), hostile[rng.IntN(len(hostile))])
		}
		kind := "telemetry"
		if rng.IntN(10) == 0 {
			kind = "Ω-ализ'--"
		}
		evs[i] = sentEvent{deviceID: dev, kind: kind, payload: p}
	}
	return evs
}

// encodeBody writes events as a request body: an object for a lone event,
// else an array. Payloads go in as raw bytes.
func encodeBody(evs []sentEvent, single bool) []byte {
	var b bytes.Buffer
	if !single {
		b.WriteByte('[')
	}
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(',')
		}
		dev, _ := json.Marshal(e.deviceID)
		kind, _ := json.Marshal(e.kind)
		b.WriteString(`{"device_id":`)
		b.Write(dev)
		b.WriteString(`,"kind":`)
		b.Write(kind)
		b.WriteString(`,"payload":`)
		b.Write(e.payload)
		b.WriteByte('}')
	}
	if !single {
		b.WriteByte(']')
	}
	return b.Bytes()
}

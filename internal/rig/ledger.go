package rig

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
)

// Ledger is the producers' side of the end-to-end check: every request
// sent and every answer, as the producers saw them. Check holds it against
// the database the collector left and what the receiver took.
type Ledger struct {
	mu      sync.Mutex
	sizes   map[Tag]int // events of every tagged request sent
	acked   []Ack
	refused []Tag       // answered with an HTTP error: must have stored nothing
	unknown []Tag       // no answer (the collector died): all or nothing
	status  map[int]int // answers by status; 0: none; -1: a 200 that did not say what it stored
	posts   int64       // untagged requests recorded (Record)
}

// Ack is a request answered 200: its events and the ids they were given.
type Ack struct {
	Tag    Tag
	Epoch  int // the collector's restarts before the answer (Target)
	Events []Event
	IDs    []int64
}

// Sent records that request t of n events is about to go out.
func (l *Ledger) Sent(t Tag, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sizes == nil {
		l.sizes = make(map[Tag]int)
	}
	l.sizes[t] = n
}

// Answer records the answer to request t (sent as events, to the
// collector of that epoch): status 0 for none, and the body of a 200. It
// returns the status as counted: a 200 that does not say what it stored is
// a broken promise, counted -1 and treated as no answer.
func (l *Ledger) Answer(t Tag, epoch int, events []Event, status int, body []byte) int {
	var ids []int64
	if status == http.StatusOK {
		var err error
		if ids, err = acceptedIDs(body, len(events)); err != nil {
			status = -1
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status == nil {
		l.status = make(map[int]int)
	}
	l.status[status]++
	switch {
	case status <= 0:
		l.unknown = append(l.unknown, t)
	case status != http.StatusOK:
		l.refused = append(l.refused, t)
	default:
		l.acked = append(l.acked, Ack{Tag: t, Epoch: epoch, Events: events, IDs: ids})
	}
	return status
}

// acceptedIDs reads a 200's {"accepted":N,"ids":[...]}: every event sent, an id each.
func acceptedIDs(body []byte, n int) ([]int64, error) {
	var resp struct {
		Accepted int     `json:"accepted"`
		IDs      []int64 `json:"ids"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("200 answer is not {accepted, ids}: %v: %s", err, body)
	}
	if resp.Accepted != n || len(resp.IDs) != n {
		return nil, fmt.Errorf("sent %d events, the answer accepts %d with %d ids", n, resp.Accepted, len(resp.IDs))
	}
	return resp.IDs, nil
}

// Record records a request body, one event or an array, that was answered
// 200 with respBody: a request sent by hand (a script's post), untagged.
func (l *Ledger) Record(reqBody, respBody []byte) error {
	events, err := ParseBody(reqBody)
	if err != nil {
		return fmt.Errorf("ledger: request got 200 but is %w", err)
	}
	ids, err := acceptedIDs(respBody, len(events))
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.posts++
	l.acked = append(l.acked, Ack{Tag: Tag{"post", l.posts}, Events: events, IDs: ids})
	return nil
}

// Statuses is how the answers so far were counted, by status (see Answer).
func (l *Ledger) Statuses() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.status)
}

// AckedIDs are the ids acknowledged so far, sorted.
func (l *Ledger) AckedIDs() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []int64
	for _, a := range l.acked {
		ids = append(ids, a.IDs...)
	}
	slices.Sort(ids)
	return ids
}

// Verdict is the ledger's finding.
type Verdict struct {
	Acked     int // events acknowledged with 200
	Stored    int // of those, in the database as sent
	Delivered int // of those, delivered at least once as sent (when deliveries are checked)
	Lost      int // acknowledged, and missing from the database or never delivered
	// Intact counts the acknowledged events both stored and (when
	// deliveries are checked) delivered as sent. Acked - Intact counts
	// every event lost, also one whose id, after a power cut rolled the id
	// counter back, holds another event (which Lost does not count: a row
	// is there).
	Intact int
	// ReusedIDs counts the ids given to two events: acknowledged twice, or
	// delivered twice with different bytes.
	ReusedIDs  int
	reused     map[int64]bool
	Deliveries int // every delivery, re-deliveries included
	Duplicates int // deliveries beyond the first, over all ids
	// DuplicateIDs lists the id of every delivery beyond the first, sorted.
	DuplicateIDs []int64
	Rows         int // events in the database
	Problems     []string
}

// reuse notes an id given to two events.
func (v *Verdict) reuse(id int64) {
	if v.reused == nil {
		v.reused = make(map[int64]bool)
	}
	if !v.reused[id] {
		v.reused[id] = true
		v.ReusedIDs++
	}
}

// problem notes a broken promise. The first few are kept in full, enough to
// diagnose; a systematic fault would otherwise flood the report.
func (v *Verdict) problem(format string, args ...any) {
	const most = 20
	switch n := len(v.Problems); {
	case n < most:
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	case n == most:
		v.Problems = append(v.Problems, "... (more problems not listed)")
	}
}

// Check holds the collector to its promises, against the rows of the
// database it left and, unless delivered is nil, what the receiver took:
//   - every acknowledged event is stored with the device, kind, ts and
//     payload bytes sent, and delivered at least once with the bytes stored;
//   - every request is all or nothing: a request answered with an error
//     stored nothing, one cut off by a kill stored all its events or none,
//     and no row is there that no request sent;
//   - ids are never reused: each acknowledged once, and those a restarted
//     collector gives are above every id its crashed predecessor handed out
//     (highWater[e] is the largest id on disk when epoch e was killed);
//   - nothing is marked uploaded that the receiver never took, nothing is
//     delivered that is not in the database, and a re-delivery carries the
//     same bytes as the first.
func (l *Ledger) Check(rows map[int64]*Row, delivered map[Key]Delivery, highWater []int64) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := Verdict{Rows: len(rows)}
	var byID map[int64]Delivery // nil: deliveries are not checked
	if delivered != nil {
		byID = deliveredByID(&v, delivered)
	}
	acked := l.checkAcked(&v, rows, byID, highWater)
	l.checkRequests(&v, rows, acked)
	if delivered != nil {
		checkDeliveries(&v, rows, byID)
	}
	return v
}

// deliveredByID indexes deliveries by id: one database is one collector.
func deliveredByID(v *Verdict, delivered map[Key]Delivery) map[int64]Delivery {
	byID := make(map[int64]Delivery, len(delivered))
	collectors := make(map[string]bool)
	for k, d := range delivered {
		byID[k.ID] = d
		collectors[k.CollectorID] = true
	}
	if len(collectors) > 1 {
		v.problem("deliveries from %d collector ids %v, for one database", len(collectors), slices.Sorted(maps.Keys(collectors)))
	}
	return byID
}

// checkAcked checks every acknowledged event against the database and the
// deliveries. It returns the acknowledged ids.
func (l *Ledger) checkAcked(v *Verdict, rows map[int64]*Row, byID map[int64]Delivery, highWater []int64) map[int64]Tag {
	seen := make(map[int64]Tag)
	for _, a := range l.acked {
		minID := int64(0)
		if a.Epoch > 0 && a.Epoch-1 < len(highWater) {
			minID = highWater[a.Epoch-1]
		}
		for i, id := range a.IDs {
			e := a.Events[i]
			v.Acked++
			if prev, dup := seen[id]; dup {
				v.reuse(id)
				v.problem("id %d acknowledged twice (requests %v and %v): an id was reused", id, prev, a.Tag)
			}
			seen[id] = a.Tag
			if id <= minID {
				v.problem("id %d acknowledged after restart %d, not above %d, the highest id before that kill: an id was reused", id, a.Epoch, minID)
			}
			r := rows[id]
			stored := false
			switch {
			case r == nil:
				v.Lost++
				v.problem("id %d (request %v) acknowledged but not in the database: lost", id, a.Tag)
				continue
			case r.DeviceID != e.DeviceID || r.Kind != e.Kind:
				v.problem("id %d stored as %q/%q, sent as %q/%q", id, r.DeviceID, r.Kind, e.DeviceID, e.Kind)
			case !bytes.Equal(r.Payload, storedPayload(e.Payload)):
				v.problem("id %d stored payload %s, sent %s", id, r.Payload, e.Payload)
			case e.TS != 0 && r.TS != e.TS:
				v.problem("id %d stored ts %d, sent %d", id, r.TS, e.TS)
			default:
				v.Stored++
				stored = true
			}
			if byID == nil {
				if stored {
					v.Intact++
				}
				continue
			}
			switch d, ok := byID[id]; {
			case !ok:
				v.Lost++
				v.problem("id %d (request %v) acknowledged but never delivered: lost", id, a.Tag)
			case d.First.DeviceID != e.DeviceID || d.First.Kind != e.Kind || !bytes.Equal(d.First.Payload, storedPayload(e.Payload)):
				v.problem("id %d delivered as %q/%q %s, sent as %q/%q %s", id, d.First.DeviceID, d.First.Kind, d.First.Payload, e.DeviceID, e.Kind, e.Payload)
			default:
				v.Delivered++
				if stored {
					v.Intact++
				}
			}
		}
	}
	return seen
}

// storedPayload is what the collector keeps of a sent payload: trimmed, and
// nothing at all for an absent or null one.
func storedPayload(p json.RawMessage) []byte {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) {
		return nil
	}
	return p
}

// checkRequests checks that every request is stored whole or not at all:
// rows grouped by the tag in their payload against the requests sent, and
// every untagged row acknowledged.
func (l *Ledger) checkRequests(v *Verdict, rows map[int64]*Row, acked map[int64]Tag) {
	groups := make(map[Tag]int)
	for _, id := range sortedIDs(rows) {
		r := rows[id]
		t, n, ok := payloadTag(r.Payload)
		if !ok {
			if _, ok := acked[id]; !ok {
				v.problem("id %d is stored, but carries no request tag and no 200 acknowledged it", id)
			}
			continue
		}
		groups[t]++
		if sent, ok := l.sizes[t]; !ok || sent != n {
			v.problem("id %d: request %v was never sent with %d events", id, t, n)
		}
	}
	for _, t := range slices.SortedFunc(maps.Keys(groups), compareTags) {
		if n, want := groups[t], l.sizes[t]; n != want {
			v.problem("request %v: %d of its %d events stored: half-written", t, n, want)
		}
	}
	for _, t := range l.refused {
		if n := groups[t]; n > 0 {
			v.problem("request %v was refused, yet %d of its events are stored", t, n)
		}
	}
}

func compareTags(a, b Tag) int {
	return cmp.Or(cmp.Compare(a.Load, b.Load), cmp.Compare(a.Req, b.Req))
}

// checkDeliveries checks what the receiver took against the database.
func checkDeliveries(v *Verdict, rows map[int64]*Row, byID map[int64]Delivery) {
	for _, id := range sortedIDs(byID) {
		d := byID[id]
		v.Deliveries += d.Count
		v.Duplicates += d.Count - 1
		for range d.Count - 1 {
			v.DuplicateIDs = append(v.DuplicateIDs, id)
		}
		r := rows[id]
		switch {
		case r == nil:
			v.problem("id %d delivered but not in the database", id)
		case d.Differs:
			v.reuse(id)
			v.problem("id %d delivered twice with different bytes", id)
		case d.First.DeviceID != r.DeviceID || d.First.Kind != r.Kind || d.First.TS != r.TS || !bytes.Equal(d.First.Payload, r.Payload):
			v.problem("id %d delivered as %q/%q/%d %s, stored %q/%q/%d %s", id, d.First.DeviceID, d.First.Kind, d.First.TS, d.First.Payload, r.DeviceID, r.Kind, r.TS, r.Payload)
		}
	}
	for _, id := range sortedIDs(rows) {
		if _, ok := byID[id]; rows[id].Uploaded && !ok {
			v.problem("id %d is marked uploaded but was never delivered: lost", id)
		}
	}
}

func sortedIDs[V any](m map[int64]V) []int64 {
	return slices.Sorted(maps.Keys(m))
}

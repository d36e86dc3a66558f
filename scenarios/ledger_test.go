package scenarios

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"edgecollector/collector"
)

// acked is one line of the ledger: an event the collector acknowledged
// with a 200, as the producer sent it, and the id it was given.
type acked struct {
	ID       int64           `json:"id"`
	DeviceID string          `json:"device_id"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	TS       int64           `json:"ts,omitempty"` // 0: the collector stamped it
}

// sent is an event as a producer writes it.
type sent struct {
	DeviceID string          `json:"device_id"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload"`
	TS       int64           `json:"ts"`
}

// record appends the events of an acknowledged request to the ledger,
// pairing the i-th event sent with the i-th id answered.
func (s *state) record(reqBody, respBody []byte) error {
	var events []sent
	trimmed := bytes.TrimSpace(reqBody)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var e sent
		if err := json.Unmarshal(trimmed, &e); err != nil {
			return fmt.Errorf("ledger: request got 200 but is not an event: %v", err)
		}
		events = []sent{e}
	} else if err := json.Unmarshal(trimmed, &events); err != nil {
		return fmt.Errorf("ledger: request got 200 but is not an array of events: %v", err)
	}
	var resp struct {
		Accepted int     `json:"accepted"`
		IDs      []int64 `json:"ids"`
	}
	if err := json.Unmarshal(respBody, &resp); err != nil {
		return fmt.Errorf("ledger: 200 answer is not {accepted, ids}: %v: %s", err, respBody)
	}
	if resp.Accepted != len(events) || len(resp.IDs) != len(events) {
		return fmt.Errorf("ledger: sent %d events, the answer accepts %d with %d ids", len(events), resp.Accepted, len(resp.IDs))
	}
	var b bytes.Buffer
	for i, e := range events {
		line, err := json.Marshal(acked{ID: resp.IDs[i], DeviceID: e.DeviceID, Kind: e.Kind, Payload: e.Payload, TS: e.TS})
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	s.ledgerMu.Lock()
	defer s.ledgerMu.Unlock()
	f, err := os.OpenFile(s.ledger, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// storedPayload is what the collector keeps of a sent payload: trimmed, and
// nothing at all for an absent or null one.
func storedPayload(p json.RawMessage) string {
	p = bytes.TrimSpace(p)
	if bytes.Equal(p, []byte("null")) {
		return ""
	}
	return string(p)
}

// compactJSON is p as the receiver records it: the webhook ships payloads
// byte for byte (collector/sink tests that), but the receiver writes each
// event as one JSON line with encoding/json, which compacts a
// json.RawMessage (and escapes <, >, &).
func compactJSON(p string) string {
	if p == "" {
		return ""
	}
	b, err := json.Marshal(json.RawMessage(p))
	if err != nil {
		return "invalid JSON: " + p
	}
	return string(b)
}

type row struct {
	deviceID, kind, payload string
	ts                      int64
	uploaded                bool
}

// ledger [-receiver NAME] DB
func cmdLedger(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "ledger")
	const usage = "ledger [-receiver NAME] DB"
	var recv string
	rest := parseFlags(ts, "ledger", usage, args, func(fs *flag.FlagSet) {
		fs.StringVar(&recv, "receiver", "", "")
	})
	if len(rest) != 1 {
		ts.Fatalf("usage: %s", usage)
	}
	st := stateOf(ts)
	var problems []string
	problem := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}

	// 1. The acknowledgements: each id handed out once.
	acks := make(map[int64]acked)
	st.ledgerMu.Lock()
	err := readJSONLines(st.ledger, func(line []byte) error {
		var a acked
		if err := json.Unmarshal(line, &a); err != nil {
			return err
		}
		if _, dup := acks[a.ID]; dup {
			problem("id %d was acknowledged twice: an id was reused", a.ID)
		}
		acks[a.ID] = a
		return nil
	})
	st.ledgerMu.Unlock()
	if err != nil && !os.IsNotExist(err) {
		ts.Fatalf("ledger: %v", err)
	}

	// 2. The database: every acknowledged event is there, as sent.
	rows := readRows(ts, ts.MkAbs(rest[0]))
	stored := 0
	for _, id := range sortedKeys(acks) {
		a, r := acks[id], rows[id]
		switch {
		case r == nil:
			problem("id %d was acknowledged but is not in the database: lost", id)
			continue
		case r.deviceID != a.DeviceID || r.kind != a.Kind:
			problem("id %d: stored as %s/%s, sent as %s/%s", id, r.deviceID, r.kind, a.DeviceID, a.Kind)
		case r.payload != storedPayload(a.Payload):
			problem("id %d: stored payload %s differs from the one sent, %s", id, r.payload, a.Payload)
		case a.TS != 0 && r.ts != a.TS:
			problem("id %d: stored ts %d, sent %d", id, r.ts, a.TS)
		default:
			stored++
		}
	}
	fmt.Fprintf(ts.Stdout(), "acknowledged: %d events\n", len(acks))
	fmt.Fprintf(ts.Stdout(), "stored: %d of %d (the database holds %d events)\n", stored, len(acks), len(rows))

	// 3. The receiver: every acknowledged event delivered, as stored; the
	// duplicates counted; nothing marked uploaded that was never delivered.
	if recv != "" {
		r := st.receivers[recv]
		if r == nil {
			ts.Fatalf("ledger: no receiver called %q", recv)
		}
		taken := make(map[int64]int)
		deliveries := 0
		r.mu.Lock() // no batch half-appended while we read
		defer r.mu.Unlock()
		err := readJSONLines(r.file, func(line []byte) error {
			var e collector.Shipped
			if err := json.Unmarshal(line, &e); err != nil {
				return err
			}
			deliveries++
			taken[e.ID]++
			row := rows[e.ID]
			switch {
			case row == nil:
				problem("id %d was delivered but is not in the database", e.ID)
			case e.DeviceID != row.deviceID || e.Kind != row.kind || e.TS != row.ts:
				problem("id %d delivered as %s/%s/%d, stored as %s/%s/%d", e.ID, e.DeviceID, e.Kind, e.TS, row.deviceID, row.kind, row.ts)
			case string(e.Payload) != compactJSON(row.payload):
				problem("id %d delivered with payload %s, stored %s", e.ID, e.Payload, row.payload)
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			ts.Fatalf("ledger: %s: %v", r.file, err)
		}
		delivered := 0
		for _, id := range sortedKeys(acks) {
			if taken[id] > 0 {
				delivered++
			} else {
				problem("id %d was acknowledged but never delivered", id)
			}
		}
		for _, id := range sortedKeys(rows) {
			if rows[id].uploaded && taken[id] == 0 {
				problem("id %d is marked uploaded but was never delivered: lost", id)
			}
		}
		var dups []int64
		for _, id := range sortedKeys(taken) {
			for range taken[id] - 1 {
				dups = append(dups, id)
			}
		}
		fmt.Fprintf(ts.Stdout(), "delivered: %d of %d (%d deliveries)\n", delivered, len(acks), deliveries)
		if len(dups) == 0 {
			fmt.Fprintf(ts.Stdout(), "duplicates: 0\n")
		} else {
			fmt.Fprintf(ts.Stdout(), "duplicates: %d (ids %s)\n", len(dups), idRanges(dups))
		}
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
		}
		ts.Fatalf("ledger: %d problems:\n\t%s", len(problems), strings.Join(problems, "\n\t"))
	}
}

func readRows(ts *testscript.TestScript, path string) map[int64]*row {
	db, err := openRO(path)
	ts.Check(err)
	defer db.Close()
	q, err := db.Query(`SELECT id, device_id, kind, payload_json, ts, uploaded_at IS NOT NULL FROM events`)
	if err != nil {
		ts.Fatalf("ledger: %v", err)
	}
	defer q.Close()
	rows := make(map[int64]*row)
	for q.Next() {
		var (
			id      int64
			r       row
			payload sql.NullString
		)
		ts.Check(q.Scan(&id, &r.deviceID, &r.kind, &payload, &r.ts, &r.uploaded))
		r.payload = payload.String
		rows[id] = &r
	}
	ts.Check(q.Err())
	return rows
}

func readJSONLines(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return sc.Err()
}

func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// idRanges renders sorted ids compactly: 1-4,7,9-10.
func idRanges(ids []int64) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] <= ids[j]+1 {
			j++
		}
		if ids[j] == ids[i] {
			parts = append(parts, strconv.FormatInt(ids[i], 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

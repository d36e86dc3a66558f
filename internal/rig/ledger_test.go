package rig

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"edgecollector/collector"
)

// book is a ledger of two acknowledged requests, a refused one and one cut
// off, with the database and deliveries of a collector that kept its promises.
func book() (*Ledger, map[int64]*Row, map[Key]Delivery) {
	l := &Ledger{}
	rng := rand.New(rand.NewPCG(1, 1))
	rows := make(map[int64]*Row)
	got := make(map[Key]Delivery)
	id := int64(0)
	for req, n := range []int{2, 3} {
		t := Tag{"w", int64(req + 1)}
		evs := Hostile(rng, t, 0, n)
		l.Sent(t, n)
		var ids []string
		for _, e := range evs {
			id++
			ids = append(ids, fmt.Sprint(id))
			rows[id] = &Row{DeviceID: e.DeviceID, Kind: e.Kind, Payload: e.Payload, TS: 1000 + id, Uploaded: true}
			got[Key{"c", id}] = Delivery{Count: 1, First: collector.Shipped{CollectorID: "c", ID: id, DeviceID: e.DeviceID, Kind: e.Kind, Payload: e.Payload, TS: 1000 + id}}
		}
		l.Answer(t, 0, evs, http.StatusOK, []byte(fmt.Sprintf(`{"accepted":%d,"ids":[%s]}`, n, strings.Join(ids, ","))))
	}
	refused := Tag{"w", 3}
	l.Sent(refused, 1)
	l.Answer(refused, 0, Plain(rng, refused, 0, 1), http.StatusServiceUnavailable, nil)
	cut := Tag{"w", 4}
	l.Sent(cut, 2)
	l.Answer(cut, 0, Plain(rng, cut, 0, 2), 0, nil)
	return l, rows, got
}

func TestLedgerPassesAKeptPromise(t *testing.T) {
	l, rows, got := book()
	v := l.Check(rows, got, nil)
	if len(v.Problems) > 0 {
		t.Fatalf("problems: %q", v.Problems)
	}
	if v.Acked != 5 || v.Stored != 5 || v.Delivered != 5 || v.Lost != 0 || v.Deliveries != 5 || v.Rows != 5 || v.Intact != 5 || v.ReusedIDs != 0 {
		t.Errorf("verdict %+v", v)
	}
	if s := l.Statuses(); s[200] != 2 || s[503] != 1 || s[0] != 1 {
		t.Errorf("statuses %v", s)
	}
	// A request cut off by a kill may be stored whole, unacknowledged.
	rows[9] = &Row{DeviceID: "w-0", Kind: "burst", Payload: []byte(`{"load":"w","req":4,"i":0,"n":2}`)}
	rows[10] = &Row{DeviceID: "w-0", Kind: "burst", Payload: []byte(`{"load":"w","req":4,"i":1,"n":2}`)}
	if v := l.Check(rows, nil, nil); len(v.Problems) > 0 {
		t.Errorf("a whole unanswered request: %q", v.Problems)
	}
}

// TestLedgerCountsIDsACutReused: after a power cut rolls the id counter
// back, a lost event's id holds another event. Lost does not count it (a
// row is there); Acked - Intact does, and ReusedIDs counts the id.
func TestLedgerCountsIDsACutReused(t *testing.T) {
	l, rows, got := book()
	rng := rand.New(rand.NewPCG(2, 2))
	t5 := Tag{"w", 5}
	ev := Hostile(rng, t5, 0, 1)
	l.Sent(t5, 1)
	l.Answer(t5, 1, ev, http.StatusOK, []byte(`{"accepted":1,"ids":[5]}`)) // id 5 again, after a cut
	rows[5] = &Row{DeviceID: ev[0].DeviceID, Kind: ev[0].Kind, Payload: ev[0].Payload, TS: 2000, Uploaded: true}
	d := got[Key{"c", 5}]
	d.Count, d.Differs = 2, true
	got[Key{"c", 5}] = d
	v := l.Check(rows, got, nil)
	// The first id 5 is no longer stored as sent; the second was delivered
	// first as the first: both lost, neither counted in Lost.
	if lost := v.Acked - v.Intact; lost != 2 || v.Lost != 0 {
		t.Errorf("Acked - Intact = %d, Lost = %d; want 2 and 0", lost, v.Lost)
	}
	if v.ReusedIDs != 1 { // acknowledged twice, delivered with different bytes: one id
		t.Errorf("ReusedIDs = %d, want 1", v.ReusedIDs)
	}
}

// Each broken promise is named: a negative control for every check.
func TestLedgerCatchesBrokenPromises(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breaks func(rows map[int64]*Row, got map[Key]Delivery) []int64
		want   string
		lost   int
	}{
		{"lost from the database", func(rows map[int64]*Row, _ map[Key]Delivery) []int64 {
			delete(rows, 2)
			return nil
		}, "id 2 (request w#1) acknowledged but not in the database: lost", 1},
		{"never delivered", func(_ map[int64]*Row, got map[Key]Delivery) []int64 {
			delete(got, Key{"c", 4})
			return nil
		}, "id 4 (request w#2) acknowledged but never delivered: lost", 1},
		{"payload changed", func(rows map[int64]*Row, _ map[Key]Delivery) []int64 {
			rows[3].Payload = append(bytes.Clone(rows[3].Payload[:len(rows[3].Payload)-1]), ' ', '}')
			return nil
		}, "id 3 stored payload", 0},
		{"half-written", func(rows map[int64]*Row, got map[Key]Delivery) []int64 {
			delete(rows, 5)
			return nil
		}, "request w#2: 2 of its 3 events stored: half-written", 1},
		{"refused yet stored", func(rows map[int64]*Row, _ map[Key]Delivery) []int64 {
			rows[9] = &Row{Payload: []byte(`{"load":"w","req":3,"i":0,"n":1}`)}
			return nil
		}, "request w#3 was refused, yet 1 of its events are stored", 0},
		{"a row no request sent", func(rows map[int64]*Row, _ map[Key]Delivery) []int64 {
			rows[9] = &Row{Payload: []byte(`{"temp_c":1}`)}
			return nil
		}, "id 9 is stored, but carries no request tag and no 200 acknowledged it", 0},
		{"id reused after a restart", func(map[int64]*Row, map[Key]Delivery) []int64 {
			return []int64{4}
		}, "not above 4", 0},
		{"marked uploaded, never delivered", func(rows map[int64]*Row, got map[Key]Delivery) []int64 {
			delete(got, Key{"c", 1})
			return nil
		}, "id 1 is marked uploaded but was never delivered: lost", 1},
		{"re-delivered with other bytes", func(_ map[int64]*Row, got map[Key]Delivery) []int64 {
			d := got[Key{"c", 2}]
			d.Count, d.Differs = 2, true
			got[Key{"c", 2}] = d
			return nil
		}, "id 2 delivered twice with different bytes", 0},
		{"delivered, not stored", func(_ map[int64]*Row, got map[Key]Delivery) []int64 {
			got[Key{"c", 99}] = Delivery{Count: 1}
			return nil
		}, "id 99 delivered but not in the database", 0},
		{"another collector's deliveries", func(_ map[int64]*Row, got map[Key]Delivery) []int64 {
			got[Key{"b", 1}] = got[Key{"c", 1}]
			return nil
		}, "deliveries from 2 collector ids [b c]", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, rows, got := book()
			hw := tc.breaks(rows, got)
			if hw != nil { // the second request came after a restart
				l.acked[1].Epoch = 1
			}
			v := l.Check(rows, got, hw)
			if !strings.Contains(strings.Join(v.Problems, "\n"), tc.want) {
				t.Errorf("no problem says %q; got %q", tc.want, v.Problems)
			}
			if v.Lost != tc.lost {
				t.Errorf("lost = %d, want %d", v.Lost, tc.lost)
			}
		})
	}
}

func TestLedgerRecordsAPost(t *testing.T) {
	l := &Ledger{}
	body := []byte(`[{"device_id":"a","kind":"k","payload":{ "x" : 1 },"ts":7},{"device_id":"b","kind":"k","payload":null}]`)
	if err := l.Record(body, []byte(`{"accepted":2,"ids":[1,2]}`)); err != nil {
		t.Fatal(err)
	}
	rows := map[int64]*Row{
		1: {DeviceID: "a", Kind: "k", Payload: []byte(`{ "x" : 1 }`), TS: 7},
		2: {DeviceID: "b", Kind: "k", TS: 8},
	}
	if v := l.Check(rows, nil, nil); len(v.Problems) > 0 || v.Stored != 2 {
		t.Errorf("verdict %+v", v)
	}
	rows[1].TS = 6
	if v := l.Check(rows, nil, nil); !strings.Contains(strings.Join(v.Problems, ""), "id 1 stored ts 6, sent 7") {
		t.Errorf("a changed ts passed: %q", v.Problems)
	}
	if err := l.Record(body, []byte(`{"accepted":1,"ids":[3]}`)); err == nil {
		t.Error("a 200 accepting fewer events than sent was recorded")
	}
	if ids := l.AckedIDs(); fmt.Sprint(ids) != "[1 2]" {
		t.Errorf("acked ids %v", ids)
	}
}

func TestBodyRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{1, 5} {
		evs := Hostile(rng, Tag{"h", 9}, 0, n)
		evs[0].TS = 42
		got, err := ParseBody(Body(evs))
		if err != nil {
			t.Fatalf("%s: %v", Body(evs), err)
		}
		if fmt.Sprint(got) != fmt.Sprint(evs) {
			t.Errorf("round trip:\n%v\nwant\n%v", got, evs)
		}
		for _, e := range evs {
			if tag, size, ok := payloadTag(e.Payload); !ok || tag != (Tag{"h", 9}) || size != n {
				t.Errorf("payload %s: tag %v %d %v", e.Payload, tag, size, ok)
			}
		}
	}
	if b := Body(Plain(nil, Tag{"L", 1}, 2, 1)); !bytes.HasPrefix(b, []byte(`{"device_id":"L-2"`)) {
		t.Errorf("a lone event is not one object: %s", b)
	}
}

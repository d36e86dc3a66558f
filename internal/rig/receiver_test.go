package rig

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const batch2 = `[{"collector_id":"c","id":1,"device_id":"d","kind":"k","payload":{"a": 1},"ts":5},` +
	`{"collector_id":"c","id":2,"device_id":"d","kind":"k","ts":6}]`

func startTestReceiver(t *testing.T) (*Receiver, *Deliveries) {
	t.Helper()
	d := &Deliveries{}
	r, err := StartReceiver(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r, d
}

// ship posts body to the receiver as the webhook sink does, within timeout;
// status 0 is no answer.
func ship(t *testing.T, r *Receiver, body string, timeout time.Duration) int {
	t.Helper()
	c := &http.Client{Timeout: timeout}
	resp, err := c.Post(r.URL, "application/json", strings.NewReader(body))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestReceiverTakesAndDedupes(t *testing.T) {
	r, d := startTestReceiver(t)
	if st := ship(t, r, batch2, 5*time.Second); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	// A re-shipped event, byte for byte, and one whose bytes changed.
	ship(t, r, `[{"collector_id":"c","id":1,"device_id":"d","kind":"k","payload":{"a": 1},"ts":5}]`, 5*time.Second)
	ship(t, r, `[{"collector_id":"c","id":2,"device_id":"d","kind":"k","payload":{},"ts":6}]`, 5*time.Second)
	// Another collector's id 1 is another event.
	ship(t, r, `[{"collector_id":"b","id":1,"device_id":"d","kind":"k","ts":7}]`, 5*time.Second)
	if st := ship(t, r, `{"not":"an array"}`, 5*time.Second); st != http.StatusBadRequest {
		t.Errorf("a body that is no batch: %d, want 400", st)
	}
	got := d.Snapshot()
	if len(got) != 3 {
		t.Fatalf("%d events, want 3: %v", len(got), got)
	}
	if e := got[Key{"c", 1}]; e.Count != 2 || e.Differs || string(e.First.Payload) != `{"a": 1}` {
		t.Errorf("c:1 = %+v, want 2 identical deliveries, payload byte for byte", e)
	}
	if e := got[Key{"c", 2}]; e.Count != 2 || !e.Differs {
		t.Errorf("c:2 = %+v, want a differing re-delivery", e)
	}
	if r.Taken() != 5 || r.Requests() != 5 || r.Bad() != 1 {
		t.Errorf("taken %d, requests %d, bad %d; want 5, 5, 1", r.Taken(), r.Requests(), r.Bad())
	}
	r.Reset()
	if len(d.Snapshot()) != 0 || r.Taken() != 0 || r.Requests() != 0 {
		t.Error("Reset kept something")
	}
}

func TestReceiverModes(t *testing.T) {
	r, d := startTestReceiver(t)
	if err := r.Set(Fail(http.StatusInternalServerError)); err != nil {
		t.Fatal(err)
	}
	if st := ship(t, r, batch2, 5*time.Second); st != http.StatusInternalServerError {
		t.Errorf("fail: %d", st)
	}
	// Hold: nothing taken, the client gives up.
	r.Set(Hold)
	if st := ship(t, r, batch2, 100*time.Millisecond); st != 0 {
		t.Errorf("hold: answered %d", st)
	}
	// Slow: taken, after the delay.
	r.Set(Slow(50 * time.Millisecond))
	begin := time.Now()
	if st := ship(t, r, batch2, 5*time.Second); st != http.StatusOK || time.Since(begin) < 50*time.Millisecond {
		t.Errorf("slow: %d after %s", st, time.Since(begin))
	}
	if len(d.Snapshot()) != 2 {
		t.Errorf("%d events taken, want the slow batch's 2 only", len(d.Snapshot()))
	}
	// Refuse: no connection; back, on the same address.
	r.Set(Refuse)
	if st := ship(t, r, batch2, time.Second); st != 0 {
		t.Errorf("refuse: answered %d", st)
	}
	if err := r.Set(Take); err != nil {
		t.Fatal(err)
	}
	if st := ship(t, r, batch2, 5*time.Second); st != http.StatusOK {
		t.Errorf("take after refuse: %d", st)
	}
}

// A held or stalled request is let go by the next Set: a held one with an
// error (nothing was taken), a stalled one with 200 (it was).
func TestReceiverReleases(t *testing.T) {
	for _, tc := range []struct {
		mode  Mode
		want  int
		taken int64
	}{{Hold, http.StatusServiceUnavailable, 0}, {Stall, http.StatusOK, 2}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			r, _ := startTestReceiver(t)
			r.Set(tc.mode)
			got := make(chan int, 1)
			go func() { got <- ship(t, r, batch2, 10*time.Second) }() // owned: ends with the answer
			waitUntil(t, func() bool { return r.Requests() == 1 })
			select {
			case st := <-got:
				t.Fatalf("answered %d before the release", st)
			case <-time.After(50 * time.Millisecond):
			}
			r.Set(Take)
			if st := <-got; st != tc.want {
				t.Errorf("released: %d, want %d", st, tc.want)
			}
			if r.Taken() != tc.taken {
				t.Errorf("taken %d, want %d", r.Taken(), tc.taken)
			}
		})
	}
}

// A trap catches the next batch only, and says when it has.
func TestReceiverTrap(t *testing.T) {
	r, _ := startTestReceiver(t)
	sprung := r.Trap(Stall)
	answered := make(chan int, 1)
	go func() { answered <- ship(t, r, batch2, 200*time.Millisecond) }() // owned: ends within its timeout
	select {
	case <-sprung:
	case <-time.After(10 * time.Second):
		t.Fatal("the trap did not spring")
	}
	if st := <-answered; st != 0 {
		t.Errorf("a stalled batch was answered %d", st)
	}
	if st := ship(t, r, batch2, 5*time.Second); st != http.StatusOK {
		t.Errorf("the batch after the trap: %d", st)
	}
	sprung = r.Trap(Take)
	if st := ship(t, r, batch2, 5*time.Second); st != http.StatusOK {
		t.Errorf("trapped in Take: %d", st)
	}
	select {
	case <-sprung:
	default:
		t.Error("a Take trap did not spring with its answer")
	}
	sprung = r.Trap(Stall)
	r.Disarm()
	if st := ship(t, r, batch2, 5*time.Second); st != http.StatusOK {
		t.Errorf("after disarm: %d", st)
	}
	select {
	case <-sprung:
		t.Error("a disarmed trap sprang")
	default:
	}
}

// A recorder's refusal carries its status: the peer's receiver refuses the
// exporter's default protobuf with 415.
func TestReceiverRefusal(t *testing.T) {
	rec := &refuser{}
	r, err := StartReceiver(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	resp, err := http.Post(r.Base()+"/v1/logs", "application/x-protobuf", bytes.NewReader([]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType || r.Bad() != 1 {
		t.Errorf("status %d, bad %d; want 415, 1", resp.StatusCode, r.Bad())
	}
}

type refuser struct{}

func (refuser) Take(*http.Request, []byte) (int, error) {
	return 0, &Refusal{Status: http.StatusUnsupportedMediaType, Msg: "want JSON"}
}
func (refuser) Reset() {}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		Sleep(context.Background(), 2*time.Millisecond)
	}
}

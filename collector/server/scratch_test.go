package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The accepted answer is byte for byte what encoding/json made of it.
func TestAppendAcceptedMatchesEncodingJSON(t *testing.T) {
	for _, ids := range [][]int64{nil, {}, {1}, {7, 8, 9}, {1 << 40, 1<<62 + 5}} {
		var want bytes.Buffer
		json.NewEncoder(&want).Encode(acceptedResponse{Accepted: len(ids), IDs: ids})
		if got := appendAccepted([]byte("junk"), ids)[4:]; !bytes.Equal(got, want.Bytes()) {
			t.Errorf("ids %v: %q, want %q", ids, got, want.Bytes())
		}
	}
}

// trickle sends a few bytes of a body and then fails, as a client that
// stalls does once the read deadline passes.
type trickle struct{ sent bool }

func (t *trickle) Read(p []byte) (int, error) {
	if t.sent {
		return 0, errors.New("stalled")
	}
	t.sent = true
	return copy(p, `{"device_id":`), nil
}

func (*trickle) Close() error { return nil }

// A body is not allocated on the word of its Content-Length: a client that
// declares a megabyte and sends a dozen bytes costs a few KiB, not a
// megabyte per connection (a slow-body flood must not be an allocation
// flood).
func TestDeclaredLengthDoesNotAllocateTheBody(t *testing.T) {
	s := New(nil, nil, Config{})
	r := httptest.NewRequest(http.MethodPost, "/events", nil)
	r.Body, r.ContentLength = &trickle{}, DefaultMaxBodyBytes
	sc := new(scratch)
	if _, err := s.readBody(httptest.NewRecorder(), r, false, sc); err == nil {
		t.Fatal("a stalled body read without error")
	}
	if c := cap(sc.body); c > 2*maxPrealloc {
		t.Errorf("the buffer has %d bytes for a body of which 13 came", c)
	}
	// A body that fits the preallocation is read in one buffer.
	body := []byte(singleEvent)
	r = httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
	sc = new(scratch)
	got, err := s.readBody(httptest.NewRecorder(), r, false, sc)
	if err != nil || !bytes.Equal(got, body) || cap(got) != len(body)+1 {
		t.Errorf("body %q (cap %d), %v; want it whole in a buffer of %d", got, cap(got), err, len(body)+1)
	}
}

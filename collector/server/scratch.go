package server

import (
	"strconv"
	"sync"

	"edgecollector/collector"
)

// scratch is what one POST /events works in: the body, the decoder, the
// decoded events (their payloads are views into the body) and the answer.
// It is reused from one request to the next through scratchPool, so a
// single-event request allocates little beyond what net/http and the store
// do (TestAllocsPerSingleEventRequest holds it to a budget).
//
// A scratch goes back to the pool only once the store has answered: until
// then the events, and so the body, may still be in a group commit.
type scratch struct {
	body   []byte
	dec    decoder
	events []collector.Event
	out    []byte
	rr     rateReader
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Bounds on what a pooled scratch keeps: a rare large request must not pin
// its buffers for good.
const (
	maxPooledBody   = 64 << 10
	maxPooledEvents = 1024
)

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	if cap(sc.body) > maxPooledBody {
		sc.body = nil
	}
	if cap(sc.events) > maxPooledEvents {
		sc.events = nil
	}
	clear(sc.events[:cap(sc.events)]) // no views into the body outlive the request
	sc.events = sc.events[:0]
	sc.dec.reset(nil)
	sc.rr = rateReader{} // nor references to the connection
	scratchPool.Put(sc)
}

// appendAccepted appends the answer to an accepted request, byte for byte
// what encoding/json made of acceptedResponse: {"accepted":N,"ids":[…]}\n.
func appendAccepted(b []byte, ids []int64) []byte {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(len(ids)), 10)
	if ids == nil {
		return append(b, `,"ids":null}`+"\n"...)
	}
	b = append(b, `,"ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return append(b, "]}\n"...)
}

package sink

import (
	"strconv"
	"sync"
	"unicode/utf8"

	"edgecollector/collector"
)

// The wire form of a shipped event, built by appending: the payload is
// already raw JSON (the bytes the producer sent, as stored), so only the
// strings need escaping. No reflection, no encoder per string, and the
// buffers are reused from batch to batch.

// appendShipped appends the wire form of e (collector.Shipped's fields, in
// its order) to b. encoding/json would compact the payload and escape its
// <, > and &; receivers get the payload byte for byte as the producer sent
// it and the buffer stored it.
func appendShipped(b []byte, collectorID string, e collector.Event) []byte {
	b = append(b, `{"collector_id":`...)
	b = appendString(b, collectorID)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `,"device_id":`...)
	b = appendString(b, e.DeviceID)
	b = append(b, `,"kind":`...)
	b = appendString(b, e.Kind)
	if len(e.Payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, e.Payload...)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, e.TS, 10)
	return append(b, '}')
}

// appendBatch appends the webhook body: a JSON array of shipped events.
func appendBatch(b []byte, collectorID string, events []collector.Event) []byte {
	b = append(b, '[')
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendShipped(b, collectorID, e)
	}
	return append(b, ']')
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json does
// with HTML escaping off (TestAppendStringMatchesEncodingJSON holds it to
// that): ", \ and control characters escaped (\b \f \n \r \t short), bytes
// that are not UTF-8 as \ufffd, U+2028 and U+2029 escaped, <, > and &
// left as they are.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// bufs recycles wire buffers: a batch of 1,000 events is ~100 KiB, built
// many times a second.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuf() *[]byte { return bufs.Get().(*[]byte) }

// putBuf returns b to the pool unless it grew past what is worth keeping.
func putBuf(b *[]byte) {
	if cap(*b) <= 4<<20 {
		*b = (*b)[:0]
		bufs.Put(b)
	}
}

package server

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"edgecollector/collector"
	"edgecollector/collector/store"
)

// Limits on what one request may carry. Zero fields take the defaults.
type Limits struct {
	MaxBodyBytes        int64 // whole request body
	MaxPayloadBytes     int   // one event's payload
	MaxEventsPerRequest int
	// MaxEventBytes refuses at ingest any event whose row could never fit a
	// commit (the store's MaxCommitBytes); 0: no such limit.
	MaxEventBytes int
}

// Defaults for Limits.
const (
	DefaultMaxBodyBytes        = 1 << 20
	DefaultMaxPayloadBytes     = 16 << 10
	DefaultMaxEventsPerRequest = 1000
)

// Fixed limits on one event's fields.
const (
	maxDeviceIDBytes = 256
	maxKindBytes     = 64
	maxPayloadDepth  = 32
)

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if l.MaxEventsPerRequest <= 0 {
		l.MaxEventsPerRequest = DefaultMaxEventsPerRequest
	}
	return l
}

// Bounds on an event's ts, so that every reader of the buffer can do
// arithmetic on it: not before 2000-01-01, and not more than MaxFutureTS
// ahead of the collector's clock. 0 or absent means "stamp it on receipt".
const (
	MinTS       = 946684800000 // 2000-01-01T00:00:00Z in unix ms
	MaxFutureTS = 24 * time.Hour
)

func invalid(index int, field, format string, args ...any) error {
	return &collector.InputError{Index: index, Field: field, Msg: fmt.Sprintf(format, args...), Err: collector.ErrInvalid}
}

func tooLarge(index int, field, format string, args ...any) error {
	return &collector.InputError{Index: index, Field: field, Msg: fmt.Sprintf(format, args...), Err: collector.ErrTooLarge}
}

// decodeEvents parses a request body: one event object or a non-empty array
// of them. nowMS stamps events that carry no ts. Every failure is an
// *collector.InputError naming the event index and field where it can.
//
// The body must mean the same to us as to any strict JSON reader (RFC 8259
// read as I-JSON, RFC 7493, which is what encoding/json/v2 does by default):
// UTF-8 only, no escaped lone surrogate anywhere, no duplicate member name in
// any object, field names matched exactly (case-sensitive), numbers and
// nesting (at most 10,000 deep) as the grammar says. Unknown fields are
// ignored, but must be valid too. FuzzDecodeAgainstReference holds this
// decoder to such a reader.
func decodeEvents(body []byte, lim Limits, nowMS int64) ([]collector.Event, error) {
	var d decoder
	return d.events(nil, body, lim, nowMS)
}

// events is decodeEvents on a reused decoder, appending to dst[:0]. The
// events' payloads are views into body: they are good while body is.
func (d *decoder) events(dst []collector.Event, body []byte, lim Limits, nowMS int64) ([]collector.Event, error) {
	if !utf8.Valid(body) {
		// encoding/json would silently replace bad bytes with U+FFFD; a
		// buffer that promises verbatim payloads refuses them instead.
		return nil, invalid(-1, "", "body is not valid UTF-8")
	}
	d.reset(body)
	d.ws()
	if d.i == len(d.b) {
		return nil, invalid(-1, "", "empty body: want a JSON event object or array of events")
	}
	events := dst[:0]
	switch d.b[d.i] {
	case '{':
		e, err := d.event(-1, 1, lim, nowMS)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	case '[':
		d.i++
		d.ws()
		for i := 0; ; i++ {
			if d.peek() == ']' && i == 0 {
				d.i++
				break
			}
			if i == lim.MaxEventsPerRequest {
				return nil, tooLarge(-1, "", "more than %d events in one request", lim.MaxEventsPerRequest)
			}
			if c := d.peek(); c != '{' {
				if err := d.value(2); err != nil {
					return nil, d.malformed(i, err)
				}
				return nil, invalid(i, "", "want a JSON object, got %s", kindOf(c))
			}
			e, err := d.event(i, 2, lim, nowMS)
			if err != nil {
				return nil, err
			}
			events = append(events, e)
			d.ws()
			if d.peek() == ',' {
				d.i++
				d.ws()
				continue
			}
			if d.peek() == ']' {
				d.i++
				break
			}
			return nil, d.malformed(-1, d.unexpected("after array element"))
		}
		if len(events) == 0 {
			return nil, invalid(-1, "", "empty array: want at least one event")
		}
	default:
		return nil, invalid(-1, "", "want a JSON event object or array of events")
	}
	d.ws()
	if d.i != len(d.b) {
		return nil, invalid(-1, "", "unexpected data after the JSON value")
	}
	return events, nil
}

// eventFields is what an event object's members have said so far.
type eventFields struct {
	i              int // event index, -1 for a lone object
	deviceID, kind string
	ts             int64
	payload        []byte
	fieldErr       error // a wrong type: reported once the JSON is known good
}

// event reads the event object at d.i (event index i, -1 for a lone object;
// depth is its nesting depth) and validates it.
func (d *decoder) event(i, depth int, lim Limits, nowMS int64) (collector.Event, error) {
	f := eventFields{i: i}
	if err := d.object(depth, &f); err != nil {
		return collector.Event{}, d.malformed(i, err)
	}
	if f.fieldErr != nil {
		return collector.Event{}, f.fieldErr
	}
	return validate(i, f.deviceID, f.kind, f.ts, f.payload, lim, nowMS)
}

// member reads the value of the event member name at d.i (depth: the
// event object's).
func (d *decoder) member(f *eventFields, name []byte, depth int) error {
	var err error
	switch string(name) {
	case "device_id":
		f.deviceID, err = d.text(f, "device_id", depth)
	case "kind":
		f.kind, err = d.text(f, "kind", depth)
	case "ts":
		switch c := d.peek(); {
		case c == 'n':
			f.ts, err = 0, d.literal("null")
		case c == '-' || (c >= '0' && c <= '9'):
			f.ts, err = d.integer(f.i, &f.fieldErr)
		default:
			if err = d.value(depth + 1); err == nil && f.fieldErr == nil {
				f.fieldErr = invalid(f.i, "ts", "want an integer, got %s", kindOf(c))
			}
		}
	case "payload":
		start := d.i
		if err = d.value(depth + 1); err == nil {
			f.payload = d.b[start:d.i]
		}
	default:
		err = d.value(depth + 1)
	}
	return err
}

// text reads a string field's value; null reads as "" (and so fails as
// missing); another type is recorded in f.fieldErr once the JSON is known good.
func (d *decoder) text(f *eventFields, field string, depth int) (string, error) {
	switch c := d.peek(); c {
	case '"':
		b, err := d.str(true)
		if err != nil {
			return "", err
		}
		return d.intern(b), nil
	case 'n':
		return "", d.literal("null")
	default:
		if err := d.value(depth + 1); err != nil {
			return "", err
		}
		if f.fieldErr == nil {
			f.fieldErr = invalid(f.i, field, "want a string, got %s", kindOf(c))
		}
		return "", nil
	}
}

// validate checks a decoded event against the limits and stamps it.
func validate(i int, deviceID, kind string, ts int64, payload []byte, lim Limits, nowMS int64) (collector.Event, error) {
	e := collector.Event{DeviceID: deviceID, Kind: kind, TS: ts}
	switch {
	case e.DeviceID == "":
		return e, invalid(i, "device_id", "is required")
	case len(e.DeviceID) > maxDeviceIDBytes:
		return e, invalid(i, "device_id", "longer than %d bytes", maxDeviceIDBytes)
	case e.Kind == "":
		return e, invalid(i, "kind", "is required")
	case len(e.Kind) > maxKindBytes:
		return e, invalid(i, "kind", "longer than %d bytes", maxKindBytes)
	case e.TS < 0:
		return e, invalid(i, "ts", "must be unix milliseconds, not negative")
	case e.TS > 0 && e.TS < MinTS:
		return e, invalid(i, "ts", "%d is before 2000-01-01 (want unix milliseconds; 0 or absent: stamped on receipt)", e.TS)
	case e.TS > nowMS+MaxFutureTS.Milliseconds():
		return e, invalid(i, "ts", "%d is more than %s ahead of the collector's clock", e.TS, MaxFutureTS)
	}
	if e.TS == 0 {
		e.TS = nowMS
	}
	if p := payload; len(p) > 0 && string(p) != "null" {
		if p[0] != '{' && p[0] != '[' {
			return e, invalid(i, "payload", "must be a JSON object or array")
		}
		if len(p) > lim.MaxPayloadBytes {
			return e, tooLarge(i, "payload", "%d bytes, over the %d-byte limit", len(p), lim.MaxPayloadBytes)
		}
		if d := depth(p); d > maxPayloadDepth {
			return e, invalid(i, "payload", "nested %d deep, over the limit of %d", d, maxPayloadDepth)
		}
		e.Payload = json.RawMessage(p)
	}
	if lim.MaxEventBytes > 0 {
		if n := store.RowBytes(e); n > lim.MaxEventBytes {
			return e, tooLarge(i, "", "event is %d bytes, over the %d-byte commit cap", n, lim.MaxEventBytes)
		}
	}
	return e, nil
}

// depth is the deepest nesting of objects and arrays in valid JSON.
func depth(p []byte) int {
	d, deepest, inString, escaped := 0, 0, false, false
	for _, c := range p {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

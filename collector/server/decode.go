package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// wireEvent is what a producer sends. Unknown fields are ignored so that
// producers can add fields before collectors learn them.
type wireEvent struct {
	DeviceID string          `json:"device_id"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload"`
	TS       int64           `json:"ts"`
}

func invalid(index int, field, format string, args ...any) error {
	return &collector.InputError{Index: index, Field: field, Msg: fmt.Sprintf(format, args...), Err: collector.ErrInvalid}
}

func tooLarge(index int, field, format string, args ...any) error {
	return &collector.InputError{Index: index, Field: field, Msg: fmt.Sprintf(format, args...), Err: collector.ErrTooLarge}
}

// decodeEvents parses a request body: one event object or a non-empty array
// of them. nowMS stamps events that carry no ts. Every failure is an
// *collector.InputError naming the event index and field where it can.
func decodeEvents(body []byte, lim Limits, nowMS int64) ([]collector.Event, error) {
	if !utf8.Valid(body) {
		// encoding/json would silently replace bad bytes with U+FFFD; a
		// buffer that promises verbatim payloads refuses them instead.
		return nil, invalid(-1, "", "body is not valid UTF-8")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, invalid(-1, "", "empty body: want a JSON event object or array of events")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var events []collector.Event
	switch body[0] {
	case '{':
		e, err := decodeOne(dec, 0, lim, nowMS)
		if err != nil {
			// A lone object has no index to name.
			var ie *collector.InputError
			if errors.As(err, &ie) {
				ie.Index = -1
			}
			return nil, err
		}
		events = []collector.Event{e}
	case '[':
		if _, err := dec.Token(); err != nil {
			return nil, invalid(-1, "", "malformed JSON: %v", err)
		}
		for i := 0; dec.More(); i++ {
			if i == lim.MaxEventsPerRequest {
				return nil, tooLarge(-1, "", "more than %d events in one request", lim.MaxEventsPerRequest)
			}
			e, err := decodeOne(dec, i, lim, nowMS)
			if err != nil {
				return nil, err
			}
			events = append(events, e)
		}
		if _, err := dec.Token(); err != nil {
			return nil, invalid(-1, "", "malformed JSON: %v", err)
		}
		if len(events) == 0 {
			return nil, invalid(-1, "", "empty array: want at least one event")
		}
	default:
		return nil, invalid(-1, "", "want a JSON event object or array of events")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid(-1, "", "unexpected data after the JSON value")
	}
	return events, nil
}

func decodeOne(dec *json.Decoder, i int, lim Limits, nowMS int64) (collector.Event, error) {
	var w wireEvent
	if err := dec.Decode(&w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return collector.Event{}, invalid(i, "", "want a JSON object, got %s", te.Value)
			}
			return collector.Event{}, invalid(i, te.Field, "want %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
		}
		return collector.Event{}, invalid(i, "", "malformed JSON: %v", err)
	}
	e := collector.Event{DeviceID: w.DeviceID, Kind: w.Kind, TS: w.TS}
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
	}
	if e.TS == 0 {
		e.TS = nowMS
	}
	if p := bytes.TrimSpace(w.Payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
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

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int64":
		return "an integer"
	}
	return goKind
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

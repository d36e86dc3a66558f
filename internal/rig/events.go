package rig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// Event is an event as a producer sends it.
type Event struct {
	DeviceID string          `json:"device_id"`
	Kind     string          `json:"kind"`
	Payload  json.RawMessage `json:"payload,omitempty"` // the raw JSON bytes sent
	TS       int64           `json:"ts,omitempty"`      // 0: the collector stamps it
}

// Tag names one request: the load that sent it and its number there. Every
// event of a request a Load sends carries it in its payload, with the
// request's size ({"load":...,"req":...,"n":...}), so a request stored in
// part shows in the database as a short group.
type Tag struct {
	Load string
	Req  int64
}

func (t Tag) String() string { return fmt.Sprintf("%s#%d", t.Load, t.Req) }

// payloadTag reads a tag and the request's size from a payload; ok is false
// for a payload that carries none.
func payloadTag(p []byte) (t Tag, n int, ok bool) {
	var f struct {
		Load *string `json:"load"`
		Req  *int64  `json:"req"`
		N    *int    `json:"n"`
	}
	if json.Unmarshal(p, &f) != nil || f.Load == nil || f.Req == nil || f.N == nil {
		return Tag{}, 0, false
	}
	return Tag{*f.Load, *f.Req}, *f.N, true
}

// A Generator makes the n events of request t, sent by worker w of its load.
// Each event's payload must carry the tag: {"load":...,"req":...,"n":...}.
type Generator func(rng *rand.Rand, t Tag, w, n int) []Event

// Plain makes readable events: device "<load>-<worker>", kind "burst",
// payload {"load":...,"req":...,"i":...,"n":...}.
func Plain(_ *rand.Rand, t Tag, w, n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = Event{
			DeviceID: fmt.Sprintf("%s-%d", t.Load, w),
			Kind:     "burst",
			Payload:  fmt.Appendf(nil, `{"load":%q,"req":%d,"i":%d,"n":%d}`, t.Load, t.Req, i, n),
		}
	}
	return evs
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

// Hostile makes events that only a byte-for-byte store keeps: device ids
// and kinds with hostile text too, payloads written with irregular spacing,
// escapes and number forms a re-encoder would rewrite.
func Hostile(rng *rand.Rand, t Tag, _, n int) []Event {
	load, _ := json.Marshal(t.Load)
	evs := make([]Event, n)
	for i := range evs {
		s, _ := json.Marshal(hostile[rng.IntN(len(hostile))])
		esc := rawEscapes[rng.IntN(len(rawEscapes))]
		var p []byte
		switch rng.IntN(3) {
		case 0:
			p = fmt.Appendf(nil, `{"load":%s,"req":%d,"i":%d,"n":%d,"s":%s,"e":%s,"v":%d.%d}`, load, t.Req, i, n, s, esc, rng.IntN(100), rng.IntN(10))
		case 1:
			p = fmt.Appendf(nil, `{ "load" : %s , "req":%d,	"i":%d, "n":%d, "s" : %s, "e":[%s, 1.0e+2, -0, true, null] }`, load, t.Req, i, n, s, esc)
		default:
			p = fmt.Appendf(nil, `{"load":%s,"req":%d,"i":%d,"n":%d,"nested":{"a":[{"s":%s}],"e":%s},"big":12345678901234567890}`, load, t.Req, i, n, s, esc)
		}
		dev := fmt.Sprintf("sensor-%03d", rng.IntN(40))
		if rng.IntN(8) == 0 {
			dev = fmt.Sprintf("dev-%d-%s", rng.IntN(5), hostile[rng.IntN(len(hostile))])
		}
		kind := "telemetry"
		if rng.IntN(10) == 0 {
			kind = "Ω-ализ'--"
		}
		evs[i] = Event{DeviceID: dev, Kind: kind, Payload: p}
	}
	return evs
}

// Body writes events as a request body: an object for a lone event, else
// an array. Payloads go in as the raw bytes they are.
func Body(evs []Event) []byte {
	var b bytes.Buffer
	if len(evs) != 1 {
		b.WriteByte('[')
	}
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(',')
		}
		dev, _ := json.Marshal(e.DeviceID)
		kind, _ := json.Marshal(e.Kind)
		b.WriteString(`{"device_id":`)
		b.Write(dev)
		b.WriteString(`,"kind":`)
		b.Write(kind)
		if e.Payload != nil {
			b.WriteString(`,"payload":`)
			b.Write(e.Payload)
		}
		if e.TS != 0 {
			fmt.Fprintf(&b, `,"ts":%d`, e.TS)
		}
		b.WriteByte('}')
	}
	if len(evs) != 1 {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// ParseBody reads a request body the way the collector does: one event
// object, or an array of them.
func ParseBody(body []byte) ([]Event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var e Event
		if err := json.Unmarshal(trimmed, &e); err != nil {
			return nil, fmt.Errorf("not an event: %w", err)
		}
		return []Event{e}, nil
	}
	var evs []Event
	if err := json.Unmarshal(trimmed, &evs); err != nil {
		return nil, fmt.Errorf("not an array of events: %w", err)
	}
	return evs, nil
}

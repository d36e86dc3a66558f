package server

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"edgecollector/collector"
)

// fuzzNow is the collector's clock in the decoding fuzz targets: fixed, so
// that a failing input reproduces.
var fuzzNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// referenceDecode reads a body as encoding/json/v2 does by default (the
// go-json-experiment module is its source): exact field names, duplicate
// names and invalid UTF-16 refused anywhere, payload kept as raw bytes. The
// checks after decoding are ours, shared (validate).
func referenceDecode(body []byte, lim Limits, nowMS int64) ([]collector.Event, error) {
	type wire struct {
		DeviceID string         `json:"device_id"`
		Kind     string         `json:"kind"`
		Payload  jsontext.Value `json:"payload"`
		TS       int64          `json:"ts"`
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("empty")
	}
	var ws []wire
	switch trimmed[0] {
	case '{':
		var w wire
		if err := jsonv2.Unmarshal(body, &w); err != nil {
			return nil, err
		}
		ws = []wire{w}
	case '[':
		if err := jsonv2.Unmarshal(body, &ws); err != nil {
			return nil, err
		}
		if len(ws) == 0 || len(ws) > lim.MaxEventsPerRequest {
			return nil, fmt.Errorf("%d events", len(ws))
		}
	default:
		return nil, errors.New("not an object or array")
	}
	events := make([]collector.Event, len(ws))
	for i, w := range ws {
		e, err := validate(i, w.DeviceID, w.Kind, w.TS, w.Payload, lim, nowMS)
		if err != nil {
			return nil, err
		}
		events[i] = e
	}
	return events, nil
}

// FuzzDecodeAgainstReference: our decoder and the strict reference accept
// the same bodies and read the same events from them, byte for byte.
func FuzzDecodeAgainstReference(f *testing.F) {
	seeds(f, func(b []byte) { f.Add(b) })
	for _, c := range strictCases {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeEvents(body, fuzzLimits, fuzzNow)
		want, refErr := referenceDecode(body, fuzzLimits, fuzzNow)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("body %q:\nours:      %v\nreference: %v", body, err, refErr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("body %q: %d events, reference %d", body, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.DeviceID != w.DeviceID || g.Kind != w.Kind || g.TS != w.TS || !bytes.Equal(g.Payload, w.Payload) {
				t.Fatalf("body %q: event %d\nours:      %+v %q\nreference: %+v %q", body, i, g, g.Payload, w, w.Payload)
			}
		}
	})
}

// strictCases are the examples and variants of them: what a strict
// reader refuses we refuse, and what it reads we read the same way.
var strictCases = []struct {
	name, body string
	ok         bool
}{
	{"case-variant duplicate: a strict reader sees device_id a", `{"device_id":"a","DEVICE_ID":"b","kind":"k"}`, true},
	{"case variants only name no known field", `{"Device_Id":"c","KIND":"K"}`, false},
	{"unicode case fold of kind (K is U+212A)", `{"device_id":"d","\u212Aind":"x"}`, false},
	{"escaped exact name is the name", `{"device\u005fid":"d","kind":"k"}`, true},
	{"duplicate device_id", `{"device_id":"a","device_id":"b","kind":"k"}`, false},
	{"duplicate through an escape", `{"device_id":"a","device\u005fid":"b","kind":"k"}`, false},
	{"duplicate unknown field", `{"device_id":"a","kind":"k","x":1,"x":2}`, false},
	{"duplicate inside the payload", `{"device_id":"a","kind":"k","payload":{"v":1,"v":2}}`, false},
	{"lone high surrogate in device_id", `{"device_id":"\ud800x","kind":"k"}`, false},
	{"lone low surrogate in kind", `{"device_id":"d","kind":"\udc00"}`, false},
	{"reversed pair", `{"device_id":"\udc00\ud800","kind":"k"}`, false},
	{"lone surrogate in the payload", `{"device_id":"d","kind":"k","payload":{"s":"\ud83d"}}`, false},
	{"lone surrogate in an unknown field", `{"device_id":"d","kind":"k","note":"\ud800"}`, false},
	{"surrogate pair is a character", `{"device_id":"\ud83d\ude00","kind":"k"}`, true},
	{"ts at MaxInt64", `{"device_id":"d","kind":"k","ts":9223372036854775807}`, false},
	{"ts past int64", `{"device_id":"d","kind":"k","ts":9223372036854775808}`, false},
	{"ts a day and a minute ahead", fmt.Sprintf(`{"device_id":"d","kind":"k","ts":%d}`, fuzzNow+(24*time.Hour+time.Minute).Milliseconds()), false},
	{"ts an hour ahead", fmt.Sprintf(`{"device_id":"d","kind":"k","ts":%d}`, fuzzNow+time.Hour.Milliseconds()), true},
	{"ts in seconds, not ms (1999)", `{"device_id":"d","kind":"k","ts":1700000000}`, false},
	{"ts 2000-01-01", `{"device_id":"d","kind":"k","ts":946684800000}`, true},
	{"ts 1", `{"device_id":"d","kind":"k","ts":1}`, false},
	{"ts -0 is 0: stamped", `{"device_id":"d","kind":"k","ts":-0}`, true},
	{"ts null: stamped", `{"device_id":"d","kind":"k","ts":null}`, true},
	{"ts 1.0", `{"device_id":"d","kind":"k","ts":1.0}`, false},
	{"ts 1e12", `{"device_id":"d","kind":"k","ts":1e12}`, false},
	{"device_id null", `{"device_id":null,"kind":"k"}`, false},
	{"NUL escape is a character", `{"device_id":"a\u0000b","kind":"k"}`, true},
	{"raw control character", "{\"device_id\":\"a\tb\",\"kind\":\"k\"}", false},
	{"leading zero", `{"device_id":"d","kind":"k","x":01}`, false},
	{"deep unknown field", `{"device_id":"d","kind":"k","x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, false},
	{"array of one", `[{"device_id":"d","kind":"k","payload":[1, {"a" : "b"}]}]`, true},
	{"array with null", `[{"device_id":"d","kind":"k"},null]`, false},
	{"trailing comma", `[{"device_id":"d","kind":"k"},]`, false},
	{"byte order mark", "\ufeff{\"device_id\":\"d\",\"kind\":\"k\"}", false},
	{"form feed is not JSON white space", "{\"device_id\":\"d\",\"kind\":\"k\"}\f", false},
	{"white space around", " \r\n\t{\"device_id\":\"d\",\"kind\":\"k\"}\n ", true},
	{"NaN", `{"device_id":"d","kind":"k","x":NaN}`, false},
	{"plus sign", `{"device_id":"d","kind":"k","ts":+1748722000000}`, false},
	{"bare decimal point", `{"device_id":"d","kind":"k","x":1.}`, false},
	{"leading decimal point", `{"device_id":"d","kind":"k","x":.5}`, false},
	{"huge number in an unknown field", `{"device_id":"d","kind":"k","x":1e999999}`, true},
	{"truncated unicode escape", `{"device_id":"\u00","kind":"k"}`, false},
	{"unknown escape", `{"device_id":"\x41","kind":"k"}`, false},
	{"non-ASCII near-name", `{"device_id":"d","kïnd":"k"}`, false},
	{"array in an array", `[[{"device_id":"d","kind":"k"}]]`, false},
	{"a string body", `"device_id"`, false},
	{"payload kept verbatim", `{"device_id":"d","kind":"k","payload":{ "a" : [ 1.50e+3 , "\u00e9" ] }}`, true},
}

func TestDecodeIsStrict(t *testing.T) {
	for _, c := range strictCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeEvents([]byte(c.body), fuzzLimits, fuzzNow)
			if (err == nil) != c.ok {
				t.Fatalf("%s: err = %v, want ok = %v", c.body, err, c.ok)
			}
			want, refErr := referenceDecode([]byte(c.body), fuzzLimits, fuzzNow)
			if (refErr == nil) != c.ok {
				t.Fatalf("the reference disagrees with the case: %v", refErr)
			}
			if err == nil && (got[0].DeviceID != want[0].DeviceID || !bytes.Equal(got[0].Payload, want[0].Payload)) {
				t.Errorf("read %+v, reference %+v", got[0], want[0])
			}
			if err != nil {
				var ie *collector.InputError
				if !errors.As(err, &ie) || !errors.Is(err, collector.ErrInvalid) {
					t.Errorf("error %v is not an input error", err)
				}
			}
		})
	}
	// The first example: a strict reader sees a, not b.
	evs, _ := decodeEvents([]byte(strictCases[0].body), fuzzLimits, fuzzNow)
	if evs[0].DeviceID != "a" {
		t.Errorf("device_id = %q, want a", evs[0].DeviceID)
	}
}

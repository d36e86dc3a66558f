package sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"edgecollector/collector"
)

// appendString writes what encoding/json writes with HTML escaping off, for
// every kind of string a producer can send: quotes, backslashes, control
// characters, bytes that are not UTF-8, U+2028/U+2029, HTML characters.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", `a"b\c`, "<b>&amp;</b>", "\x00\x01\x1f\x7f", "\b\f\n\r\t",
		"caf\u00e9 \u65e5\u672c", "\u2028\u2029", "bad \xff\xfe bytes", "\xc3", "emoji \U0001F600", "\ufffd"}
	for b := range 256 { // every byte on its own
		cases = append(cases, string([]byte{byte(b)}))
	}
	for _, s := range cases {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(appendString(nil, s)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\"\\\x00<\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got, want := string(appendString(nil, s)), strings.TrimSuffix(buf.String(), "\n"); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
		if !utf8.Valid(appendString(nil, s)) {
			t.Errorf("appendString(%q) is not UTF-8", s)
		}
	})
}

// With Gzip the webhook sends the same body compressed, saying so; without
// it, plain. The receiver inflates exactly the plain body.
func TestWebhookGzip(t *testing.T) {
	var plain []byte
	for _, gz := range []bool{false, true} {
		var enc string
		var body []byte
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			enc = r.Header.Get("Content-Encoding")
			var src io.Reader = r.Body
			if enc == "gzip" {
				z, err := gzip.NewReader(r.Body)
				if err != nil {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				src = z
			}
			body, _ = io.ReadAll(src)
		}))
		wh := NewWebhook(WebhookOptions{URL: srv.URL, CollectorID: "c", Gzip: gz})
		if err := wh.Send(context.Background(), batch); err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		srv.Close()
		if (enc == "gzip") != gz {
			t.Errorf("gzip %v: Content-Encoding %q", gz, enc)
		}
		if !gz {
			plain = body
		} else if !bytes.Equal(body, plain) {
			t.Errorf("inflated body\n%s\nwant\n%s", body, plain)
		}
	}
	if want := string(appendBatch(nil, "c", batch)); string(plain) != want {
		t.Errorf("plain body %s, want %s", plain, want)
	}
}

// whole is a scripted all-or-nothing sink: it refuses any batch holding a
// poison id, and fails (retryably) from its failFrom-th call on.
type whole struct {
	poison   map[int64]bool
	failFrom int
	calls    int
	sent     [][]int64
}

func (w *whole) Send(_ context.Context, events []collector.Event) error {
	w.calls++
	var ids []int64
	for _, e := range events {
		ids = append(ids, e.ID)
	}
	w.sent = append(w.sent, ids)
	if w.failFrom > 0 && w.calls >= w.failFrom {
		return errors.New("down")
	}
	for _, e := range events {
		if w.poison[e.ID] {
			return collector.ErrRejected
		}
	}
	return nil
}

// Bisect finds the events refused on their own; a retryable failure stops
// it, and what it had not settled is kept.
func TestBisect(t *testing.T) {
	events := make([]collector.Event, 8)
	for i := range events {
		events[i].ID = int64(i + 1)
	}
	T, R, K := collector.Taken, collector.Refused, collector.Kept
	for _, tc := range []struct {
		name     string
		w        *whole
		want     []collector.Fate
		wantErr  bool
		wantSent int
	}{
		{"all taken", &whole{}, []collector.Fate{T, T, T, T, T, T, T, T}, false, 1},
		{"one poison", &whole{poison: map[int64]bool{3: true}}, []collector.Fate{T, T, R, T, T, T, T, T}, false, 7},
		{"two poison", &whole{poison: map[int64]bool{1: true, 8: true}}, []collector.Fate{R, T, T, T, T, T, T, R}, false, 11},
		{"down mid-bisection", &whole{poison: map[int64]bool{7: true}, failFrom: 4}, []collector.Fate{T, T, T, T, K, K, K, K}, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Bisect{tc.w}.Ship(context.Background(), events)
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v", err)
			}
			fates := make([]collector.Fate, len(events))
			for i := range events {
				fates[i] = r.Fate(i)
			}
			if !slices.Equal(fates, tc.want) {
				t.Errorf("fates %v, want %v (sent %v)", fates, tc.want, tc.w.sent)
			}
			if (r.Count(len(events), R) > 0) != (r.Refusal != nil) {
				t.Errorf("refusal %v beside fates %v", r.Refusal, fates)
			}
			if tc.w.calls != tc.wantSent {
				t.Errorf("%d sends, want %d: %v", tc.w.calls, tc.wantSent, tc.w.sent)
			}
		})
	}
}

package rig

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/sink"
)

// The webhook with -webhook-gzip and the rig's receiver agree: what the
// receiver records is what the collector shipped, byte for byte in the
// payload, compressed or not.
func TestReceiverTakesGzipBatches(t *testing.T) {
	r, d := startTestReceiver(t)
	events := []collector.Event{
		{ID: 1, DeviceID: "d<1>", Kind: "k", TS: 5, Payload: json.RawMessage(`{ "a": "&" }`)},
		{ID: 2, DeviceID: "d", Kind: "k", TS: 6},
	}
	for _, gz := range []bool{false, true} {
		wh := sink.NewWebhook(sink.WebhookOptions{URL: r.URL, CollectorID: "c", Gzip: gz, Timeout: 5 * time.Second})
		rc, err := wh.Ship(context.Background(), events)
		if err != nil || rc.Count(2, collector.Taken) != 2 {
			t.Fatalf("gzip %v: receipt %+v, %v", gz, rc, err)
		}
	}
	got := d.Snapshot()
	if len(got) != 2 {
		t.Fatalf("%d events recorded, want 2", len(got))
	}
	for _, e := range events {
		del := got[Key{"c", e.ID}]
		if del.Count != 2 || string(del.First.Payload) != string(e.Payload) || del.First.DeviceID != e.DeviceID {
			t.Errorf("event %d: recorded %+v, want it twice with its payload verbatim", e.ID, del)
		}
	}
}

// A body that says gzip and is not, or an encoding the receiver does not
// know, is refused, not recorded as an empty batch.
func TestReceiverRefusesBadEncodings(t *testing.T) {
	r, d := startTestReceiver(t)
	var zipped bytes.Buffer
	z := gzip.NewWriter(&zipped)
	z.Write([]byte(batch2))
	z.Close()
	truncated := zipped.Bytes()[:zipped.Len()/2]
	for _, tc := range []struct {
		name, encoding string
		body           []byte
		want           int
	}{
		{"not gzip", "gzip", []byte(batch2), http.StatusBadRequest},
		{"truncated gzip", "gzip", truncated, http.StatusBadRequest},
		{"unknown encoding", "br", []byte(batch2), http.StatusUnsupportedMediaType},
		{"upper case gzip", "GZIP", zipped.Bytes(), http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodPost, r.URL, bytes.NewReader(tc.body))
		req.Header.Set("Content-Encoding", tc.encoding)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if got := len(d.Snapshot()); got != 2 {
		t.Errorf("%d events recorded, want the 2 of the one good batch", got)
	}
}

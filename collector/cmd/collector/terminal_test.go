package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"edgecollector/collector"
	"edgecollector/collector/store"
)

// hostile are device ids and errors a producer or a damaged file could hold,
// each with something a terminal acts on.
var hostile = []string{
	"clear\x1b[2Jscreen",    // CSI: clears the screen
	"title\x1b]0;pwned\x07", // OSC: sets the window title
	"c1\u009b31mred",        // C1 CSI, UTF-8 encoded
	"bidi\u202egnp.exe",     // right-to-left override
	"iso\u2066late\u2069",   // bidi isolates
	"cr\rovertyped",         // carriage return
	"del\x7f",               // DEL
	"tab\there\nnewline",    // break the table's alignment
	"sep\u2028line",         // line separator
}

// raw reports the first character a terminal would act on, if out holds
// one; tab and newline are allowed where allow says.
func raw(out string, allow string) (rune, bool) {
	for _, r := range out {
		if strings.ContainsRune(allow, r) {
			continue
		}
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return r, true
		}
	}
	return 0, false
}

// TestDiagnosticsEscapeTerminalControls: on 4cb3049 stats and query's table
// and CSV printed these raw.
func TestDiagnosticsEscapeTerminalControls(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "events.db")
	st, err := store.Open(ctx, store.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	var evs []collector.Event
	for _, h := range hostile {
		evs = append(evs, collector.Event{DeviceID: h, Kind: h, TS: 1748722000000})
	}
	if _, err := st.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordRun(ctx, collector.UploadRun{StartedAt: time.UnixMilli(1748722000000), FinishedAt: time.UnixMilli(1748722000000), EventCount: 1, Status: collector.RunFailed, Error: strings.Join(hostile, " ")}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	for _, tc := range []struct {
		args  []string
		allow string // controls that may stay: the layout's own
	}{
		{[]string{"stats", "-db", db}, "\n"},
		{[]string{"stats", "-db", db, "-format", "json"}, "\n"},
		{[]string{"query", "-db", db, "SELECT device_id, kind FROM events"}, "\n"},
		{[]string{"query", "-db", db, "-format", "csv", "SELECT device_id, kind, 'x' AS \"a\x1b[2Jb\" FROM events"}, "\n\t"},
		{[]string{"query", "-db", db, "-format", "json", "SELECT device_id, kind FROM events"}, "\n"},
		{[]string{"query", "-db", db, "SELECT error FROM upload_runs"}, "\n"},
	} {
		var out bytes.Buffer
		if err := run(ctx, tc.args, &out, io.Discard); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if r, ok := raw(out.String(), tc.allow); ok {
			t.Errorf("%v printed %U raw:\n%q", tc.args, r, out.String())
		}
		if !strings.Contains(out.String(), "clear") {
			t.Errorf("%v: the device ids are missing:\n%s", tc.args, out.String())
		}
	}

	// JSON stays exact: the escapes decode to the stored values.
	var out bytes.Buffer
	if err := run(ctx, []string{"query", "-db", db, "-format", "json", "SELECT device_id FROM events ORDER BY id"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		DeviceID string `json:"device_id"`
	}
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != len(hostile) {
		t.Fatalf("json: %v %v", rows, err)
	}
	for i, r := range rows {
		if r.DeviceID != hostile[i] {
			t.Errorf("json row %d = %q, want %q", i, r.DeviceID, hostile[i])
		}
	}
}

// TestLogsAreRedacted: an error naming a URL with credentials is logged
// without them, in both log formats.
func TestLogsAreRedacted(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var out bytes.Buffer
		log := newLogger(&out, format)
		err := errors.New(`Post "https://alice:pw1@hooks.example/services/tok3n?api_key=k3y": EOF`)
		log.Warn("upload cycle failed", "err", err, "url", "nats://bob:pw2@nats.example:4222")
		for _, secret := range []string{"alice", "pw1", "tok3n", "k3y", "bob", "pw2"} {
			if strings.Contains(out.String(), secret) {
				t.Errorf("%s log leaks %q: %s", format, secret, out.String())
			}
		}
		if !strings.Contains(out.String(), "hooks.example") {
			t.Errorf("%s log lost the host: %s", format, out.String())
		}
	}
}

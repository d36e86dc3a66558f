package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
)

// A diagnostic that runs long is interrupted by -timeout (a read held open
// pins the collector's WAL); a negative -timeout is a usage error.
func TestDiagnosticsTimeLimit(t *testing.T) {
	db := filepath.Join(t.TempDir(), "events.db")
	st, err := store.Open(context.Background(), store.Options{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Insert(context.Background(), []collector.Event{{DeviceID: "a", Kind: "t", TS: 1}}); err != nil {
		t.Fatal(err)
	}
	const endless = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c, events`
	done := make(chan error, 1)
	go func() { // owned: ends with run, which the time limit ends
		done <- run(context.Background(), []string{"query", "-db", db, "-timeout", "300ms", endless}, io.Discard, io.Discard)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "time limit") {
			t.Errorf("endless query under -timeout 300ms: err = %v, want a time-limit error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the endless query ran 20s past -timeout 300ms")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"query", "-db", db, "-timeout", "0", "SELECT count(*) FROM events"}, &out, io.Discard); err != nil {
		t.Errorf("query with -timeout 0 (none): %v", err)
	}
	for _, sub := range []string{"query", "stats", "check", "mcp"} {
		err := run(context.Background(), []string{sub, "-db", db, "-timeout", "-1s", "SELECT 1"}, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-timeout") {
			t.Errorf("%s -timeout -1s: err = %v, want a usage error naming -timeout", sub, err)
		}
	}
}

package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"edgecollector/collector/store"
)

// lockedBuffer is a log destination shared by the handlers' goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A full backlog refuses every request; the log says so once, not once
// per refused request.
func TestFullBacklogLogsOnceNotPerRequest(t *testing.T) {
	var logs lockedBuffer
	f := newFixture(t, store.Options{}, Config{MaxBacklog: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if code, body := f.post(`{"device_id":"d","kind":"k"}`); code != 200 {
		t.Fatalf("fill: %d %s", code, body)
	}
	for range 300 {
		if code, _ := f.post(`{"device_id":"d","kind":"k"}`); code != 503 {
			t.Fatalf("over the cap: %d, want 503", code)
		}
	}
	if n := strings.Count(logs.String(), "backlog full"); n != 1 {
		t.Errorf("%d log lines for 300 refused requests, want 1:\n%s", n, logs.String()[:min(2000, len(logs.String()))])
	}
}

// The filter lets one line per status through each period and says how
// many it held back; other records pass untouched.
func TestQuietRepeatsCountsWhatItHoldsBack(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(newQuietRepeats(slog.NewTextHandler(&out, nil), time.Hour)).With("component", "server")
	for range 5 {
		log.Warn(msgRequestFailed, "status", 503, "err", "backlog full")
	}
	log.Warn(msgRequestFailed, "status", 507, "err", "disk full")
	log.Info("something else")
	log.Info("something else")
	if got := strings.Count(out.String(), "status=503"); got != 1 {
		t.Errorf("503 lines = %d, want 1", got)
	}
	if !strings.Contains(out.String(), "status=507") || strings.Count(out.String(), "something else") != 2 {
		t.Errorf("other statuses and records must pass:\n%s", out.String())
	}

	// A period later the next line carries the count held back.
	q := newQuietRepeats(slog.NewTextHandler(&out, nil), time.Hour)
	out.Reset()
	at := time.Now()
	for i := range 4 {
		r := slog.NewRecord(at.Add(time.Duration(i)*time.Minute), slog.LevelWarn, msgRequestFailed, 0)
		r.AddAttrs(slog.Int("status", 503))
		q.Handle(context.Background(), r)
	}
	r := slog.NewRecord(at.Add(2*time.Hour), slog.LevelWarn, msgRequestFailed, 0)
	r.AddAttrs(slog.Int("status", 503))
	q.Handle(context.Background(), r)
	if lines := strings.Count(out.String(), "\n"); lines != 2 || !strings.Contains(out.String(), "same_status_not_logged=3") {
		t.Errorf("got:\n%s\nwant 2 lines, the second saying 3 were not logged", out.String())
	}
}

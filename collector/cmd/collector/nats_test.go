package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"edgecollector/internal/natstest"
)

// -sink nats refuses to start, with a message that names the cause, when
// the server is not there; no database work is lost (it is only opened).
func TestNATSSinkFailsStartWhenServerDown(t *testing.T) {
	ports, err := natstest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err = run(context.Background(), []string{"-db", filepath.Join(t.TempDir(), "e.db"), "-addr", "127.0.0.1:0",
		"-sink", "nats", "-nats-url", fmt.Sprintf("nats://127.0.0.1:%d", ports[0])}, &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), "nats sink: connect to") {
		t.Errorf("run = %v, want a start failure saying it cannot connect", err)
	}
}

// End to end through run: events posted to the collector arrive in the
// stream with the collector's id in the body and the headers.
func TestNATSSinkShipsThroughRun(t *testing.T) {
	srv := natstest.Run(t)
	db := filepath.Join(t.TempDir(), "events.db")
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"-db", db, "-addr", addr, "-sink", "nats", "-nats-url", srv.ClientURL(),
			"-nats-stream", "EDGE", "-nats-subject", "edge.{collector_id}.{device_id}", "-upload-interval", "1h",
			"-collector-id", "edge-7"}, new(bytes.Buffer), new(bytes.Buffer))
	}()
	waitHealthy(t, addr, done)
	ids := postEvents(t, addr, `[{"device_id":"a","kind":"t","payload":{"n":1}},{"device_id":"b.c","kind":"t"}]`)
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM) // the shutdown drain ships them
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("collector did not stop within 15s of SIGTERM")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := natstest.ReadStream(ctx, srv.ClientURL(), "EDGE")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(msgs))
	}
	wantBody := fmt.Sprintf(`{"collector_id":"edge-7","id":%d,"device_id":"a","kind":"t","payload":{"n":1},"ts":`, ids[0])
	if !strings.HasPrefix(string(msgs[0].Data), wantBody) || msgs[1].Subject != "edge.edge-7.b_c" ||
		msgs[0].Header.Get("Collector-Id") != "edge-7" || msgs[1].Header.Get(jetstream.MsgIDHeader) != fmt.Sprintf("edge-7:%d", ids[1]) {
		t.Errorf("messages %q %q %v / %q %v", msgs[0].Data, msgs[0].Subject, msgs[0].Header, msgs[1].Subject, msgs[1].Header)
	}
}

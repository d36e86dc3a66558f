package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
	"edgecollector/internal/rig"
)

func TestFlagValidationNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-mode", "fast"}, "-mode"},
		{[]string{"-max-conns", "0"}, "-max-conns"},
		{[]string{"-max-backlog", "-1"}, "-max-backlog"},
		{[]string{"-max-commit-bytes", "100"}, "-max-commit-bytes"},
		{[]string{"-max-wal-bytes", "4096"}, "-max-wal-bytes"},
		{[]string{"-upload-interval", "0s"}, "-upload-interval"},
		{[]string{"-upload-batch", "0"}, "-upload-batch"},
		{[]string{"-upload-inflight", "0"}, "-upload-inflight"},
		{[]string{"-upload-inflight", "-2"}, "-upload-inflight"},
		{[]string{"-webhook-gzip"}, "-webhook-gzip"}, // given without -sink webhook
		{[]string{"-sink", "kafka"}, "-sink"},
		{[]string{"-sink", "webhook"}, "-webhook-url"},
		{[]string{"-sink", "webhook", "-webhook-url", "ftp://x"}, "-webhook-url"},
		{[]string{"-webhook-url", "http://x"}, "-webhook-url"}, // given without -sink webhook
		{[]string{"-retention", "-1h"}, "-retention"},
		{[]string{"-collector-id", ""}, "-collector-id"},
		{[]string{"-log-format", "xml"}, "-log-format"},
		{[]string{"-max-payload-bytes", "0"}, "-max-payload-bytes"},
		{[]string{"-max-inflight", "0"}, "-max-inflight"},
		{[]string{"-auth-token-file", "/nonexistent/token"}, "-auth-token-file"},
		{[]string{"-auth-token-file", os.DevNull}, "-auth-token-file"}, // empty
		{[]string{"-tls-cert", "cert.pem"}, "-tls-cert"},               // without -tls-key
		{[]string{"-tls-cert", "/nonexistent/c", "-tls-key", "/nonexistent/k"}, "-tls-cert"},
		{[]string{"-sink", "nats", "-nats-subject", "t.*"}, "-nats-subject"},             // a wildcard
		{[]string{"-sink", "nats", "-nats-subject", "t.d-{device_id}"}, "-nats-subject"}, // not a whole token
		{[]string{"-sink", "nats", "-nats-stream", "a.b"}, "-nats-stream"},
		{[]string{"-sink", "nats", "-nats-url", ""}, "-nats-url"},
		{[]string{"-nats-url", "nats://x:4222"}, "-nats-url"},     // given without -sink nats
		{[]string{"-pprof-addr", ":6060"}, "-pprof-addr"},         // every interface
		{[]string{"-pprof-addr", "0.0.0.0:6060"}, "-pprof-addr"},  // every interface, spelt out
		{[]string{"-pprof-addr", "[::]:6060"}, "-pprof-addr"},     // the same in IPv6
		{[]string{"-pprof-addr", "10.1.2.3:6060"}, "-pprof-addr"}, // a LAN address
		{[]string{"-pprof-addr", "box.lan:6060"}, "-pprof-addr"},  // a name that may resolve anywhere
		{[]string{"-pprof-addr", "6060"}, "-pprof-addr"},          // no host:port
		{[]string{"-pprof-allow-remote"}, "-pprof-addr"},          // the permission without the profiler
		{[]string{"-nope"}, "-nope"},
		{[]string{"extra"}, "extra"},
	} {
		_, err := parseFlags(tc.args, noEnv, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: err = %v, want a usage error naming %s", tc.args, err, tc.flag)
		}
	}
}

// env is a lookup over kv ("NAME", "value", ...) in place of the process's
// environment.
func env(kv ...string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == name {
				return kv[i+1], true
			}
		}
		return "", false
	}
}

var noEnv = env()

// Every flag but -version is also read from COLLECTOR_<NAME>; the command
// line wins; an empty variable counts as unset.
func TestFlagsFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		ok   func(c config) bool
	}{
		{"string", nil, []string{"COLLECTOR_DB", "/data/e.db"}, func(c config) bool { return c.store.Path == "/data/e.db" }},
		{"int", nil, []string{"COLLECTOR_MAX_CONNS", "3"}, func(c config) bool { return c.store.MaxConns == 3 }},
		{"int64", nil, []string{"COLLECTOR_MAX_BACKLOG", "7"}, func(c config) bool { return c.server.MaxBacklog == 7 }},
		{"bool", nil, []string{"COLLECTOR_INDEXED", "true"}, func(c config) bool { return c.store.Indexed }},
		{"duration", nil, []string{"COLLECTOR_RETENTION", "0"}, func(c config) bool { return c.uploader.Retention == 0 }},
		{"mode", nil, []string{"COLLECTOR_MODE", "serialized"}, func(c config) bool { return c.store.Mode == store.Serialized }},
		{"flag wins", []string{"-max-conns", "4"}, []string{"COLLECTOR_MAX_CONNS", "3"}, func(c config) bool { return c.store.MaxConns == 4 }},
		{"empty is unset", nil, []string{"COLLECTOR_MAX_CONNS", ""}, func(c config) bool { return c.store.MaxConns == store.DefaultMaxConns }},
		{"sink flags together", nil, []string{"COLLECTOR_SINK", "webhook", "COLLECTOR_WEBHOOK_URL", "http://127.0.0.1:9/in"},
			func(c config) bool { return c.sink == "webhook" && c.webhookURL == "http://127.0.0.1:9/in" }},
		{"upload inflight", nil, []string{"COLLECTOR_UPLOAD_INFLIGHT", "1"}, func(c config) bool { return c.uploader.InFlight == 1 }},
		{"webhook gzip", nil, []string{"COLLECTOR_SINK", "webhook", "COLLECTOR_WEBHOOK_URL", "http://127.0.0.1:9/in", "COLLECTOR_WEBHOOK_GZIP", "true"},
			func(c config) bool { return c.webhookGzip }},
		{"version is a flag only", nil, []string{"COLLECTOR_VERSION", "true"}, func(c config) bool { return !c.version }},
		{"other variables ignored", nil, []string{"COLLECTOR_BIN", "/x"}, func(c config) bool { return c.store.Path == "events.db" }},
	} {
		c, err := parseFlags(tc.args, env(tc.env...), io.Discard)
		if err != nil || !tc.ok(c) {
			t.Errorf("%s: %v with %v: err = %v, config %+v", tc.name, tc.args, tc.env, err, c)
		}
	}
}

// A bad value in the environment is refused with the variable's name, at
// parsing and at validation alike.
func TestBadEnvironmentNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"COLLECTOR_MAX_CONNS", "many"}, "COLLECTOR_MAX_CONNS"},
		{[]string{"COLLECTOR_MAX_CONNS", "0"}, "COLLECTOR_MAX_CONNS (-max-conns)"},
		{[]string{"COLLECTOR_INDEXED", "yes please"}, "COLLECTOR_INDEXED"},
		{[]string{"COLLECTOR_RETENTION", "-1h"}, "COLLECTOR_RETENTION (-retention)"},
		{[]string{"COLLECTOR_NATS_URL", "nats://x:4222"}, "COLLECTOR_NATS_URL (-nats-url): given, but -sink is log"},
	} {
		_, err := parseFlags(nil, env(tc.env...), io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want a usage error naming %s", tc.env, err, tc.want)
		}
	}
}

// Every flag but -version is read from its variable, and the usage says so.
func TestEveryFlagHasItsVariable(t *testing.T) {
	var c config
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	for _, r := range c.flagTable() {
		r.bind(fs, r.name, r.usage)
	}
	fs.VisitAll(func(f *flag.Flag) {
		v := cmp.Or(f.DefValue, "x")
		if f.Name == "db" || f.Name == "addr" {
			v = "other" // the default would pass unseen on most flags, not on these
		}
		name := "COLLECTOR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		c, _ := parseFlags(nil, env(name, v), io.Discard) // a check may refuse "x": read all the same
		if got, want := c.fromEnv[f.Name], name; got != want && !flagOnly[f.Name] {
			t.Errorf("-%s: %s=%s not read (from env: %v)", f.Name, name, v, c.fromEnv)
		}
		if flagOnly[f.Name] && c.fromEnv[f.Name] != "" {
			t.Errorf("-%s read from %s", f.Name, name)
		}
	})
	var usage bytes.Buffer
	parseFlags([]string{"-h"}, noEnv, &usage)
	if !strings.Contains(usage.String(), "COLLECTOR_<NAME>") {
		t.Errorf("usage does not mention the environment:\n%s", usage.String())
	}
}

// The profiler listens on loopback, or wherever the operator says once they
// have said -pprof-allow-remote.
func TestPprofAddrAccepted(t *testing.T) {
	for _, args := range [][]string{
		{"-pprof-addr", "127.0.0.1:6060"},
		{"-pprof-addr", "127.8.9.10:6060"},
		{"-pprof-addr", "[::1]:6060"},
		{"-pprof-addr", "localhost:6060"},
		{"-pprof-addr", ":6060", "-pprof-allow-remote"},
		{"-pprof-addr", "10.1.2.3:6060", "-pprof-allow-remote"},
	} {
		c, err := parseFlags(args, noEnv, io.Discard)
		if err != nil || c.pprofAddr != args[1] {
			t.Errorf("%v: pprof addr %q, err %v", args, c.pprofAddr, err)
		}
	}
	if c, err := parseFlags(nil, noEnv, io.Discard); err != nil || c.pprofAddr != "" {
		t.Errorf("default: pprof addr %q, err %v; want off", c.pprofAddr, err)
	}
}

// -pprof-addr serves the runtime profiles on a listener of its own, and
// leaves out the command line (it may carry a webhook URL's credentials).
func TestPprofServesProfiles(t *testing.T) {
	db := filepath.Join(t.TempDir(), "events.db")
	addr, paddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-db", db, "-addr", addr, "-pprof-addr", paddr}, io.Discard, io.Discard)
	}()
	waitHealthy(t, addr, done)
	for path, want := range map[string]int{
		"/debug/pprof/":                  http.StatusOK,
		"/debug/pprof/heap?debug=1":      http.StatusOK,
		"/debug/pprof/goroutine?debug=1": http.StatusOK,
		"/debug/pprof/cmdline":           http.StatusNotFound,
	} {
		resp, err := http.Get("http://" + paddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s on the profiler: %d, want %d", path, resp.StatusCode, want)
		}
	}
	// The API's own listener does not serve the profiles.
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the API: %d, want 404", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v", err)
	}
	if _, err := net.Dial("tcp", paddr); err == nil {
		t.Errorf("profiler still listening on %s after the collector stopped", paddr)
	}
}

func TestRetentionZeroKeepsForever(t *testing.T) {
	c, err := parseFlags([]string{"-retention", "0"}, noEnv, io.Discard)
	if err != nil || c.uploader.Retention != 0 {
		t.Errorf("-retention 0: retention %v, err %v; want 0 (keep forever, as uploader.Options says)", c.uploader.Retention, err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := parseFlags(nil, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.store.Path != "events.db" || c.store.Mode != "group" || c.addr != ":8080" || c.sink != "log" || c.collectorID == "" || c.uploader.InFlight != uploader.DefaultInFlight {
		t.Errorf("defaults = %+v", c)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-version"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "collector dev\n" {
		t.Errorf("version output %q", got)
	}
}

// TestRunShipsAndSurvivesRestart is the README's promise end to end: a
// collector accepts events, ships them to a webhook, drains on SIGTERM, and
// a restart on the same file carries on where it stopped.
func TestRunShipsAndSurvivesRestart(t *testing.T) {
	var got rig.Deliveries
	hook, err := rig.StartReceiver(&got)
	if err != nil {
		t.Fatal(err)
	}
	defer hook.Close()
	db := filepath.Join(t.TempDir(), "events.db")

	start := func() (addr string, done chan error) {
		addr = freeAddr(t)
		done = make(chan error, 1)
		go func() {
			done <- run(context.Background(), []string{"-db", db, "-addr", addr, "-sink", "webhook",
				"-webhook-url", hook.URL, "-upload-interval", "1h", "-collector-id", "edge-7"}, io.Discard, io.Discard)
		}()
		waitHealthy(t, addr, done)
		return addr, done
	}
	stop := func(done chan error) {
		syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run after SIGTERM: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("collector did not stop within 15s of SIGTERM")
		}
	}

	addr, done := start()
	ids := postEvents(t, addr, `[{"device_id":"a","kind":"t","payload":{"n":1}},{"device_id":"b","kind":"t"}]`)
	stop(done) // the hour-long interval means only the shutdown drain ships them

	first := got.Snapshot()
	if e := first[rig.Key{CollectorID: "edge-7", ID: ids[0]}]; hook.Taken() != 2 || len(first) != 2 || string(e.First.Payload) != `{"n":1}` {
		t.Errorf("webhook received %+v", first)
	}

	addr, done = start()
	ids2 := postEvents(t, addr, `{"device_id":"a","kind":"t"}`)
	if ids2[0] <= ids[1] {
		t.Errorf("id after restart = %d, want > %d", ids2[0], ids[1])
	}
	stop(done)
	if n := hook.Taken(); n != 3 {
		t.Errorf("webhook received %d events in all, want 3", n)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t *testing.T, addr string, done chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("collector exited: %v", err)
		default:
		}
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("collector not healthy within 10s")
}

func postEvents(t *testing.T, addr, body string) []int64 {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ IDs []int64 }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("post: %d %v", resp.StatusCode, err)
	}
	return r.IDs
}

func TestDiagnosticSubcommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "events.db")
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		// The sink refuses every connection, so the backlog read below stays
		// put: the uploader's first cycle, at start, must not race it.
		done <- run(context.Background(), []string{"-db", db, "-addr", addr, "-upload-interval", "1h",
			"-sink", "webhook", "-webhook-url", "http://" + freeAddr(t)}, io.Discard, io.Discard)
	}()
	waitHealthy(t, addr, done)
	defer func() {
		syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		<-done
	}()
	postEvents(t, addr, `[{"device_id":"a","kind":"t"},{"device_id":"b","kind":"t"},{"device_id":"b","kind":"t"}]`)

	// While the collector runs: a live, read-only answer.
	var out bytes.Buffer
	err := run(context.Background(), []string{"query", "-db", db, "-format", "csv",
		"SELECT device_id, count(*) AS backlog FROM backlog GROUP BY 1 ORDER BY 1"}, &out, io.Discard)
	if err != nil || out.String() != "device_id,backlog\na,1\nb,2\n" {
		t.Errorf("query = %q, %v", out.String(), err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"query", "-db", db, "DELETE FROM events"}, &out, io.Discard); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("query DELETE: err = %v, want a read-only refusal", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"stats", "-db", db}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "backlog                    3") {
		t.Errorf("stats = %v:\n%s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"check", "-db", db}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "ok") {
		t.Errorf("check = %v: %s", err, out.String())
	}
	for _, args := range [][]string{
		{"query", "-db", db}, // no SQL
		{"query", "-db", db, "-format", "xml", "SELECT 1"}, // bad format
		{"query", "-db", filepath.Join(t.TempDir(), "missing.db"), "SELECT 1"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// A client that connects and never sends a request must not hold shutdown
// past its budget, nor make it fail: everything acknowledged is on disk.
func TestIdleConnectionDoesNotBlockShutdown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "events.db")
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"-db", db, "-addr", addr, "-drain-timeout", "1s"}, io.Discard, io.Discard)
	}()
	waitHealthy(t, addr, done)
	postEvents(t, addr, `{"device_id":"a","kind":"t"}`)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v, want a clean exit", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("shutdown took %v with a 1s budget", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("collector did not stop within 10s")
	}
}

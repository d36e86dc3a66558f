package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
)

// TestSlowBodiesDoNotLockOutProducers floods the server (loopback, bounded)
// with connections that send their headers and then a body byte now and
// then. Honest producers must keep getting 200s meanwhile, and a slow body
// is cut off with 408 once the grace is over. (On 4cb3049 the slow bodies
// held every -max-inflight slot and producers got 503.)
func TestSlowBodiesDoNotLockOutProducers(t *testing.T) {
	const flood = 200
	srv, st := openServer(t, Config{MaxInFlight: 8, Timeouts: Timeouts{BodyGrace: 2 * time.Second, MinBodyRate: 1 << 10}})
	addr := srv.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]int{}
	connected := make(chan struct{}, flood)
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				connected <- struct{}{}
				return
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
			connected <- struct{}{}
			// One byte every 200 ms until the server answers or the test ends.
			go func() {
				for ctx.Err() == nil {
					time.Sleep(200 * time.Millisecond)
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			mu.Lock()
			statuses[strings.TrimSpace(line)]++
			mu.Unlock()
		}()
	}
	for range flood {
		<-connected
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 30 {
		resp, err := client.Post("http://"+addr+"/events", "application/json", strings.NewReader(`{"device_id":"honest","kind":"k"}`))
		if err != nil {
			t.Fatalf("honest request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("honest request %d during the flood = %d %s", i, resp.StatusCode, body)
		}
	}
	wg.Wait() // every slow connection got its answer, or 10 s passed
	stop()
	mu.Lock()
	defer mu.Unlock()
	if statuses["HTTP/1.1 408 Request Timeout"] != flood {
		t.Errorf("slow bodies were answered %v, want %d × 408", statuses, flood)
	}
	var n int
	st.DB().QueryRow(`SELECT count(*) FROM events WHERE device_id = 'honest'`).Scan(&n)
	if n != 30 {
		t.Errorf("honest events stored = %d, want 30", n)
	}
}

// TestDeclaredOversizeBodyIsRefusedAtOnce: a Content-Length over the limit
// gets 413 before "100 Continue" and before any body byte is read.
func TestDeclaredOversizeBodyIsRefusedAtOnce(t *testing.T) {
	srv, _ := openServer(t, Config{})
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 413") {
		t.Errorf("first answer = %q, %v; want 413 at once", line, err)
	}
}

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

// TestEncodingsAndCharsets: a body means what its headers say or is refused.
// (On 4cb3049 gzip got a misleading 400, a plain body labelled gzip was
// stored and ISO-8859-1 was read as UTF-8.)
func TestEncodingsAndCharsets(t *testing.T) {
	f := newFixture(t, store.Options{}, Config{Limits: Limits{MaxBodyBytes: 4096}})
	ok := `{"device_id":"d","kind":"k"}`
	bomb := gzipped(`{"device_id":"d","kind":"k","payload":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`)
	for _, tc := range []struct {
		name, ctype, encoding, body string
		want                        int
	}{
		{"gzip", "application/json", "gzip", gzipped(ok), 200},
		{"GZIP, any case", "application/json", "GZip", gzipped(ok), 200},
		{"identity", "application/json", "identity", ok, 200},
		{"charset utf-8", "application/json; charset=utf-8", "", ok, 200},
		{"charset UTF-8", "application/json; charset=UTF-8", "", ok, 200},
		{"gzip bomb: small on the wire, over the limit decoded", "application/json", "gzip", bomb, 413},
		{"plain body labelled gzip", "application/json", "gzip", ok, 400},
		{"unknown encoding", "application/json", "br", ok, 415},
		{"deflate", "application/json", "deflate", ok, 415},
		{"two encodings", "application/json", "gzip, gzip", gzipped(gzipped(ok)), 415},
		{"latin-1", "application/json; charset=iso-8859-1", "", "{\"device_id\":\"caf\xe9\",\"kind\":\"k\"}", 415},
		{"utf-16", "application/json; charset=utf-16", "", ok, 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(bomb) > 4096 {
				t.Fatalf("the bomb is %d bytes compressed: not a bomb", len(bomb))
			}
			req, _ := http.NewRequest("POST", f.srv.URL+"/events", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			before := f.rows()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d %s, want %d", resp.StatusCode, body, tc.want)
			}
			if stored := f.rows() - before; (tc.want == 200) != (stored == 1) {
				t.Errorf("stored %d events", stored)
			}
		})
	}
}

// TestMetricsMethodsAuthSchemeAndNotFound: /metrics answers 405 with Allow
// to what is not GET or HEAD; the bearer scheme is case-insensitive; a 404
// does not echo a huge path.
func TestMetricsMethodsAuthSchemeAndNotFound(t *testing.T) {
	f := newFixture(t, store.Options{}, Config{})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		code, hdr, _ := f.do(m, "/metrics", "", "")
		if code != 405 || hdr.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /metrics = %d Allow=%q, want 405 with Allow", m, code, hdr.Get("Allow"))
		}
	}
	if code, _, _ := f.do("HEAD", "/metrics", "", ""); code != 200 {
		t.Errorf("HEAD /metrics = %d", code)
	}
	code, _, body := f.do("GET", "/"+strings.Repeat("a", 100<<10), "", "")
	if code != 404 || len(body) > 512 {
		t.Errorf("404 for a 100 KB path = %d with %d bytes of body", code, len(body))
	}

	a := newFixture(t, store.Options{}, Config{AuthToken: "s3cret"})
	for auth, want := range map[string]int{
		"Bearer s3cret":  200,
		"bearer s3cret":  200,
		"BEARER s3cret":  200,
		"bEaReR s3cret":  200,
		"Bearer  s3cret": 200, // 1*SP
		"Bearers3cret":   401,
		"Bearer":         401,
		"Bearer ":        401,
		"Basic s3cret":   401,
		"s3cret":         401,
	} {
		req, _ := http.NewRequest("GET", a.srv.URL+"/stats", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization %q = %d, want %d", auth, resp.StatusCode, want)
		}
	}
}

// TestErrorsLeavingTheProcessAreRedacted: a sink's error naming its URL
// with a user, a password, a path token and an api key reaches /healthz
// (open to anyone), /stats and the audit row without them.
func TestErrorsLeavingTheProcessAreRedacted(t *testing.T) {
	f := newFixture(t, store.Options{}, Config{})
	f.post(`{"device_id":"d","kind":"k"}`)
	f.sink.Fail(fmt.Errorf("webhook: %w", errors.New(`Post "https://alice:pw1@hooks.example/services/T0/tok3n?api_key=k3y": dial tcp: connection refused`)))
	f.up.Sync(context.Background())
	var audit string
	f.store.DB().QueryRow(`SELECT error FROM upload_runs ORDER BY id DESC LIMIT 1`).Scan(&audit)
	_, _, health := f.do("GET", "/healthz", "", "")
	_, _, stats := f.do("GET", "/stats", "", "")
	for where, text := range map[string]string{"healthz": health, "stats": stats, "audit row": audit} {
		if !strings.Contains(text, "hooks.example") {
			t.Errorf("%s lost the host: %s", where, text)
		}
		for _, secret := range []string{"alice", "pw1", "tok3n", "api_key", "k3y"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s leaks %q: %s", where, secret, text)
			}
		}
	}
	var h healthResponse
	json.Unmarshal([]byte(health), &h)
	if h.OK {
		t.Error("healthz ok with a failing sink")
	}
	_ = collector.ErrRejected
}

// TestDamagedBufferStopsIngest: when the background damage check finds a
// damaged file, /healthz answers 503 saying so and POST /events 503 (with
// Retry-After), storing nothing more. (On 4cb3049 such a file took events
// with 200 and reported healthy.)
func TestDamagedBufferStopsIngest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := store.Open(ctx, store.Options{Path: path, Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		evs := make([]collector.Event, 500)
		for i := range evs {
			evs[i] = collector.Event{DeviceID: "d", Kind: "k", TS: 1, Payload: []byte(`{"v":"` + strings.Repeat("x", 600) + `"}`)}
		}
		if _, err := st.Insert(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	// Most of it shipped: open reads the backlog's rows, the background
	// check the rest.
	evs, err := st.FetchBacklog(ctx, 0, 2500)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Checkpoint(ctx, evs, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt(bytes.Repeat([]byte{0xab, 0, 0xff, 0x13}, 4096), 200*4096)
	f.Close()

	fx := newFixtureAt(t, path, store.Options{StartCheckBytes: -1}, Config{})
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, body := fx.do("GET", "/healthz", "", "")
		if code == 503 && strings.Contains(body, `"state":"damaged"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz = %d %s, want 503 damaged", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := fx.rows()
	code, hdr, body := fx.do("POST", "/events", "application/json", `{"device_id":"d","kind":"k"}`)
	if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "damaged") {
		t.Errorf("POST into a damaged buffer = %d %s", code, body)
	}
	if fx.rows() != before {
		t.Error("a POST was stored into the damaged buffer")
	}
}

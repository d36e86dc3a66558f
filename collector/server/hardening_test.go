package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
	"edgecollector/internal/sinktest"
	"edgecollector/internal/storetest"
)

// openServer runs a real Server on loopback with cfg and returns its base URL.
func openServer(t *testing.T, cfg Config) (*Server, *store.Store) {
	t.Helper()
	st := storetest.MustOpen(t, store.Options{})
	srv := New(st, uploader.New(st, &sinktest.Sink{}, uploader.Options{}), cfg)
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, st
}

func TestBearerTokenGuardsAllButHealthz(t *testing.T) {
	f := newFixture(t, store.Options{}, Config{AuthToken: "s3cret"})
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/events", "", 401},
		{"POST", "/events", "Bearer wrong", 401},
		{"POST", "/events", "Bearer s3cre", 401},   // a prefix is not the token
		{"POST", "/events", "Basic czNjcmV0", 401}, // not a bearer token
		{"POST", "/events", "Bearer s3cret", 200},
		{"GET", "/stats", "", 401},
		{"GET", "/stats", "Bearer s3cret", 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/healthz", "", 200}, // probes need no token
	} {
		req, _ := http.NewRequest(tc.method, f.srv.URL+tc.path, strings.NewReader(`{"device_id":"d","kind":"k"}`))
		req.Header.Set("Content-Type", "application/json")
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with %q = %d, want %d", tc.method, tc.path, tc.auth, resp.StatusCode, tc.want)
		}
		if tc.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", tc.method, tc.path)
		}
	}
	if n := f.rows(); n != 1 {
		t.Errorf("rows = %d, want 1 (only the authorised request)", n)
	}
}

func TestInFlightBound(t *testing.T) {
	f := newFixture(t, store.Options{Mode: store.Serialized, BusyTimeout: 50 * time.Millisecond, MaxRetries: 1000}, Config{MaxInFlight: 1})
	// Hold the only slot with a request whose commit waits: another
	// connection holds the write lock.
	var path string
	f.store.DB().QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path)
	lock, err := sql.Open(store.SQLite.Driver, store.SQLite.DSN(path, store.ConnConfig{BusyTimeout: time.Second, Synchronous: "FULL"}))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	held := make(chan int, 1)
	go func() {
		code, _ := f.post(`{"device_id":"held","kind":"k"}`)
		held <- code
	}()
	// Only once the held request is in the store (it has met the lock) is
	// the slot surely its: sent earlier, the next request could take it.
	deadline := time.Now().Add(5 * time.Second)
	for f.store.Stats().Conflicts == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the held request never reached the locked store")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for {
		code, _, body := f.do("POST", "/events", "application/json", `{"device_id":"d","kind":"k"}`)
		if code == 503 && strings.Contains(body, "in flight") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second request = %d %s, want 503 while the slot is held", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn.ExecContext(context.Background(), `ROLLBACK`)
	if code := <-held; code != 200 {
		t.Fatalf("held request = %d once the lock is free", code)
	}
	if code, body := f.post(`{"device_id":"d","kind":"k"}`); code != 200 {
		t.Fatalf("after the slot is free: %d %s", code, body)
	}
	if got := f.rows(); got != 2 {
		t.Errorf("rows = %d, want 2 (the held request and the one after)", got)
	}
}

func TestSlowLorisIsCutOff(t *testing.T) {
	srv, _ := openServer(t, Config{Timeouts: Timeouts{ReadHeader: 200 * time.Millisecond}})
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("POST /events HTTP/1.1\r\nHost: x\r\n")) // and never the rest
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	io.Copy(io.Discard, conn) // returns when the server closes the connection
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a client that never finished its headers held the connection %v", took)
	}
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv, _ := openServer(t, Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := client.Post("https://"+srv.Addr().String()+"/events", "application/json", strings.NewReader(`{"device_id":"d","kind":"k"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST over TLS = %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + srv.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served by a TLS server")
		}
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

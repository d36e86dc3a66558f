// Package natstest runs real NATS servers with JetStream on loopback:
// embedded in the calling process (the sink's tests, the scenarios, the
// fleet experiment), or as child processes that a test can SIGKILL (a
// three-node cluster). It is a test helper: the collector never imports it.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options for one server.
type Options struct {
	// Dir is the JetStream store directory. A server started again on the
	// same Dir comes back with its streams and messages.
	Dir string
	// Port is the client port; 0 picks a free one.
	Port int
	// NoJetStream starts a server without JetStream, to test the refusal.
	NoJetStream bool
	// Name is the server's name (required in a cluster; default "n0").
	Name string
	// Cluster, when not nil, makes the server a member of a cluster.
	Cluster *Cluster
}

// Cluster is a JetStream cluster's shape: its name, this member's cluster
// port, and every member's route URL (this one included).
type Cluster struct {
	Name   string
	Port   int
	Routes []string
}

// ReadyTimeout bounds the wait for a server to accept clients.
const ReadyTimeout = 10 * time.Second

// Start runs a server and waits until it accepts clients. Stop it with
// Shutdown (then WaitForShutdown).
func Start(o Options) (*server.Server, error) {
	if o.Name == "" {
		o.Name = "n0"
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       "127.0.0.1",
		Port:       o.Port,
		JetStream:  !o.NoJetStream,
		StoreDir:   o.Dir,
		NoLog:      true,
		NoSigs:     true,
		// Bounded JetStream resources: the box is shared.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
	}
	if o.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if c := o.Cluster; c != nil {
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: c.Port}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start() // the server owns its goroutines; Shutdown stops them
	if !s.ReadyForConnections(ReadyTimeout) {
		s.Shutdown()
		return nil, errors.New("nats server: not ready in time")
	}
	return s, nil
}

// Run starts a JetStream server on a fresh temp store for a test and shuts
// it down at cleanup.
func Run(tb testing.TB) *server.Server {
	tb.Helper()
	return RunOpts(tb, Options{Dir: tb.TempDir()})
}

// RunOpts is Run with options.
func RunOpts(tb testing.TB, o Options) *server.Server {
	tb.Helper()
	s, err := Start(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { Stop(s) })
	return s
}

// Stop shuts s down and waits until it has. Safe on a stopped server.
func Stop(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// FreePorts returns n ports free on loopback right now (for the cluster's
// routes, which must be known before any member starts).
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

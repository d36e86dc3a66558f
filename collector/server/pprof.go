package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// Profiler serves Go's runtime profiles (net/http/pprof) on a listener of
// its own, never on the API's: an operator profiles a live collector with
// `go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=30`.
// It has no authentication, so the command keeps it on loopback unless the
// operator says otherwise. /debug/pprof/cmdline is left out: the command
// line may carry a webhook URL with credentials in it.
type Profiler struct {
	srv *http.Server
	ln  net.Listener
	wg  sync.WaitGroup
}

// OpenProfiler binds addr (so a bind error surfaces here) and serves the
// profiles in the background until Close.
func OpenProfiler(addr string) (*Profiler, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, allocs, goroutine, block, mutex, ...
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p := &Profiler{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: defaultTimeouts.ReadHeader,
		IdleTimeout:       defaultTimeouts.Idle,
		// No WriteTimeout: a CPU profile or trace streams for as long as asked.
	}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.srv.Serve(ln) // ends with http.ErrServerClosed on Close
	}()
	return p, nil
}

// Addr is the bound address.
func (p *Profiler) Addr() net.Addr { return p.ln.Addr() }

// Close stops serving: a profile being taken is cut off after a second.
func (p *Profiler) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, p.srv.Close())
	}
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("pprof: close: %w", err)
	}
	return nil
}

// Command collector is the edge event collector: it accepts telemetry over
// HTTP, commits every event to a local SQLite file before acknowledging it,
// and drains the backlog to a sink in the background.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/server"
	"edgecollector/collector/sink"
	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "collector:", collector.RedactURLs(err.Error()))
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad flag or flag value: exit status 2.
type usageError struct{ error }

// run dispatches to a subcommand, or serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return serve(ctx, args[1:], stdout, stderr)
		case "query":
			return runQuery(ctx, args[1:], stdout, stderr)
		case "stats":
			return runStats(ctx, args[1:], stdout, stderr)
		case "check":
			return runCheck(ctx, args[1:], stdout, stderr)
		case "mcp":
			return runMCP(ctx, args[1:], stderr)
		}
	}
	return serve(ctx, args, stdout, stderr)
}

// serve parses args and serves until SIGINT, SIGTERM or SIGHUP. The first
// signal drains: stop accepting, finish requests in flight, ship what is
// left (bounded by -drain-timeout), close the database. A second signal
// aborts the drain; everything acknowledged is already on disk.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	if cfg.version {
		fmt.Fprintln(stdout, "collector", version)
		return nil
	}
	log := newLogger(stderr, cfg.logFormat)
	if store.HarnessDurabilityOff() {
		log.Warn("HARNESS BUILD (-tags harness_syncoff): the buffer runs synchronous=OFF and a 200 is NOT durable; never deploy this binary")
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, drainSignals()...)
	defer signal.Stop(sigs)
	// A reader of stdout that goes away (collector | head) must fail the
	// log sink's write with EPIPE, not kill the process: Go dies of SIGPIPE
	// on fd 1 and 2 unless the signal is asked for. Nobody reads it.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)

	cfg.store.Logger = log
	if cfg.pprofAddr != "" {
		// First, so that start-up can be profiled too, and a bind error
		// stops the start before anything is opened.
		prof, err := server.OpenProfiler(cfg.pprofAddr)
		if err != nil {
			return err
		}
		defer prof.Close()
		log.Warn("profiler listening: unauthenticated, keep it private", "addr", prof.Addr().String())
	}
	st, err := store.Open(ctx, cfg.store)
	if err != nil {
		return err
	}
	defer st.Close() // after a clean drain this is a no-op

	out, closeSink, err := openSink(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	defer closeSink() // after the uploader's final drain
	cfg.uploader.Logger = log
	up := uploader.New(st, out, cfg.uploader)
	cfg.server.Logger = log
	srv := server.New(st, up, cfg.server)
	if err := srv.Open(cfg.addr); err != nil {
		return err
	}
	up.Start(context.WithoutCancel(ctx))
	log.Info("collector started", "version", version, "addr", srv.Addr().String(), "db", cfg.store.Path,
		"mode", st.Mode(), "sink", cfg.sink, "collector_id", cfg.collectorID, "upload_inflight", cfg.uploader.InFlight, "backlog", st.Backlog(),
		"from_env", slices.Sorted(maps.Values(cfg.fromEnv)))

	var serveErr error
	select {
	case sig := <-sigs:
		log.Info("shutting down: draining", "signal", sig.String(), "timeout", cfg.drainTimeout)
	case serveErr = <-srv.Err():
		log.Error("server failed; shutting down", "err", serveErr)
	case <-st.Failed():
		return failStop(ctx, log, srv, up, st)
	case <-ctx.Done():
	}
	if err := errors.Join(shutdown(ctx, cfg.drainTimeout, sigs, log, srv, up, st), serveErr); err != nil {
		return err
	}
	log.Info("collector stopped", "backlog", st.Backlog())
	return nil
}

// failStop ends a collector whose store went fail-stop (PostgreSQL's
// answer to "fsyncgate"): after a failed fsync the kernel may have dropped
// pages it reported written, so nothing this process could still write is
// trustworthy. It acknowledges nothing more, ships nothing more, does not
// checkpoint, and returns the failure at once (exit 1): the supervisor
// restarts it on what is really on disk.
func failStop(ctx context.Context, log *slog.Logger, srv *server.Server, up *uploader.Uploader, st *store.Store) error {
	log.Error("storage failed: exiting without writing anything more; restart the collector", "err", st.FailErr())
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	srv.Shutdown(stopCtx) // requests in flight get their error
	up.Stop(stopCtx)      // its fetches and marks are refused now
	st.Close()            // no checkpoint: the store writes nothing more
	return st.FailErr()
}

// openSink returns the sink cfg names, and what closes it.
func openSink(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) (collector.Sink, func(), error) {
	var out collector.Sink
	closeSink := func() {}
	switch cfg.sink {
	case "log":
		out = sink.NewLog(stdout, cfg.collectorID)
	case "webhook":
		out = sink.NewWebhook(sink.WebhookOptions{URL: cfg.webhookURL, CollectorID: cfg.collectorID,
			Timeout: cfg.webhookTimeout, Gzip: cfg.webhookGzip})
	case "nats":
		cfg.nats.CollectorID = cfg.collectorID
		cfg.nats.Name = "collector " + cfg.collectorID
		cfg.nats.Logger = log
		ns, err := sink.DialNATS(ctx, cfg.nats)
		if err != nil {
			return nil, nil, err
		}
		out, closeSink = ns, func() { ns.Close() }
	}
	if cfg.flakyEvery > 0 {
		out = &sink.Flaky{Sink: out, Every: cfg.flakyEvery}
	}
	return out, closeSink, nil
}

// shutdown drains within drainTimeout: requests in flight first (half the
// budget at most), then the backlog, then the buffer is closed. A second
// signal on sigs aborts the drain.
func shutdown(ctx context.Context, drainTimeout time.Duration, sigs <-chan os.Signal, log *slog.Logger,
	srv *server.Server, up *uploader.Uploader, st *store.Store) error {
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	aborted := make(chan struct{})
	go func() { // owned: ends when the drain does (cancel) or on a second signal
		select {
		case sig := <-sigs:
			log.Warn("second signal: aborting drain", "signal", sig.String())
			close(aborted)
			cancel()
		case <-drainCtx.Done():
		}
	}()

	var errs []error
	// Half the budget for requests in flight, the rest (at least) for the
	// backlog: a client that holds a connection open must not eat the
	// uploader's share.
	httpCtx, httpCancel := context.WithTimeout(drainCtx, drainTimeout/2)
	if err := srv.Shutdown(httpCtx); err != nil {
		// Not a failure: whatever was acknowledged is on disk.
		log.Warn("http shutdown", "err", err)
	}
	httpCancel()
	if err := up.Stop(drainCtx); err != nil {
		// Not fatal: the backlog stays on disk for the next start.
		log.Warn("final drain incomplete; backlog kept for next start", "err", err, "backlog", st.Backlog())
	}
	if err := st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close buffer: %w", err))
	}
	cancel()
	select {
	case <-aborted:
		errs = append(errs, errors.New("aborted by second signal"))
	default:
	}
	return errors.Join(errs...)
}

// drainSignals are the signals that drain and stop the collector. SIGHUP
// (the terminal went away) is one of them: its default would exit at once,
// without the drain. Under nohup it stays ignored, as nohup asked.
func drainSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// newLogger logs on w. Every string and error it logs goes through
// collector.RedactURLs: a sink's error may name its URL, with credentials.
func newLogger(w io.Writer, format string) *slog.Logger {
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		switch v := a.Value.Any().(type) {
		case string:
			a.Value = slog.StringValue(collector.RedactURLs(v))
		case error:
			a.Value = slog.StringValue(collector.RedactURLs(v.Error()))
		}
		return a
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// drainWait is how long a drain may take by default.
const drainWait = 10 * time.Second

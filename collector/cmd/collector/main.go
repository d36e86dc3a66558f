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
	"os"
	"os/signal"
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
		fmt.Fprintln(os.Stderr, "collector:", err)
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

// serve parses args and serves until SIGINT or SIGTERM. The first signal
// drains: stop accepting, finish requests in flight, ship what is left
// (bounded by -drain-timeout), close the database. A second signal aborts
// the drain; everything acknowledged is already on disk.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
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
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	st, err := store.Open(ctx, cfg.store)
	if err != nil {
		return err
	}
	defer st.Close() // after a clean drain this is a no-op

	var out collector.Sink
	switch cfg.sink {
	case "log":
		out = sink.NewLog(stdout)
	case "webhook":
		out = sink.NewWebhook(cfg.webhookURL, cfg.webhookTimeout)
	case "nats":
		cfg.nats.Name = "collector " + cfg.uploader.CollectorID
		cfg.nats.Logger = log
		ns, err := sink.DialNATS(ctx, cfg.nats)
		if err != nil {
			return err
		}
		defer ns.Close() // after the uploader's final drain
		out = ns
	}
	if cfg.flakyEvery > 0 {
		out = &sink.Flaky{Sink: out, Every: cfg.flakyEvery}
	}
	cfg.uploader.Logger = log
	up := uploader.New(st, out, cfg.uploader)
	cfg.server.Logger = log
	srv := server.New(st, up, cfg.server)
	if err := srv.Open(cfg.addr); err != nil {
		return err
	}
	up.Start(context.WithoutCancel(ctx))
	log.Info("collector started", "version", version, "addr", srv.Addr().String(), "db", cfg.store.Path,
		"mode", st.Mode(), "sink", cfg.sink, "collector_id", cfg.uploader.CollectorID, "backlog", st.Backlog())

	var serveErr error
	select {
	case sig := <-sigs:
		log.Info("shutting down: draining", "signal", sig.String(), "timeout", cfg.drainTimeout)
	case serveErr = <-srv.Err():
		log.Error("server failed; shutting down", "err", serveErr)
	case <-st.Failed():
		// Fail-stop (PostgreSQL's answer to "fsyncgate"): after a failed
		// fsync the kernel may have dropped pages it reported written, so
		// nothing this process could still write is trustworthy. It
		// acknowledges nothing more, ships nothing more, and exits non-zero
		// at once: the supervisor restarts it on what is really on disk.
		log.Error("storage failed: exiting without writing anything more; restart the collector", "err", st.FailErr())
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(stopCtx) // requests in flight get their error
		up.Stop(stopCtx)      // its fetches and marks are refused now
		st.Close()            // no checkpoint: the store writes nothing more
		return st.FailErr()
	case <-ctx.Done():
	}

	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.drainTimeout)
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
	httpCtx, httpCancel := context.WithTimeout(drainCtx, cfg.drainTimeout/2)
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
	if serveErr != nil {
		errs = append(errs, serveErr)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("collector stopped", "backlog", st.Backlog())
	return nil
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// drainWait is how long a drain may take by default.
const drainWait = 10 * time.Second

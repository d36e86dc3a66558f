package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"edgecollector/collector/server"
	"edgecollector/collector/sink"
	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
)

type config struct {
	addr           string
	sink           string
	webhookURL     string
	webhookTimeout time.Duration
	nats           sink.NATSOptions
	flakyEvery     int
	drainTimeout   time.Duration
	logFormat      string
	version        bool

	store    store.Options
	uploader uploader.Options
	server   server.Config
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: collector [serve] [flags]
       collector query|stats|check|mcp -db FILE ...   (read-only diagnostics; -h for each)

Accepts telemetry on POST /events, commits it durably to a SQLite file,
and ships the backlog to a sink.

Flags:
`)
		fs.PrintDefaults()
	}
	var mode string
	fs.StringVar(&c.store.Path, "db", "events.db", "SQLite database `file` (created if missing)")
	fs.StringVar(&c.addr, "addr", ":8080", "HTTP listen `address`")
	fs.StringVar(&mode, "mode", string(store.Group), "write mode: group | serialized | concurrent")
	fs.BoolVar(&c.store.Indexed, "indexed", false, "add an index on events(device_id) for per-device queries")
	fs.IntVar(&c.store.MaxConns, "max-conns", store.DefaultMaxConns, "database connection pool ceiling")
	fs.IntVar(&c.store.MaxCommitBytes, "max-commit-bytes", 0, "cap on one transaction's write set, in bytes (0 = none)")
	fs.Int64Var(&c.store.MaxWALBytes, "max-wal-bytes", store.DefaultMaxWALBytes, "bound on the WAL file in normal operation, in bytes; /healthz fails at 4x (a long reader holds it)")
	fs.Int64Var(&c.server.MaxBacklog, "max-backlog", 50000, "answer 503 once this many events wait for upload (0 = unlimited)")
	fs.IntVar(&c.server.MaxPayloadBytes, "max-payload-bytes", server.DefaultMaxPayloadBytes, "largest event payload, in bytes")
	var maxBody int64
	fs.Int64Var(&maxBody, "max-body-bytes", server.DefaultMaxBodyBytes, "largest request body, in bytes")
	fs.IntVar(&c.server.MaxEventsPerRequest, "max-events-per-request", server.DefaultMaxEventsPerRequest, "most events in one request")
	fs.IntVar(&c.server.MaxInFlight, "max-inflight", server.DefaultMaxInFlight, "most POST /events requests served at once; past it, 503")
	var tokenFile, tlsCert, tlsKey string
	fs.StringVar(&tokenFile, "auth-token-file", "", "require \"Authorization: Bearer <token>\" on /events, /stats and /metrics, the token read from this `file`")
	fs.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate `file` (PEM; with -tls-key)")
	fs.StringVar(&tlsKey, "tls-key", "", "the private key `file` for -tls-cert (PEM)")
	fs.DurationVar(&c.uploader.Interval, "upload-interval", uploader.DefaultInterval, "uploader polling `period` while the backlog is under a batch")
	fs.IntVar(&c.uploader.Batch, "upload-batch", uploader.DefaultBatch, "most events per upload cycle")
	fs.DurationVar(&c.uploader.MaxBackoff, "upload-max-backoff", uploader.DefaultMaxBackoff, "longest wait between failing upload cycles")
	fs.DurationVar(&c.uploader.Retention, "retention", uploader.DefaultRetention, "purge uploaded events older than this (0 = keep forever)")
	fs.StringVar(&c.uploader.CollectorID, "collector-id", host, "this collector's identity, sent with every shipped event")
	fs.StringVar(&c.sink, "sink", "log", "where to ship: log (JSON lines on stdout) | webhook | nats (JetStream)")
	fs.StringVar(&c.webhookURL, "webhook-url", "", "webhook `URL` (required with -sink webhook)")
	fs.DurationVar(&c.webhookTimeout, "webhook-timeout", sink.DefaultWebhookTimeout, "timeout of one webhook delivery")
	fs.StringVar(&c.nats.URL, "nats-url", nats.DefaultURL, "NATS server `URL`s, comma-separated (with -sink nats)")
	fs.StringVar(&c.nats.Subject, "nats-subject", sink.DefaultNATSSubject, "subject `template` per event; {device_id}, {kind}, {collector_id} stand for whole tokens")
	fs.StringVar(&c.nats.Stream, "nats-stream", sink.DefaultNATSStream, "JetStream `stream` capturing the subjects; created if missing")
	fs.IntVar(&c.flakyEvery, "flaky-every", 0, "make every Nth upload fail, to demonstrate backoff and backpressure (0 = off)")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", drainWait, "on shutdown, how long to finish requests and ship the backlog")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format on stderr: text | json")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return c, err
		}
		return c, usageError{err}
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))}
	}
	c.server.MaxBodyBytes = maxBody
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["upload-max-backoff"] && c.uploader.Interval > c.uploader.MaxBackoff {
		c.uploader.MaxBackoff = c.uploader.Interval // a long interval raises the default cap with it
	}
	if c.version {
		return c, nil
	}

	bad := func(flag, format string, args ...any) (config, error) {
		return c, usageError{fmt.Errorf("-%s: %s", flag, fmt.Sprintf(format, args...))}
	}
	var err error
	if c.store.Mode, err = store.ParseMode(mode); err != nil {
		return bad("mode", "%v", err)
	}
	switch {
	case c.store.Path == "":
		return bad("db", "must name a file")
	case c.store.MaxConns < 1:
		return bad("max-conns", "must be at least 1, not %d", c.store.MaxConns)
	case c.store.MaxCommitBytes < 0:
		return bad("max-commit-bytes", "must not be negative")
	case c.store.MaxCommitBytes > 0 && c.store.MaxCommitBytes < 256:
		return bad("max-commit-bytes", "%d is too small to hold one event; use 0 or at least 256", c.store.MaxCommitBytes)
	case c.store.MaxWALBytes < 1<<20:
		return bad("max-wal-bytes", "must be at least 1048576 (1 MiB), not %d", c.store.MaxWALBytes)
	case c.server.MaxBacklog < 0:
		return bad("max-backlog", "must not be negative")
	case c.server.MaxPayloadBytes < 1:
		return bad("max-payload-bytes", "must be at least 1")
	case c.server.MaxBodyBytes < 64:
		return bad("max-body-bytes", "must be at least 64")
	case c.server.MaxEventsPerRequest < 1:
		return bad("max-events-per-request", "must be at least 1")
	case c.server.MaxInFlight < 1:
		return bad("max-inflight", "must be at least 1")
	case (tlsCert == "") != (tlsKey == ""):
		return bad("tls-cert", "-tls-cert and -tls-key go together")
	case c.uploader.Interval <= 0:
		return bad("upload-interval", "must be positive, not %s", c.uploader.Interval)
	case c.uploader.Batch < 1:
		return bad("upload-batch", "must be at least 1, not %d", c.uploader.Batch)
	case c.uploader.MaxBackoff < c.uploader.Interval:
		return bad("upload-max-backoff", "must be at least -upload-interval (%s)", c.uploader.Interval)
	case c.uploader.Retention < 0:
		return bad("retention", "must not be negative")
	case c.uploader.CollectorID == "":
		return bad("collector-id", "must not be empty (the host name is unknown)")
	case c.webhookTimeout <= 0:
		return bad("webhook-timeout", "must be positive")
	case c.flakyEvery < 0:
		return bad("flaky-every", "must not be negative")
	case c.drainTimeout <= 0:
		return bad("drain-timeout", "must be positive")
	case c.logFormat != "text" && c.logFormat != "json":
		return bad("log-format", "want text or json, not %q", c.logFormat)
	}
	switch c.sink {
	case "log":
		if c.webhookURL != "" {
			return bad("webhook-url", "given, but -sink is log (add -sink webhook)")
		}
	case "webhook":
		u, err := url.Parse(c.webhookURL)
		if c.webhookURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("webhook-url", "want an http(s) URL with -sink webhook, got %q", c.webhookURL)
		}
	case "nats":
		if c.webhookURL != "" {
			return bad("webhook-url", "given, but -sink is nats")
		}
		if c.nats.URL == "" {
			return bad("nats-url", "must name a server with -sink nats")
		}
		if _, err := sink.ParseSubject(c.nats.Subject); err != nil {
			return bad("nats-subject", "%q: %v", c.nats.Subject, err)
		}
		if c.nats.Stream == "" || strings.ContainsAny(c.nats.Stream, " \t\r\n.*>/\\") {
			return bad("nats-stream", "%q is not a valid stream name (no white space, '.', '*', '>', '/' or '\\')", c.nats.Stream)
		}
	default:
		return bad("sink", "want log, webhook or nats, not %q", c.sink)
	}
	if c.sink != "nats" {
		for _, f := range []string{"nats-url", "nats-subject", "nats-stream"} {
			if set[f] {
				return bad(f, "given, but -sink is %s (add -sink nats)", c.sink)
			}
		}
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return bad("auth-token-file", "%v", err)
		}
		if c.server.AuthToken = strings.TrimSpace(string(b)); c.server.AuthToken == "" {
			return bad("auth-token-file", "%s is empty", tokenFile)
		}
	}
	if tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
		if err != nil {
			return bad("tls-cert", "%v", err)
		}
		c.server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if c.uploader.Retention == 0 {
		c.uploader.Retention = -1 // uploader: negative means keep forever
	}
	// Any single event must fit one commit, or it could never be checkpointed.
	c.server.MaxEventBytes = c.store.MaxCommitBytes
	return c, nil
}

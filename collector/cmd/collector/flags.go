package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
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
	collectorID    string
	webhookURL     string
	webhookTimeout time.Duration
	webhookGzip    bool
	nats           sink.NATSOptions
	flakyEvery     int
	drainTimeout   time.Duration
	logFormat      string
	version        bool
	tokenFile      string
	tlsCert        string
	tlsKey         string
	pprofAddr      string
	pprofRemote    bool

	store    store.Options
	uploader uploader.Options
	server   server.Config

	// given holds the flags set on the command line or in the environment;
	// fromEnv maps those taken from the environment to their variable.
	given   map[string]bool
	fromEnv map[string]string
}

// A flagRow is one flag: its name, where its value goes and its default,
// its help (with the unit), and the check its value must pass (nil: any
// value that parses). A check may look at other flags: the table is in the
// order the checks run.
type flagRow struct {
	name  string
	bind  binder
	usage string
	check func() error
}

// flagTable is every flag of the collector. Each is also read from the
// environment (envName) unless flagOnly says otherwise.
func (c *config) flagTable() []flagRow {
	host, _ := os.Hostname()
	return []flagRow{
		{"db", val(&c.store.Path, "events.db"), "SQLite database `file` (created if missing)", nonEmpty(&c.store.Path, "must name a file")},
		{"addr", val(&c.addr, ":8080"), "HTTP listen `address`", nil},
		{"mode", val((*string)(&c.store.Mode), string(store.Group)), "write mode: group | serialized | concurrent", c.checkMode},
		{"indexed", val(&c.store.Indexed, false), "add an index on events(device_id) for per-device queries", nil},
		{"max-conns", val(&c.store.MaxConns, store.DefaultMaxConns), "database connection pool ceiling", atLeast(&c.store.MaxConns, 1)},
		{"max-commit-bytes", val(&c.store.MaxCommitBytes, 0), "cap on one transaction's write set, in bytes (0 = none, else at least 256)", c.checkCommitCap},
		{"max-wal-bytes", val(&c.store.MaxWALBytes, int64(store.DefaultMaxWALBytes)), "bound on the WAL file in normal operation, in bytes (at least 1 MiB); /healthz fails at 4x while a reader holds it", atLeast(&c.store.MaxWALBytes, 1<<20)},
		{"max-backlog", val(&c.server.MaxBacklog, 50000), "answer 503 once this many events wait for upload (0 = unlimited)", notNegative(&c.server.MaxBacklog)},
		{"max-payload-bytes", val(&c.server.MaxPayloadBytes, server.DefaultMaxPayloadBytes), "largest event payload, in bytes", atLeast(&c.server.MaxPayloadBytes, 1)},
		{"max-body-bytes", val(&c.server.MaxBodyBytes, server.DefaultMaxBodyBytes), "largest request body, in bytes", atLeast(&c.server.MaxBodyBytes, 64)},
		{"max-events-per-request", val(&c.server.MaxEventsPerRequest, server.DefaultMaxEventsPerRequest), "most events in one request", atLeast(&c.server.MaxEventsPerRequest, 1)},
		{"max-inflight", val(&c.server.MaxInFlight, server.DefaultMaxInFlight), "most POST /events requests served at once; past it, 503", atLeast(&c.server.MaxInFlight, 1)},
		{"auth-token-file", val(&c.tokenFile, ""), "require \"Authorization: Bearer <token>\" on /events, /stats and /metrics, the token read from this `file`", nil},
		{"tls-cert", val(&c.tlsCert, ""), "serve HTTPS with this certificate `file` (PEM; with -tls-key)", c.checkTLSPair},
		{"tls-key", val(&c.tlsKey, ""), "the private key `file` for -tls-cert (PEM)", nil},
		{"upload-interval", val(&c.uploader.Interval, uploader.DefaultInterval), "uploader polling `period` while the backlog is under a batch", positive(&c.uploader.Interval)},
		{"upload-batch", val(&c.uploader.Batch, uploader.DefaultBatch), "most events per upload batch", atLeast(&c.uploader.Batch, 1)},
		{"upload-inflight", val(&c.uploader.InFlight, uploader.DefaultInFlight), "most upload batches in flight at once (1 = strict order: a batch goes out once the one before was answered)", atLeast(&c.uploader.InFlight, 1)},
		{"upload-max-backoff", val(&c.uploader.MaxBackoff, uploader.DefaultMaxBackoff), "longest wait between failing upload cycles (raised to -upload-interval if that is longer)", c.checkMaxBackoff},
		{"retention", val(&c.uploader.Retention, uploader.DefaultRetention), "purge uploaded events older than this `duration` (0 = keep forever)", notNegative(&c.uploader.Retention)},
		{"collector-id", val(&c.collectorID, host), "this collector's identity, sent with every shipped event", nonEmpty(&c.collectorID, "must not be empty (the host name is unknown)")},
		{"sink", val(&c.sink, "log"), "where to ship: log (JSON lines on stdout) | webhook | nats (JetStream)", oneOf(&c.sink, "log", "webhook", "nats")},
		{"webhook-url", val(&c.webhookURL, ""), "webhook `URL` (required with -sink webhook)", c.checkWebhookURL},
		{"webhook-timeout", val(&c.webhookTimeout, sink.DefaultWebhookTimeout), "timeout of one webhook delivery", positive(&c.webhookTimeout)},
		{"webhook-gzip", val(&c.webhookGzip, false), "compress webhook bodies with gzip (Content-Encoding: gzip)", c.webhookOnly("webhook-gzip")},
		{"nats-url", val(&c.nats.URL, nats.DefaultURL), "NATS server `URL`s, comma-separated (with -sink nats)", c.natsOnly("nats-url", nonEmpty(&c.nats.URL, "must name a server with -sink nats"))},
		{"nats-subject", val(&c.nats.Subject, sink.DefaultNATSSubject), "subject `template` per event; {device_id}, {kind}, {collector_id} stand for whole tokens", c.natsOnly("nats-subject", c.checkSubject)},
		{"nats-stream", val(&c.nats.Stream, sink.DefaultNATSStream), "JetStream `stream` capturing the subjects; created if missing", c.natsOnly("nats-stream", c.checkStream)},
		{"flaky-every", val(&c.flakyEvery, 0), "make every Nth upload fail, to demonstrate backoff and backpressure (0 = off)", notNegative(&c.flakyEvery)},
		{"drain-timeout", val(&c.drainTimeout, drainWait), "on shutdown, how long to finish requests and ship the backlog", positive(&c.drainTimeout)},
		{"log-format", val(&c.logFormat, "text"), "log format on stderr: text | json", oneOf(&c.logFormat, "text", "json")},
		{"pprof-addr", val(&c.pprofAddr, ""), "serve Go's runtime profiles (/debug/pprof/) on this `address`, unauthenticated; loopback only unless -pprof-allow-remote (empty = off)", c.checkPprofAddr},
		{"pprof-allow-remote", val(&c.pprofRemote, false), "let -pprof-addr listen beyond loopback (anyone who reaches it can profile the collector)", nil},
		{"version", val(&c.version, false), "print the version and exit (a flag only, never read from the environment)", nil},
	}
}

// flagOnly is the flags the environment does not set: -version is an action,
// and a variable left in a container's environment must not turn the
// service into a one-shot.
var flagOnly = map[string]bool{"version": true}

// envName is the environment variable of a flag: COLLECTOR_ and the name in
// upper case, dashes as underscores (-max-backlog: COLLECTOR_MAX_BACKLOG).
func envName(flag string) string {
	return "COLLECTOR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

const usageHead = `Usage: collector [serve] [flags]
       collector query|stats|check|mcp -db FILE ...   (read-only diagnostics; -h for each)

Accepts telemetry on POST /events, commits it durably to a SQLite file,
and ships the backlog to a sink.

Every flag but -version may also be set in the environment as COLLECTOR_<NAME>
(upper case, dashes as underscores: COLLECTOR_MAX_BACKLOG=1000); a flag on the
command line wins, and an empty variable counts as unset.

Flags:
`

// parseFlags reads the serve flags from args, then from the environment
// (lookupEnv, os.LookupEnv in main) for those args leave unset, checks
// every value, and loads the files they name.
func parseFlags(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (config, error) {
	c := config{given: map[string]bool{}, fromEnv: map[string]string{}}
	rows := c.flagTable()
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	for _, r := range rows {
		r.bind(fs, r.name, r.usage)
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return c, err
		}
		return c, usageError{err}
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))}
	}
	if c.version {
		return c, nil
	}
	fs.Visit(func(f *flag.Flag) { c.given[f.Name] = true })
	for _, r := range rows {
		v, ok := lookupEnv(envName(r.name))
		if !ok || v == "" || c.given[r.name] || flagOnly[r.name] {
			continue
		}
		if err := fs.Set(r.name, v); err != nil {
			return c, usageError{fmt.Errorf("invalid value %q in %s for flag -%s: %v", v, envName(r.name), r.name, err)}
		}
		c.given[r.name], c.fromEnv[r.name] = true, envName(r.name)
	}
	if !c.given["upload-max-backoff"] && c.uploader.Interval > c.uploader.MaxBackoff {
		c.uploader.MaxBackoff = c.uploader.Interval // a long interval raises the default cap with it
	}
	for _, r := range rows {
		if r.check == nil {
			continue
		}
		if err := r.check(); err != nil {
			return c, c.bad(r.name, err)
		}
	}
	return c, c.load()
}

// bad is a usage error naming the flag, and the variable it came from.
func (c *config) bad(flag string, err error) error {
	if v, ok := c.fromEnv[flag]; ok {
		return usageError{fmt.Errorf("%s (-%s): %w", v, flag, err)}
	}
	return usageError{fmt.Errorf("-%s: %w", flag, err)}
}

// load reads the files the flags name and fills what follows from them.
func (c *config) load() error {
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return c.bad("auth-token-file", err)
		}
		if c.server.AuthToken = strings.TrimSpace(string(b)); c.server.AuthToken == "" {
			return c.bad("auth-token-file", fmt.Errorf("%s is empty", c.tokenFile))
		}
	}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return c.bad("tls-cert", err)
		}
		c.server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// Any single event must fit one commit, or it could never be checkpointed.
	c.server.MaxEventBytes = c.store.MaxCommitBytes
	return nil
}

func (c *config) checkMode() (err error) {
	c.store.Mode, err = store.ParseMode(string(c.store.Mode))
	return err
}

func (c *config) checkCommitCap() error {
	switch n := c.store.MaxCommitBytes; {
	case n < 0:
		return errors.New("must not be negative")
	case n > 0 && n < 256:
		return fmt.Errorf("%d is too small to hold one event; use 0 or at least 256", n)
	}
	return nil
}

func (c *config) checkTLSPair() error {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	return nil
}

func (c *config) checkMaxBackoff() error {
	if c.uploader.MaxBackoff < c.uploader.Interval {
		return fmt.Errorf("must be at least -upload-interval (%s)", c.uploader.Interval)
	}
	return nil
}

// checkPprofAddr keeps the unauthenticated profiler on loopback: a host
// that is not a loopback IP or "localhost" (an empty host is every
// interface) needs -pprof-allow-remote.
func (c *config) checkPprofAddr() error {
	if c.pprofAddr == "" {
		if c.pprofRemote {
			return errors.New("-pprof-allow-remote given without -pprof-addr")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(c.pprofAddr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q: %v", c.pprofAddr, err)
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) || c.pprofRemote {
		return nil
	}
	where := fmt.Sprintf("host %q is not loopback", host)
	if host == "" {
		where = fmt.Sprintf("%q listens on every interface", c.pprofAddr)
	}
	return fmt.Errorf("%s: the profiler has no authentication; use 127.0.0.1:PORT, or add -pprof-allow-remote", where)
}

func (c *config) checkWebhookURL() error {
	if c.sink == "webhook" {
		u, err := url.Parse(c.webhookURL)
		if c.webhookURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("want an http(s) URL with -sink webhook, got %q", c.webhookURL)
		}
	} else if c.webhookURL != "" {
		return fmt.Errorf("given, but -sink is %s (add -sink webhook)", c.sink)
	}
	return nil
}

// webhookOnly refuses a flag of the webhook sink given with another sink:
// it would do nothing, and the operator believes it does.
func (c *config) webhookOnly(name string) func() error {
	return func() error {
		if c.sink != "webhook" && c.given[name] {
			return fmt.Errorf("given, but -sink is %s (add -sink webhook)", c.sink)
		}
		return nil
	}
}

// natsOnly checks a flag of the NATS sink: with -sink nats, by check;
// otherwise it must not be given.
func (c *config) natsOnly(name string, check func() error) func() error {
	return func() error {
		if c.sink == "nats" {
			return check()
		}
		if c.given[name] {
			return fmt.Errorf("given, but -sink is %s (add -sink nats)", c.sink)
		}
		return nil
	}
}

func (c *config) checkSubject() error {
	if err := sink.CheckSubject(c.nats.Subject); err != nil {
		return fmt.Errorf("%q: %w", c.nats.Subject, err)
	}
	return nil
}

func (c *config) checkStream() error {
	if c.nats.Stream == "" || strings.ContainsAny(c.nats.Stream, " \t\r\n.*>/\\") {
		return fmt.Errorf("%q is not a valid stream name (no white space, '.', '*', '>', '/' or '\\')", c.nats.Stream)
	}
	return nil
}

// A binder registers a flag that writes into one config field, with its
// default.
type binder func(fs *flag.FlagSet, name, usage string)

func val[T string | int | int64 | bool | time.Duration](p *T, def T) binder {
	return func(fs *flag.FlagSet, name, usage string) {
		switch p := any(p).(type) {
		case *string:
			fs.StringVar(p, name, any(def).(string), usage)
		case *int:
			fs.IntVar(p, name, any(def).(int), usage)
		case *int64:
			fs.Int64Var(p, name, any(def).(int64), usage)
		case *bool:
			fs.BoolVar(p, name, any(def).(bool), usage)
		case *time.Duration:
			fs.DurationVar(p, name, any(def).(time.Duration), usage)
		}
	}
}

func nonEmpty(p *string, msg string) func() error {
	return func() error {
		if *p == "" {
			return errors.New(msg)
		}
		return nil
	}
}

func atLeast[T int | int64](p *T, min T) func() error {
	return func() error {
		if *p < min {
			return fmt.Errorf("must be at least %d, not %d", min, *p)
		}
		return nil
	}
}

func notNegative[T int | int64 | time.Duration](p *T) func() error {
	return func() error {
		if *p < 0 {
			return fmt.Errorf("must not be negative, not %v", *p)
		}
		return nil
	}
}

func positive(p *time.Duration) func() error {
	return func() error {
		if *p <= 0 {
			return fmt.Errorf("must be positive, not %s", *p)
		}
		return nil
	}
}

func oneOf(p *string, choices ...string) func() error {
	return func() error {
		for _, c := range choices {
			if *p == c {
				return nil
			}
		}
		last := len(choices) - 1
		return fmt.Errorf("want %s or %s, not %q", strings.Join(choices[:last], ", "), choices[last], *p)
	}
}

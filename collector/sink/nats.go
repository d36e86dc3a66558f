package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"edgecollector/collector"
)

// Defaults for NATSOptions fields left zero.
const (
	DefaultNATSSubject    = "telemetry.{device_id}"
	DefaultNATSStream     = "TELEMETRY"
	defaultNATSAckTimeout = 5 * time.Second
	// DefaultNATSMaxPending bounds the publishes awaiting their ack; past it
	// a publish waits for a slot (up to the ack timeout).
	defaultNATSMaxPending = 1024
)

// CollectorIDHeader carries the collector's identity on every message, beside
// the collector_id field of the body.
const CollectorIDHeader = "Collector-Id"

// NATSOptions configure a NATS JetStream sink.
type NATSOptions struct {
	URL string
	// CollectorID is the collector's identity: in every body, in the
	// Collector-Id header and in each message id.
	CollectorID string
	// Subject is the subject template. {device_id}, {kind} and
	// {collector_id} stand for whole tokens and are replaced by the event's
	// values, sanitised into valid subject tokens (subjectToken).
	Subject string
	// Stream is the JetStream stream that must capture the subjects. It is
	// created when missing; an existing one must cover them.
	Stream string
	// AckTimeout bounds the wait for one publish ack.
	AckTimeout time.Duration
	// MaxPending bounds the publishes in flight.
	MaxPending int
	// Replicas of the stream when this sink creates it (0: 1).
	Replicas int
	// Name is the connection's name as the server shows it.
	Name   string
	Logger *slog.Logger
}

func (o NATSOptions) withDefaults() NATSOptions {
	o.Subject = cmpOr(o.Subject, DefaultNATSSubject)
	o.Stream = cmpOr(o.Stream, DefaultNATSStream)
	if o.AckTimeout <= 0 {
		o.AckTimeout = defaultNATSAckTimeout
	}
	if o.MaxPending <= 0 {
		o.MaxPending = defaultNATSMaxPending
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// NATS publishes each event as one JetStream message on a per-event subject,
// with the message id "<collector id>:<event id>" (Nats-Msg-Id), so the
// stream's duplicate window drops an event shipped again after a crash
// between ship and mark: at-least-once from the buffer becomes
// effectively-once in the stream, as long as the re-ship comes within the
// window. The body is the event's shipped JSON, byte for byte what the
// webhook sends for it inside its array.
//
// A batch is published asynchronously and every ack awaited; the receipt
// answers event by event, so only acknowledged events are marked uploaded.
type NATS struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject subjectTemplate
	opts    NATSOptions

	published, acked, duplicates, failed, rejected atomic.Int64
}

// NATSStats are the sink's counters since start, shown under uploader.sink
// in /stats.
type NATSStats struct {
	Connected  bool  `json:"connected"`
	Published  int64 `json:"published"`
	Acked      int64 `json:"acked"`
	Duplicates int64 `json:"duplicates"` // acked as duplicates: dropped by the stream's window
	Failed     int64 `json:"failed"`     // no ack (retried later)
	Rejected   int64 `json:"rejected"`   // refused for good
}

// DialNATS connects to the server, then creates the stream or checks that
// the existing one captures the subjects. It fails with a message that says
// what is wrong: the server unreachable, JetStream disabled, the stream not
// covering the subjects.
func DialNATS(ctx context.Context, o NATSOptions) (*NATS, error) {
	o = o.withDefaults()
	tmpl, err := parseSubject(o.Subject)
	if err != nil {
		return nil, fmt.Errorf("nats sink: subject %q: %w", o.Subject, err)
	}
	log := o.Logger
	nc, err := nats.Connect(o.URL,
		nats.Name(o.Name),
		// Once started, a lost server is retried for ever: the buffer holds
		// the backlog meanwhile and /healthz says why nothing is shipped.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats: reconnected", "url", c.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats sink: connect to %s: %w", redact(o.URL), err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(o.AckTimeout),
		jetstream.WithPublishAsyncMaxPending(o.MaxPending),
		jetstream.WithDefaultTimeout(o.AckTimeout),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats sink: %w", err)
	}
	n := &NATS{nc: nc, js: js, subject: tmpl, opts: o}
	if err := n.ensureStream(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats sink: %w", err)
	}
	return n, nil
}

// ensureStream creates the stream when it is missing, or checks that it
// captures every subject the template can produce.
func (n *NATS) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.AckTimeout)
	defer cancel()
	want := n.subject.wildcard()
	s, err := n.js.Stream(ctx, n.opts.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		cfg := jetstream.StreamConfig{
			Name:     n.opts.Stream,
			Subjects: []string{want},
			Storage:  jetstream.FileStorage,
			Replicas: n.opts.Replicas,
			// Duplicates left to the server's default (2 minutes).
		}
		s, err = n.js.CreateStream(ctx, cfg)
		if err != nil {
			return fmt.Errorf("create stream %s for %s: %w", n.opts.Stream, want, explainJS(err))
		}
		n.opts.Logger.Info("nats: stream created", "stream", n.opts.Stream, "subjects", want,
			"duplicate_window", s.CachedInfo().Config.Duplicates)
		return nil
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", n.opts.Stream, explainJS(err))
	}
	cfg := s.CachedInfo().Config
	if !covers(cfg.Subjects, want) {
		return fmt.Errorf("stream %s captures %q, not the sink's subjects %s: add them to the stream or change -nats-subject",
			n.opts.Stream, cfg.Subjects, want)
	}
	if cfg.Sealed {
		return fmt.Errorf("stream %s is sealed: it takes no messages", n.opts.Stream)
	}
	if cfg.Duplicates <= 0 {
		return fmt.Errorf("stream %s has no duplicate window: re-shipped events would be stored twice", n.opts.Stream)
	}
	n.opts.Logger.Info("nats: stream found", "stream", n.opts.Stream, "subjects", cfg.Subjects,
		"duplicate_window", cfg.Duplicates)
	return nil
}

// explainJS turns the JetStream errors a misconfigured server gives into
// ones that say what to fix.
func explainJS(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("JetStream is not enabled on the server (start nats-server with -js): %w", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("no answer from JetStream: %w", err)
	}
	return err
}

// Close closes the connection. Call it after the uploader has stopped.
func (n *NATS) Close() { n.nc.Close() }

// Stats reports the sink's counters.
func (n *NATS) Stats() any {
	return NATSStats{
		Connected:  n.nc.IsConnected(),
		Published:  n.published.Load(),
		Acked:      n.acked.Load(),
		Duplicates: n.duplicates.Load(),
		Failed:     n.failed.Load(),
		Rejected:   n.rejected.Load(),
	}
}

// msgID is the message id of an event: unique across a fleet as long as
// collector ids are.
func msgID(collectorID string, eventID int64) string {
	return collectorID + ":" + strconv.FormatInt(eventID, 10)
}

func (n *NATS) Ship(ctx context.Context, events []collector.Event) (collector.Receipt, error) {
	if !n.nc.IsConnected() {
		// Fail fast: the client would buffer the publishes and time out.
		return collector.Receipt{}, fmt.Errorf("nats: not connected to %s (%s)", redact(n.opts.URL), n.nc.Status())
	}
	id := n.opts.CollectorID
	type sent struct {
		i   int // the event's index in the batch
		paf jetstream.PubAckFuture
	}
	pending := make([]sent, 0, len(events))
	r := collector.Receipt{Fates: make([]collector.Fate, len(events))}
	var kept error // why the kept events were not taken
	refuse := func(i int, err error) {
		n.rejected.Add(1)
		r.Fates[i] = collector.Refused
		if r.Refusal == nil {
			r.Refusal = fmt.Errorf("nats: event %d: %w: %w", events[i].ID, err, collector.ErrRejected)
		}
	}
	for i, e := range events {
		m := nats.NewMsg(n.subject.expand(id, e))
		m.Data = appendShipped(nil, id, e)
		m.Header.Set(CollectorIDHeader, id)
		paf, err := n.js.PublishMsgAsync(m,
			jetstream.WithMsgID(msgID(id, e.ID)),
			jetstream.WithExpectStream(n.opts.Stream),
			jetstream.WithStallWait(n.opts.AckTimeout))
		if err != nil {
			if permanent(err) {
				refuse(i, err)
				continue
			}
			// The connection broke or the pipeline is stalled: what is not
			// published yet stays in the backlog.
			kept = fmt.Errorf("nats: publish: %w", err)
			break
		}
		n.published.Add(1)
		pending = append(pending, sent{i, paf})
	}
	// Wait for every ack: each future resolves, at the latest, after the
	// ack timeout (or at once when the connection drops).
	for j, s := range pending {
		select {
		case ack := <-s.paf.Ok():
			n.acked.Add(1)
			if ack.Duplicate {
				n.duplicates.Add(1)
			}
			r.Fates[s.i] = collector.Taken
		case err := <-s.paf.Err():
			if permanent(err) {
				refuse(s.i, err)
				continue
			}
			n.failed.Add(1)
			if kept == nil {
				kept = fmt.Errorf("nats: event %d not acknowledged: %w", events[s.i].ID, err)
			}
		case <-ctx.Done():
			n.failed.Add(int64(len(pending) - j))
			return r, fmt.Errorf("nats: waiting for acks: %w", ctx.Err())
		}
	}
	return r, kept
}

// permanent reports whether the server or client will never take this
// message as it is: larger than the server's or the stream's limit.
func permanent(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum {
		return true
	}
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}

// redact hides the credentials of the server URLs in urls (comma-separated),
// which end up in logs, /healthz and audit rows.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// Subject templates.

// subjectTemplate is a subject split into tokens, some of them placeholders.
type subjectTemplate []string

var placeholders = []string{"{device_id}", "{kind}", "{collector_id}"}

// CheckSubject reports what is wrong with a subject template (nil when
// nothing is), as DialNATS would, so a command can refuse it at start.
func CheckSubject(template string) error {
	_, err := parseSubject(template)
	return err
}

// parseSubject checks a subject template: literal tokens must be valid in a
// published subject (no wildcards, no white space, none empty), and a
// placeholder must be a whole token.
func parseSubject(s string) (subjectTemplate, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	toks := strings.Split(s, ".")
	for _, t := range toks {
		switch {
		case t == "":
			return nil, errors.New("empty token (a leading, trailing or doubled '.')")
		case isPlaceholder(t):
		case strings.ContainsAny(t, "{}"):
			return nil, fmt.Errorf("token %q: a placeholder ({device_id}, {kind}, {collector_id}) must be a whole token", t)
		case subjectToken(t) != t:
			return nil, fmt.Errorf("token %q: only letters, digits, '-' and '_' are allowed", t)
		}
	}
	return subjectTemplate(toks), nil
}

func isPlaceholder(t string) bool {
	for _, p := range placeholders {
		if t == p {
			return true
		}
	}
	return false
}

// wildcard is the subject filter the stream needs: each placeholder a '*'.
func (t subjectTemplate) wildcard() string {
	out := make([]string, len(t))
	for i, tok := range t {
		out[i] = tok
		if isPlaceholder(tok) {
			out[i] = "*"
		}
	}
	return strings.Join(out, ".")
}

func (t subjectTemplate) expand(collectorID string, e collector.Event) string {
	var b strings.Builder
	for i, tok := range t {
		if i > 0 {
			b.WriteByte('.')
		}
		switch tok {
		case "{device_id}":
			b.WriteString(subjectToken(e.DeviceID))
		case "{kind}":
			b.WriteString(subjectToken(e.Kind))
		case "{collector_id}":
			b.WriteString(subjectToken(collectorID))
		default:
			b.WriteString(tok)
		}
	}
	return b.String()
}

// subjectToken maps s to a valid subject token: every byte other than an
// ASCII letter, digit, '-' or '_' becomes '_' ('.', '*', '>' and white space
// would change the subject's meaning or be refused), and an empty s becomes
// "_". It is not one-to-one: "a.b" and "a_b" share a subject. The body
// carries the exact device id.
func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// covers reports whether the subject filters in have capture every subject
// that matches want (tokens literal or '*').
func covers(have []string, want string) bool {
	w := strings.Split(want, ".")
	for _, h := range have {
		if filterCovers(strings.Split(h, "."), w) {
			return true
		}
	}
	return false
}

func filterCovers(f, w []string) bool {
	for i, ft := range f {
		if ft == ">" {
			return len(w) > i
		}
		if i >= len(w) {
			return false
		}
		if ft != "*" && ft != w[i] {
			return false
		}
	}
	return len(f) == len(w)
}

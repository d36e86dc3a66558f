// Package server is the collector's HTTP front door: POST /events into the
// store, and /healthz, /stats and /metrics for operators.
package server

import (
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"edgecollector/collector"
	"edgecollector/collector/store"
	"edgecollector/collector/uploader"
)

// Timeouts bound how long a client may hold a connection, so a slow or
// stalled client (slow loris) cannot pin the server. Zero fields take the
// defaults.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
	// A request body must arrive at MinBodyRate bytes/s or faster once
	// BodyGrace has passed (the grace covers a slow start); a slower one is
	// cut off with 408. Together with the in-flight slot being taken only
	// once the body is in, a flood of slow bodies cannot hold the slots
	// honest producers need.
	BodyGrace   time.Duration
	MinBodyRate int64
}

// defaultTimeouts are the server's timeouts unless configured.
var defaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second, Idle: 2 * time.Minute,
	BodyGrace: 5 * time.Second, MinBodyRate: 1 << 10}

// DefaultMaxInFlight bounds concurrent POST /events requests.
const DefaultMaxInFlight = 1024

// Config configures a Server.
type Config struct {
	Limits
	// MaxBacklog: POST /events answers 503 once the backlog holds this many
	// events; 0 means no cap.
	MaxBacklog int64
	// RetryAfter is what 503 answers tell producers to wait.
	RetryAfter time.Duration
	// MaxInFlight bounds POST /events requests being served at once; past
	// it, producers get 503 at once instead of piling up.
	MaxInFlight int
	Timeouts    Timeouts
	// AuthToken, when set, is required as "Authorization: Bearer <token>"
	// on /events, /stats and /metrics. /healthz stays open.
	AuthToken string
	// TLS, when set, serves HTTPS with it.
	TLS    *tls.Config
	Logger *slog.Logger
}

// Server serves the collector's HTTP API.
type Server struct {
	store *store.Store
	up    *uploader.Uploader
	cfg   Config
	log   *slog.Logger

	handler  http.Handler
	srv      *http.Server
	inFlight chan struct{} // a slot per POST /events being served
	ln       net.Listener
	errc     chan error
	wg       sync.WaitGroup
}

// New returns a server for st and up; Open starts listening.
func New(st *store.Store, up *uploader.Uploader, cfg Config) *Server {
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = slog.New(newQuietRepeats(cfg.Logger.Handler(), repeatEvery)) // quiet.go
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	t := &cfg.Timeouts
	t.ReadHeader = cmp.Or(t.ReadHeader, defaultTimeouts.ReadHeader)
	t.Read = cmp.Or(t.Read, defaultTimeouts.Read)
	t.Write = cmp.Or(t.Write, defaultTimeouts.Write)
	t.Idle = cmp.Or(t.Idle, defaultTimeouts.Idle)
	t.BodyGrace = cmp.Or(t.BodyGrace, defaultTimeouts.BodyGrace)
	t.MinBodyRate = cmp.Or(t.MinBodyRate, defaultTimeouts.MinBodyRate)
	s := &Server{store: st, up: up, cfg: cfg, log: cfg.Logger, errc: make(chan error, 1),
		inFlight: make(chan struct{}, cfg.MaxInFlight)}
	m := newMetrics(st, up)
	mux := http.NewServeMux()
	mux.Handle("/events", m.instrument("/events", s.auth(http.HandlerFunc(s.handleEvents))))
	mux.Handle("/healthz", m.instrument("/healthz", getOnly(s.handleHealthz)))
	mux.Handle("/stats", m.instrument("/stats", s.auth(getOnly(s.handleStats))))
	mux.Handle("/metrics", m.instrument("/metrics", s.auth(getOnly(m.handler().ServeHTTP))))
	mux.Handle("/", m.instrument("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, s.log, fmt.Errorf("%w: no route %s", errNotFound, clipPath(r.URL.Path)), cfg.RetryAfter)
	})))
	s.handler = mux
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		TLSConfig:         cfg.TLS,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Handler returns the API's handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Open binds addr (so a bind error surfaces here) and serves in the
// background until Shutdown.
func (s *Server) Open(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("serve: %w", err)
		}
	}()
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Err delivers an error if serving stops on its own.
func (s *Server) Err() <-chan error { return s.errc }

// Shutdown stops accepting connections and waits for requests in flight,
// until ctx ends; then it closes whatever connections are left (a client
// that connected and sent nothing, a request still running) and reports
// how it ended.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
		err = fmt.Errorf("connections still open when the shutdown budget ran out were closed: %w", err)
	}
	s.wg.Wait()
	return err
}

type acceptedResponse struct {
	Accepted int     `json:"accepted"`
	IDs      []int64 `json:"ids"`
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, s.log, fmt.Errorf("%w: %s /events (use POST)", errMethod, clip(r.Method, 16)), s.cfg.RetryAfter)
		return
	}
	gzipped, err := checkEncoding(r.Header)
	if err != nil {
		writeError(w, s.log, err, s.cfg.RetryAfter)
		return
	}
	// A declared oversize body is refused before it is read, so before Go
	// answers "100 Continue"; the connection closes rather than drain it.
	if max := s.cfg.MaxBodyBytes; r.ContentLength > max {
		w.Header().Set("Connection", "close")
		writeError(w, s.log, &collector.InputError{Index: -1, Msg: fmt.Sprintf("body over the %d-byte limit", max), Err: collector.ErrTooLarge}, s.cfg.RetryAfter)
		return
	}
	// Refuse before reading the body: a full buffer must cost producers little.
	if max, n := s.cfg.MaxBacklog, s.store.Backlog(); max > 0 && n >= max {
		writeError(w, s.log, fmt.Errorf("%w: %d events waiting for upload (cap %d)", collector.ErrBacklogFull, n, max), s.cfg.RetryAfter)
		return
	}
	sc := getScratch()
	defer putScratch(sc) // after the store has answered: the events are views into sc.body
	body, err := s.readBody(w, r, gzipped, sc)
	if err != nil {
		writeError(w, s.log, err, s.cfg.RetryAfter)
		return
	}
	// The in-flight slot is taken only once the body is in: what it bounds
	// is decoding and committing, which the server paces, not the client.
	select {
	case s.inFlight <- struct{}{}:
		defer func() { <-s.inFlight }()
	default:
		writeError(w, s.log, fmt.Errorf("%w: %d requests in flight", errOverloaded, s.cfg.MaxInFlight), s.cfg.RetryAfter)
		return
	}
	sc.events, err = sc.dec.events(sc.events, body, s.cfg.Limits, time.Now().UnixMilli())
	if err != nil {
		writeError(w, s.log, err, s.cfg.RetryAfter)
		return
	}
	ids, err := s.store.Insert(r.Context(), sc.events)
	if err != nil {
		writeError(w, s.log, err, s.cfg.RetryAfter)
		return
	}
	sc.out = appendAccepted(sc.out[:0], ids)
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	w.Write(sc.out)
}

// jsonContentType is the Content-Type header value of every answer, shared:
// net/http only reads it (Header.Set would make a slice per request).
var jsonContentType = []string{"application/json"}

// checkEncoding accepts a JSON body in UTF-8 (the only charset JSON has,
// RFC 8259), plain or gzip-compressed, and refuses anything else with 415
// rather than misread it. It reports whether the body is gzipped.
func checkEncoding(h http.Header) (gzipped bool, err error) {
	// The usual value is taken as it stands; anything else is parsed.
	if ct := h.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return false, fmt.Errorf("%w: Content-Type %q (want application/json)", errMediaType, clip(ct, 64))
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return false, fmt.Errorf("%w: charset %q (JSON is UTF-8; send charset=utf-8 or none)", errMediaType, clip(cs, 32))
		}
	}
	switch ce := h.Values("Content-Encoding"); {
	case len(ce) == 0:
		return false, nil
	case len(ce) == 1 && strings.EqualFold(strings.TrimSpace(ce[0]), "identity"):
		return false, nil
	case len(ce) == 1 && strings.EqualFold(strings.TrimSpace(ce[0]), "gzip"):
		return true, nil
	default:
		return false, fmt.Errorf("%w: Content-Encoding %q (want gzip, identity or none)", errMediaType, clip(strings.Join(ce, ", "), 64))
	}
}

// readBody reads the request body into sc.body, at most MaxBodyBytes of it
// (after gzip decoding, when gzipped: a small bomb is refused as soon as it
// decodes past the limit), at the minimum body rate.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, gzipped bool, sc *scratch) ([]byte, error) {
	max := s.cfg.MaxBodyBytes
	sc.rr = rateReader{r: http.MaxBytesReader(w, r.Body, max), w: w,
		start: time.Now(), grace: s.cfg.Timeouts.BodyGrace, rate: s.cfg.Timeouts.MinBodyRate, limit: s.cfg.Timeouts.Read}
	var in io.Reader = &sc.rr
	buf := sc.body[:0]
	if gzipped {
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, bodyError(err, max, "gzip")
		}
		defer zr.Close()
		in = io.LimitReader(zr, max+1)
	} else if n := r.ContentLength; n >= 0 && n < maxPrealloc && int64(cap(buf)) <= n {
		buf = make([]byte, 0, n+1) // +1: room to read the EOF
	}
	body, err := readAll(in, buf)
	sc.body = body[:0] // keep what it grew to for the next request
	if err == nil && int64(len(body)) > max {
		err = &http.MaxBytesError{Limit: max}
	}
	if err != nil {
		return nil, bodyError(err, max, map[bool]string{true: "gzip"}[gzipped])
	}
	return body, nil
}

// maxPrealloc bounds what readBody allocates for a body on the word of its
// Content-Length: beyond it, the buffer grows only as bytes arrive, so a
// client that declares a large body and trickles it costs no more memory
// than it has sent (a slow-body flood must not be an allocation flood).
const maxPrealloc = 4 << 10

// readAll is io.ReadAll appending to buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // let append pick the growth
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func bodyError(err error, max int64, encoding string) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		what := "body"
		if encoding != "" {
			what = "body (decoded)"
		}
		return &collector.InputError{Index: -1, Msg: fmt.Sprintf("%s over the %d-byte limit", what, mbe.Limit), Err: collector.ErrTooLarge}
	case errors.Is(err, errSlowBody):
		return fmt.Errorf("%w: %v", errSlowBody, err)
	case encoding != "":
		return &collector.InputError{Index: -1, Msg: fmt.Sprintf("reading %s body: %v", encoding, err), Err: collector.ErrInvalid}
	}
	return &collector.InputError{Index: -1, Msg: fmt.Sprintf("reading body: %v", err), Err: collector.ErrInvalid}
}

// rateReader reads a body no slower than rate bytes/s once grace has
// passed, by moving the connection's read deadline with the bytes received.
type rateReader struct {
	r     io.Reader
	w     http.ResponseWriter // its connection takes the deadlines
	start time.Time
	grace time.Duration
	rate  int64
	limit time.Duration // the server's whole-request read timeout
	n     int64
}

func (rr *rateReader) Read(p []byte) (int, error) {
	allowed := rr.grace + time.Duration(float64(rr.n)/float64(rr.rate)*float64(time.Second))
	deadline := rr.start.Add(min(allowed, rr.limit))
	// An error here means the connection takes no deadlines (a test
	// recorder); the server's read timeout still applies then.
	_ = http.NewResponseController(rr.w).SetReadDeadline(deadline)
	n, err := rr.r.Read(p)
	rr.n += int64(n)
	if err != nil && time.Now().After(deadline) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("%w: %d bytes in %v", errSlowBody, rr.n, time.Since(rr.start).Round(time.Millisecond))
		}
	}
	return n, err
}

type healthResponse struct {
	OK        bool            `json:"ok"`
	Uploader  uploader.Health `json:"uploader"`
	Store     store.Health    `json:"store"`
	Backlog   int64           `json:"backlog"`
	BacklogOK bool            `json:"backlog_ok"`
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	backlog := s.store.Backlog()
	h := healthResponse{
		Uploader:  s.up.Health(),
		Store:     s.store.Health(),
		Backlog:   backlog,
		BacklogOK: s.cfg.MaxBacklog <= 0 || backlog < s.cfg.MaxBacklog,
	}
	h.OK = h.Uploader.Healthy && h.Store.OK && h.BacklogOK
	// /healthz is open to anyone: an error from a sink may name its URL.
	h.Uploader.LastError = collector.RedactURLs(h.Uploader.LastError)
	status := http.StatusOK
	if !h.OK {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

type statsResponse struct {
	Store    store.Stats    `json:"store"`
	Uploader uploader.Stats `json:"uploader"`
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	up := s.up.Stats()
	up.LastError = collector.RedactURLs(up.LastError)
	writeJSON(w, http.StatusOK, statsResponse{Store: s.store.Stats(), Uploader: up})
}

// auth requires the bearer token when one is configured. Tokens are
// compared by their SHA-256 in constant time, so neither content nor length
// leaks through timing. The scheme is case-insensitive (RFC 7235).
func (s *Server) auth(h http.Handler) http.Handler {
	if s.cfg.AuthToken == "" {
		return h
	}
	want := sha256.Sum256([]byte(s.cfg.AuthToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimLeft(token, " ")
		ok := strings.EqualFold(scheme, "Bearer") && token != ""
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="collector"`)
			writeError(w, nil, fmt.Errorf("%w: send Authorization: Bearer <token>", errUnauthorized), 0)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func getOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, nil, fmt.Errorf("%w: %s %s (use GET)", errMethod, clip(r.Method, 16), clipPath(r.URL.Path)), 0)
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// HTTP-only failures; the domain ones are collector's sentinels.
var (
	errMethod    = errors.New("method not allowed")
	errMediaType = errors.New("unsupported media type")
	errNotFound  = errors.New("not found")
	// errUnauthorized: a missing or wrong bearer token.
	errUnauthorized = errors.New("unauthorized")
	// errOverloaded: too many requests in flight.
	errOverloaded = errors.New("overloaded")
	// errSlowBody: a body arrived slower than the minimum body rate.
	errSlowBody = errors.New("body too slow")
)

// clip bounds text from a request that an error message repeats.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// clipPath is a request path as an error message may repeat it: bounded.
func clipPath(p string) string { return clip(p, 64) }

// errorStatus maps an error to its HTTP status: the one place that does.
func errorStatus(err error) int {
	switch {
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errOverloaded):
		return http.StatusServiceUnavailable
	case errors.Is(err, errSlowBody):
		return http.StatusRequestTimeout
	case errors.Is(err, collector.ErrTooLarge), errors.Is(err, collector.ErrCommitTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, collector.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, collector.ErrBacklogFull), errors.Is(err, collector.ErrBusy), errors.Is(err, collector.ErrClosed),
		errors.Is(err, collector.ErrDamaged), errors.Is(err, collector.ErrStorageFailed),
		errors.Is(err, collector.ErrBufferReplaced):
		return http.StatusServiceUnavailable
	case errors.Is(err, collector.ErrDiskFull):
		return http.StatusInsufficientStorage
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 499 // the client went away; nobody reads this
	}
	return http.StatusInternalServerError
}

type errorResponse struct {
	Error string `json:"error"`
	Index *int   `json:"index,omitempty"` // which event of an array
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, log *slog.Logger, err error, retryAfter time.Duration) {
	status := errorStatus(err)
	resp := errorResponse{Error: err.Error()}
	var ie *collector.InputError
	if errors.As(err, &ie) {
		resp.Field = ie.Field
		if ie.Index >= 0 {
			resp.Index = &ie.Index
		}
	}
	if status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retryAfter.Round(time.Second)/time.Second))))
	}
	if status >= 500 && log != nil {
		log.Warn(msgRequestFailed, "status", status, "err", err)
	}
	if status == http.StatusRequestTimeout {
		w.Header().Set("Connection", "close") // the rest of the body is not read
	}
	writeJSON(w, status, resp)
}

package sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"edgecollector/collector"
)

// DefaultWebhookTimeout bounds one delivery attempt.
const DefaultWebhookTimeout = 10 * time.Second

// WebhookOptions configure a webhook sink.
type WebhookOptions struct {
	URL         string
	CollectorID string        // sent with every event, and as X-Collector-Id
	Timeout     time.Duration // of one delivery; DefaultWebhookTimeout when zero
	// Gzip compresses each body (Content-Encoding: gzip): a tenth of the
	// bytes on a slow uplink, for some CPU.
	Gzip bool
	// Client, when set, is the HTTP client to use (its Timeout stands);
	// redirects are never followed whatever its CheckRedirect says.
	Client *http.Client
}

// Webhook POSTs each batch as a JSON array of collector.Shipped. A 2xx
// answer is a delivery; what any other answer means is deliveryError's
// (status.go). Redirects are never followed. It takes or refuses a batch
// whole (Send); Ship bisects a refused batch (Bisect).
type Webhook struct {
	url, id string
	gzip    bool
	client  http.Client
}

// NewWebhook returns a webhook sink.
func NewWebhook(o WebhookOptions) *Webhook {
	w := &Webhook{url: o.URL, id: o.CollectorID, gzip: o.Gzip}
	if o.Client != nil {
		w.client = *o.Client
	} else {
		w.client.Timeout = o.Timeout
		if w.client.Timeout <= 0 {
			w.client.Timeout = DefaultWebhookTimeout
		}
	}
	// A caller's own client must not follow redirects either.
	w.client.CheckRedirect = noRedirects
	return w
}

// noRedirects hands a 3xx back as the answer: following it would re-send
// the batch elsewhere (307, 308) or turn it into a body-less GET (301-303)
// that a receiver answers 200, and the batch would count as delivered.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Ship sends events, bisecting a batch the receiver refuses for its content.
func (w *Webhook) Ship(ctx context.Context, events []collector.Event) (collector.Receipt, error) {
	return Bisect{w}.Ship(ctx, events)
}

// Send POSTs events as one batch: nil once the receiver took it, else
// deliveryError's verdict on its answer.
func (w *Webhook) Send(ctx context.Context, events []collector.Event) error {
	buf := getBuf()
	defer putBuf(buf)
	*buf = appendBatch((*buf)[:0], w.id, events)
	body := *buf
	if w.gzip {
		zbuf := getBuf()
		defer putBuf(zbuf)
		*zbuf = compress((*zbuf)[:0], body)
		body = *zbuf
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if w.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("X-Collector-Id", w.id)
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	// Read a little of the answer for the error message, then drain, so the
	// connection is reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return deliveryError("webhook", resp, snippet, time.Now())
}

// zippers recycles gzip writers: each holds ~800 KiB of state.
var zippers = sync.Pool{New: func() any {
	z, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // a valid level: no error
	return z
}}

// compress appends the gzip of p to b. JSON batches of similar events
// shrink about tenfold at the fastest level.
func compress(b, p []byte) []byte {
	out := bytes.NewBuffer(b)
	z := zippers.Get().(*gzip.Writer)
	defer zippers.Put(z)
	z.Reset(out)
	z.Write(p) // a bytes.Buffer does not fail
	z.Close()
	return out.Bytes()
}

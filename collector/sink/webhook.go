package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"edgecollector/collector"
)

// DefaultWebhookTimeout bounds one delivery attempt.
const DefaultWebhookTimeout = 10 * time.Second

// Webhook POSTs each batch to URL as a JSON array of collector.Shipped.
// A 2xx answer is success; what any other answer means is deliveryError's
// (status.go). Redirects are never followed.
type Webhook struct {
	URL    string
	Client *http.Client
}

// NewWebhook returns a webhook sink with its own client and timeout.
func NewWebhook(url string, timeout time.Duration) *Webhook {
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	return &Webhook{URL: url, Client: &http.Client{Timeout: timeout, CheckRedirect: noRedirects}}
}

// noRedirects hands a 3xx back as the answer: following it would re-send
// the batch elsewhere (307, 308) or turn it into a body-less GET (301-303)
// that a receiver answers 200, and the batch would count as delivered.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (w *Webhook) Ship(ctx context.Context, collectorID string, events []collector.Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(encodeBatch(collectorID, events)))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Collector-Id", collectorID)
	client := *w.Client // a caller's own Client must not follow redirects either
	client.CheckRedirect = noRedirects
	resp, err := client.Do(req)
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

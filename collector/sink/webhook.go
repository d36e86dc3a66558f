package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"edgecollector/collector"
)

// DefaultWebhookTimeout bounds one delivery attempt.
const DefaultWebhookTimeout = 10 * time.Second

// Webhook POSTs each batch to URL as a JSON array of collector.Shipped.
// A 2xx answer is success. 408, 429 and 5xx are retried later; any other
// status means the receiver will never take this batch (ErrRejected).
type Webhook struct {
	URL    string
	Client *http.Client
}

// NewWebhook returns a webhook sink with its own client and timeout.
func NewWebhook(url string, timeout time.Duration) *Webhook {
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	return &Webhook{URL: url, Client: &http.Client{Timeout: timeout}}
}

func (w *Webhook) Ship(ctx context.Context, collectorID string, events []collector.Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(encodeBatch(collectorID, events)))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Collector-Id", collectorID)
	resp, err := w.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	// Read a little of the answer for the error message, then drain, so the
	// connection is reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("webhook: %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
	default:
		return fmt.Errorf("webhook: %s: %s: %w", resp.Status, strings.TrimSpace(string(snippet)), collector.ErrRejected)
	}
}

package sink

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"edgecollector/collector"
)

// What an HTTP receiver's status says about a delivery, in one place: every
// HTTP sink answers through deliveryError, and the uploader acts on the
// sentinel it wraps.
//
//   - 2xx: delivered.
//   - 400, 413, 422: the receiver refuses this content (collector.ErrRejected):
//     the uploader bisects the batch to find the events at fault.
//   - 408, 429, 5xx: not now; retried later. 429 and 503 with Retry-After
//     set the pause (collector.RetryAfterError).
//   - 3xx, and every other 4xx (401, 403, 404, 405, 409, 410, 415, ...): the
//     answer speaks about the endpoint, not about the events: a wrong URL, a
//     redirect, an expired token (collector.ErrEndpoint). The cycle fails and
//     the backlog stays; /healthz shows why. Redirects are never followed:
//     a client that follows a 302 turns the POST into a body-less GET and the
//     batch would be marked delivered although nobody received it.
//
// Unknown 4xx codes fall on the endpoint side on purpose: wrongly taking a
// refusal for the endpoint's keeps the batch (delayed, visible), wrongly
// taking it for the events' drops them.

// contentRefused are the statuses that refuse the content of a request.
var contentRefused = map[int]bool{
	http.StatusBadRequest:            true,
	http.StatusRequestEntityTooLarge: true, // a smaller batch may fit: bisection halves it
	http.StatusUnprocessableEntity:   true,
}

// deliveryError classifies a receiver's answer: nil for a delivery, else an
// error that says what the uploader should do. what names the sink in
// messages ("webhook"); snippet is the start of the answer's body.
func deliveryError(what string, resp *http.Response, snippet []byte, now time.Time) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	msg := fmt.Sprintf("%s: %s", what, resp.Status)
	if s := strings.TrimSpace(string(snippet)); s != "" {
		msg += ": " + s
	}
	switch {
	case code >= 300 && code < 400:
		loc := resp.Header.Get("Location")
		return fmt.Errorf("%s: %w: redirects are never followed (to %q); point the URL at the receiver itself",
			msg, collector.ErrEndpoint, loc)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		err := fmt.Errorf("%s", msg)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
				return &collector.RetryAfterError{After: d, Err: err}
			}
		}
		return err
	case contentRefused[code]:
		return fmt.Errorf("%s: %w", msg, collector.ErrRejected)
	case code >= 400:
		return fmt.Errorf("%s: %w", msg, collector.ErrEndpoint)
	}
	// 1xx as a final answer, or a code outside the classes: not a delivery.
	return fmt.Errorf("%s: unexpected status", msg)
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(365*24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

package store_test

import (
	"testing"
	"time"

	"edgecollector/collector/store"
)

// The wait before a retry stays within 0.5 ms and 150 ms however many
// attempts a store allows: 1 ms << 44 overflowed, and with MaxRetries past
// 43 the retry panicked in rand.N (a handler panic, the connection dropped).
func TestBackoffBoundedForEveryAttempt(t *testing.T) {
	for attempt := 0; attempt <= 1000; attempt++ {
		for range 20 {
			if d := store.Backoff(attempt); d < 500*time.Microsecond || d >= 150*time.Millisecond {
				t.Fatalf("backoff(%d) = %v, want within [0.5ms, 150ms)", attempt, d)
			}
		}
	}
}

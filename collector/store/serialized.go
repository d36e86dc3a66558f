package store

import (
	"context"
	"database/sql"
	"sync"

	"edgecollector/collector"
)

// mutexWriter is the serialized mode: one connection under a Go mutex, one
// transaction per request.
type mutexWriter struct {
	s    *Store
	mu   sync.Mutex
	conn *sql.Conn
}

func (m *mutexWriter) do(ctx context.Context, fn func(*wtx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s.retry(ctx, func() error { return m.s.runTx(ctx, m.conn, fn) })
}

func (m *mutexWriter) insert(ctx context.Context, events []collector.Event, bytes int) ([]int64, error) {
	return insertTx(ctx, m.s, m, events, bytes)
}

func (m *mutexWriter) close() error { return m.conn.Close() }

package store

import (
	"context"

	"edgecollector/collector"
)

// poolWriter is the concurrent mode: a transaction per request on a pooled
// connection, begun IMMEDIATE; the engine's locking arbitrates between them
// and busy errors are retried.
type poolWriter struct{ s *Store }

func (p *poolWriter) do(ctx context.Context, fn func(*wtx) error) error {
	if p.s.fileLost() != nil && p.s.keeper != nil {
		// The pool opens no connection to a replaced file: the uploader's
		// marks go through the keeper's (identity.go).
		k := p.s.keeper
		k.mu.Lock()
		defer k.mu.Unlock()
		return p.s.retry(ctx, func() error { return p.s.runTx(ctx, k.conn, fn) })
	}
	return p.s.retry(ctx, func() error { return p.s.runTx(ctx, p.s.db, fn) })
}

func (p *poolWriter) insert(ctx context.Context, events []collector.Event, bytes int) ([]int64, error) {
	return insertTx(ctx, p.s, p, events, bytes)
}

func (p *poolWriter) close() error { return nil }

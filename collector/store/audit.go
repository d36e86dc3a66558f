package store

import (
	"context"
	"fmt"

	"edgecollector/collector"
)

// maxRunError bounds the error text of an audit row, so the row fits under
// any sensible commit cap.
const maxRunError = 1024

// RecordRun writes the audit row of one uploader cycle on its own (a failed
// cycle; a successful one rides with its Checkpoint).
func (s *Store) RecordRun(ctx context.Context, r collector.UploadRun) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.w.do(ctx, func(t *wtx) error { return insertRun(t.ctx, t, r) }); err != nil {
		return fmt.Errorf("record upload run: %w", err)
	}
	return nil
}

func insertRun(ctx context.Context, t *wtx, r collector.UploadRun) error {
	msg := collector.RedactURLs(r.Error) // a sink's error may name its URL
	if len(msg) > maxRunError {
		msg = msg[:maxRunError]
	}
	var errText any
	if msg != "" {
		errText = msg
	}
	if err := t.charge(len(msg) + 2*rowOverhead); err != nil {
		return err
	}
	if _, err := t.ExecContext(t.ctx,
		`INSERT INTO upload_runs (started_at, finished_at, event_count, first_id, last_id, status, error)
		 VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.StartedAt.UnixMilli(), r.FinishedAt.UnixMilli(), r.EventCount, r.FirstID, r.LastID, r.Status, errText); err != nil {
		return fmt.Errorf("insert audit row: %w", err)
	}
	return nil
}

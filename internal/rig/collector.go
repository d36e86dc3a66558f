package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Collector is one way to run the collector binary: the flags every caller
// sets, and the rest as on a command line.
type Collector struct {
	Bin  string // the binary (Build, Binary)
	Name string // names it in errors; "collector" when empty
	DB   string // -db
	Mode string // -mode; the collector's default when empty
	ID   string // -collector-id; the collector's default when empty
	// Webhook, when set, ships with -sink webhook to this URL (a
	// Receiver's URL, say).
	Webhook string
	Flags   []string // any other flags
}

// Args is the command line Start runs. It listens on 127.0.0.1:0 and logs
// JSON, so the process serves at the address its "collector started" line
// names, which the collector writes only once it has bound its port: no two
// collectors ever contend for one, and a restarted one is found the same way.
func (c Collector) Args() []string {
	args := []string{"-db", c.DB, "-addr", "127.0.0.1:0", "-log-format", "json"}
	if c.Mode != "" {
		args = append(args, "-mode", c.Mode)
	}
	if c.ID != "" {
		args = append(args, "-collector-id", c.ID)
	}
	if c.Webhook != "" {
		args = append(args, "-sink", "webhook", "-webhook-url", c.Webhook)
	}
	return append(args, c.Flags...)
}

// Start runs the collector and waits, at most timeout, until it serves.
func (c Collector) Start(ctx context.Context, timeout time.Duration) (*Process, error) {
	name := c.Name
	if name == "" {
		name = "collector"
	}
	return Start(ctx, c.Bin, c.Args(), Options{Name: name, Timeout: timeout})
}

// apiClient asks a collector for /stats and /healthz. Every answer is
// bounded; a loaded machine (a fleet on two cores) can take seconds.
var apiClient = &http.Client{Timeout: 10 * time.Second}

// Stats is the part of a collector's /stats the rig's users read.
type Stats struct {
	Store struct {
		Backlog int64 `json:"backlog"`
	} `json:"store"`
	Uploader struct {
		Sink struct {
			Duplicates int64 `json:"duplicates"` // re-ships a NATS stream dropped
		} `json:"sink"`
	} `json:"uploader"`
}

// Health is a collector's /healthz answer.
type Health struct {
	OK       bool `json:"ok"`
	Uploader struct {
		Healthy   bool   `json:"healthy"`
		LastError string `json:"last_error"`
	} `json:"uploader"`
	Backlog   int64 `json:"backlog"`
	BacklogOK bool  `json:"backlog_ok"`
}

// Stats reads the process's /stats.
func (p *Process) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	st, err := getJSON(ctx, p.URL("/stats"), &s)
	if err == nil && st != http.StatusOK {
		err = fmt.Errorf("%s /stats: status %d", p.name, st)
	}
	return s, err
}

// Health reads the process's /healthz: its status (200 or 503) and answer.
func (p *Process) Health(ctx context.Context) (int, Health, error) {
	var h Health
	st, err := getJSON(ctx, p.URL("/healthz"), &h)
	return st, h, err
}

// WaitBacklog polls /stats until the backlog is at most n, for at most timeout.
func (p *Process) WaitBacklog(ctx context.Context, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := int64(-1)
	for {
		if s, err := p.Stats(ctx); err == nil {
			last = s.Store.Backlog
			if last <= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backlog still %d after %s (want %d)", last, timeout, n)
		}
		if err := Sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// getJSON fetches url and, when v is not nil, decodes its JSON answer into v.
// It returns the status; an answer it cannot decode is an error.
func getJSON(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %w", url, err)
		}
	}
	return resp.StatusCode, nil
}

// Sleep waits d, or until ctx ends (its error).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package peer

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"edgecollector/internal/rig"
)

// A System is one side of the comparison; its name is the cells' mode.
type System string

const (
	OursGroup      System = "ours-group"      // our collector, -mode group
	OursSerialized System = "ours-serialized" // our collector, -mode serialized
	// OursGroupK1 is our collector in group mode with one upload batch in
	// flight (-upload-inflight 1): the uploader before the pipeline.
	OursGroupK1 System = "ours-group-k1"
	OtelFsync   System = "otel-fsync"   // the peer, file_storage fsync: true
	OtelNoFsync System = "otel-nofsync" // the peer, file_storage fsync: false
)

// Systems are all four, in the order the cells interleave them.
var Systems = []System{OursGroup, OursSerialized, OtelFsync, OtelNoFsync}

func (s System) otel() bool { return s == OtelFsync || s == OtelNoFsync }

// path is where requests go: our /events, or OTLP/HTTP logs.
func (s System) path() string {
	if s.otel() {
		return "/v1/logs"
	}
	return "/events"
}

// instance is how to (re)start one system on one cell's directory: the
// kill check starts it twice on the same state.
type instance struct {
	sys  System
	bin  string
	args []string
	addr string // fixed address (the peer), or "" (ours logs its own)
}

// Peer queue and our collector's settings. Both ship in batches of up to
// 1,000 events, poll every 50 ms when idle, and retry a failed delivery
// within a second; neither refuses for a full buffer within a cell.
const (
	uploadBatch    = 1000
	uploadInterval = 50 * time.Millisecond
	// peerQueueSize is the peer's queue in requests (sizer: requests): the
	// default 1,000 would refuse single-event load within a second of a
	// slow upstream.
	peerQueueSize = 5_000_000
)

func (c *experiment) newInstance(sys System, dir string) (*instance, error) {
	switch sys {
	case OursGroup, OursSerialized, OursGroupK1:
		mode := "group"
		if sys == OursSerialized {
			mode = "serialized"
		}
		ours := rig.Collector{
			Bin: c.Collector, DB: filepath.Join(dir, "events.db"), Mode: mode, ID: "bench", Webhook: c.recv.URL,
			Flags: []string{
				"-max-backlog", "0", // unbounded, as the peer's queue is sized to be
				"-upload-batch", fmt.Sprint(uploadBatch),
				"-upload-interval", uploadInterval.String(),
				"-upload-max-backoff", "1s",
				"-drain-timeout", "2s",
			},
		}
		if sys == OursGroupK1 {
			ours.Flags = append(ours.Flags, "-upload-inflight", "1")
		}
		return &instance{sys: sys, bin: ours.Bin, args: ours.Args()}, nil
	case OtelFsync, OtelNoFsync:
		addr, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("peer port: %w", err)
		}
		cfg := filepath.Join(dir, "otelcol.yaml")
		if err := os.WriteFile(cfg, []byte(peerConfig(addr, c.recv.Base(), filepath.Join(dir, "queue"), sys == OtelFsync)), 0o644); err != nil {
			return nil, err
		}
		return &instance{sys: sys, bin: c.Peer, args: []string{"--config", cfg}, addr: addr}, nil
	}
	return nil, fmt.Errorf("unknown system %q", sys)
}

// start runs the system and waits until it serves: for our collector
// (addr "") its "collector started" log line names the address; for the
// peer, which listens on a port the harness chose, until addr accepts a
// connection. Both its outputs go to the log tail.
func (in *instance) start(ctx context.Context) (*rig.Process, error) {
	p, err := rig.Start(ctx, in.bin, in.args, rig.Options{Name: in.bin, Addr: in.addr, Stdout: true, Timeout: startTimeout})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.sys, err)
	}
	return p, nil
}

// freePort returns a loopback address nothing listens on right now, for
// the peer, whose config needs a port before it starts.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// peerConfig is the peer's configuration: the OTLP/HTTP receiver on addr,
// the otlp_http exporter to upstream in uncompressed JSON (so the receiver
// decodes it without OpenTelemetry code) behind a persistent sending queue
// on file_storage, and no internal metrics server (its :8888 would clash
// between cells and with anything else on the box).
func peerConfig(addr, upstream, queueDir string, fsync bool) string {
	return fmt.Sprintf(`extensions:
  file_storage:
    directory: %[3]s
    create_directory: true
    fsync: %[4]t
receivers:
  otlp:
    protocols:
      http:
        endpoint: %[1]s
exporters:
  otlp_http:
    endpoint: %[2]s
    encoding: json
    compression: none
    retry_on_failure:
      enabled: true
      initial_interval: 50ms
      max_interval: 1s
      max_elapsed_time: 0s
    sending_queue:
      enabled: true
      storage: file_storage
      sizer: requests
      queue_size: %[5]d
      num_consumers: 10
      batch:
        flush_timeout: %[6]s
        sizer: items
        min_size: %[7]d
        max_size: %[7]d
service:
  extensions: [file_storage]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlp_http]
`, addr, upstream, queueDir, fsync, peerQueueSize, uploadInterval, uploadBatch)
}

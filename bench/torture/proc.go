package torture

import (
	"context"
	"time"

	"edgecollector/bench/proc"
)

// process is one collector process started by the harness, with the time
// of its exec: recovery times count from it.
type process struct {
	*proc.Process
	started time.Time
}

// startCollector runs bin with args (which must include -addr 127.0.0.1:0
// and -log-format json) and waits until it logs that it is serving, which it
// does only after binding its port.
func startCollector(ctx context.Context, bin string, args []string, timeout time.Duration) (*process, error) {
	started := time.Now()
	p, err := proc.Start(ctx, bin, args, proc.Options{Name: "collector", Timeout: timeout})
	if err != nil {
		return nil, err
	}
	return &process{Process: p, started: started}, nil
}

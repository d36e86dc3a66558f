// Command bench is the research harness: it runs the experiments that
// measure the collector (its write modes, its promises under crashes and
// outages, a fleet, a peer), writes raw results, regenerates the report from
// committed results, and gates CI on the ratios between modes.
//
//	bench run [flags] [experiment ...]   the experiments of bench/experiments; default: all
//	bench report [-results dir] [-out dir]
//	bench gate [-thresholds file] [flags]
//
// `bench help` lists the commands, `bench <command> -h` their flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"edgecollector/bench/faultfs"
)

// main maps run's error to an exit status. The first interrupt stops a run
// after the cell under way (what was measured stays written); a second one
// kills the harness at once.
func main() {
	// Re-run as a faultfs server (the powercut and storage experiments
	// serve their mounts from a child process): serve, then exit.
	if child, err := faultfs.ChildMain(); child {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { // owned: ends when ctx does, at the first signal or when run returns
		<-ctx.Done()
		stop() // the default action again: a second signal ends the process
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

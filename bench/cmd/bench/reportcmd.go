package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"edgecollector/bench/experiments"
	"edgecollector/bench/reportgen"
)

func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: bench report [-results dir] [-out dir]

Regenerates the report (README.md and plots) from the raw results alone,
deterministically: for each machine, its newest complete full run (or its
newest run). The output directory is replaced.

Flags:
`)
		fs.PrintDefaults()
	}
	resultsDir := fs.String("results", "results", "raw results `directory`")
	out := fs.String("out", "reports", "report `directory` (replaced)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if err := reportgen.Generate(*resultsDir, *out, experiments.Parts()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	fmt.Fprintf(stderr, "bench: wrote %s/README.md\n", *out)
	return nil
}

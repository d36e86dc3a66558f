package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// usageError is a bad command line: exit status 2.
type usageError struct{ error }

const usage = `Usage: bench <command> [flags] [args]

Commands:
  run      run experiments, write results/<machine>/<timestamp>/
  report   regenerate reports/ from the results under results/
  gate     quick interleaved run, check mode ratios against thresholds

Run 'bench <command> -h' for a command's flags.
`

// run dispatches to a subcommand. The first interrupt (ctx) stops a run
// after the cell under way; what was measured so far stays written.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command")}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return runCmd(ctx, rest, stdout, stderr)
	case "report":
		return reportCmd(ctx, rest, stdout, stderr)
	case "gate":
		return gateCmd(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("unknown command %q (want %s)", cmd, strings.Join([]string{"run", "report", "gate"}, ", "))}
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"edgecollector/collector/diag"
	"edgecollector/collector/mcpserver"
)

// diagFlags parses the flags every diagnostic subcommand shares and opens
// the buffer read-only. limit is the default of -timeout.
func diagFlags(name, usage string, limit time.Duration, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*diag.DB, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("collector "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "events.db", "the collector's database `file` (opened read-only)")
	timeout := fs.Duration("timeout", limit, "interrupt a call that runs longer (0 = never): a long read holds back the collector's WAL")
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: collector %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, usageError{err}
	}
	if *timeout < 0 {
		return nil, nil, usageError{fmt.Errorf("-timeout: must not be negative")}
	}
	d, err := diag.Open(context.Background(), *db)
	if err != nil {
		return nil, nil, err
	}
	d.SetTimeLimit(*timeout)
	return d, fs, nil
}

func checkFormat(format string) error {
	if !slices.Contains(diag.Formats, format) {
		return usageError{fmt.Errorf("-format: want %s, not %q", strings.Join(diag.Formats, ", "), format)}
	}
	return nil
}

// runQuery: collector query -db FILE [-format table|json|csv] [-limit N] "SQL"
func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var format string
	var limit int
	d, fs, err := diagFlags("query", `query [-db FILE] [-format table|json|csv] [-limit N] [-timeout D] "SELECT ..."`, diag.DefaultTimeLimit, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "table", "output: table | json | csv")
		fs.IntVar(&limit, "limit", diag.DefaultLimit, "most rows to print")
	})
	if err != nil {
		return err
	}
	defer d.Close()
	if err := checkFormat(format); err != nil {
		return err
	}
	if limit < 1 {
		return usageError{fmt.Errorf("-limit: must be at least 1")}
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("query: want one SQL statement as the argument (quote it), got %d arguments", fs.NArg())}
	}
	res, err := d.Query(ctx, fs.Arg(0), limit)
	if err != nil {
		return err
	}
	return res.Write(stdout, format)
}

// runStats: collector stats -db FILE [-format table|json]
func runStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var format string
	d, _, err := diagFlags("stats", "stats [-db FILE] [-format table|json] [-timeout D]", diag.DefaultTimeLimit, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "table", "output: table | json")
	})
	if err != nil {
		return err
	}
	defer d.Close()
	if format != "table" && format != "json" {
		return usageError{fmt.Errorf("-format: want table or json, not %q", format)}
	}
	st, err := d.Stats(ctx, time.Now())
	if err != nil {
		return err
	}
	return writeStats(stdout, st, format)
}

// writeStats prints st as a table for people or as JSON for tools. Every
// string from the buffer (device ids, statuses, errors) is escaped for a
// terminal (diag.Printable, diag.WriteJSON).
func writeStats(w io.Writer, st *diag.Stats, format string) error {
	if format == "json" {
		return diag.WriteJSON(w, st)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "events in file\t%d\n", st.Events)
	fmt.Fprintf(tw, "backlog\t%d\n", st.Backlog)
	if st.Backlog > 0 {
		fmt.Fprintf(tw, "oldest backlog event\t%s old\n", seconds(st.OldestBacklogAgeS))
	} else {
		fmt.Fprintf(tw, "oldest backlog event\tnone, the backlog is empty\n")
	}
	fmt.Fprintf(tw, "failed uploads, last hour\t%d\n", st.FailedRunsLastHour)
	fmt.Fprintf(tw, "file\t%d bytes (+%d WAL), %d pages of %d bytes, %d free\n",
		st.File.Bytes, st.File.WALBytes, st.File.Pages, st.File.PageSize, st.File.FreePages)
	tw.Flush()
	fmt.Fprintf(w, "\ndevices, most silent first:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "device_id\tevents\tbacklog\tsilent for")
	for _, d := range st.Devices {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", diag.Printable(d.Device), d.Events, d.Backlog, seconds(d.SilentForS))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nrecent upload runs:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tstarted\tevents\tstatus\terror")
	for _, r := range st.RecentRuns {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", r.ID, time.UnixMilli(r.StartedAt).UTC().Format(time.RFC3339), r.EventCount, diag.Printable(r.Status), diag.Printable(r.Error))
	}
	return tw.Flush()
}

// seconds prints a span of s seconds. The file's times are not trusted: a
// span a Duration cannot hold is printed as a number.
func seconds(s float64) string {
	if math.Abs(s) >= math.MaxInt64/float64(time.Second) || math.IsNaN(s) {
		return strconv.FormatFloat(s, 'g', 4, 64) + "s"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// checkTimeLimit is check's default -timeout: it reads the whole file.
const checkTimeLimit = 10 * time.Minute

// runCheck: collector check -db FILE. Exit 1 when the file is not sound.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d, _, err := diagFlags("check", "check [-db FILE] [-timeout D]", checkTimeLimit, args, stderr, nil)
	if err != nil {
		return err
	}
	defer d.Close()
	found, err := d.Check(ctx)
	if err != nil {
		return err
	}
	if len(found) == 1 && found[0] == "ok" {
		fmt.Fprintln(stdout, "ok: integrity check found no problems")
		return nil
	}
	for _, f := range found {
		fmt.Fprintln(stdout, f)
	}
	return fmt.Errorf("integrity check found %d problems", len(found))
}

// runMCP: collector mcp -db FILE, a read-only MCP server on stdin/stdout.
func runMCP(ctx context.Context, args []string, stderr io.Writer) error {
	d, _, err := diagFlags("mcp", "mcp [-db FILE] [-timeout D]   (speaks MCP on stdin/stdout; -timeout bounds each tool call)", diag.DefaultTimeLimit, args, stderr, nil)
	if err != nil {
		return err
	}
	defer d.Close()
	return mcpserver.New(d, version).Run(ctx, &mcp.StdioTransport{})
}

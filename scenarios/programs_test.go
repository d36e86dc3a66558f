package scenarios

// The programs testscript.Main registers. Each runs in its own process: a
// copy of the test binary started under the program's name.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// execCollector replaces this process with the real collector binary, so
// the process a script starts, signals and waits for is the collector
// itself: same pid, same exit status, nothing in between.
func execCollector() {
	bin := os.Getenv("COLLECTOR_BIN")
	if bin == "" {
		fmt.Fprintln(os.Stderr, "collector: $COLLECTOR_BIN is not set (run through go test)")
		os.Exit(1)
	}
	err := syscall.Exec(bin, append([]string{"collector"}, os.Args[1:]...), os.Environ())
	fmt.Fprintln(os.Stderr, "collector: exec:", err)
	os.Exit(1)
}

// holdLock is `holdlock DB MAX READY`: a second writer, in a process of its
// own, that takes the database's write lock (BEGIN IMMEDIATE, the way the
// collector begins its own transactions), creates READY once it holds it,
// and keeps it until interrupted (`kill -INT NAME`), then commits and exits
// 0. Whatever the collector writes meanwhile meets SQLITE_BUSY, every time,
// not by luck. If nobody releases it within MAX it lets go and fails.
func holdLock() {
	if err := holdLockMain(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "holdlock:", err)
		os.Exit(1)
	}
}

func holdLockMain(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: holdlock DB MAX READY")
	}
	max, err := time.ParseDuration(args[1])
	if err != nil {
		return err
	}
	release := make(chan os.Signal, 1)
	signal.Notify(release, os.Interrupt, syscall.SIGTERM)
	ctx := context.Background()
	// Wait up to 5s for the lock itself: the collector may be mid-commit.
	db, err := sql.Open("sqlite", "file:"+args[0]+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("take the write lock: %w", err)
	}
	start := time.Now()
	if err := os.WriteFile(args[2], []byte("held\n"), 0o666); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "holdlock: holding the write lock on %s\n", args[0])
	var timedOut bool
	select {
	case <-release:
	case <-time.After(max):
		timedOut = true
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("release the write lock: %w", err)
	}
	if timedOut {
		return fmt.Errorf("nobody released the lock within %s; released it", max)
	}
	fmt.Fprintf(os.Stderr, "holdlock: released after %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

//go:build linux

package faultfs

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// The SQLite tests run the writer in a child process (this test binary,
// re-executed) so a cut can SIGKILL it first, as a power cut takes the
// process with it. SQLite never runs in the test process on the mount: its
// WAL index is a shared mmap, and a page fault on a FUSE file served by the
// faulting process itself can deadlock it (the fault holds the process's
// memory map while the server needs it). After a cut the test inspects a
// copy of what the cut left on the backing directory instead.
const helperEnv = "FAULTFS_SQLITE_WRITER"

func TestMain(m *testing.M) {
	if child, err := ChildMain(); child {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv(helperEnv); spec != "" {
		if err := sqliteWriter(spec); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func dsn(path, synchronous string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	return "file:" + path + "?" + q.Encode()
}

// sqliteWriter commits one transaction after another (two rows: a small
// one and one with a 3 KiB blob, so the WAL grows and checkpoints run) and
// prints the number of each transaction once its COMMIT returned.
// With synchronous "init" it makes the table durably (FULL, closed
// cleanly) and exits.
func sqliteWriter(spec string) error {
	path, synchronous, _ := strings.Cut(spec, ",")
	init := synchronous == "init"
	if init {
		synchronous = "FULL"
	}
	db, err := sql.Open("sqlite", dsn(path, synchronous))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS tx (n INTEGER PRIMARY KEY, blob BLOB)`); err != nil {
		return err
	}
	if init {
		return db.Close()
	}
	var n int64
	if err := db.QueryRow(`SELECT coalesce(max(n), 0) FROM tx`).Scan(&n); err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready", n)
	out.Flush()
	for {
		n++
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO tx (n, blob) VALUES (?, randomblob(3000))`, n); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		fmt.Fprintln(out, n)
		out.Flush()
	}
}

// writer is a running sqliteWriter: the highest transaction it reported
// committed.
type writer struct {
	cmd  *exec.Cmd
	done chan int64 // the highest committed transaction, once stdout closes
	base int64      // the highest transaction at its start
}

func helper(path, synchronous string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path+","+synchronous)
	return cmd
}

func startWriter(t *testing.T, path, synchronous string) *writer {
	t.Helper()
	cmd := helper(path, synchronous)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writer{cmd: cmd, done: make(chan int64, 1)}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("writer exited before it was ready")
	}
	base, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "ready "), 10, 64)
	if err != nil {
		t.Fatalf("writer: %q", sc.Text())
	}
	w.base = base
	go func() { // owned: ends when the writer's stdout closes (it is killed)
		last := base
		for sc.Scan() {
			if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
				last = n
			}
		}
		w.done <- last
	}()
	return w
}

// kill SIGKILLs the writer and returns the last transaction it reported
// committed.
func (w *writer) kill() int64 {
	w.cmd.Process.Signal(syscall.SIGKILL)
	last := <-w.done
	w.cmd.Wait()
	return last
}

// inspect opens a copy of the database a cut left (the file and its WAL,
// from the backing directory), recovering the WAL as the next start would,
// and reports the transactions it holds and SQLite's integrity check.
func inspect(t *testing.T, f *FS, name string) (present map[int64]bool, check string) {
	t.Helper()
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(filepath.Join(f.DataDir(), name+suffix))
		if err != nil {
			if suffix == "" || !os.IsNotExist(err) {
				return nil, fmt.Sprintf("read %s: %v", name+suffix, err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name+suffix), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", dsn(filepath.Join(dir, name), "FULL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	present = make(map[int64]bool)
	rows, err := db.QueryContext(context.Background(), `SELECT n FROM tx`)
	if err != nil {
		return present, "query: " + err.Error()
	}
	for rows.Next() {
		var n int64
		rows.Scan(&n)
		present[n] = true
	}
	rows.Close()
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil {
		check = err.Error()
	}
	return present, check
}

// cutLoop runs the writer on the mount and cuts it cuts times at random
// moments; it returns how many reported-committed transactions the cuts
// lost in all, and the integrity failures seen.
func cutLoop(t *testing.T, synchronous string, cuts int, seed uint64) (committed, lost int64, corrupt []string) {
	f := mustMount(t, Options{Seed: seed})
	rng := rand.New(rand.NewPCG(seed, 0))
	path := filepath.Join(f.Mountpoint(), "test.db")
	// The table is made durable first (FULL, closed cleanly), so a weaker
	// mode loses what it committed since its last checkpoint, not the
	// whole file.
	if out, err := helper(path, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v: %s", err, out)
	}
	committedUpTo := int64(0)
	for c := range cuts {
		w := startWriter(t, path, synchronous)
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
		last := w.kill()
		committed += last - w.base
		committedUpTo = max(committedUpTo, last)
		mustCut(t, f)
		present, check := inspect(t, f, "test.db")
		if check != "ok" {
			corrupt = append(corrupt, fmt.Sprintf("cut %d: %s", c+1, check))
		}
		for n := int64(1); n <= committedUpTo; n++ {
			if !present[n] {
				lost++
			}
		}
		// What was lost is gone for good: the next writer numbers on from
		// what is there, and only what it commits counts from now on.
		committedUpTo = 0
		for n := range present {
			committedUpTo = max(committedUpTo, n)
		}
	}
	return committed, lost, corrupt
}

// TestSQLiteFullSurvivesCuts: with synchronous=FULL (what the collector
// runs), no transaction whose COMMIT returned is lost over many cuts, and
// the file passes SQLite's integrity check after each.
func TestSQLiteFullSurvivesCuts(t *testing.T) {
	committed, lost, corrupt := cutLoop(t, "FULL", 20, 1)
	t.Logf("FULL: %d transactions committed over 20 cuts, %d lost", committed, lost)
	if committed == 0 {
		t.Fatal("nothing was committed: the test proves nothing")
	}
	if lost != 0 {
		t.Errorf("FULL lost %d committed transactions", lost)
	}
	for _, c := range corrupt {
		t.Errorf("integrity check: %s", c)
	}
}

// TestSQLiteWeakerSyncLoses is the negative control: with synchronous
// NORMAL (the WAL is fsync'd only at checkpoints) and OFF (never), a cut
// loses transactions whose COMMIT returned. If it did not, the cache would
// not be forgetting, and the FULL test would prove nothing.
func TestSQLiteWeakerSyncLoses(t *testing.T) {
	for _, sync := range []string{"NORMAL", "OFF"} {
		t.Run(sync, func(t *testing.T) {
			committed, lost, corrupt := cutLoop(t, sync, 5, 2)
			t.Logf("%s: %d transactions committed over 5 cuts, %d lost; integrity failures: %q", sync, committed, lost, corrupt)
			if lost == 0 {
				t.Errorf("synchronous=%s lost nothing over 5 cuts: the cut does not forget", sync)
			}
		})
	}
}

// Package sysinfo captures the facts about a machine that a benchmark
// result depends on (CPU, memory, kernel, the filesystem of the database
// directory and its fsync ceiling, software versions, the git revision), and
// how busy the machine is apart from the harness.
package sysinfo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"edgecollector/bench/record"
	"edgecollector/collector/store"
)

// Capture fills in what can be known before the run: machine, software
// and the database directory's filesystem. It does not measure fsync.
func Capture(ctx context.Context, dbDir string) (record.Machine, record.Software) {
	m := record.Machine{
		Cores:  runtime.NumCPU(),
		OS:     runtime.GOOS,
		Arch:   runtime.GOARCH,
		DBDir:  dbDir,
		CPU:    cpuModel(),
		Kernel: kernel(),
	}
	m.MemoryBytes = memory()
	m.Filesystem, m.Device, m.MountOptions = filesystem(dbDir)
	sw := record.Software{Go: runtime.Version()}
	sw.SQLite = sqliteVersion(ctx)
	sw.SQLiteDriver = moduleVersion("modernc.org/sqlite")
	sw.Vegeta = moduleVersion("github.com/tsenart/vegeta/v12")
	sw.GitRevision, sw.GitDirty = gitState(ctx)
	return m, sw
}

// MachineID is a stable, readable name for this machine: the CPU model and
// core count, plus a short hash of /etc/machine-id (or the host name) to
// tell apart machines of one model. The raw id is never stored.
func MachineID(m record.Machine) string {
	model := strings.ToLower(m.CPU)
	for _, noise := range []string{"(r)", "(tm)", "cpu", "processor", "@"} {
		model = strings.ReplaceAll(model, noise, " ")
	}
	model = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(model, "-")
	model = strings.Trim(model, "-")
	if len(model) > 32 {
		model = strings.Trim(model[:32], "-")
	}
	if model == "" {
		model = m.Arch
	}
	secret, err := os.ReadFile("/etc/machine-id")
	if err != nil || len(bytes.TrimSpace(secret)) == 0 {
		host, _ := os.Hostname()
		secret = []byte(host)
	}
	sum := sha256.Sum256(bytes.TrimSpace(secret))
	return fmt.Sprintf("%s-%dc-%s", model, m.Cores, hex.EncodeToString(sum[:])[:8])
}

// FsyncCeiling measures durable appends per second on dir: a plain Go loop
// appending 4 KiB and calling fsync, for d. It is the ceiling of one
// durable commit at a time on this filesystem.
func FsyncCeiling(dir string, d time.Duration) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := bytes.Repeat([]byte{'x'}, 4096)
	start := time.Now()
	n := 0
	for time.Since(start) < d && n < 10_000_000 {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func sqliteVersion(ctx context.Context) string {
	db, err := sql.Open(store.SQLite.Driver, ":memory:")
	if err != nil {
		return ""
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, `SELECT sqlite_version()`).Scan(&v); err != nil {
		return ""
	}
	return v
}

func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Path + " " + d.Version
		}
	}
	return ""
}

// gitState returns the revision checked out and whether tracked files
// outside results/ and reports/ differ from it (the harness writes those).
func gitState(ctx context.Context) (rev string, dirty bool) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	rev = strings.TrimSpace(string(out))
	out, err = exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no",
		"--", ".", ":(exclude)results", ":(exclude)reports").Output()
	return rev, err == nil && len(bytes.TrimSpace(out)) > 0
}

// BinaryDir returns the directory of the running binary, for messages.
func BinaryDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Dir(exe)
}

package rig

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// goTool is the go command: from $PATH, or beside the running toolchain when
// go test was run by path with no go on $PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// ModuleRoot is the root of the module the current directory belongs to.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the edgecollector module (go env GOMOD: %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

// Build compiles the collector into dir from the module the current
// directory belongs to, and returns the binary's path: statically
// (CGO_ENABLED=0, -trimpath), as released, or with the race detector when
// race is set (which needs cgo). The harness, the scenarios and every test
// that runs the binary build it this one way.
func Build(ctx context.Context, dir string, race bool) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", fmt.Errorf("build collector: %w", err)
	}
	bin := filepath.Join(dir, "collector")
	args := []string{"build", "-trimpath", "-o", bin}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if race {
		args = append(args, "-race")
		env = os.Environ()
	}
	cmd := exec.CommandContext(ctx, goTool(), append(args, "./collector/cmd/collector")...)
	cmd.Dir, cmd.Env = root, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build collector: %v: %s", err, out)
	}
	return bin, nil
}

// testBuild is the binary Binary builds, once per test process.
var testBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Binary returns the collector binary for a test: built by the first test
// of the process that asks, shared by the rest, removed by Main. It
// skips the test under -short, which promises not to build or run it.
func Binary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds and runs the collector binary")
	}
	testBuild.once.Do(func() {
		testBuild.dir, testBuild.err = os.MkdirTemp("", "rig-collector-*")
		if testBuild.err == nil {
			testBuild.bin, testBuild.err = Build(context.Background(), testBuild.dir, false)
		}
	})
	if testBuild.err != nil {
		tb.Fatal(testBuild.err)
	}
	return testBuild.bin
}

// Main runs a package's tests and removes the binary Binary built: the
// TestMain of every package whose tests call Binary calls it.
func Main(m *testing.M) {
	code := m.Run()
	if testBuild.dir != "" {
		os.RemoveAll(testBuild.dir)
	}
	os.Exit(code)
}

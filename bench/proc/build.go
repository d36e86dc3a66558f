package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildCollector builds the collector statically (CGO_ENABLED=0, as
// released) into dir, from the module the current directory belongs to,
// and returns the binary's path. The harness and the tests of every
// experiment that runs the binary build it this one way.
func BuildCollector(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("build collector: run bench from the repository, or pass -collector")
	}
	bin := filepath.Join(dir, "collector")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./collector/cmd/collector")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build collector: %v: %s", err, out)
	}
	return bin, nil
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// moduleRoot is the root of the module the current directory belongs to,
// where the fuzz experiment runs go test; "" outside one.
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return ""
	}
	return filepath.Dir(gomod)
}

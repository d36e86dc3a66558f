package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The systemd unit and its environment file name only variables that are
// flags, stop the service no sooner than the drain ends, and pass
// systemd-analyze verify where systemd's tools are installed.
func TestSystemdUnit(t *testing.T) {
	unit := filepath.Join("..", "..", "..", "deploy", "collector.service")
	vars := map[string]bool{}
	var c config
	for _, r := range c.flagTable() {
		if !flagOnly[r.name] {
			vars[envName(r.name)] = true
		}
	}
	settings := map[string]string{}
	for _, f := range []string{unit, filepath.Join("..", "..", "..", "deploy", "collector.env")} {
		for name, v := range collectorVars(t, f) {
			if !vars[name] {
				t.Errorf("%s sets %s, which is no flag's variable", f, name)
			}
			settings[name] = v
		}
	}
	stop := directive(t, unit, "TimeoutStopSec")
	drain, err := time.ParseDuration(settings["COLLECTOR_DRAIN_TIMEOUT"])
	if err != nil {
		t.Fatalf("the unit's COLLECTOR_DRAIN_TIMEOUT: %v", err)
	}
	if stopAfter, err := time.ParseDuration(stop); err != nil || stopAfter <= drain {
		t.Errorf("TimeoutStopSec=%s, want a duration above the drain timeout %s", stop, drain)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit is not verified")
	}
	// verify wants ExecStart to exist: point it at an executable that does.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "collector.service")
	text := strings.Replace(string(b), "ExecStart=/usr/local/bin/collector", "ExecStart="+self, 1)
	if err := os.WriteFile(copied, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", copied).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var varLine = regexp.MustCompile(`^(?:Environment=)?(COLLECTOR_[A-Z0-9_]+)=(.*)$`)

// collectorVars returns the COLLECTOR_ variables a unit or environment file
// sets, commented-out examples included.
func collectorVars(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimLeft(strings.TrimSpace(sc.Text()), "#")
		if m := varLine.FindStringSubmatch(line); m != nil {
			vars[m[1]] = m[2]
		}
	}
	return vars
}

// directive returns the value of the unit's setting name.
func directive(t *testing.T, unit, name string) string {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no %s", unit, name)
	return ""
}

package sysinfo

import (
	"context"
	"regexp"
	"runtime"
	"testing"
	"time"

	"edgecollector/bench/record"
)

func TestMachineID(t *testing.T) {
	for _, tc := range []struct {
		cpu  string
		want string // pattern
	}{
		{"Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", `^intel-xeon-e5-2680-v4-2-40ghz-4c-[0-9a-f]{8}$`},
		{"AMD EPYC", `^amd-epyc-4c-[0-9a-f]{8}$`},
		{"", `^amd64-4c-[0-9a-f]{8}$`},
	} {
		got := MachineID(record.Machine{CPU: tc.cpu, Cores: 4, Arch: "amd64"})
		if !regexp.MustCompile(tc.want).MatchString(got) {
			t.Errorf("MachineID(%q) = %q, want %s", tc.cpu, got, tc.want)
		}
	}
	a := MachineID(record.Machine{CPU: "x", Cores: 2})
	if a != MachineID(record.Machine{CPU: "x", Cores: 2}) {
		t.Error("MachineID is not stable")
	}
}

func TestCapture(t *testing.T) {
	m, sw := Capture(context.Background(), t.TempDir())
	if m.Cores != runtime.NumCPU() || sw.Go != runtime.Version() {
		t.Errorf("Capture = %+v %+v", m, sw)
	}
	if sw.SQLite == "" {
		t.Error("SQLite version unknown")
	}
	if runtime.GOOS == "linux" && (m.Filesystem == "" || m.MemoryBytes == 0 || m.Kernel == "") {
		t.Errorf("linux facts missing: %+v", m)
	}
}

func TestFsyncCeiling(t *testing.T) {
	n, err := FsyncCeiling(t.TempDir(), 50*time.Millisecond)
	if err != nil || n <= 0 {
		t.Errorf("FsyncCeiling = %v, %v", n, err)
	}
}

func TestBusy(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	frac, ok := SampleBusy(context.Background(), 50*time.Millisecond)
	if !ok || frac < 0 || frac > 1 {
		t.Errorf("SampleBusy = %v, %v", frac, ok)
	}
	m := StartMeter()
	if f := m.Foreign(); f < 0 || f > 1 {
		t.Errorf("Foreign = %v", f)
	}
}

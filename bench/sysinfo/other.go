//go:build !linux

package sysinfo

// Elsewhere than Linux the harness runs, but records less about the machine
// and cannot tell how busy it is.

func cpuModel() string                                   { return "" }
func kernel() string                                     { return "" }
func memory() uint64                                     { return 0 }
func filesystem(string) (fstype, device, options string) { return "", "", "" }
func LoadAvg() [3]float64                                { return [3]float64{} }
func CPUTime() (busy, total float64, ok bool)            { return 0, 0, false }
func OwnCPU() float64                                    { return 0 }

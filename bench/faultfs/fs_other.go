//go:build !linux

package faultfs

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// Usable reports that faultfs needs Linux.
func Usable() error { return fmt.Errorf("%w: it runs on Linux, not %s", ErrUnusable, runtime.GOOS) }

// FS is a mounted faultfs; on this system none can be mounted.
type FS struct{}

// Mount fails: faultfs needs Linux.
func Mount(dir, mountpoint string, o Options) (*FS, error) { return nil, Usable() }

func (f *FS) Mountpoint() string                            { return "" }
func (f *FS) DataDir() string                               { return "" }
func (f *FS) Cut() (CutStats, error)                        { return CutStats{}, Usable() }
func (f *FS) Close() error                                  { return nil }
func (f *FS) FailFsync(pattern string, errno syscall.Errno) {}
func (f *FS) SetFsyncLatency(latency, jitter time.Duration) {}
func (f *FS) SetSpaceBudget(n int64)                        {}
func (f *FS) Used() int64                                   { return 0 }
func (f *FS) Stats() Stats                                  { return Stats{} }

//go:build unix

package proc

import "syscall"

// ownGroup puts the child in a process group of its own.
func ownGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

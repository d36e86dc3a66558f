//go:build unix

package rig

import "syscall"

// ownGroup puts the child in a process group of its own.
func ownGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

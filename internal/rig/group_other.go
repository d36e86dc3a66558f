//go:build !unix

package rig

import "syscall"

func ownGroup() *syscall.SysProcAttr { return nil }

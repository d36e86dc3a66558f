//go:build !unix

package store

import (
	"errors"
	"os"
)

// Not a target (the collector ships for Linux and macOS): no flock here,
// so nothing is enforced; the sibling file only marks the buffer in use.

var errWouldBlock = errors.New("would block")

func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
}

func flock(*os.File) error { return nil }

func lockHolder(*os.File) int { return 0 }

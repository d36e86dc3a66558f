//go:build unix

package store

import "syscall"

// writable reports whether this process may write path, as the kernel
// judges it (permissions, a read-only mount, an immutable file), without
// opening it.
func writable(path string) error {
	return syscall.Access(path, 2 /* W_OK */)
}

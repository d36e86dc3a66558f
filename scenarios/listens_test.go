package scenarios

import (
	"net"
	"os"
	"testing"
)

// TestListens checks the helper waitready relies on to tell its collector's
// listener from anyone else's.
func TestListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	if !listens(os.Getpid(), addr) {
		t.Errorf("listens(self, %s) = false, want true", addr)
	}
	if listens(os.Getppid(), addr) {
		t.Errorf("listens(parent, %s) = true, want false", addr)
	}
	other, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if listens(os.Getpid(), other) {
		t.Errorf("listens(self, %s) = true for a port nobody listens on", other)
	}
}

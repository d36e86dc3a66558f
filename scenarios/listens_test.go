package scenarios

import (
	"net"
	"os"
	"slices"
	"testing"
)

// TestListenAddrs checks the helper waitready relies on to find where its
// collector listens, and only its collector.
func TestListenAddrs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	if got := listenAddrs(os.Getpid()); !slices.Contains(got, addr) {
		t.Errorf("listenAddrs(self) = %v, want it to hold %s", got, addr)
	}
	if got := listenAddrs(os.Getppid()); slices.Contains(got, addr) {
		t.Errorf("listenAddrs(parent) = %v, holds our %s", got, addr)
	}
}

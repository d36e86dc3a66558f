//go:build race

package scenarios

// Under `go test -race` the collector binary is built with -race too, so the
// scenarios also hunt data races in the real process under crash, conflict
// and drain.
func init() { raceBuild = true }

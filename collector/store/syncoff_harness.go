//go:build harness_syncoff

package store

// A collector built with -tags harness_syncoff opens its buffer with
// synchronous=OFF: its 200s are NOT durable. It exists only as the
// negative control of the harness's powercut experiment
// (bench/torture/powercut.go), which must see such a binary lose
// acknowledged events at a power cut, or it proves nothing. No release,
// container or make target other than the harness builds with the tag.
func init() { harnessSynchronous = "OFF" }

//go:build !(linux && (amd64 || arm64))

package store

import "os"

// A fileID is what a path named; os.SameFile compares them.
type fileID struct{ fi os.FileInfo }

func (a fileID) equal(b fileID) bool { return a.fi != nil && b.fi != nil && os.SameFile(a.fi, b.fi) }

type statPath struct{ name string }

func newStatPath(name string) statPath { return statPath{name: name} }

func (p statPath) stat() (fileID, error) {
	fi, err := os.Stat(p.name)
	return fileID{fi: fi}, err
}

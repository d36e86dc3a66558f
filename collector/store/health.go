package store

// Health is the buffer's own state, beside the uploader's, in /healthz: one
// place for everything that makes the buffer untrustworthy.
type Health struct {
	OK bool `json:"ok"`
	// Problems say what is wrong, each naming its cause: the storage failed
	// a write and the store is fail-stop (FailErr), the damage check found
	// damage (integrity.go), the file was deleted or replaced (identity.go),
	// the WAL is far over its bound (wal.go).
	Problems []string `json:"problems,omitempty"`
	// Integrity is the damage check's state.
	Integrity Integrity `json:"integrity"`
	WALBytes  int64     `json:"wal_bytes"`
}

// Health reports whether the buffer can be trusted with new events and
// whether its WAL is under control.
func (s *Store) Health() Health {
	h := Health{Integrity: s.Integrity(), WALBytes: s.WALStats().Bytes}
	if err := s.FailErr(); err != nil {
		h.Problems = append(h.Problems, err.Error()+": the collector exits; restart it")
	}
	if h.Integrity.Damaged() {
		h.Problems = append(h.Problems, "damaged: "+h.Integrity.Findings)
	}
	if err := s.fileLost(); err != nil {
		h.Problems = append(h.Problems, err.Error())
	}
	if p := s.walProblem(); p != "" {
		h.Problems = append(h.Problems, p)
	}
	h.OK = len(h.Problems) == 0
	return h
}

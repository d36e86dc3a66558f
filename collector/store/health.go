package store

// Health is the buffer's own state, beside the uploader's, in /healthz.
type Health struct {
	OK bool `json:"ok"`
	// Problems say what is wrong, each naming its cause: the file deleted
	// or replaced (identity.go), the WAL far over its bound (wal.go).
	Problems []string `json:"problems,omitempty"`
	WALBytes int64    `json:"wal_bytes"`
}

// Health reports whether the buffer can be trusted with new events and
// whether its WAL is under control.
func (s *Store) Health() Health {
	h := Health{WALBytes: s.WALStats().Bytes}
	if err := s.fileLost(); err != nil {
		h.Problems = append(h.Problems, err.Error())
	}
	if p := s.walProblem(); p != "" {
		h.Problems = append(h.Problems, p)
	}
	h.OK = len(h.Problems) == 0
	return h
}

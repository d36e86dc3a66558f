package store

// Queued returns how many requests wait for the group committer, so a test
// can line requests up behind a held lock before it lets them commit.
func Queued(s *Store) int { return len(s.w.(*committer).queue) }

// Backoff is the wait before a retry (backoff).
var Backoff = backoff

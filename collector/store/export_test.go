package store

// Queued returns how many requests wait for the group committer, so a test
// can line requests up behind a held lock before it lets them commit.
func Queued(s *Store) int { return len(s.w.(*committer).queue) }

// CheckFile runs the identity check a commit runs before it is acknowledged.
func CheckFile(s *Store) error { return s.checkFile() }

// WALFarOver is how many times its bound the WAL must be for Health to fail.
const WALFarOver = walFarOver

// MigrationV1 is the schema of version 1, to build an old file.
var MigrationV1 = migrations[0]

// MigrationV2 upgrades version 1 to 2.
var MigrationV2 = migrations[1]

// SchemaVersion is the schema this build writes.
const SchemaVersion = schemaVersion

// Backoff is the wait before a busy transaction's next retry.
var Backoff = backoff

// FailStop makes s fail-stop as an I/O error from the engine would (a
// real one comes from the harness's faultfs test, bench/torture).
func FailStop(s *Store, cause error) error { return s.failStop(cause) }

// FirstEventID chooses a new file's first event id for a clock reading.
var FirstEventID = firstEventID

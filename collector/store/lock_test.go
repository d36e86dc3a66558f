package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// A second store on a file another holds is refused, naming the file and
// the holder; read-only readers still work beside the holder, and the file
// is free again once the holder closes.
func TestSecondOpenOfOneFileIsRefused(t *testing.T) {
	storetest.ForModes(t, func(t *testing.T, mode store.Mode) {
		path := filepath.Join(t.TempDir(), "events.db")
		first := storetest.MustOpen(t, store.Options{Path: path, Mode: mode})
		if _, err := first.Insert(context.Background(), storetest.Events("d", 3)); err != nil {
			t.Fatal(err)
		}
		for _, m := range store.Modes {
			_, err := store.Open(context.Background(), store.Options{Path: path, Mode: m})
			if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
				t.Fatalf("second open (%s): err = %v, want store.ErrLocked naming %s and pid %d", m, err, path, os.Getpid())
			}
		}
		// Other names of the same file: a symlink, a hard link, a path with "./" in it.
		dir := filepath.Dir(path)
		link, hard := filepath.Join(dir, "link.db"), filepath.Join(dir, "hard.db")
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(path, hard); err != nil {
			t.Fatal(err)
		}
		for _, other := range []string{link, hard, dir + "/./events.db"} {
			if _, err := store.Open(context.Background(), store.Options{Path: other, Mode: mode}); !errors.Is(err, store.ErrLocked) {
				t.Fatalf("open as %s: err = %v, want ErrLocked", other, err)
			}
		}
		// The refusals changed nothing: the holder still writes and reads.
		if _, err := first.Insert(context.Background(), storetest.Events("d", 2)); err != nil {
			t.Fatalf("holder insert after the refusals: %v", err)
		}
		if got := storetest.Count(t, first.DB(), `SELECT count(*) FROM events`); got != 5 {
			t.Errorf("events = %d, want 5", got)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := store.Open(context.Background(), store.Options{Path: path, Mode: mode})
		if err != nil {
			t.Fatalf("open after the holder closed: %v", err)
		}
		again.Close()
	})
}

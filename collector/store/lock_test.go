package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A second store on a file another holds is refused, naming the file and
// the holder; read-only readers still work beside the holder, and the file
// is free again once the holder closes.
func TestSecondOpenOfOneFileIsRefused(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		path := filepath.Join(t.TempDir(), "events.db")
		first := MustOpen(t, Options{Path: path, Mode: mode})
		if _, err := first.Insert(context.Background(), Events("d", 3)); err != nil {
			t.Fatal(err)
		}
		for _, m := range Modes {
			_, err := Open(context.Background(), Options{Path: path, Mode: m})
			if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
				t.Fatalf("second open (%s): err = %v, want ErrLocked naming %s and pid %d", m, err, path, os.Getpid())
			}
		}
		// The refusals changed nothing: the holder still writes and reads.
		if _, err := first.Insert(context.Background(), Events("d", 2)); err != nil {
			t.Fatalf("holder insert after the refusals: %v", err)
		}
		if got := count(t, first.DB(), `SELECT count(*) FROM events`); got != 5 {
			t.Errorf("events = %d, want 5", got)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := Open(context.Background(), Options{Path: path, Mode: mode})
		if err != nil {
			t.Fatalf("open after the holder closed: %v", err)
		}
		again.Close()
	})
}

package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"edgecollector/collector/store"
)

// TestServeRefusesFilesItMustNot: the collector does not start on a foreign
// database or on a path that is not a file: run fails (exit status 1) with
// a message naming the file and the reason, and the file is unchanged.
func TestServeRefusesFilesItMustNot(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign.db")
	db, err := sql.Open(store.SQLite.Driver, foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE foo(x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(foreign)
	for db, want := range map[string]string{
		foreign:     "not a collector buffer",
		":memory:":  "in-memory",
		"file:x.db": "URI",
	} {
		// A collector that does start is stopped after a while, not left serving.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := run(ctx, []string{"-db", db, "-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), want) {
			t.Errorf("-db %s: err = %v, want one naming the file and saying %q", db, err, want)
		}
	}
	if after, _ := os.ReadFile(foreign); !bytes.Equal(before, after) {
		t.Error("the foreign database was changed")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files beside it: %v", ents)
	}
}

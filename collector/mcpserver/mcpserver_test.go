package mcpserver

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"edgecollector/collector"
	"edgecollector/collector/diag"
	"edgecollector/collector/store"
	"edgecollector/internal/storetest"
)

// session connects the SDK's own client to our server over in-memory
// transports, against a live buffer that a store is writing.
func session(t *testing.T) (*store.Store, *mcp.ClientSession) {
	t.Helper()
	ctx := context.Background()
	path := storetest.Path(t)
	st := storetest.MustOpen(t, store.Options{Path: path, FirstID: 1}) // the bypasses delete by id
	d, err := diag.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	st1, st2 := mcp.NewInMemoryTransports()
	if _, err := New(d, "test").Connect(ctx, st1, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "v0"}, nil).Connect(ctx, st2, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return st, cs
}

func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (*mcp.CallToolResult, string) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	return res, text.String()
}

func TestToolsAreListedReadOnly(t *testing.T) {
	_, cs := session(t)
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
		if tool.Annotations == nil || !tool.Annotations.ReadOnlyHint {
			t.Errorf("tool %s is not annotated read-only", tool.Name)
		}
	}
	slices.Sort(names)
	if got, want := names, []string{"query", "schema", "stats"}; !slices.Equal(got, want) {
		t.Errorf("tools = %v, want %v", got, want)
	}
}

func TestQueryToolAnswersAndRefusesWrites(t *testing.T) {
	st, cs := session(t)
	now := time.Now()
	evs := []collector.Event{
		{DeviceID: "silent-1", Kind: "t", TS: now.Add(-time.Hour).UnixMilli()},
		{DeviceID: "live-1", Kind: "t", TS: now.UnixMilli()},
		{DeviceID: "live-1", Kind: "t", TS: now.UnixMilli()},
	}
	storetest.MustInsert(t, st, evs)

	res, text := call(t, cs, "query", map[string]any{
		"sql": "SELECT device_id, count(*) AS backlog FROM backlog GROUP BY device_id ORDER BY device_id",
	})
	if res.IsError {
		t.Fatalf("query failed: %s", text)
	}
	var got diag.Result
	if err := json.Unmarshal([]byte(text), &got); err != nil {
		t.Fatalf("query result %q: %v", text, err)
	}
	if len(got.Rows) != 2 || got.Rows[0][0] != "live-1" || got.Rows[0][1] != float64(2) {
		t.Errorf("rows = %v, want live-1 with a backlog of 2 first", got.Rows)
	}

	res, text = call(t, cs, "query", map[string]any{"sql": "DELETE FROM events"})
	if !res.IsError || !strings.Contains(text, "read-only") {
		t.Errorf("DELETE through MCP: error = %v, text %q; want a read-only refusal", res.IsError, text)
	}
	if got := st.Stats().Backlog; got != 3 {
		t.Errorf("backlog after a refused DELETE = %d, want 3", got)
	}
}

func TestStatsAndSchemaTools(t *testing.T) {
	st, cs := session(t)
	now := time.Now()
	storetest.MustInsert(t, st, []collector.Event{
		{DeviceID: "old", Kind: "t", TS: now.Add(-3 * time.Hour).UnixMilli()},
		{DeviceID: "new", Kind: "t", TS: now.UnixMilli()},
	})
	st.DB().Exec(`UPDATE events SET received_at = ts`) // received back then: silence is on the collector's clock
	res, text := call(t, cs, "stats", nil)
	if res.IsError {
		t.Fatalf("stats failed: %s", text)
	}
	var s diag.Stats
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		t.Fatalf("stats result %q: %v", text, err)
	}
	if s.Backlog != 2 || len(s.Devices) != 2 || s.Devices[0].Device != "old" {
		t.Errorf("stats = backlog %d, devices %+v; want 2 and the silent device first", s.Backlog, s.Devices)
	}
	_, text = call(t, cs, "schema", nil)
	if !strings.Contains(text, "CREATE TABLE events") || !strings.Contains(text, "CREATE VIEW backlog") {
		t.Errorf("schema = %q", text)
	}
}

// TestQueryToolRefusesBypasses: the attempts that wrote through the query
// tool on 4cb3049 (query_only turned off, the buffer attached again,
// ATTACH and VACUUM INTO creating files) are refused, and change nothing.
func TestQueryToolRefusesBypasses(t *testing.T) {
	st, cs := session(t)
	if _, err := st.Insert(context.Background(), make10()); err != nil {
		t.Fatal(err)
	}
	var db string
	st.DB().QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&db)
	other := t.TempDir()
	for _, q := range []string{
		`PRAGMA query_only=0; ATTACH '` + db + `' AS rw; DELETE FROM rw.events WHERE id<=10`,
		`PRAGMA query_only=''`,
		`ATTACH '` + filepath.Join(other, "w.db") + `' AS w`,
		`VACUUM INTO '` + filepath.Join(other, "v.db") + `'`,
		`SELECT 1; DELETE FROM events`,
	} {
		res, text := call(t, cs, "query", map[string]any{"sql": q})
		if !res.IsError || !strings.Contains(text, "read-only") {
			t.Errorf("%s: error = %v, text %q; want a read-only refusal", q, res.IsError, text)
		}
	}
	if ents, _ := os.ReadDir(other); len(ents) != 0 {
		t.Errorf("files created: %v", ents)
	}
	var n int
	st.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&n)
	if n != 10 {
		t.Errorf("events = %d, want 10", n)
	}
}

func make10() []collector.Event {
	evs := make([]collector.Event, 10)
	for i := range evs {
		evs[i] = collector.Event{DeviceID: "d", Kind: "k", TS: 1}
	}
	return evs
}

package mcpserver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"edgecollector/collector"
	"edgecollector/collector/diag"
	"edgecollector/collector/store"
)

// A query tool call that runs past the time limit is interrupted and
// answered with an error saying so, and the session goes on.
func TestQueryToolIsTimeLimited(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Insert(ctx, []collector.Event{{DeviceID: "a", Kind: "t", TS: 1}})
	d, err := diag.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.SetTimeLimit(200 * time.Millisecond)
	st1, st2 := mcp.NewInMemoryTransports()
	if _, err := New(d, "test").Connect(ctx, st1, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "v0"}, nil).Connect(ctx, st2, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })

	callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "query", Arguments: map[string]any{
		"sql": `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c, events`,
	}})
	if err != nil {
		t.Fatalf("endless query through MCP: %v (not interrupted within 20s?)", err)
	}
	text := ""
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if !res.IsError || !strings.Contains(text, "time limit") {
		t.Errorf("endless query: error %v, %q; want a time-limit error", res.IsError, text)
	}
	_, text = call(t, cs, "query", map[string]any{"sql": "SELECT count(*) AS n FROM events"})
	if !strings.Contains(text, `[1]`) {
		t.Errorf("the next query = %q", text)
	}
}

// Package mcpserver exposes a collector's buffer to Model Context Protocol
// clients, read-only: an operator can ask an assistant "how big is the
// backlog, which devices are silent?" and it answers from the live file.
package mcpserver

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"edgecollector/collector/diag"
)

// MaxRows caps what one query tool call returns.
const MaxRows = 500

// QueryInput is the query tool's argument.
type QueryInput struct {
	SQL   string `json:"sql" jsonschema:"one read-only SQL statement over the tables events, devices and upload_runs"`
	Limit int    `json:"limit,omitempty" jsonschema:"most rows to return (default and cap 500)"`
}

// SchemaOutput is the schema tool's answer.
type SchemaOutput struct {
	Schema string `json:"schema"`
	Notes  string `json:"notes"`
}

const schemaNotes = `Times are unix milliseconds. The view backlog holds the events waiting for upload; shipped holds what left it, as runs of ids (first_id to last_id, marked from first_at to last_at). ` +
	`upload_runs has one row per uploader cycle with status ok, failed or rejected. devices.last_seen_at is the newest event time shipped per device.`

// New returns an MCP server with the tools query, schema and stats over db.
func New(db *diag.DB, version string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "edge-collector", Version: version}, nil)
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(s, &mcp.Tool{
		Name:        "query",
		Description: "Run one read-only SQL query against the collector's SQLite buffer (writes are refused). Returns columns and rows.",
		Annotations: readOnly,
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in QueryInput) (*mcp.CallToolResult, *diag.Result, error) {
		limit := in.Limit
		if limit <= 0 || limit > MaxRows {
			limit = MaxRows
		}
		res, err := db.Query(ctx, in.SQL, limit)
		if err != nil {
			return nil, nil, err
		}
		return nil, res, nil
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "schema",
		Description: "The buffer's tables and indexes (CREATE statements) and what their columns mean.",
		Annotations: readOnly,
	}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, SchemaOutput, error) {
		schema, err := db.Schema(ctx)
		return nil, SchemaOutput{Schema: schema, Notes: schemaNotes}, err
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        "stats",
		Description: "Backlog size and age, devices ordered by how long they have been silent, recent upload runs and failures, file size and free pages.",
		Annotations: readOnly,
	}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, *diag.Stats, error) {
		st, err := db.Stats(ctx, time.Now())
		return nil, st, err
	})
	return s
}

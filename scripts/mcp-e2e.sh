#!/usr/bin/env bash
# End-to-end check of `collector mcp` with a real MCP client nobody here
# wrote: the MCP Inspector's CLI mode, from npm. A collector runs and takes
# events; the inspector asks the live file, through our MCP server, how big
# the backlog is and which devices are silent, and tries a write.
set -euo pipefail
INSPECTOR_VERSION=0.21.1
cd "$(dirname "$0")/.."
for tool in npm jq curl; do
  command -v "$tool" >/dev/null || { echo "mcp-e2e: $tool not found; this check needs npm (Node.js), jq and curl" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/collector" ./collector/cmd/collector
(cd "$work" && npm install --silent --no-audit --no-fund "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" >/dev/null 2>&1)
inspect() { timeout 60 "$work/node_modules/.bin/mcp-inspector" --cli "$work/collector" mcp -db "$work/events.db" "$@"; }

port=$((20000 + RANDOM % 20000))
"$work/collector" -db "$work/events.db" -addr "127.0.0.1:$port" -upload-interval 1h -sink log >/dev/null 2>"$work/collector.log" &
pid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
old=$(( ($(date +%s) - 7200) * 1000 ))
post() { curl -sf -X POST "127.0.0.1:$port/events" -H 'content-type: application/json' -d "$1" >/dev/null; }
post "{\"device_id\":\"pump-7\",\"kind\":\"telemetry\",\"ts\":$old}"
post '[{"device_id":"fan-1","kind":"telemetry"},{"device_id":"fan-1","kind":"error","payload":{"code":"E07"}}]'

fail() { echo "mcp-e2e: FAIL: $*" >&2; exit 1; }

backlog=$(inspect --method tools/call --tool-name query \
  --tool-arg 'sql=SELECT count(*) AS n FROM backlog' | jq -r '.structuredContent.rows[0][0]')
want=$(curl -sf "127.0.0.1:$port/stats" | jq -r '.store.backlog')
[ "$backlog" = "$want" ] && [ "$backlog" = 3 ] || fail "backlog through MCP = $backlog, /stats says $want, want 3"

silent=$(inspect --method tools/call --tool-name stats | jq -r '.structuredContent.devices[0].device_id')
[ "$silent" = pump-7 ] || fail "most silent device through MCP = $silent, want pump-7"

refused=$(inspect --method tools/call --tool-name query --tool-arg 'sql=DELETE FROM events' | jq -r '.isError')
[ "$refused" = true ] || fail "a DELETE through MCP was not refused"
left=$(curl -sf "127.0.0.1:$port/stats" | jq -r '.store.backlog')
[ "$left" = 3 ] || fail "backlog after the refused DELETE = $left, want 3"

echo "mcp-e2e: ok (MCP Inspector $INSPECTOR_VERSION CLI: backlog $backlog, most silent device $silent, DELETE refused)"

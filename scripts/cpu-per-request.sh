#!/usr/bin/env bash
# cpu-per-request.sh: an interleaved A/B of two collector binaries under wrk,
# single-event POST /events on keep-alive connections (issue 16). For each
# round it runs A then B (B then A on odd rounds, so neither always goes
# first), each on a fresh database, and prints per run: requests/s, the
# collector's CPU per request (utime+stime from /proc/<pid>/stat over the
# run, divided by the 200s wrk counted), p99 and peak RSS; then the medians.
#
#   scripts/cpu-per-request.sh OLD_BINARY NEW_BINARY
#   ROUNDS=5 CONNS=64 DURATION=10s scripts/cpu-per-request.sh /work/old/collector-4cb3049 bin/collector
#
# Environment: ROUNDS (5), CONNS (64), DURATION (10s), THREADS (wrk threads, 1),
# MODE (group), ARGS (extra collector flags), KEEP (a directory to keep the
# raw wrk output in). Needs wrk and curl. Linux only (/proc). Run it on an
# otherwise idle machine; on a shared one, trust only the ratios.
set -euo pipefail

A=${1:?usage: $0 OLD_BINARY NEW_BINARY}
B=${2:?usage: $0 OLD_BINARY NEW_BINARY}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-1}
MODE=${MODE:-group}
ARGS=${ARGS:-}
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"device_id":"sensor-0042","kind":"telemetry","payload":{"temp_c":21.4,"rh":40}}'
LUA
clk=$(getconf CLK_TCK)

# cputicks PID: utime+stime of the process, in clock ticks.
cputicks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# one LABEL BINARY: a fresh collector, wrk against it, one result line.
one() {
  local label=$1 bin=$2 port db out t0 t1 reqs rps p99 non2xx cpu hwm
  port=$(( 20000 + RANDOM % 20000 ))
  db="$work/$label.db"
  rm -f "$db" "$db-wal" "$db-shm"
  "$bin" -db "$db" -addr "127.0.0.1:$port" -mode "$MODE" -max-backlog 0 -sink log $ARGS >/dev/null 2>"$work/$label.log" &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  t0=$(cputicks "$pid")
  out=$(wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --latency -s "$work/post.lua" "http://127.0.0.1:$port/events")
  t1=$(cputicks "$pid")
  hwm=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
  epc=$(curl -fs "http://127.0.0.1:$port/stats" | sed -n 's/.*"events_per_commit":\([0-9.]*\).*/\1/p')
  kill -TERM "$pid"; wait "$pid" || true; pid=
  [ -n "${KEEP:-}" ] && { mkdir -p "$KEEP"; echo "$out" >"$KEEP/$label-$round.txt"; }
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}'); non2xx=${non2xx:-0}
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  p99=$(echo "$out" | awk '$1=="99%"{print $2}')
  cpu=$(awk -v t=$((t1 - t0)) -v clk="$clk" -v n=$((reqs - non2xx)) 'BEGIN{printf "%.1f", (n > 0 ? t / clk * 1e6 / n : 0)}')
  printf "%-4s round %d  %10s req/s  %7s us CPU/req  p99 %8s  non-2xx %s  peak RSS %d MiB  %5.1f events/commit\n" \
    "$label" "$round" "$rps" "$cpu" "$p99" "$non2xx" $((hwm / 1024)) "${epc:-0}"
  echo "$label $rps $cpu" >>"$work/results"
}

echo "A=$A"; echo "B=$B"
echo "wrk -t $THREADS -c $CONNS -d $DURATION, $ROUNDS rounds, mode $MODE, clock $clk Hz, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 )); then one A "$A"; one B "$B"; else one B "$B"; one A "$A"; fi
done
median() { sort -n | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
for l in A B; do
  printf "%s median: %s req/s, %s us CPU/req\n" "$l" \
    "$(awk -v l=$l '$1==l{print $2}' "$work/results" | median)" \
    "$(awk -v l=$l '$1==l{print $3}' "$work/results" | median)"
done

#!/usr/bin/env bash
# Instructions per request: the server's user-space work, counted by valgrind's callgrind.
#   bash bench/instructions.sh            (get; MODE=list|post|post_key|patch|mcp_get; SECONDS_MEASURED=8)
#   WEBHOOK=1 bash bench/instructions.sh  (with a webhook on "*" whose events are recorded, not
#                                         sent: what a write pays for its events)
# On a shared VM throughput moves 10-15% between runs, so a 3% change is invisible to
# bench/run.sh. This count repeats to about 0.1% and shows such changes. It leaves out the kernel
# (TCP, futexes) and waiting, so read it beside run.sh, never instead of it. The server runs under
# valgrind (about 50 times slower) behind one wrk thread with 4 connections. A warm-up prepares
# every statement and fills the caches; then the counters are zeroed, and only the measured
# seconds count.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${MODE:-get}
seconds=${SECONDS_MEASURED:-8}

for tool in wrk valgrind; do
  if ! command -v "$tool" >/dev/null; then
    echo "== installing $tool"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool"
  fi
done
cargo build --release --locked -q --bin ktasks --examples
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

target/release/examples/seed "$work/bench.db" "$work/bench.data" 10000 >/dev/null
printf '[rate_limit]\nrequests_per_minute = 1000000000\n' > "$work/config.toml"
if [ -n "${WEBHOOK:-}" ]; then
  printf '[webhooks]\nallow_http = true\nallow_private_targets = true\ndeliver = false\n' >> "$work/config.toml"
fi
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
  target/release/ktasks --config "$work/config.toml" --db "$work/bench.db" serve \
  --bind 127.0.0.1:0 2>"$work/server.log" &
pid=$!
for _ in $(seq 600); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
address=$(grep -o 'listening on http://[^ ]*' "$work/server.log" | head -1 | cut -d/ -f3)

load() {
  BENCH_MODE=$mode BENCH_DATA="$work/bench.data" \
    wrk -t1 -c4 -d"$1s" -s bench/wrk.lua "http://$address" > "$work/wrk.out"
}
if [ -n "${WEBHOOK:-}" ]; then
  token=$(awk '/^token/ {print $2; exit}' "$work/bench.data")
  project=$(awk '/^project/ {print $2; exit}' "$work/bench.data")
  space=$(curl -sf -H "Authorization: Bearer $token" "http://$address/api/projects/$project" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["spaceId"])')
  curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"spaceId\":\"$space\",\"url\":\"http://127.0.0.1:9/\",\"events\":[\"*\"]}" \
    "http://$address/api/webhooks" >/dev/null
fi
load 3
callgrind_control -z "$pid" >/dev/null 2>&1
load "$seconds"
callgrind_control -d "$pid" >/dev/null 2>&1
requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
dump=$(ls "$work"/callgrind.out.* | head -1)
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
echo "$mode: $requests requests, $((total / requests)) instructions per request (user space)"
if [ -n "${TOP:-}" ]; then
  echo "== the $TOP largest functions, inclusive, per request"
  callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null \
    | awk -v n="$requests" '/^ *[0-9,]+ / && !/PROGRAM TOTALS/ {c = $1; gsub(",", "", c); sub(/^ *[0-9,]+ *\( *[0-9.]+%\) */, ""); printf "%8.0f  %s\n", c / n, substr($0, 1, 110)}' \
    | head -n "$TOP"
fi

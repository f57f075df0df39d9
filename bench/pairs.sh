#!/usr/bin/env bash
# Two builds of ktasks side by side: alternated runs of one mode at 64 connections, so that the
# machine's drift hits both alike. For a change's effect on writes, where fsync timing moves a
# single run by 10-15%.
#   bash bench/pairs.sh OLD_BINARY NEW_BINARY [MODE=patch|post|get|list] [ROUNDS=3]
# Build the old binary in a worktree (git worktree add /tmp/old REV; cargo build --release there).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 mode=${3:-patch} rounds=${4:-3}
cargo build --release --locked -q --examples
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
printf '[rate_limit]\nrequests_per_minute = 1000000000\n' > "$work/config.toml"
for name in old new; do
  target/release/examples/seed "$work/$name.db" "$work/$name.data" 10000 >/dev/null
done
for round in $(seq "$rounds"); do
  for name in old new; do
    bin=$old; [ "$name" = new ] && bin=$new
    "$bin" --config "$work/config.toml" --db "$work/$name.db" serve --bind 127.0.0.1:0 2>"$work/$name.log" &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/$name.log" && break; sleep 0.05; done
    address=$(grep -o 'listening on http://[^ ]*' "$work/$name.log" | head -1 | cut -d/ -f3)
    out=$(BENCH_MODE=$mode BENCH_DATA="$work/$name.data" wrk -t2 -c64 -d5s -s bench/wrk.lua "http://$address")
    echo "round $round $name: $(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out") req/s"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  done
done

#!/usr/bin/env bash
# CPU time of one HMAC-SHA256 over 7.3 KB in workerd, wasm vs WebCrypto: each way N times in one
# request, three times, read from the workerd processes' CPU counters (/proc; Linux).
#   bash bench/mac-cost/run.sh        (after npm ci; builds the wasm with cargo)
set -euo pipefail
cd "$(dirname "$0")"
# The project's Node 22 (the npm package node), which its wrangler needs, before the system's.
export PATH=$PWD/../../node_modules/.bin:$PATH
N=${N:-20000}
PORT=${PORT:-8797}
cargo build --quiet --release --target wasm32-unknown-unknown --target-dir target
cp target/wasm32-unknown-unknown/release/mac_cost.wasm .
export WRANGLER_LOG_PATH=$PWD/target/wrangler.log WRANGLER_SEND_METRICS=false
setsid ../../node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false >target/dev.log 2>&1 &
group=$!
trap 'kill -- -$group 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -sf "127.0.0.1:$PORT/" >/dev/null && break; sleep 0.5; done
curl -sf "127.0.0.1:$PORT/" >/dev/null || { echo "wrangler dev did not start within 60 s:" >&2; tail -20 target/dev.log >&2; exit 1; }
ticks() { local t=0 p; for p in $(pgrep -g "$group" workerd); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
for round in 1 2 3; do
  for way in wasm webcrypto; do
    before=$(ticks)
    curl -sf "127.0.0.1:$PORT/$way?n=$N" >/dev/null
    after=$(ticks)
    echo "round $round, $way: $(( (after - before) * 1000000 / hz / N )) µs of workerd CPU per HMAC over 7.3 KB"
  done
done

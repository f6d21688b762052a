#!/usr/bin/env bash
# `npm test`: installs what is missing, then runs the host tests (plain `cargo test`), builds the
# worker and runs the end-to-end tests against it under wrangler dev (workerd).
set -euo pipefail
cd "$(dirname "$0")/.."

phase() { # phase <name> <command...>
  local name=$1 start=$SECONDS; shift
  echo "== $name"
  "$@"
  echo "== $name: done in $((SECONDS - start)) s"
}

phase "toolchain" bash scripts/toolchain.sh
phase "host tests (cargo test)" cargo test --workspace --quiet
phase "wasm build" sh scripts/build.sh
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
phase "end-to-end tests (wrangler dev)" node --test --test-concurrency=1 tests/e2e/*.test.mjs

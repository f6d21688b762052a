#!/usr/bin/env bash
# `npm test`: installs what is missing, checks formatting and lints, then runs the host tests (plain
# `cargo test` of the worker and the setup tool), builds both and runs the end-to-end tests: the worker under wrangler dev
# (workerd), the setup tool against the fake ZITADEL, the V1 action in a bare JS context; and the
# benchmark's target checks; last, the browser test: headless Chromium (/usr/bin/chromium, or
# CHROMIUM; Debian's `chromium` package, which .ci/run installs) through the connect flow.
set -euo pipefail
cd "$(dirname "$0")/.."

phase() { # phase <name> <command...>
  local name=$1 start=$SECONDS; shift
  echo "== $name"
  "$@"
  echo "== $name: done in $((SECONDS - start)) s"
}

phase "toolchain" bash scripts/toolchain.sh
phase "format (cargo fmt --check)" cargo fmt --all -- --check
phase "lints (cargo clippy, host and wasm)" sh -c 'cargo clippy --workspace --all-targets --quiet -- -D warnings && cargo clippy --target wasm32-unknown-unknown --quiet -- -D warnings'
phase "host tests (cargo test)" cargo test --workspace --quiet
phase "script tests" node --test tests/scripts/*.test.mjs
phase "wasm build" sh scripts/build.sh
phase "setup tool build" cargo build --release --quiet -p zitadel-claims-setup
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
phase "end-to-end tests (wrangler dev)" node --test --test-concurrency=1 tests/e2e/*.test.mjs
phase "browser tests (headless Chromium)" node --test --test-concurrency=1 tests/browser/*.test.mjs

#!/usr/bin/env bash
# Installs what building and testing the worker needs, skipping what is already present:
# the wasm32 target, the wasm-bindgen CLI and worker-build at the versions Cargo.lock asks for,
# and the npm packages (wrangler, and wasm-opt and esbuild so worker-build never downloads them).
# Safe to run again and again; prints how long each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."

phase() { # phase <name> <command...>
  local name=$1 start=$SECONDS; shift
  "$@"
  echo "toolchain: $name ready ($((SECONDS - start)) s)"
}

# The version of a package in Cargo.lock, e.g. `locked_version worker` -> 0.8.7.
locked_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

rust_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
}

# cargo_tool <crate> <version> <binary>: install the exact version unless `<binary> --version` shows it.
cargo_tool() {
  local crate=$1 version=$2 bin=$3
  if "$bin" --version 2>/dev/null | grep -qwF -- "$version"; then return 0; fi
  # No --locked: it fails on registry mirrors without every yanked version (see CONTRIBUTING.md).
  cargo install --quiet "$crate" --version "=$version" --force
}

npm_packages() {
  # `npm ci` when node_modules is missing or older than the lock file.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # puppeteer-core downloads nothing; the variable keeps it so should puppeteer ever come in.
    PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  fi
}

[ -f Cargo.lock ] || cargo generate-lockfile --quiet
phase "rust wasm32 target" rust_target
phase "wasm-bindgen $(locked_version wasm-bindgen)" cargo_tool wasm-bindgen-cli "$(locked_version wasm-bindgen)" wasm-bindgen
phase "worker-build $(locked_version worker)" cargo_tool worker-build "$(locked_version worker)" worker-build
phase "npm packages" npm_packages

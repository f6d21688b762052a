#!/usr/bin/env sh
# The [build] command of wrangler.toml: compiles the worker to build/worker/ with worker-build.
# On a machine prepared by scripts/toolchain.sh it uses the local wasm-bindgen, wasm-opt and
# esbuild; elsewhere worker-build downloads them itself, as on any connected machine.
set -eu
cd "$(dirname "$0")/.."

lock_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

if ! command -v worker-build >/dev/null 2>&1; then
  cargo install --quiet worker-build --version "=$(lock_version worker)"
fi
if [ -z "${WASM_BINDGEN_BIN:-}" ] && wasm-bindgen --version 2>/dev/null | grep -qwF -- "$(lock_version wasm-bindgen)"; then
  WASM_BINDGEN_BIN=$(command -v wasm-bindgen); export WASM_BINDGEN_BIN
fi
if [ -z "${WASM_OPT_BIN:-}" ] && [ -x node_modules/.bin/wasm-opt ]; then
  WASM_OPT_BIN=$PWD/node_modules/.bin/wasm-opt; export WASM_OPT_BIN
fi
if [ -z "${ESBUILD_BIN:-}" ] && [ -x node_modules/.bin/esbuild ]; then
  ESBUILD_BIN=$PWD/node_modules/.bin/esbuild; export ESBUILD_BIN
fi
worker-build --release
if [ -z "${KEEP_WASM_NAMES:-}" ]; then
  node scripts/strip-wasm-names.mjs build/index_bg.wasm
fi

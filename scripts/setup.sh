#!/usr/bin/env bash
# `npm run setup`: builds the setup tool (tools/setup) when it is missing or its sources changed,
# then runs it with the arguments given after `--`. Its messages go to stderr, so the tool's
# output stays alone on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="target/release/zitadel-claims-setup"
if [ ! -x "$bin" ]; then
  echo "Building the setup tool (first run only, about a minute)…" >&2
fi
cargo build --quiet --release -p zitadel-claims-setup
exec "$bin" "$@"

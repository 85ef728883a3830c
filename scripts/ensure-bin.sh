#!/usr/bin/env bash
# Prints the path of this checkout's trailkeeper binary (target/debug/trailkeeper), building it
# first when it is missing or older than a source: the demos and the IAM check never run a stale
# binary. A binary `cargo test` just built is reused as it is (a plain `cargo build` would build the
# AWS SDK crates again, without the test's features: ten minutes on 2 cores).
# TRAILKEEPER_BIN, when set, is printed instead (a release build, say).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${TRAILKEEPER_BIN:-}" ]; then echo "$TRAILKEEPER_BIN"; exit 0; fi
bin="$root/target/debug/trailkeeper"
if [ ! -x "$bin" ] || [ -n "$(cd "$root" && find src build.rs Cargo.toml Cargo.lock -newer "$bin" -print -quit 2>/dev/null)" ]; then
  (cd "$root" && cargo build --quiet --locked --bin trailkeeper) >&2
fi
echo "$bin"

#!/usr/bin/env bash
# The project's test command. Installs the AWS emulator (moto) into .tools/ when it is missing,
# runs every test, then checks deploy/iam-policy.json against the AWS calls the tests made.
# Extra arguments go to the first `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_SERVER="$(scripts/ensure-moto.sh)"
export MOTO_SERVER
mkdir -p target
log="$PWD/target/aws-calls.log"
rm -f "$log"
TRAILKEEPER_CALL_LOG="$log" cargo test "$@"
TRAILKEEPER_CALL_LOG="$log" cargo test --test iam_policy -- --ignored

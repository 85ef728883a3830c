#!/usr/bin/env bash
# The project's test command. Installs the AWS emulator (moto) into .tools/ when it is missing,
# runs every test, then checks deploy/iam-policy.json and the chart's RBAC against the AWS calls
# and Kubernetes API requests the tests made.
# Extra arguments go to the first `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_SERVER="$(scripts/ensure-moto.sh)"
export MOTO_SERVER
mkdir -p target
# Every AWS call and Kubernetes API request the tests make is logged; the last step checks the
# IAM policy and the chart's RBAC against these logs.
export TRAILKEEPER_CALL_LOG="$PWD/target/aws-calls.log" TRAILKEEPER_K8S_CALL_LOG="$PWD/target/k8s-calls.log"
rm -f "$TRAILKEEPER_CALL_LOG" "$TRAILKEEPER_K8S_CALL_LOG"
cargo test "$@"
cargo test --test iam_policy --test chart -- --ignored

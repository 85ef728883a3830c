#!/usr/bin/env bash
# The one-shot commands on a machine with no AWS account: starts the AWS emulator on loopback,
# applies examples/ (two accounts), then plans again and shows both accounts in sync (exit 0).
# The operator itself, on a local control plane: scripts/demo-operator.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo-lib.sh
demo_pids=()
demo=$(mktemp -d)
trap 'kill "${demo_pids[@]}" 2>/dev/null || true; rm -rf "$demo"' EXIT
start_moto "${DEMO_PORT:-4566}"
seed_org_trail

cargo build --quiet
echo "== trailkeeper validate -f examples/"
target/debug/trailkeeper validate -f examples/
emulator_examples "$demo"
echo "== trailkeeper plan -f examples/   (a fresh emulator: changes pending, exit 2)"
target/debug/trailkeeper plan -f "$demo" || test $? -eq 2
echo "== trailkeeper apply -f examples/"
target/debug/trailkeeper apply -f "$demo"
echo "== trailkeeper plan -f examples/   (in sync: exit 0)"
target/debug/trailkeeper plan -f "$demo"

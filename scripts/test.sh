#!/usr/bin/env bash
# The project's test command. Provides what the tests run against when it is missing (into
# .tools/): the AWS emulator (moto), a real Kubernetes API server and etcd (kube-apiserver built
# from its Go module), and Helm. Runs every test, then checks deploy/iam-policy.json and the
# chart's RBAC against the AWS calls and Kubernetes API requests the tests made. Last, the demos
# of the README's quick start run to their end: a README promise that breaks fails the test command.
# Extra arguments go to the first `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_SERVER="$(scripts/ensure-moto.sh)"
TRAILKEEPER_AWSCLI="$(scripts/ensure-awscli.sh)"
TRAILKEEPER_KUBE_BIN="$(scripts/ensure-kube.sh --kubectl)"
scripts/ensure-chart-tools.sh
TRAILKEEPER_HELM="$PWD/.tools/helm/helm"
TRAILKEEPER_KSTATUS="$(scripts/ensure-kstatus.sh)"
TRAILKEEPER_CHROMIUM="$(scripts/ensure-chromium.sh)"
export MOTO_SERVER TRAILKEEPER_AWSCLI TRAILKEEPER_KUBE_BIN TRAILKEEPER_HELM TRAILKEEPER_KSTATUS TRAILKEEPER_CHROMIUM
mkdir -p target
# Every AWS call the tests make is logged, and every request the operator makes to the tests' API
# servers is in their audit logs (scripts/kube-up.sh); the last step checks the IAM policy and the
# chart's RBAC against them.
export TRAILKEEPER_CALL_LOG="$PWD/target/aws-calls.log" TRAILKEEPER_K8S_AUDIT_DIR="$PWD/target/k8s-audit"
rm -rf "$TRAILKEEPER_CALL_LOG" "$TRAILKEEPER_K8S_AUDIT_DIR"
cargo test "$@"
cargo test --test iam_policy --test chart -- --ignored
# The README's quick start, as a new user runs it (each exits non-zero when it fails). Their own
# emulator and control plane, on free ports; their calls are not part of the IAM and RBAC logs.
unset TRAILKEEPER_CALL_LOG TRAILKEEPER_K8S_AUDIT_DIR
echo "== scripts/demo.sh"
scripts/demo.sh
echo "== scripts/demo-operator.sh"
scripts/demo-operator.sh

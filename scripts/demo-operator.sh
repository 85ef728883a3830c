#!/usr/bin/env bash
# The operator's main job, on this machine alone: a local Kubernetes control plane (etcd and
# kube-apiserver, scripts/kube-up.sh) and the AWS emulator on loopback; installs the chart's CRDs,
# runs `trailkeeper run`, applies examples/, and shows `kubectl get lb` going Ready, with the
# conditions and Events of a baseline. Exits non-zero when a baseline does not become Ready.
# The first run builds kube-apiserver and kubectl from the Go modules (10-15 minutes, cached in .tools/).
# Every server listens on a free loopback port (DEMO_PORT=N puts the emulator on N). DEMO_KEEP=1
# keeps the control plane, the emulator and the operator running at the end, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo-lib.sh
demo_pids=()
work=$(mktemp -d)
demo_log_dir=$work
trap 'kill "${demo_pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

bin=$(scripts/ensure-kube.sh --kubectl)
export TRAILKEEPER_KUBE_BIN=$bin
start_moto
seed_org_trail
# The trail's log-group role first: it trusts CloudTrail, as seed_roles's would not.
seed_trail_log_group
seed_roles
seed_security_hub 111122223333
echo "== starting a local control plane (etcd, kube-apiserver)"
scripts/kube-up.sh "$work/kube" $$ >/dev/null
export KUBECONFIG="$work/kube/admin.kubeconfig"
kubectl() { "$bin/kubectl" "$@"; }
kubectl version

tk=$(scripts/ensure-bin.sh)
echo "== kubectl apply --server-side -f charts/trailkeeper/crds/"
kubectl apply --server-side -f charts/trailkeeper/crds/
kubectl wait --for condition=Established crd --all --timeout 60s >/dev/null

echo "== trailkeeper run   (log: $work/operator.log)"
RUST_LOG=info "$tk" run --http-addr 127.0.0.1:0 --lease-namespace default >"$work/operator.log" 2>&1 &
demo_pids+=($!)

emulator_examples "$work"
kubectl create namespace accounts
echo "== kubectl apply -f examples/"
kubectl apply -f "$work/policies.yaml" -f "$work/payments-prod.yaml" -f "$work/org-management.yaml"
for _ in $(seq 180); do
  ready=$(kubectl get lb -n accounts -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
  [ "$ready" -eq 2 ] && break
  sleep 1
done
echo "== kubectl get lb -A"
kubectl get lb -A
[ "$ready" -eq 2 ] || { echo "not every baseline became Ready; the operator's log:"; tail -n 40 "$work/operator.log"; exit 1; }
echo "== kubectl get lb -n accounts payments-prod -o jsonpath='{.status.conditions}'"
kubectl get lb -n accounts payments-prod -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}{"\n"}{end}'
echo "== kubectl get lb -n accounts payments-prod -o jsonpath='{.status.securityHub}'   (its findings in Security Hub)"
exported=$(kubectl get lb -n accounts payments-prod -o jsonpath='{.status.conditions[?(@.type=="FindingsExported")].status}')
kubectl get lb -n accounts payments-prod -o jsonpath='{.status.securityHub}{"\n"}'
[ "$exported" = True ] || { echo "payments-prod exported no findings to Security Hub; the operator's log:"; tail -n 40 "$work/operator.log"; exit 1; }
echo "== kubectl get events -n accounts"
kubectl get events -n accounts --sort-by=.metadata.creationTimestamp | tail -n 10
cat <<NEXT

== The demo ran to its end: both baselines are Ready. What to look at next:
   - a baseline's whole status (drift, compliance, delivery, applied retention):
       kubectl get lb -n accounts payments-prod -o yaml
   - the fleet at a glance: kubectl get lb -A   (and kubectl get trailpolicies,retentionpolicies -A)
   - the operator's log (kept with DEMO_KEEP=1): $work/operator.log
   - the CIS evidence without a cluster: target/debug/trailkeeper report -f examples/
   Run with DEMO_KEEP=1 to keep everything running and try these yourself.
NEXT
if [ "${DEMO_KEEP:-}" = 1 ]; then
  echo "== kept running (Ctrl-C to stop). In another shell:"
  echo "   export KUBECONFIG=$KUBECONFIG AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo"
  echo "   $bin/kubectl get lb -A"
  wait
fi

#!/usr/bin/env bash
# Chart checks: helm lint --strict; helm template with the default values and each values file in
# charts/trailkeeper/ci/, validated by kubernetes-validate --strict; values the schema or the chart
# must reject are rejected.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-chart-tools.sh
helm=.tools/helm/helm
validate=.tools/validate/bin/kubernetes-validate
chart=charts/trailkeeper
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0
failed=0
check() {
  local name=$1; shift
  if "$@" >"$out/log" 2>&1; then
    passed=$((passed + 1)); echo "ok: $name"
  else
    failed=$((failed + 1)); echo "FAILED: $name"; cat "$out/log"
  fi
}
rejects() {
  # Succeeds when the command fails: a values file the chart must refuse.
  ! "$@"
}
check "helm lint --strict" "$helm" lint --strict "$chart"
for values in default "$chart"/ci/*-values.yaml; do
  args=()
  [ "$values" = default ] || args=(-f "$values")
  name=$(basename "$values")
  check "render $name" sh -c "\"$helm\" template tk \"$chart\" -n trailkeeper --include-crds ${args[*]} > \"$out/$name.yaml\""
  check "kubernetes-validate --strict $name" "$validate" --strict "$out/$name.yaml"
done
echo 'replicaCount: "two"' > "$out/wrong-type.yaml"
check "a wrong type is rejected by values.schema.json" rejects "$helm" template tk "$chart" -f "$out/wrong-type.yaml"
echo 'leaderElecton: {enabled: true}' > "$out/typo.yaml"
check "an unknown key is rejected" rejects "$helm" template tk "$chart" -f "$out/typo.yaml"
printf 'replicaCount: 2\nleaderElection: {enabled: false}\n' > "$out/no-election.yaml"
check "two replicas without leader election are rejected" rejects "$helm" template tk "$chart" -f "$out/no-election.yaml"
echo "chart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

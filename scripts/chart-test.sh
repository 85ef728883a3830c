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
rejects() { # rejects REASON COMMAND...
  # Succeeds when the command fails with REASON in its output: a values file the chart must refuse,
  # for the reason it must refuse it (any other failure, a typo in the chart say, is not a pass).
  local reason=$1 output; shift
  if output=$("$@" 2>&1); then
    echo "accepted, but must be rejected with: $reason"; return 1
  fi
  if ! grep -qF -- "$reason" <<<"$output"; then
    echo "rejected, but not with: $reason"; echo "$output"; return 1
  fi
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
check "a wrong type is rejected by values.schema.json" rejects "at '/replicaCount': got string, want integer" "$helm" template tk "$chart" -f "$out/wrong-type.yaml"
echo 'leaderElecton: {enabled: true}' > "$out/typo.yaml"
check "an unknown key is rejected" rejects "additional properties 'leaderElecton' not allowed" "$helm" template tk "$chart" -f "$out/typo.yaml"
printf 'replicaCount: 2\nleaderElection: {enabled: false}\n' > "$out/no-election.yaml"
check "two replicas without leader election are rejected" rejects "replicaCount > 1 needs leaderElection.enabled: true" "$helm" template tk "$chart" -f "$out/no-election.yaml"
printf 'leaderElection: {enabled: false}\nsharding: {shards: 4}\n' > "$out/shards-no-election.yaml"
check "sharding without leader election is rejected" rejects "sharding.shards above 1 needs leaderElection.enabled" "$helm" template tk "$chart" -f "$out/shards-no-election.yaml"
printf 'podDisruptionBudget: {enabled: true}\n' > "$out/pdb-one.yaml"
check "a disruption budget with one replica is rejected (it would block every drain)" rejects "podDisruptionBudget.enabled needs replicaCount > 1" "$helm" template tk "$chart" -f "$out/pdb-one.yaml"
printf 'replicaCount: 2\npodDisruptionBudget: {enabled: true, minAvailable: 2}\n' > "$out/pdb-all.yaml"
check "minAvailable equal to the replicas is rejected" rejects "podDisruptionBudget.minAvailable must be lower than replicaCount" "$helm" template tk "$chart" -f "$out/pdb-all.yaml"
# The rendered objects, as JSON lines, for the checks below.
objects() { "$helm" template tk "$chart" "$@" | .tools/validate/bin/python -c '
import json, sys, yaml
for o in yaml.safe_load_all(sys.stdin):
    if o: print(json.dumps(o))'; }
expect() { # expect NAME PYTHON-EXPRESSION-OVER-objs HELM-ARGS...
  local name=$1 expr=$2; shift 2
  check "$name" sh -c "$(declare -f objects); helm=\"$helm\" chart=\"$chart\" objects $* | .tools/validate/bin/python -c '
import json, sys
objs = [json.loads(l) for l in sys.stdin]
kind = lambda k: [o for o in objs if o[\"kind\"] == k]
assert $expr, \"not as documented\"'"
}
expect "PodDisruptionBudget: maxUnavailable 1 by default" \
  'kind("PodDisruptionBudget")[0]["spec"] == {"maxUnavailable": 1, "selector": kind("PodDisruptionBudget")[0]["spec"]["selector"]}' \
  --set replicaCount=2 --set podDisruptionBudget.enabled=true
expect "sharding: the shards in the env, and the Leases listed and deleted" \
  '{"name": "TRAILKEEPER_SHARDS", "value": "4"} in kind("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"] and any(r["verbs"] == ["list", "delete"] for r in kind("Role")[0]["rules"])' \
  -f "$chart/ci/sharded-values.yaml"
expect "without sharding: no shards in the env, no Lease listed or deleted" \
  'not any(e["name"] == "TRAILKEEPER_SHARDS" for e in kind("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]) and not any("list" in r["verbs"] for r in kind("Role")[0]["rules"])' \
  --set replicaCount=2
expect "NetworkPolicy without metricsFrom admits the namespace's pods only" \
  'kind("NetworkPolicy")[0]["spec"]["ingress"][0]["from"] == [{"podSelector": {}}] and kind("NetworkPolicy")[0]["spec"]["policyTypes"] == ["Ingress"]' \
  --set networkPolicy.enabled=true
expect "NetworkPolicy egress: DNS, the API server, HTTPS to AWS" \
  '[sorted(p["port"] for p in r["ports"]) for r in kind("NetworkPolicy")[0]["spec"]["egress"]] == [[53, 53], [443, 6443], [443]] and kind("NetworkPolicy")[0]["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}, {"ipBlock": {"cidr": "172.20.0.0/16"}}]' \
  -f "$chart/ci/ha-values.yaml"
cat > "$out/extras.yaml" <<'VALUES'
strategy: {type: Recreate}
terminationGracePeriodSeconds: 60
extraEnv: [{name: HTTPS_PROXY, value: "http://proxy:3128"}]
extraVolumes: [{name: ca, emptyDir: {}}]
extraVolumeMounts: [{name: ca, mountPath: /etc/ca}]
VALUES
expect "fullnameOverride names every object" \
  'all(o["metadata"]["name"].startswith("audit") for o in objs)' \
  --set fullnameOverride=audit
expect "extraEnv, extraVolumes, strategy and grace period reach the Deployment" \
  'kind("Deployment")[0]["spec"]["strategy"] == {"type": "Recreate"} and kind("Deployment")[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60 and {"name": "TRAILKEEPER_SHUTDOWN_DRAIN_SECONDS", "value": "50"} in kind("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"] and {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in kind("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"] and kind("Deployment")[0]["spec"]["template"]["spec"]["volumes"] == [{"name": "ca", "emptyDir": {}}] and kind("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] == [{"name": "ca", "mountPath": "/etc/ca"}]' \
  -f "$out/extras.yaml"
# The controller's environment, by name.
env='{e["name"]: e.get("value") for e in kind("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}'
expect "events off by default: no queue, the binary's resync default" \
  "\"TRAILKEEPER_EVENTS_QUEUE_URL\" not in $env and \"TRAILKEEPER_RESYNC_SECONDS\" not in $env"
expect "events.queueUrl reaches the controller with the bus name" \
  "$env[\"TRAILKEEPER_EVENTS_QUEUE_URL\"].endswith(\"/111122223333/trailkeeper-events\") and $env[\"TRAILKEEPER_EVENTS_BUS_NAME\"] == \"trailkeeper-events\"" \
  --set events.queueUrl=https://sqs.eu-west-1.amazonaws.com/111122223333/trailkeeper-events
# The PrometheusRule as Prometheus loads it: its groups checked and unit-tested by promtool, every
# alert firing on its condition and silent on its near miss (charts/trailkeeper/tests/alerts-test.yaml).
check "PrometheusRule off by default" sh -c "! \"$helm\" template tk \"$chart\" | grep -q 'kind: PrometheusRule'"
check "render the PrometheusRule's groups" sh -c "\"$helm\" template tk \"$chart\" --set prometheusRule.enabled=true -s templates/prometheusrule.yaml \
  | .tools/validate/bin/python -c 'import sys, yaml; o = yaml.safe_load(sys.stdin); yaml.safe_dump({\"groups\": o[\"spec\"][\"groups\"]}, sys.stdout, sort_keys=False)' > \"$out/alerts.yaml\""
cp "$chart/tests/alerts-test.yaml" "$out/alerts-test.yaml"
check "promtool check rules" promtool check rules "$out/alerts.yaml"
check "promtool test rules (every alert fires and stays silent as tested)" promtool test rules "$out/alerts-test.yaml"
expect "every alert has a runbook section in docs/alerts.md" \
  'all(("## " + r["alert"]) in open("docs/alerts.md").read() for o in kind("PrometheusRule") for g in o["spec"]["groups"] for r in g["rules"])' \
  --set prometheusRule.enabled=true
check "Argo CD health checks: every health_test.yaml case with Lua 5.1, the argocd-cm patch current" \
  .tools/validate/bin/python scripts/argocd_health_test.py
check "the Grafana dashboard passes the dashboard-linter's rules (scripts/dashboard_lint.py)" \
  .tools/validate/bin/python scripts/dashboard_lint.py "$chart/dashboards/trailkeeper.json"
expect "the dashboard ConfigMap carries the dashboard as is, with the sidecar's label" \
  'json.loads(kind("ConfigMap")[0]["data"]["trailkeeper.json"]) == json.load(open("'"$chart"'/dashboards/trailkeeper.json")) and kind("ConfigMap")[0]["metadata"]["labels"]["grafana_dashboard"] == "1"' \
  --set grafanaDashboard.enabled=true
printf 'events: {queueUrl: "sqs-queue"}\n' > "$out/bad-queue.yaml"
check "an events queue that is not a URL is rejected" rejects "at '/events/queueUrl': 'sqs-queue' does not match pattern" "$helm" template tk "$chart" -f "$out/bad-queue.yaml"
check "scripts/release.sh --chart-only packages the chart at the Cargo version" \
  sh -c 'scripts/release.sh --chart-only >/dev/null && test -f "dist/trailkeeper-$(sed -n "s/^version = \"\(.*\)\"$/\1/p" Cargo.toml | head -n 1).tgz" && (cd dist && sha256sum -c SHA256SUMS >/dev/null)'
echo "chart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

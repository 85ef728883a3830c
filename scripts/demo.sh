#!/usr/bin/env bash
# The main job on a machine with no AWS account: starts the AWS emulator on loopback, applies
# examples/ (two accounts), then plans again and shows both accounts in sync (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."
moto_server="$(scripts/ensure-moto.sh)"
port="${DEMO_PORT:-4566}"
"$moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done

# The Organization's trail that examples/org-management.yaml integrates, made as an
# Organization would have made it (stopped, without log file validation).
.tools/moto/bin/python - <<'PY'
import boto3, os
session = boto3.Session(region_name="us-east-1")
def client(service):
    c = session.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", "444455556666"))
    return c
client("organizations").create_organization(FeatureSet="ALL")
client("s3").create_bucket(Bucket="org-trail-logs-444455556666")
trail = client("cloudtrail").create_trail(Name="organization-trail", S3BucketName="org-trail-logs-444455556666",
    IsMultiRegionTrail=True, IsOrganizationTrail=True, KmsKeyId="arn:aws:kms:us-east-1:444455556666:key/org")
# moto returns no selectors for a new trail where AWS returns the default one: set it explicitly.
client("cloudtrail").put_event_selectors(TrailName=trail["TrailARN"],
    EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}])
PY

cargo build --quiet
echo "== trailkeeper validate -f examples/"
target/debug/trailkeeper validate -f examples/
# moto has no SSM associations and no Config compliance API: the demo turns instance logs and
# Config rules off in a copy of the examples (against AWS, use examples/ as they are).
demo=$(mktemp -d)
trap 'kill $moto_pid 2>/dev/null || true; rm -rf "$demo"' EXIT
for f in examples/*.yaml; do
  sed 's/^  trail:$/  instanceLogs: {enabled: false}\n  configRules: {enabled: false}\n  trail:/' "$f" > "$demo/$(basename "$f")"
done
echo "== trailkeeper plan -f examples/   (a fresh emulator: changes pending, exit 2)"
target/debug/trailkeeper plan -f "$demo" || test $? -eq 2
echo "== trailkeeper apply -f examples/"
target/debug/trailkeeper apply -f "$demo"
echo "== trailkeeper plan -f examples/   (in sync: exit 0)"
target/debug/trailkeeper plan -f "$demo"

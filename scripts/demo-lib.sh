# Shared by scripts/demo.sh and scripts/demo-operator.sh (sourced): the AWS emulator on loopback,
# the Organization trail examples/org-management.yaml integrates, and a copy of examples/ for it.

# start_moto PORT: starts moto on 127.0.0.1:PORT (stopped with the calling shell's EXIT trap) and
# exports what the SDK needs to reach it.
start_moto() {
  local port=$1 moto_server
  moto_server="$(scripts/ensure-moto.sh)"
  "$moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  demo_pids+=($!)
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.2; done
  echo "moto did not start on port $port" >&2
  return 1
}

# seed_org_trail: the Organization's trail that examples/org-management.yaml integrates, made as
# an Organization would have made it (stopped, without log file validation).
seed_org_trail() {
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
}

# emulator_examples DIR: examples/ copied into DIR with instance logs and Config rules off: moto
# has no SSM associations and no Config compliance API (against AWS, use examples/ as they are).
emulator_examples() {
  local dir=$1 f
  for f in examples/*.yaml; do
    sed 's/^  trail:$/  instanceLogs: {enabled: false}\n  configRules: {enabled: false}\n  trail:/' "$f" > "$dir/$(basename "$f")"
  done
}

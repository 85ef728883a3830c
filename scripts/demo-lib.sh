# Shared by scripts/demo.sh and scripts/demo-operator.sh (sourced): the AWS emulator on a free
# loopback port, the Organization trail examples/org-management.yaml integrates, a copy of
# examples/ for the emulator, and what to look at next.

# free_port: a loopback port that was free a moment ago (the caller retries if it is taken before
# it binds it).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto [PORT]: starts moto on 127.0.0.1:PORT (default: a free port; DEMO_PORT also sets it),
# stopped with the calling shell's EXIT trap, and exports what the SDK needs to reach it. A port
# someone else holds is never used: the emulator must be ours (its process alive and answering
# with the reset moto exposes), else another port is tried.
start_moto() {
  local wanted=${1:-${DEMO_PORT:-}} moto_server port pid attempt
  moto_server="$(scripts/ensure-moto.sh)"
  for attempt in 1 2 3; do
    port=${wanted:-$(free_port)}
    "$moto_server" -H 127.0.0.1 -p "$port" >"${demo_log_dir:-/tmp}/moto-$port.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      if curl -sf --max-time 2 -X POST "http://127.0.0.1:$port/moto-api/reset" >/dev/null 2>&1; then
        # Answering, and still ours: moto exits at once when the port was taken.
        if kill -0 "$pid" 2>/dev/null; then
          demo_pids+=("$pid")
          export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
          echo "== the AWS emulator (moto) on 127.0.0.1:$port"
          return 0
        fi
        break
      fi
      sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    if [ -n "$wanted" ]; then
      echo "moto did not start on port $wanted (is it taken? leave DEMO_PORT unset for a free port)" >&2
      return 1
    fi
    echo "moto did not start on port $port (attempt $attempt); trying another" >&2
  done
  echo "moto did not start" >&2
  return 1
}

# seed_org_trail: the Organization's trail that examples/org-management.yaml integrates, made as
# the Organization's administrator makes it on AWS: trusted access for CloudTrail enabled in
# Organizations and its service-linked role (both required before an Organization trail can be
# created), a bucket whose policy lets CloudTrail write the account's and the Organization's
# logs for this trail only, and a key whose policy lets CloudTrail encrypt them. Then the trail is
# left stopped and without log file validation: what trailkeeper repairs in the demo.
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-an-organizational-trail-prepare.html
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
seed_org_trail() {
  echo "== seeding the emulator: an Organization (management account 444455556666) and its trail"
  .tools/moto/bin/python - <<'PY'
import json, os
import boto3

ACCOUNT, REGION = "444455556666", "us-east-1"
TRAIL = "organization-trail"
BUCKET = f"org-trail-logs-{ACCOUNT}"
trail_arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}"
session = boto3.Session(region_name=REGION)

def client(service):
    c = session.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", ACCOUNT))
    return c

org_id = client("organizations").create_organization(FeatureSet="ALL")["Organization"]["Id"]
client("organizations").enable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")
client("iam").create_service_linked_role(AWSServiceName="cloudtrail.amazonaws.com")

source = {"aws:SourceArn": trail_arn}
client("s3").create_bucket(Bucket=BUCKET)
client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{BUCKET}", "Condition": {"StringEquals": source}},
    {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": "s3:PutObject",
     "Resource": [f"arn:aws:s3:::{BUCKET}/AWSLogs/{ACCOUNT}/*", f"arn:aws:s3:::{BUCKET}/AWSLogs/{org_id}/*"],
     "Condition": {"StringEquals": dict(source, **{"s3:x-amz-acl": "bucket-owner-full-control"})}},
]}))

key_policy = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Administrators", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "CloudTrailEncrypt", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": "kms:GenerateDataKey*", "Resource": "*",
     "Condition": {"StringEquals": source,
                   "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}}},
    {"Sid": "CloudTrailDescribe", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": "kms:DescribeKey", "Resource": "*"},
]}
key = client("kms").create_key(Description="Organization trail", Policy=json.dumps(key_policy))["KeyMetadata"]["Arn"]

trail = client("cloudtrail").create_trail(Name=TRAIL, S3BucketName=BUCKET, IsMultiRegionTrail=True,
                                          IsOrganizationTrail=True, KmsKeyId=key)
# moto returns no selectors for a new trail where AWS returns the default one: set it explicitly.
client("cloudtrail").put_event_selectors(TrailName=trail["TrailARN"],
    EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}])
print(f"   Organization {org_id}, trail {trail['TrailARN']} (stopped, no log file validation)")
PY
}

# seed_security_hub ACCOUNT: Security Hub enabled in the account's us-east-1, as its security team
# would have it: examples/payments-prod.yaml exports its findings there (the operator does).
seed_security_hub() {
  echo "== seeding the emulator: Security Hub enabled in account $1"
  ACCOUNT=$1 .tools/moto/bin/python - <<'PY'
import os
import boto3

client = boto3.Session(region_name="us-east-1").client("securityhub", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
client.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", os.environ["ACCOUNT"]))
client.enable_security_hub()
PY
}

# seed_roles: the IAM roles examples/ names (its credentials, key administrators, operators and
# auditors), made in their accounts as each account's administrator makes them before trailkeeper
# runs: S3 and KMS refuse a bucket or key policy naming a role that does not exist, and so does the
# emulator. A role named for every account of a set (`{{accountId}}`) is made in each account of
# the Organization. Run after seed_org_trail.
# https://repost.aws/knowledge-center/s3-invalid-principal-in-policy-error
seed_roles() {
  echo "== seeding the emulator: the IAM roles examples/ names"
  # trailkeeper's own role in each account carries what `trailkeeper iam-policy` prints for it (the
  # emulator judges a role's own policies where AWS does: iam:PassRole, kms:Decrypt for CloudTrail).
  local tk
  tk=$(scripts/ensure-bin.sh)
  TK_ACCOUNT_POLICY=$("$tk" iam-policy -f examples/ --document account) \
  TK_ARCHIVE_POLICY=$("$tk" iam-policy -f examples/ --document archive) \
  .tools/moto/bin/python - <<'PY'
import glob, json, os, re
import boto3

session = boto3.Session(region_name="us-east-1")

def client(service, account):
    c = session.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return c

named = set()
for path in sorted(glob.glob("examples/*.yaml")):
    named.update(re.findall(r"arn:aws:iam::(\d{12}|\{\{accountId\}\}):role/([\w+=,.@/-]+)", open(path).read()))
organization = [a["Id"] for a in client("organizations", "444455556666").list_accounts()["Accounts"]]
archives = set()
for path in sorted(glob.glob("examples/*.yaml")):
    archives.update(re.findall(r"kind: LogArchive\n(?:.*\n)*?\s+accountId: \"?(\d{12})", open(path).read()))
made = 0
for account, name in sorted(named):
    for target in (organization if account == "{{accountId}}" else [account]):
        path, _, role = name.rpartition("/")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"AWS": f"arn:aws:iam::{target}:root"}}]}
        iam = client("iam", target)
        try:
            iam.create_role(RoleName=role, Path=f"/{path}/" if path else "/", AssumeRolePolicyDocument=json.dumps(trust))
            made += 1
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        if name == "trailkeeper":
            policy = json.loads(os.environ["TK_ARCHIVE_POLICY" if target in archives else "TK_ACCOUNT_POLICY"])
            # moto's policy validator refuses an S3 ARN with a region (arn:aws:s3:*:*:job/*), which
            # IAM accepts for S3 Batch Operations jobs: scoped to "*" here (a moto bug).
            for statement in policy["Statement"]:
                resources = statement.get("Resource")
                if isinstance(resources, str) and ":job/" in resources or isinstance(resources, list) and any(":job/" in r for r in resources):
                    statement["Resource"] = "*"
            iam.put_role_policy(RoleName=role, PolicyName="trailkeeper", PolicyDocument=json.dumps(policy, separators=(",", ":")))
print(f"   {made} roles made")
PY
}

# emulator_examples DIR: examples/ copied into DIR with instance logs and Config rules off: moto
# has no SSM associations and no Config compliance API (against AWS, use examples/ as they are).
# The recorders a baseline keeps (configRules.createRecorder) stay: the emulator has those.
emulator_examples() {
  .tools/moto/bin/python - "$1" examples/*.yaml <<'PY'
import os, sys
import yaml

out = sys.argv[1]
for path in sys.argv[2:]:
    documents = [d for d in yaml.safe_load_all(open(path)) if d is not None]
    for d in documents:
        if d.get("kind") == "LoggingBaseline":
            spec = d["spec"]
            spec.setdefault("instanceLogs", {})["enabled"] = False
            spec.setdefault("configRules", {})["enabled"] = False
    with open(os.path.join(out, os.path.basename(path)), "w") as f:
        yaml.safe_dump_all(documents, f, sort_keys=False)
PY
}

# seed_trail_log_group: what examples/policies.yaml's TrailPolicy `payments` names in the payments
# account (111122223333), made as its administrator makes them: the trail's CloudWatch Logs group,
# and the role CloudTrail writes to it with (trusting cloudtrail.amazonaws.com, allowed
# CreateLogStream and PutLogEvents on that group).
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html
seed_trail_log_group() {
  echo "== seeding the emulator: the payments account's CloudWatch Logs group for its trail"
  .tools/moto/bin/python - <<'PY'
import json, os
import boto3

ACCOUNT, REGION, GROUP = "111122223333", "us-east-1", "aws-cloudtrail-logs-payments"
session = boto3.Session(region_name=REGION)

def client(service):
    c = session.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", ACCOUNT))
    return c

client("logs").create_log_group(logGroupName=GROUP)
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}
client("iam").create_role(RoleName="cloudtrail-to-cloudwatch-logs", AssumeRolePolicyDocument=json.dumps(trust))
client("iam").put_role_policy(RoleName="cloudtrail-to-cloudwatch-logs", PolicyName="deliver", PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:log-stream:*"}]}))
print(f"   log group {GROUP} and role cloudtrail-to-cloudwatch-logs in {ACCOUNT}")
PY
}

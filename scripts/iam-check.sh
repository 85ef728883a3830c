#!/usr/bin/env bash
# Judges the IAM policies trailkeeper generates (`trailkeeper iam-policy`) with independent
# checkers, parliament (community auditors included) and cloudsplaining, installed into
# .tools/iam-check when missing. Fails on a high-severity finding that deploy/iam-findings-allowed.json
# does not accept with a reason. Checks the defaults, a policy with user-named resources, the
# log-archive account's policy and the trust policy of the account role.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/iam-check"
if [ ! -x "$venv/bin/parliament" ] || [ ! -x "$venv/bin/cloudsplaining" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "parliament==1.6.4" "cloudsplaining==0.9.1" >&2
fi
# The binary of this checkout, never a stale one (scripts/ensure-bin.sh).
bin=$("$root/scripts/ensure-bin.sh")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" iam-policy --document account > "$out/account.json"
"$bin" iam-policy --document operator > "$out/operator.json"
"$bin" iam-policy --document archive > "$out/archive.json"
"$bin" iam-policy --document trust --operator-role-arn arn:aws:iam::999988887777:role/trailkeeper-operator \
  --external-id trailkeeper-example > "$out/trust.json"
"$bin" iam-policy --document account --bucket my-org-trail-logs \
  --kms-key-arn arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab \
  --existing-trail-arn arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail > "$out/account-named.json"
"$venv/bin/python" "$root/scripts/iam_check.py" "$root/deploy/iam-findings-allowed.json" \
  "$out/account.json" "$out/operator.json" "$out/account-named.json" "$out/archive.json" \
  --trust "$out/trust.json" arn:aws:iam::999988887777:role/trailkeeper-operator trailkeeper-example

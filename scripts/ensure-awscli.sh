#!/usr/bin/env bash
# Installs awscli (AWS's reference implementation of CloudTrail log file integrity validation,
# `aws cloudtrail validate-logs`) into .tools/awscli when it is missing, and prints the path of its
# `aws` executable. tests/verify.rs runs it against the emulator on the same objects as
# `trailkeeper verify` and requires both to report the same files. Its own venv: awscli pins
# botocore, which moto's venv must stay free to choose. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/awscli"
awscli_version="${TRAILKEEPER_AWSCLI_VERSION:-1.46.3}"
if [ ! -x "$venv/bin/aws" ] || ! "$venv/bin/aws" --version 2>&1 | grep -q "aws-cli/$awscli_version "; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "awscli==$awscli_version" >&2
fi
echo "$venv/bin/aws"

#!/usr/bin/env bash
# Installs the moto server (the AWS emulator the tests run against) into .tools/moto when it is missing,
# and prints the path of the moto_server executable. Idempotent; safe to run from CI and from the test harness.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/moto"
moto_version="${TRAILKEEPER_MOTO_VERSION:-5.2.5}"
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version" >&2
fi
# CBOR for the protocol of aws-sdk-cloudwatch, which moto does not speak (scripts/emulator/trailkeeper_cbor.py).
if ! "$venv/bin/python" -c 'import cbor2' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cbor2==5.6.5" >&2
fi
"$venv/bin/python" "$root/scripts/patch-moto.py" >&2
echo "$venv/bin/moto_server"

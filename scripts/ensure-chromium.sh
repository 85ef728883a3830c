#!/usr/bin/env bash
# Provides headless Chromium for the HTML report's screenshot test (Debian's chromium package) and
# prints its path. Test tooling only.
set -euo pipefail
if ! command -v chromium >/dev/null; then
  echo "ensure-chromium: installing chromium from Debian" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; then
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
  fi
fi
command -v chromium

#!/usr/bin/env bash
# Builds kstatus (tools/kstatus: sigs.k8s.io/cli-utils/pkg/kstatus, the status library Flux's health
# checks and Helm 4's --wait use) into .tools/kstatus and prints its path. Test tooling only, in Go
# as kube-apiserver is; rebuilt when its source is newer than the binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/kstatus/kstatus"
if [ ! -x "$bin" ] || [ -n "$(find "$root/tools/kstatus" -newer "$bin" -type f)" ]; then
  command -v go >/dev/null || { echo "ensure-kstatus: Go is needed to build kstatus" >&2; exit 1; }
  echo "ensure-kstatus: building kstatus" >&2
  mkdir -p "$(dirname "$bin")"
  (cd "$root/tools/kstatus" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$bin.tmp" . >&2)
  mv "$bin.tmp" "$bin"
fi
echo "$bin"

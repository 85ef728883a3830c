#!/usr/bin/env bash
# Provides a real Kubernetes control plane for the tests: kube-apiserver built from the Go module
# k8s.io/kubernetes (tools/kube-apiserver pins the version) and etcd from Debian's etcd-server.
# Both land in .tools/kube/<version>/bin, which is printed. Idempotent: a second run reuses the
# binaries (and the Go module and build caches make a rebuild after a version change quick).
# With --kubectl it also builds kubectl of the same version (for the demo), unless one is on PATH.
# Go is test tooling only; the product is Rust.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
module="$root/tools/kube-apiserver"
version=$(sed -n 's/^\tk8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$module/go.mod")
[ -n "$version" ] || { echo "ensure-kube: no k8s.io/kubernetes version in $module/go.mod" >&2; exit 1; }
bin="$root/.tools/kube/$version/bin"
mkdir -p "$bin"
minor=$(echo "$version" | cut -d. -f2)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

build() { # build PACKAGE OUTPUT
  command -v go >/dev/null || { echo "ensure-kube: Go is needed to build $2" >&2; exit 1; }
  echo "ensure-kube: building $2 $version (a cold build takes 10-15 minutes)" >&2
  (cd "$module" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$bin/$2.tmp" "$1" >&2)
  mv "$bin/$2.tmp" "$bin/$2"
}

[ -x "$bin/kube-apiserver" ] || build . kube-apiserver

if [ ! -x "$bin/etcd" ]; then
  if ! command -v etcd >/dev/null; then
    echo "ensure-kube: installing etcd-server from Debian" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >&2; then
      apt-get update -q >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >&2
    fi
  fi
  ln -sf "$(command -v etcd)" "$bin/etcd"
fi

if [ "${1:-}" = "--kubectl" ] && [ ! -x "$bin/kubectl" ]; then
  if command -v kubectl >/dev/null; then
    ln -sf "$(command -v kubectl)" "$bin/kubectl"
  else
    build ./kubectl kubectl
  fi
fi
echo "$bin"

#!/usr/bin/env bash
# Builds a release into dist/, up to the point of publishing:
#   dist/trailkeeper-VERSION-x86_64-unknown-linux-gnu.tar.gz (and aarch64 when its Rust target and
#   linker are installed: rustup target add aarch64-unknown-linux-gnu; apt-get install gcc-aarch64-linux-gnu),
#   dist/trailkeeper-VERSION.tgz (the chart, version and appVersion = VERSION, so chart and image tag
#   move together), dist/SHA256SUMS.
# VERSION is Cargo.toml's version; the chart must carry the same (checked). Publishing is the next
# step, by hand or by the release job: upload dist/ to the release, push the image built from the
# Dockerfile as IMAGE:VERSION, and `helm push dist/trailkeeper-VERSION.tgz oci://REGISTRY/charts`.
# Usage: scripts/release.sh [--chart-only]
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
chart_version=$(sed -n 's/^version: *//p' charts/trailkeeper/Chart.yaml)
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/trailkeeper/Chart.yaml)
if [ "$chart_version" != "$version" ] || [ "$app_version" != "$version" ]; then
  echo "release: Cargo.toml says $version, the chart version $chart_version and appVersion $app_version: make them equal" >&2
  exit 1
fi
rm -rf dist && mkdir -p dist
if [ "${1:-}" != "--chart-only" ]; then
  for target in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
      echo "release: skipping $target (its Rust target is not installed)" >&2
      continue
    fi
    linker_env=""
    if [ "$target" = aarch64-unknown-linux-gnu ]; then
      command -v aarch64-linux-gnu-gcc >/dev/null || { echo "release: skipping $target (no aarch64-linux-gnu-gcc)" >&2; continue; }
      linker_env="CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc"
    fi
    env $linker_env cargo build --release --locked --bin trailkeeper --target "$target"
    staging=$(mktemp -d)
    cp "target/$target/release/trailkeeper" README.md "$staging/"
    tar -czf "dist/trailkeeper-$version-$target.tar.gz" -C "$staging" trailkeeper README.md
    rm -rf "$staging"
  done
fi
scripts/ensure-chart-tools.sh
.tools/helm/helm package charts/trailkeeper --destination dist >/dev/null
(cd dist && sha256sum -- * > SHA256SUMS)
echo "release $version:"
ls -1 dist

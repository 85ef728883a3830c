#!/usr/bin/env bash
# No container engine runs on CI's machines, so the image cannot be built there. This check does
# the next best thing: it replays the build stage of the Dockerfile in an empty folder, copying
# only what each COPY names and running each RUN, with `cargo build --release` replaced by
# `cargo check` into CI's target/ or $CARGO_TARGET_DIR (the same manifest and source checks,
# without code generation).
# A manifest that needs a file the Dockerfile does not copy (a bench, a test) fails here as it
# would in `docker build`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
stage=0
steps=0
dir="$work"
while IFS= read -r line || [ -n "$line" ]; do
  # Join continued lines.
  while [[ "$line" == *\\ ]]; do
    IFS= read -r next
    line="${line%\\} ${next}"
  done
  case "$line" in
    FROM*) stage=$((stage + 1)); [ "$stage" -le 1 ] || break ;;
    WORKDIR*) dir="$work${line#WORKDIR }"; mkdir -p "$dir" ;;
    COPY\ --from*) ;;
    COPY*)
      read -ra parts <<<"${line#COPY }"
      dest="${parts[-1]}"
      unset 'parts[-1]'
      for src in "${parts[@]}"; do
        if [[ "$dest" == */ ]] && [ "${#parts[@]}" -gt 1 ]; then
          cp -r "$root/$src" "$dir/$dest"
        else
          mkdir -p "$(dirname "$dir/$dest")"
          cp -r "$root/$src" "$dir/${dest%/}"
        fi
      done ;;
    RUN*)
      cmd="${line#RUN }"
      cmd="${cmd//--release /}"
      cmd="${cmd//cargo build/cargo check}"
      echo "dockerfile-check: RUN $cmd" >&2
      (cd "$dir" && bash -c "$cmd") >&2
      steps=$((steps + 1)) ;;
  esac
done < "$root/Dockerfile"
[ "$steps" -gt 0 ] || { echo "dockerfile-check: no RUN step in the build stage" >&2; exit 1; }
echo "dockerfile-check: the build stage builds from what the Dockerfile copies ($steps RUN steps)"

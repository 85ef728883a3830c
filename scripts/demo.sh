#!/usr/bin/env bash
# The one-shot commands on a machine with no AWS account: starts the AWS emulator on a free
# loopback port, validates examples/, plans (changes pending, exit 2), applies (two accounts),
# plans again (in sync, exit 0) and prints the accounts' CIS evidence with `trailkeeper report`.
# The operator itself, on a local control plane: scripts/demo-operator.sh.
# DEMO_PORT=N puts the emulator on port N (default: a free port). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo-lib.sh
demo_pids=()
demo=$(mktemp -d)
demo_log_dir=$demo
trap 'kill "${demo_pids[@]}" 2>/dev/null || true; rm -rf "$demo"' EXIT
start_moto
seed_org_trail
# The trail's log-group role first: it trusts CloudTrail, as seed_roles's would not.
seed_trail_log_group
seed_roles
seed_security_hub 111122223333

tk=$(scripts/ensure-bin.sh)
echo "== trailkeeper validate -f examples/"
$tk validate -f examples/
emulator_examples "$demo"
echo "== trailkeeper plan -f examples/   (a fresh emulator: changes pending, exit 2)"
rc=0; $tk plan -f "$demo" || rc=$?
[ "$rc" -eq 2 ] || { echo "demo: plan on a fresh emulator exited $rc, expected 2 (changes pending)" >&2; exit 1; }
echo "== trailkeeper apply -f examples/"
$tk apply -f "$demo"
echo "== trailkeeper plan -f examples/   (in sync: exit 0)"
$tk plan -f "$demo"
echo "== trailkeeper report -f examples/   (CIS AWS Foundations Benchmark v3.0.0, section 3)"
$tk report -f "$demo"
echo "== trailkeeper report -f examples/ -o html > report.html   (one page for an auditor)"
$tk report -f "$demo" -o html > "$demo/report.html"
grep -q '<table id="matrix">' "$demo/report.html"
chromium_bin=${TRAILKEEPER_CHROMIUM:-$(command -v chromium || true)}
if [ -n "$chromium_bin" ]; then
  # What an auditor sees: the matrix in a screenshot of headless Chromium, and no network request.
  CHROMIUM=$chromium_bin python3 scripts/report-screenshot.py "$demo/report.html" "$demo/report.png"
else
  echo "(no chromium: the page's screenshot check is skipped; scripts/ensure-chromium.sh installs it)"
fi
[ -z "${DEMO_KEEP:-}" ] || cp "$demo/report.html" "${DEMO_REPORT:-/tmp/trailkeeper-report.html}"
[ -z "${DEMO_KEEP:-}" ] || [ ! -f "$demo/report.png" ] || cp "$demo/report.png" "${DEMO_SCREENSHOT:-/tmp/trailkeeper-report.png}"
cat <<NEXT

== The demo ran to its end. What to look at next:
   - the same commands against your own accounts: trailkeeper plan -f examples/ (AWS_PROFILE=...),
     then trailkeeper apply, or run the operator (scripts/demo-operator.sh shows it locally);
   - the evidence as JSON: trailkeeper report -f examples/ -o json; as one page: -o html;
   - a retention change as a reviewer sees it: trailkeeper diff --base OLD_DIR --head NEW_DIR -o markdown
     (docs/retention-reviews.md);
   - what trailkeeper writes and never writes: README.md.
NEXT

"""Lints the chart's Grafana dashboard with the rules of Grafana's dashboard-linter (which the Go
module proxy here does not serve), reimplemented: a Prometheus `datasource` variable; `job` and
`instance` variables, multi-valued with All; every panel and target on `${datasource}`; every panel
with a title, a description and a unit Grafana knows; every target's PromQL valid (checked by
promtool, as a recording rule, with the variables substituted), filtering on job=~"$job" and
instance=~"$instance", and rate()/increase() over $__rate_interval. Also checks that ids and grid
positions do not collide.

Usage: dashboard_lint.py DASHBOARD_JSON   (needs promtool)
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

# The units the panels use, by Grafana's ids (a subset of its unit catalogue).
KNOWN_UNITS = {"none", "short", "s", "ms", "reqps", "ops", "percent", "percentunit", "bytes", "decbytes"}


def main():
    path = pathlib.Path(sys.argv[1])
    dash = json.loads(path.read_text())
    problems = []
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("template-datasource-rule: no Prometheus datasource variable named 'datasource'")
    for name in ("job", "instance"):
        v = variables.get(name)
        if not v or not v.get("multi") or not v.get("includeAll"):
            problems.append(f"template-{name}-rule: variable '{name}' missing, or not multi-valued with All")
        elif v.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"template-{name}-rule: variable '{name}' not on ${{datasource}}")
    ids, cells, rules = set(), set(), []
    for panel in dash.get("panels", []):
        title = panel.get("title", "")
        where = f"panel {panel.get('id')} '{title}'"
        if panel.get("id") in ids:
            problems.append(f"{where}: id used twice")
        ids.add(panel.get("id"))
        g = panel.get("gridPos", {})
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    problems.append(f"{where}: overlaps another panel at {x},{y}")
                    break
                cells.add((x, y))
        if not title or not panel.get("description"):
            problems.append(f"panel-title-description-rule: {where} lacks a title or description")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"panel-datasource-rule: {where} not on ${{datasource}}")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if unit not in KNOWN_UNITS:
            problems.append(f"panel-units-rule: {where} has unit {unit!r}")
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            if target.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"target-datasource-rule: {where} {target.get('refId')} not on ${{datasource}}")
            for selector in re.findall(r"trailkeeper_[a-z_]+(\{[^}]*\})?", expr):
                if 'job=~"$job"' not in selector or 'instance=~"$instance"' not in selector:
                    problems.append(f"target-job-rule/target-instance-rule: {where}: a selector without job=~\"$job\" and instance=~\"$instance\": {expr}")
                    break
            for window in re.findall(r"\b(?:rate|increase|irate)\([^\[]*\[([^\]]*)\]", expr):
                if window != "$__rate_interval":
                    problems.append(f"target-rate-interval-rule: {where}: [{window}] instead of [$__rate_interval]")
            concrete = expr.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*")
            rules.append({"record": f"lint:panel{panel.get('id')}:{target.get('refId')}", "expr": concrete})
    with tempfile.TemporaryDirectory() as tmp:
        rules_file = pathlib.Path(tmp) / "panels.json"
        rules_file.write_text(json.dumps({"groups": [{"name": "panels", "rules": rules}]}))
        check = subprocess.run(["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True)
        if check.returncode != 0:
            problems.append(f"target-promql-rule: promtool: {check.stdout.strip()} {check.stderr.strip()}")
    for problem in problems:
        print(f"FAILED: {problem}")
    print(f"dashboard {path.name}: {len(dash.get('panels', []))} panels, {len(rules)} queries, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

"""Runs the Argo CD health checks of deploy/gitops/argocd/ against their health_test.yaml cases with a
Lua 5.1 interpreter (Argo CD runs gopher-lua, a Lua 5.1), as Argo CD's own resource_customizations
tests do: each testdata object is given to health.lua as `obj`, and the returned status and message
must be the expected ones. Also checks that every kind's health.lua is the one shared file, and that
argocd-cm-patch.yaml carries exactly it for every kind (`--write` regenerates the patch).

Usage: argocd_health_test.py [--write]   (needs lua5.1 and PyYAML)
"""
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARGOCD = ROOT / "deploy/gitops/argocd"
GROUP = ARGOCD / "resource_customizations/trailkeeper.io"
KINDS = ["LoggingBaseline", "LoggingBaselineSet", "TrailPolicy", "RetentionPolicy", "LogArchive"]


def lua_literal(value):
    """A Lua 5.1 expression for a YAML value (null drops out of tables, as in gopher-lua's objects)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isalnum() or c in " .,:;/-_()[]{}=+*'@#%<>!?" else "\\%d" % b
                             for c in value for b in c.encode()) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value if v is not None) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"no Lua literal for {value!r}")


def run(health, obj):
    program = f"obj = {lua_literal(obj)}\nlocal hs = (function()\n{health}\nend)()\nio.write(hs.status, '\\n', hs.message or '')\n"
    out = subprocess.run(["lua5.1", "-"], input=program, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    status, _, message = out.stdout.partition("\n")
    return status, message


def argocd_cm_patch(health):
    # Argo CD's key for a kind's health check: resource.customizations.health.<group>_<kind>.
    data = {f"resource.customizations.health.trailkeeper.io_{kind}": health for kind in KINDS}
    header = ("# Argo CD reads these health checks from its argocd-cm ConfigMap: merge this into it\n"
              "# (kubectl patch configmap argocd-cm -n argocd --patch-file argocd-cm-patch.yaml).\n"
              "# Generated from resource_customizations/ by scripts/argocd_health_test.py --write.\n")
    class Literal(str):
        pass
    yaml.add_representer(Literal, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|"))
    return header + yaml.dump({"data": {k: Literal(v) for k, v in data.items()}}, sort_keys=False, width=200)


def main():
    shared = (GROUP / KINDS[0] / "health.lua").read_text()
    failures, passed = [], 0
    for kind in KINDS:
        folder = GROUP / kind
        health = (folder / "health.lua").read_text()
        if health != shared:
            failures.append(f"{kind}/health.lua differs from {KINDS[0]}/health.lua (one file for every kind)")
        for case in yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]:
            obj = yaml.safe_load((folder / case["inputPath"]).read_text())
            want = (case["healthStatus"]["status"], case["healthStatus"]["message"])
            try:
                got = run(health, obj)
            except RuntimeError as error:
                failures.append(f"{kind} {case['inputPath']}: Lua error: {error}")
                continue
            if got != want:
                failures.append(f"{kind} {case['inputPath']}: expected {want}, got {got}")
            else:
                passed += 1
    patch = ARGOCD / "argocd-cm-patch.yaml"
    if "--write" in sys.argv:
        patch.write_text(argocd_cm_patch(shared))
    elif not patch.exists() or patch.read_text() != argocd_cm_patch(shared):
        failures.append(f"{patch.relative_to(ROOT)} is stale: run scripts/argocd_health_test.py --write")
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"argocd health: {passed} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

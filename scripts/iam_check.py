"""Judges the IAM policies trailkeeper generates with two independent checkers: parliament (with
its community auditors) and cloudsplaining. Fails on any finding of high severity, on any other
finding the allow-list does not accept with a reason, and on allow-list entries that no finding
matches any more (so the list cannot rot).

Usage: iam_check.py ALLOWED_JSON POLICY_JSON... [--trust TRUST_JSON OPERATOR_ROLE_ARN EXTERNAL_ID]

A role's trust policy is no identity policy (no Resource; parliament calls it malformed, and
cloudsplaining judges permissions), so it is judged here by the rules of the IAM user guide for a
cross-account role with an external id: every statement allows sts:AssumeRole only, to the operator's
role only (no wildcard, no account root), on the condition sts:ExternalId equals the given id.
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_third-party.html

deploy/iam-findings-allowed.json names each accepted finding by checker, policy file, issue (for
cloudsplaining: risk category and statement Sid) and says why it is accepted.
"""
import json
import pathlib
import sys

import parliament
from cloudsplaining.command.scan_policy_file import scan_policy
from parliament import analyze_policy_string, enhance_finding, override_config

# As parliament's command line does with --include-community-auditors: their issues' severities.
override_config(str(pathlib.Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"))

PARLIAMENT_HIGH = {"CRITICAL", "HIGH"}
# cloudsplaining's categories rated high severity in its reports.
CLOUDSPLAINING_HIGH = {"PrivilegeEscalation", "ResourceExposure", "CredentialsExposure"}
CLOUDSPLAINING_CATEGORIES = ("PrivilegeEscalation", "ResourceExposure", "CredentialsExposure",
                             "DataExfiltration", "InfrastructureModification")


def sids_granting(policy, action):
    sids = []
    for statement in policy.get("Statement", []):
        granted = statement.get("Action", [])
        granted = granted if isinstance(granted, list) else [granted]
        if action.lower() in [g.lower() for g in granted]:
            sids.append(statement.get("Sid", ""))
    return sids or [""]


def trust_problems(policy, operator_role_arn, external_id):
    """What in a trust policy admits more than the operator's role with its external id."""
    problems = []
    statements = policy.get("Statement", [])
    if not statements:
        problems.append("no statement")
    for st in statements if isinstance(statements, list) else [statements]:
        sid = st.get("Sid", "?")
        if st.get("Effect") != "Allow":
            continue
        actions = st.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if [a.lower() for a in actions] != ["sts:assumerole"] or "NotAction" in st:
            problems.append(f"statement {sid} allows {actions}, not sts:AssumeRole alone")
        principal = st.get("Principal", {})
        aws = principal.get("AWS", []) if isinstance(principal, dict) else principal
        aws = aws if isinstance(aws, list) else [aws]
        if "NotPrincipal" in st or set(principal) - {"AWS"} or aws != [operator_role_arn]:
            problems.append(f"statement {sid} admits {principal}, not {operator_role_arn} alone")
        condition = st.get("Condition", {}).get("StringEquals", {})
        if condition.get("sts:ExternalId") != external_id:
            problems.append(f"statement {sid} does not require sts:ExternalId = {external_id}")
    return problems


def main():
    args = sys.argv[1:]
    trust = None
    if "--trust" in args:
        at = args.index("--trust")
        trust, args = args[at + 1:at + 4], args[:at] + args[at + 4:]
    allowed_path, *files = args
    allowed = json.loads(pathlib.Path(allowed_path).read_text())["allowed"]
    keys = [(a["checker"], a["policy"], a["issue"]) for a in allowed]
    used = set()
    failures, reported = [], []

    def judge(key, high, text):
        reported.append(text)
        if high:
            failures.append(f"high severity: {text}")
        elif key in keys:
            used.add(keys.index(key))
        else:
            failures.append(f"not accepted by {allowed_path}: {text}")

    for file in files:
        name = pathlib.Path(file).name
        text = pathlib.Path(file).read_text()
        policy = json.loads(text)
        for finding in analyze_policy_string(text, include_community_auditors=True).findings:
            finding = enhance_finding(finding)
            severity = (finding.severity or "").upper()
            judge(("parliament", name, finding.issue), severity in PARLIAMENT_HIGH,
                  f"parliament {severity} {name} {finding.issue}: {finding.detail or finding.location}")
        results = scan_policy(policy)
        for category in CLOUDSPLAINING_CATEGORIES:
            entry = results.get(category) or {}
            findings = entry.get("findings", []) if isinstance(entry, dict) else entry
            actions = []
            for f in findings:
                if isinstance(f, dict):
                    actions.extend(f.get("actions", []) or [f.get("action", f.get("type", str(f)))])
                else:
                    actions.append(f)
            for action in actions:
                for sid in sids_granting(policy, str(action)):
                    judge(("cloudsplaining", name, f"{category}:{sid}"), category in CLOUDSPLAINING_HIGH,
                          f"cloudsplaining {category} {name} {action} (statement {sid or '?'})")
    for line in sorted(set(reported)):
        print(line)
    if trust:
        trust_file, operator_role_arn, external_id = trust
        for problem in trust_problems(json.loads(pathlib.Path(trust_file).read_text()), operator_role_arn, external_id):
            failures.append(f"trust policy {pathlib.Path(trust_file).name}: {problem}")
    for i, a in enumerate(allowed):
        if i not in used:
            failures.append(f"allow-list entry matches no finding any more: {a}")
    if failures:
        print("\n".join(["", "IAM check failed:"] + sorted(set(failures))), file=sys.stderr)
        sys.exit(1)
    print(f"IAM check: {len(files)} policies{' and the trust policy' if trust else ''}, no high-severity finding, {len(used)} kinds of finding accepted with reasons")


if __name__ == "__main__":
    main()

"""IAM policy evaluation as AWS documents it, for the test emulator and the tests (pure Python, no
moto: `python3 scripts/emulator/iam_policy.py` answers requests on stdin, see `main`).

One policy document is judged for one request: explicit Deny wins, then an Allow, else an
implicit deny (IAM user guide, "Policy evaluation logic":
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).

A statement applies when its principal, action, resource and every condition hold:
- Principal / NotPrincipal: "*", an account (its id or its root ARN: every principal of the
  account), a role or user ARN (and the sessions of that role), a service.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
- Action / NotAction: case-insensitive, `*` and `?` wildcards.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
- Resource / NotResource: case-sensitive, `*` and `?` wildcards, policy variables.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- Condition: every operator block and every key in it must hold (AND); the values of one key
  are alternatives (OR). A key absent from the request makes a condition false, except for the
  negated operators (StringNotEquals, StringNotLike, ArnNotEquals, ArnNotLike, NumericNotEquals,
  DateNotEquals, NotIpAddress), which are then true; ...IfExists is true when the key is absent;
  Null tests presence; ForAnyValue / ForAllValues compare sets (ForAllValues holds on an absent
  key or an empty set, ForAnyValue does not).
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
- Policy variables `${key}` (and `${key, 'default'}`, `${*}`, `${?}`, `${$}`) in Resource and in
  condition values of the string and ARN operators; a variable whose key is absent (and has no
  default) makes that value match nothing.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html

Not modelled: permissions boundaries, SCPs/RCPs and session policies (each is one more policy the
caller judges separately with this function).
"""
import base64
import datetime
import ipaddress
import json
import re
import sys

ALLOW, DENY, IMPLICIT_DENY = "Allow", "Deny", "ImplicitDeny"

NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
           "NumericNotEquals", "DateNotEquals", "NotIpAddress"}


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _glob(pattern, value, ignore_case=False):
    """`*` any run of characters (`/` and `:` included), `?` one character; nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _substitute(text, context):
    """`text` with its policy variables replaced from `context`, and the text's wildcards kept;
    None when a variable has no value. Substituted values are literal (their `*` matches `*`)."""
    if not isinstance(text, str) or "${" not in text:
        return text
    missing = False

    def value_of(match):
        nonlocal missing
        inner = match.group(1).strip()
        if inner in ("*", "?", "$"):
            return "\0" + inner  # a literal character, marked so that _glob does not expand it
        key, _, default = inner.partition(",")
        found = context.get(key.strip())
        if isinstance(found, list):
            found = found[0] if len(found) == 1 else None
        if found is None:
            default = default.strip()
            if len(default) >= 2 and default[0] == default[-1] == "'":
                return default[1:-1].replace("*", "\0*").replace("?", "\0?")
            missing = True
            return ""
        return str(found).replace("*", "\0*").replace("?", "\0?")

    out = _VARIABLE.sub(value_of, text)
    return None if missing else out


def _match_with_literals(pattern, value, ignore_case=False):
    """_glob where `\\0x` stands for a literal x (from a policy variable)."""
    parts, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\0" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.fullmatch("".join(parts), value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _literal(text):
    return text.replace("\0", "") if isinstance(text, str) else text


def _arn_like(pattern, value):
    """ArnLike: the six colon-separated parts matched one by one (the last takes the rest)."""
    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return False
    return all(_match_with_literals(p, v) for p, v in zip(p_parts, v_parts))


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _date(value):
    """ISO 8601 or epoch seconds, as a UTC timestamp."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value)):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def _string(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _positive_match(op, expected, actual, context):
    """Whether the single context value `actual` matches the single policy value `expected` for
    the positive form of `op`."""
    if op in ("StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"):
        pattern = _substitute(_string(expected), context)
        if pattern is None:
            return False
        actual = _string(actual)
        if op == "StringEquals":
            return _literal(pattern) == actual
        if op == "StringEqualsIgnoreCase":
            return _literal(pattern).lower() == actual.lower()
        if op == "StringLike":
            return _match_with_literals(pattern, actual)
        return _arn_like(pattern, actual)
    if op == "NumericEquals":
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and a == e
    if op in ("NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals"):
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            return False
        return {"NumericLessThan": a < e, "NumericLessThanEquals": a <= e,
                "NumericGreaterThan": a > e, "NumericGreaterThanEquals": a >= e}[op]
    if op == "DateEquals":
        a, e = _date(actual), _date(expected)
        return a is not None and e is not None and a == e
    if op in ("DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals"):
        a, e = _date(actual), _date(expected)
        if a is None or e is None:
            return False
        return {"DateLessThan": a < e, "DateLessThanEquals": a <= e,
                "DateGreaterThan": a > e, "DateGreaterThanEquals": a >= e}[op]
    if op == "Bool":
        return _string(actual).lower() == _string(expected).lower()
    if op == "BinaryEquals":
        try:
            return base64.b64decode(_string(expected)) == (
                actual if isinstance(actual, bytes) else base64.b64decode(_string(actual)))
        except ValueError:
            return False
    if op == "IpAddress":
        try:
            return ipaddress.ip_address(_string(actual)) in ipaddress.ip_network(_string(expected), strict=False)
        except ValueError:
            return False
    raise ValueError(f"unknown condition operator {op}")


_POSITIVE = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
             "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
             "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals", "NotIpAddress": "IpAddress"}


def _value_matches(op, expected_values, actual, context):
    """One context value against the policy's values: any of them (positive operators), none of
    them (negated operators)."""
    if op in NEGATED:
        positive = _POSITIVE[op]
        return not any(_positive_match(positive, e, actual, context) for e in expected_values)
    return any(_positive_match(op, e, actual, context) for e in expected_values)


def _lookup(context, key):
    """Condition key names are not case-sensitive ("Condition element": "Condition key names are
    not case-sensitive"): (present, value)."""
    if key in context:
        return context[key] is not None, context[key]
    lowered = key.lower()
    for k, v in context.items():
        if k.lower() == lowered:
            return v is not None, v
    return False, None


def condition_holds(operator, key, expected, context):
    """One key of one operator block."""
    expected_values = as_list(expected)
    set_operator, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op[: -len("IfExists")] if if_exists else op
    present, found = _lookup(context, key)
    actual_values = as_list(found) if present else []
    if op == "Null":
        wants_absent = any(_string(e).lower() == "true" for e in expected_values)
        absent = not present or actual_values == []
        return absent if wants_absent else not absent
    if set_operator == "ForAllValues":
        # True when every context value matches a policy value (and on an absent key or empty set).
        return all(_value_matches(op, expected_values, a, context) for a in actual_values)
    if set_operator == "ForAnyValue":
        return any(_value_matches(op, expected_values, a, context) for a in actual_values)
    if set_operator:
        raise ValueError(f"unknown set operator {set_operator}")
    if not present:
        return if_exists or op in NEGATED
    # A single-valued operator on a multivalued key: IAM evaluates it over the values as a set
    # (one match suffices for a positive operator, none may match for a negated one).
    if op in NEGATED:
        return all(_value_matches(op, expected_values, a, context) for a in actual_values)
    return any(_value_matches(op, expected_values, a, context) for a in actual_values)


def conditions_hold(statement, context):
    for operator, block in (statement.get("Condition") or {}).items():
        for key, expected in (block or {}).items():
            if not condition_holds(operator, key, expected, context):
                return False
    return True


def _account_of(arn):
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else None


def _session_role(arn):
    """arn:aws:sts::A:assumed-role/R/S -> arn:aws:iam::A:role/R (role paths are not in a session ARN)."""
    m = re.fullmatch(r"arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+", arn)
    return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}" if m else None


def principal_matches(element, principal):
    """Whether a Principal element names `principal`: {"AWS": arn} (a user, role or session ARN,
    or an account root), {"Service": name}, or "*" for anyone. None (an identity policy's caller)
    matches every statement that names no principal."""
    if element is None:
        return principal is None
    if element == "*":
        return True
    if principal is None or not isinstance(element, dict):
        return False
    for kind, names in element.items():
        names = as_list(names)
        if kind == "AWS" and "*" in names:
            return True  # {"AWS": "*"} is "*": every principal, services included
        if kind == "AWS" and "AWS" in principal:
            arn = principal["AWS"]
            account = _account_of(arn) if arn.startswith("arn:") else arn
            role = _session_role(arn)
            for name in names:
                if name == "*" or name == arn or name == account:
                    return True
                if name.startswith("arn:") and name.endswith(":root") and _account_of(name) == account:
                    return True
                if role is not None and name.split(":role/")[0] == role.split(":role/")[0] and (
                        name.rsplit("/", 1)[-1] == role.rsplit("/", 1)[-1]):
                    return True
        elif kind in principal and any(n == "*" or n == principal[kind] for n in names):
            return True
    return False


def _statement_applies(statement, principal, action, resource, context):
    if "Principal" in statement and not principal_matches(statement["Principal"], principal):
        return False
    if "NotPrincipal" in statement and principal_matches(statement["NotPrincipal"], principal):
        return False
    if "Action" in statement and not any(_glob(p, action, ignore_case=True) for p in as_list(statement["Action"])):
        return False
    if "NotAction" in statement and any(_glob(p, action, ignore_case=True) for p in as_list(statement["NotAction"])):
        return False
    if resource is not None:
        def matches(patterns):
            for p in as_list(patterns):
                p = _substitute(p, context)
                if p is not None and _match_with_literals(p, resource):
                    return True
            return False
        if "Resource" in statement and not matches(statement["Resource"]):
            return False
        if "NotResource" in statement and matches(statement["NotResource"]):
            return False
    return conditions_hold(statement, context)


def parse(policy):
    if isinstance(policy, (bytes, bytearray)):
        policy = policy.decode()
    if isinstance(policy, str):
        try:
            return json.loads(policy) if policy.strip() else {}
        except ValueError:
            return {}
    return policy or {}


def decide(policy, principal, action, resource, context):
    """ALLOW, DENY (an explicit Deny applies) or IMPLICIT_DENY of one policy for one request.
    `principal`: {"AWS": arn} | {"Service": name} | None (identity policies: their statements
    name no principal). `resource`: None for a trust policy, which names none."""
    allowed = False
    for statement in as_list(parse(policy).get("Statement")):
        if principal is None and ("Principal" in statement or "NotPrincipal" in statement):
            continue
        if not _statement_applies(statement, principal, action, resource, context or {}):
            continue
        if statement.get("Effect") == "Deny":
            return DENY
        if statement.get("Effect") == "Allow":
            allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def main():
    """stdin: {"policy": <document or text>, "requests": [{"principal": ..., "action": ...,
    "resource": ..., "context": {...}}, ...]}; stdout: the decisions, a JSON list."""
    request = json.load(sys.stdin)
    out = [
        decide(request["policy"], r.get("principal"), r["action"], r.get("resource"), r.get("context") or {})
        for r in request["requests"]
    ]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

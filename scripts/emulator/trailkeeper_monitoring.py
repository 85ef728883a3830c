"""CloudTrail -> CloudWatch Logs -> metric filters -> metrics -> alarms -> SNS (through KMS), in
the test emulator (loaded by trailkeeper_strict.install; test tooling only).

moto keeps metric filters, alarms and encrypted topics as data and never runs them: no event
reaches a trail's log group, no filter is evaluated, no alarm changes state by itself, and an
alarm's publish is never judged. Here:

- CloudTrail's events reach the trail's CloudWatch Logs group. Every event trailkeeper_events
  records (a successful mutating call of an account with a logging trail) is delivered to each
  logging trail that covers its Region (the trail's own, or every Region for a multi-region trail)
  and names CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn, into the log stream
  `{account}_CloudTrail_{region}`, created when missing. CloudTrail assumes the role: its trust
  policy must let cloudtrail.amazonaws.com sts:AssumeRole and its policies must allow
  logs:CreateLogStream and logs:PutLogEvents on that stream; otherwise nothing is delivered and
  GetTrailStatus reports LatestCloudWatchLogsDeliveryError.
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudwatch-log-group-log-stream-naming-for-cloudtrail.html
- Every log event put into a group (CloudTrail's, or a caller's PutLogEvents) is evaluated against
  the group's metric filters with CloudWatch Logs' filter pattern syntax; each match adds the
  filter's metric value (a number, or `$.field`) to its metric, and an event that matches nothing
  adds the default value when the filter has one.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
  JSON patterns (`{ ... }`): selectors `$.a.b`, `$.a[0]`; `=` and `!=` against a string (quoted,
  or bare when it is alphanumeric with `.`, `-`, `_`, `:`, `/`; "Strings that have unicode and
  other characters such as '@', '$', '\\' ... must be enclosed in double quotes") with `*` matching
  any text before or after a term ("Ev*ent will only match the actual string Ev*ent"); `=`, `!=`,
  `<`, `>`, `<=`, `>=` against a number; `IS NULL`, `NOT EXISTS`, `IS TRUE`, `IS FALSE`; a
  selector that points to an array or an object, or to nothing, makes a comparison false ("both
  {$.users = 1} and {$.users != 1} will fail to match a log event where users is an array");
  `&&`, `||` and parentheses, with "the syntax follows standard order of operations () > && > ||".
  Text patterns: terms that must all appear, `?term` (any of them), `-term` (none), quoted
  phrases. Space-delimited patterns (`[...]`) are accepted and not evaluated.
- PutMetricFilter (and TestMetricFilter) refuse a pattern that does not parse, as AWS does:
  InvalidParameterException "Invalid metric filter pattern". TestMetricFilter, which moto lacks,
  answers which messages a pattern matches.
  https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_TestMetricFilter.html
- After each metric data point, the alarms on that metric (no dimensions) are evaluated at once
  (CloudWatch does so every minute): the statistic over the last EvaluationPeriods x Period
  seconds against the threshold. An alarm that moves to ALARM (or is set there by SetAlarmState:
  "the action configured for the appropriate state is invoked") runs its SNS actions when its
  actions are enabled.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html
- An alarm's publish to a topic encrypted with a KMS key is judged by that key's policy: CloudWatch
  (cloudwatch.amazonaws.com) must be allowed kms:GenerateDataKey* and kms:Decrypt, with the request
  it sends: aws:SourceAccount and aws:SourceArn of the alarm, and SNS's encryption context
  `aws:sns:topicArn` (the topic's ARN). A key that is missing, not enabled, or whose policy refuses
  makes the action fail: the alarm's history records "Failed to execute action <topic>. Received
  error: ..." and nothing reaches the topic's subscriptions; else the alarm's message is published.
  https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
  https://docs.aws.amazon.com/sns/latest/dg/sns-enable-encryption-for-topic.html
  https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
  DescribeAlarmHistory, which moto lacks, returns that history (StateUpdate and Action items).
  Not modelled: the topic's own access policy (sns:Publish for CloudWatch).
"""
import datetime
import json
import re
import uuid

CLOUDTRAIL = "cloudtrail.amazonaws.com"
CLOUDWATCH = "cloudwatch.amazonaws.com"
INVALID_PATTERN = "Invalid metric filter pattern"


class PatternError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# Filter patterns (pure: no moto)

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<and>&&)
  | (?P<or>\|\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<selector>\$(?:\.[A-Za-z0-9_\-]+|\[\d+\])+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<word>[^\s()&|"=!<>{}]+)
""", re.VERBOSE)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_BARE = re.compile(r"[A-Za-z0-9_.\-*:/+]+")


def _tokens(text):
    out, i = [], 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise PatternError(f"unexpected {text[i:i + 10]!r}")
        kind = m.lastgroup
        if kind != "space":
            out.append((kind, m.group(kind)))
        i = m.end()
    return out


class _Parser:
    """Recursive descent with `()` > `&&` > `||` (FilterAndPatternSyntax, "JSON Compound
    Conditions")."""

    def __init__(self, tokens):
        self.tokens, self.i = tokens, 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (value and tok[1] != value):
            raise PatternError(f"expected {value or kind}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self):
        expr = self.or_expr()
        if self.peek()[0] is not None:
            raise PatternError(f"unexpected {self.peek()[1]!r}")
        return expr

    def or_expr(self):
        terms = [self.and_expr()]
        while self.peek()[0] == "or":
            self.take("or")
            terms.append(self.and_expr())
        return ("or", terms) if len(terms) > 1 else terms[0]

    def and_expr(self):
        terms = [self.unary()]
        while self.peek()[0] == "and":
            self.take("and")
            terms.append(self.unary())
        return ("and", terms) if len(terms) > 1 else terms[0]

    def unary(self):
        if self.peek()[0] == "lparen":
            self.take("lparen")
            expr = self.or_expr()
            self.take("rparen")
            return expr
        return self.comparison()

    def comparison(self):
        _, selector = self.take("selector")
        path = [int(p[1:-1]) if p.startswith("[") else p[1:] for p in re.findall(r"\.[^.\[]+|\[\d+\]", selector[1:])]
        kind, value = self.peek()
        if kind == "op":
            self.take("op")
            vkind, raw = self.peek()
            if vkind == "string":
                self.take("string")
                return ("cmp", path, value, ("string", re.sub(r"\\(.)", r"\1", raw[1:-1])))
            if vkind == "word":
                self.take("word")
                if _NUMBER.fullmatch(raw):
                    return ("cmp", path, value, ("number", raw))
                if value in ("<", ">", "<=", ">="):
                    raise PatternError(f"{value} needs a number, found {raw!r}")
                if not _BARE.fullmatch(raw):
                    raise PatternError(f"{raw!r} must be quoted")
                return ("cmp", path, value, ("string", raw))
            raise PatternError(f"a value after {value}, found {raw!r}")
        if kind == "word" and value == "IS":
            self.take("word")
            _, what = self.take("word")
            if what not in ("NULL", "TRUE", "FALSE"):
                raise PatternError(f"IS {what}")
            return ("is", path, what)
        if kind == "word" and value == "NOT":
            self.take("word")
            self.take("word", "EXISTS")
            return ("not_exists", path)
        raise PatternError(f"an operator after {selector}, found {value!r}")


def parse_pattern(pattern):
    """("json", tree) | ("terms", terms) | ("delimited", None) | ("all", None); PatternError when
    the pattern does not parse."""
    text = (pattern or "").strip()
    if not text:
        return ("all", None)
    if text.startswith("{"):
        if not text.endswith("}") or len(text) < 3:
            raise PatternError("a JSON pattern is enclosed in { }")
        return ("json", _Parser(_tokens(text[1:-1])).parse())
    if text.startswith("["):
        if not text.endswith("]"):
            raise PatternError("a space-delimited pattern is enclosed in [ ]")
        return ("delimited", None)
    if text.count('"') % 2:
        raise PatternError("unbalanced quotes")
    terms = []
    for prefix, quoted, bare in re.findall(r'([?-]?)(?:"([^"]*)"|([^\s"]+))', text):
        terms.append(prefix + (quoted if quoted else bare))
    return ("terms", terms)


def _resolve(document, path):
    """(found, value) of a selector's path in the parsed event."""
    value = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return False, None
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return False, None
            value = value[step]
    return True, value


def _wildcard(expected, actual):
    """`*` at the start or the end matches any text; elsewhere it is a literal `*`."""
    if expected == "*":
        return True
    lead, trail = expected.startswith("*"), expected.endswith("*") and len(expected) > 1
    core = expected[1 if lead else 0: len(expected) - 1 if trail else len(expected)]
    if lead and trail:
        return core in actual
    if lead:
        return actual.endswith(core)
    if trail:
        return actual.startswith(core)
    return actual == core


def _as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value)


def _compare(op, actual, expected):
    kind, raw = expected
    if isinstance(actual, (dict, list)):
        return False
    if kind == "number" and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        a, e = float(actual), float(raw)
        return {"=": a == e, "!=": a != e, "<": a < e, ">": a > e, "<=": a <= e, ">=": a >= e}[op]
    if op not in ("=", "!="):
        return False
    equal = _wildcard(raw, _as_text(actual))
    return equal if op == "=" else not equal


def _evaluate(tree, document):
    kind = tree[0]
    if kind == "or":
        return any(_evaluate(t, document) for t in tree[1])
    if kind == "and":
        return all(_evaluate(t, document) for t in tree[1])
    found, value = _resolve(document, tree[1])
    if kind == "not_exists":
        return not found
    if not found:
        return False
    if kind == "is":
        return {"NULL": value is None, "TRUE": value is True, "FALSE": value is False}[tree[2]]
    return _compare(tree[2], value, tree[3])


def matches(parsed, message):
    """Whether a log event's message matches a parsed pattern."""
    kind, body = parsed
    if kind == "all":
        return True
    if kind == "delimited":
        return False
    if kind == "json":
        try:
            document = json.loads(message)
        except ValueError:
            return False
        return isinstance(document, dict) and _evaluate(body, document)
    required = [t for t in body if not t.startswith(("?", "-"))]
    optional = [t[1:] for t in body if t.startswith("?")]
    excluded = [t[1:] for t in body if t.startswith("-")]
    return (all(t in message for t in required)
            and (not optional or any(t in message for t in optional))
            and not any(t in message for t in excluded))


def metric_value(transformation, message):
    """The value a match adds: the transformation's number, or the field `$.x` names."""
    raw = str(transformation.get("metricValue", "1"))
    if raw.startswith("$"):
        try:
            path = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", raw[2:])]
            found, value = _resolve(json.loads(message), path)
        except ValueError:
            return None
        return float(value) if found and isinstance(value, (int, float)) and not isinstance(value, bool) else None
    try:
        return float(raw)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# The chain, on moto's backends

def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _refused(message):
    from trailkeeper_strict import _Refused

    return _Refused("InvalidParameterException", message)


def _role_may_deliver(account, trail, group_arn, stream):
    """CloudTrail assumes the trail's role (trust of cloudtrail.amazonaws.com, with the trail as
    source) and needs logs:CreateLogStream and logs:PutLogEvents on the stream."""
    from moto.iam.models import iam_backends
    from trailkeeper_strict import allows, evaluate

    role_arn = trail.cw_role_arn or ""
    role_account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else account
    try:
        role = iam_backends[role_account]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return f"the role {role_arn} does not exist"
    context = {"aws:SourceAccount": account, "aws:SourceArn": trail.arn}
    if not allows(role.assume_role_policy_document, CLOUDTRAIL, "sts:AssumeRole", None, context):
        return f"the trust policy of {role_arn} does not let {CLOUDTRAIL} assume it"
    documents = list(role.policies.values())
    for policy in getattr(role, "managed_policies", {}).values():
        version = getattr(policy, "document", None) or getattr(policy, "default_version", None)
        documents.append(getattr(version, "document", version))
    stream_arn = f"{group_arn}:log-stream:{stream}"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        if not any(evaluate(d, lambda _: True, action, stream_arn, {}) for d in documents if d):
            return f"{role_arn} is not allowed {action} on {stream_arn}"
    return None


def deliver(account, region, record):
    """CloudTrail delivers `record` (an event of `account` in `region`) to the log group of every
    logging trail of the account that covers the region."""
    from moto.cloudtrail.models import cloudtrail_backends
    from moto.logs.models import logs_backends

    for backend in list(cloudtrail_backends[account].values()):
        for trail in list(backend.trails.values()):
            status = getattr(trail, "status", None)
            if not (status is not None and getattr(status, "is_logging", False)):
                continue
            if not (trail.is_multi_region or trail.region_name == region):
                continue
            group_arn = (trail.cw_log_group_arn or "").removesuffix(":*")
            if not group_arn or not trail.cw_role_arn:
                continue
            parts = group_arn.split(":", 6)
            if len(parts) < 7 or parts[4] != account:
                trail._tk_cw_error = f"{group_arn} is not a log group of {account}"
                continue
            group_region, group_name = parts[3], parts[6].removeprefix("log-group:")
            logs = logs_backends[account][group_region]
            group = logs.groups.get(group_name)
            stream = f"{account}_CloudTrail_{region}"
            error = "the log group does not exist" if group is None else _role_may_deliver(account, trail, group_arn, stream)
            if error:
                trail._tk_cw_error = error
                continue
            if stream not in group.streams:
                group.create_log_stream(stream)
            group.streams[stream].put_log_events([{
                "timestamp": int(_now().timestamp() * 1000),
                "message": json.dumps(record),
            }])
            trail._tk_cw_error = None
            trail._tk_cw_delivered = _now()


def _evaluate_filters(stream, events):
    """Each event against each metric filter of the stream's group: matches add the metric value,
    non-matches the default value (when the filter has one)."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.logs.models import logs_backends

    account, region, group = stream.account_id, stream.region, stream.log_group.name
    filters = [f for f in logs_backends[account][region].filters.metric_filters if f["logGroupName"] == group]
    touched = set()
    for f in filters:
        try:
            parsed = parse_pattern(f["filterPattern"])
        except PatternError:
            continue
        for t in f.get("metricTransformations") or []:
            values = []
            for event in events:
                message = event.get("message", "")
                if matches(parsed, message):
                    value = metric_value(t, message)
                elif t.get("defaultValue") is not None:
                    value = float(t["defaultValue"])
                else:
                    value = None
                if value is not None:
                    values.append(value)
            if values:
                cloudwatch_backends[account][region].put_metric_data(
                    t["metricNamespace"], [{"MetricName": t["metricName"], "Value": v} for v in values])
                touched.add((t["metricNamespace"], t["metricName"]))
    for namespace, name in touched:
        evaluate_alarms(account, region, namespace, name)


_STATISTICS = {
    "Sum": sum,
    "SampleCount": len,
    "Average": lambda v: sum(v) / len(v),
    "Minimum": min,
    "Maximum": max,
}
_COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda a, t: a >= t,
    "GreaterThanThreshold": lambda a, t: a > t,
    "LessThanThreshold": lambda a, t: a < t,
    "LessThanOrEqualToThreshold": lambda a, t: a <= t,
}


def _history(alarm, kind, summary, data=None):
    if not hasattr(alarm, "_tk_history"):
        alarm._tk_history = []
    alarm._tk_history.append({
        "AlarmName": alarm.name,
        "AlarmType": "MetricAlarm",
        "Timestamp": _now(),
        "HistoryItemType": kind,
        "HistorySummary": summary,
        "HistoryData": json.dumps(data or {}),
    })


def evaluate_alarms(account, region, namespace, name):
    """The alarms on the metric, evaluated now over their window."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account][region]
    now = _now().replace(tzinfo=None)
    for alarm in list(backend.alarms.values()):
        if alarm.namespace != namespace or alarm.metric_name != name or alarm.dimensions:
            continue
        window = datetime.timedelta(seconds=int(alarm.period or 60) * int(alarm.evaluation_periods or 1))
        values = [
            d.value for d in backend.metric_data
            if d.namespace == namespace and d.name == name and not d.dimensions and hasattr(d, "value")
            and now - window <= _naive(d.timestamp) <= now + datetime.timedelta(seconds=1)
        ]
        statistic = _STATISTICS.get(alarm.statistic or "")
        compare = _COMPARISONS.get(alarm.comparison_operator or "")
        if not values or statistic is None or compare is None:
            continue
        observed = float(statistic(values))
        if compare(observed, float(alarm.threshold)) and alarm.state_value != "ALARM":
            reason = (f"Threshold Crossed: 1 datapoint [{observed}] was {alarm.comparison_operator} "
                      f"the threshold ({float(alarm.threshold)}).")
            transition(alarm, account, region, "ALARM", reason)


def _naive(timestamp):
    return timestamp.replace(tzinfo=None) if timestamp.tzinfo else timestamp


def transition(alarm, account, region, state, reason):
    """The alarm moves to `state`; its actions for that state run when enabled."""
    old = alarm.state_value
    alarm.update_state(reason, json.dumps({"version": "1.0"}), state)
    _changed(alarm, account, region, old, state, reason)


def _changed(alarm, account, region, old, state, reason):
    """What follows a change of state: the history item, and the state's actions."""
    _history(alarm, "StateUpdate", f"Alarm updated from {old} to {state}",
             {"oldState": {"stateValue": old}, "newState": {"stateValue": state, "stateReason": reason}})
    if old == state or not alarm.actions_enabled:
        return
    actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
               "INSUFFICIENT_DATA": alarm.insufficient_data_actions}.get(state) or []
    for action in actions:
        if ":sns:" not in action:
            continue
        error = publish(alarm, account, region, action, old, state, reason)
        if error:
            _history(alarm, "Action", f'Failed to execute action {action}. Received error: "{error}"')
        else:
            _history(alarm, "Action", f"Successfully executed action {action}")


def _key_of(topic_account, topic_region, key_id):
    """(key, ARN) of a topic's KmsMasterKeyId (an ARN of any account, a key id or an alias of the
    topic's account and Region), or (None, key_id)."""
    from moto.kms.models import kms_backends
    from trailkeeper_strict import _key_home

    region, account = _key_home(key_id, topic_region, topic_account)
    backend = kms_backends[account][region]
    try:
        key = backend.keys[backend.any_id_to_key_id(key_id)]
    except Exception:
        return None, key_id
    return key, key.arn


def publish_request(alarm_arn, topic_arn):
    """What CloudWatch sends to KMS when an alarm publishes to an encrypted topic."""
    return {
        "aws:SourceAccount": alarm_arn.split(":")[4],
        "aws:SourceArn": alarm_arn,
        "kms:EncryptionContext:aws:sns:topicArn": topic_arn,
    }


def publish(alarm, account, region, topic_arn, old, state, reason):
    """CloudWatch publishes the alarm's notification; the error CloudWatch records, or None."""
    from moto.sns.models import sns_backends
    from trailkeeper_strict import allows

    parts = topic_arn.split(":")
    if len(parts) < 6:
        return f"Invalid topic ARN {topic_arn}"
    topic_account, topic_region = parts[4], parts[3]
    backend = sns_backends[topic_account][topic_region]
    topic = backend.topics.get(topic_arn)
    if topic is None:
        return f"Topic {topic_arn} does not exist (Service: AmazonSNS; Status Code: 404; Error Code: NotFound)"
    if topic.kms_master_key_id:
        key, key_arn = _key_of(topic_account, topic_region, topic.kms_master_key_id)
        context = publish_request(alarm.alarm_arn, topic_arn)
        usable = key is not None and key.key_state == "Enabled" and all(
            allows(key.policy, CLOUDWATCH, action, key_arn, context)
            for action in ("kms:GenerateDataKey", "kms:Decrypt"))
        if not usable:
            return (f"null (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException; "
                    f"Request ID: {uuid.uuid4()}; Proxy: null)")
    message = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "NewStateValue": state,
        "NewStateReason": reason,
        "StateChangeTime": _now().strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old,
        "Trigger": {"MetricName": alarm.metric_name, "Namespace": alarm.namespace,
                    "Statistic": (alarm.statistic or "").upper(), "Period": alarm.period,
                    "EvaluationPeriods": alarm.evaluation_periods, "Threshold": alarm.threshold,
                    "ComparisonOperator": alarm.comparison_operator},
    }
    backend.publish(json.dumps(message), arn=topic_arn, subject=f'{state}: "{alarm.name}" in {region}'[:100])
    return None


def install():
    """Wraps the moto backends the chain runs through. Idempotent."""
    import trailkeeper_events
    from moto.cloudtrail import responses as cloudtrail_responses
    from moto.cloudwatch import models as cloudwatch_models
    from moto.cloudwatch import responses as cloudwatch_responses
    from moto.core.responses import ActionResult
    from moto.logs import models as logs_models
    from moto.logs import responses as logs_responses

    if getattr(logs_models.LogStream, "_trailkeeper_monitoring", False):
        return
    logs_models.LogStream._trailkeeper_monitoring = True

    trailkeeper_events.RECORD_SINKS.append(deliver)

    put_log_events = logs_models.LogStream.put_log_events

    def evaluating_put_log_events(self, log_events):
        token = put_log_events(self, log_events)
        try:
            _evaluate_filters(self, log_events)
        except Exception as e:  # the emulator's bookkeeping never fails a call
            print(f"trailkeeper_monitoring: filters of {self.log_group.name}: {e}")
        return token

    logs_models.LogStream.put_log_events = evaluating_put_log_events

    put_metric_filter = logs_models.LogsBackend.put_metric_filter

    def parsing_put_metric_filter(self, filter_name, filter_pattern, log_group_name, metric_transformations):
        try:
            parse_pattern(filter_pattern)
        except PatternError:
            raise _refused(INVALID_PATTERN)
        return put_metric_filter(self, filter_name, filter_pattern, log_group_name, metric_transformations)

    logs_models.LogsBackend.put_metric_filter = parsing_put_metric_filter

    def test_metric_filter(self):
        pattern = self._get_param("filterPattern")
        try:
            parsed = parse_pattern(pattern)
        except PatternError:
            raise _refused(INVALID_PATTERN)
        messages = self._get_param("logEventMessages") or []
        found = [{"eventNumber": i + 1, "eventMessage": m, "extractedValues": {}}
                 for i, m in enumerate(messages) if matches(parsed, m)]
        return json.dumps({"matches": found})

    logs_responses.LogsResponse.test_metric_filter = test_metric_filter

    set_alarm_state = cloudwatch_models.CloudWatchBackend.set_alarm_state

    def acting_set_alarm_state(self, alarm_name, reason, reason_data, state_value):
        alarm = self.alarms.get(alarm_name)
        old = alarm.state_value if alarm is not None else None
        set_alarm_state(self, alarm_name, reason, reason_data, state_value)
        if old != state_value:
            _changed(self.alarms[alarm_name], self.account_id, self.region_name, old, state_value, reason)

    cloudwatch_models.CloudWatchBackend.set_alarm_state = acting_set_alarm_state

    def describe_alarm_history(self):
        name = self._get_param("AlarmName")
        kind = self._get_param("HistoryItemType")
        items = []
        for alarm in self.cloudwatch_backend.alarms.values():
            if name and alarm.name != name:
                continue
            items.extend(i for i in getattr(alarm, "_tk_history", []) if not kind or i["HistoryItemType"] == kind)
        items.sort(key=lambda i: i["Timestamp"], reverse=True)
        return ActionResult({"AlarmHistoryItems": items})

    cloudwatch_responses.CloudWatchResponse.describe_alarm_history = describe_alarm_history

    get_trail_status = cloudtrail_responses.CloudTrailResponse.get_trail_status

    def get_trail_status_with_logs_delivery(self):
        """GetTrailStatus with LatestCloudWatchLogsDeliveryError/Time from the deliveries above."""
        answer = json.loads(get_trail_status(self))
        name = self._get_param("Name")
        for trail in self.cloudtrail_backend.trails.values():
            if name in (trail.trail_name, trail.arn):
                if getattr(trail, "_tk_cw_error", None):
                    answer["LatestCloudWatchLogsDeliveryError"] = trail._tk_cw_error
                if getattr(trail, "_tk_cw_delivered", None):
                    answer["LatestCloudWatchLogsDeliveryTime"] = trail._tk_cw_delivered.timestamp()
        return json.dumps(answer)

    cloudtrail_responses.CloudTrailResponse.get_trail_status = get_trail_status_with_logs_delivery

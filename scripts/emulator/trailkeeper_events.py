"""CloudTrail's management events on EventBridge, and EventBridge's delivery rules, in the test
emulator (loaded by trailkeeper_strict.install; test tooling only).

moto records no CloudTrail events and routes between buses without checking permissions or
keeping the event's source account. Here:

- Every successful mutating API call of an account with a logging trail (in the call's region, or
  multi-region) puts an "AWS API Call via CloudTrail" event on the account's default bus in the
  call's region, shaped as CloudTrail shapes it (eventSource, eventName, awsRegion,
  recipientAccountId, userIdentity with the assumed role's session ARN). Read-only calls and data
  events (PutEvents, SQS messages) are not delivered. "To record events with a detail-type value
  of AWS API Call via CloudTrail, a CloudTrail trail with logging enabled is required."
  https://docs.aws.amazon.com/eventbridge/latest/userguide/event-types.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html
- A rule whose target is an event bus in another Region must name a role (PutTargets refuses it
  otherwise), and delivery to another account's or Region's bus happens only when the role (its
  trust of events.amazonaws.com and its PutEvents permission on the bus) and the receiving bus's
  resource policy admit it; the event arrives as it was (account, region, id kept).
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html
- The bus policy and the role's trust policy are evaluated with aws:SourceArn (the ARN of the
  rule that sends the event) and aws:SourceAccount (the rule's account), the keys EventBridge sets:
  "aws:SourceArn: The ARN of the rule that is sending the event."
  https://docs.aws.amazon.com/eventbridge/latest/userguide/policy-keys-eventbridge.html
- An SQS target receives the event only when the queue's policy lets events.amazonaws.com
  SendMessage for the rule (aws:SourceArn).
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions
- PutEvents: an entry whose Source has the aws. prefix fails with NotAuthorizedForSourceException
  ("The aws. value prefix is service-reserved", PutEventsRequestEntry; the error is one of
  PutEventsResultEntry's codes: "You do not have permissions to publish events with this source
  onto this event bus"). An entry for another account's bus (EventBusName an ARN) is delivered
  there only when that bus's policy admits the caller (aws:PrincipalArn, aws:PrincipalAccount,
  aws:PrincipalOrgID), else it fails with AccessDeniedException; the event's `account` is the
  sender's, as EventBridge sets it (moto puts it on a bus of the caller's own account).
  https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html
  https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html
- A target receives the whole event, its `account` included (moto's default input template drops
  it): "account: The 12-digit number identifying an AWS account", one of the fields every event
  carries. https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
"""
import copy
import datetime
import io
import json
import re
import uuid
from urllib.parse import parse_qs

API_CALL = "AWS API Call via CloudTrail"
READ_PREFIXES = ("Get", "Describe", "List", "Head", "Lookup", "BatchGet", "Receive", "Search", "Select")
# Data events and calls CloudTrail does not send to EventBridge as management events.
NOT_MANAGEMENT = {"PutEvents", "SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch",
                  "ChangeMessageVisibility", "PutObject", "DeleteObject", "DeleteObjects", "CopyObject",
                  "AssumeRole", "GetCallerIdentity"}
S3_BUCKET_SUBRESOURCES = {
    ("PUT", "policy"): "PutBucketPolicy",
    ("DELETE", "policy"): "DeleteBucketPolicy",
    ("PUT", "logging"): "PutBucketLogging",
    ("PUT", "encryption"): "PutBucketEncryption",
    ("DELETE", "encryption"): "DeleteBucketEncryption",
    ("PUT", "lifecycle"): "PutBucketLifecycle",
    ("DELETE", "lifecycle"): "DeleteBucketLifecycle",
    ("PUT", "object-lock"): "PutObjectLockConfiguration",
    ("PUT", "publicAccessBlock"): "PutBucketPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "DeleteBucketPublicAccessBlock",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("DELETE", "ownershipControls"): "DeleteBucketOwnershipControls",
    ("PUT", "acl"): "PutBucketAcl",
    ("PUT", "tagging"): "PutBucketTagging",
    ("DELETE", "tagging"): "DeleteBucketTagging",
}
SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
# Callables (account, region, record) that receive each CloudTrail record besides EventBridge
# (trailkeeper_monitoring delivers it to the trails' CloudWatch Logs groups).
RECORD_SINKS = []


def _operation(environ, service, body):
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    # Smithy RPC v2 CBOR (CloudWatch): the operation is the path's last part.
    rpc = re.match(r"^/service/[A-Za-z0-9]+/operation/([A-Za-z0-9]+)$", environ.get("PATH_INFO", ""))
    if rpc:
        return rpc.group(1)
    if service == "s3":
        method = environ.get("REQUEST_METHOD", "")
        path = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        if len(path) != 1:
            return None  # object-level: data events
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        for (m, sub), name in S3_BUCKET_SUBRESOURCES.items():
            if m == method and sub in query:
                return name
        if method == "DELETE" and not query:
            return "DeleteBucket"
        if method == "PUT" and not query:
            return "CreateBucket"
        return None
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    action = form.get("Action") or parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    return action[0] if action else None


def _caller(account, access_key):
    """(userIdentity) of the caller: the assumed role's session, or a user of the account."""
    from moto.sts.models import sts_backends

    try:
        role = sts_backends[account]["global"].get_assumed_role_from_access_key(access_key)
    except Exception:
        role = None
    if role is not None:
        return {
            "type": "AssumedRole",
            "arn": role.arn,
            "accountId": account,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role.role_arn, "accountId": account}},
        }
    return {"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/emulator", "accountId": account}


def _logging_trail(account, region):
    from moto.cloudtrail.models import cloudtrail_backends

    for backend in cloudtrail_backends[account].values():
        for trail in backend.trails.values():
            status = getattr(trail, "status", None)
            logging = getattr(status, "is_logging", False) if status is not None else False
            if logging and (trail.is_multi_region or trail.region_name == region):
                return True
    return False


def _emit(account, region, service, operation, caller):
    from moto.events.models import events_backends

    now = datetime.datetime.now(datetime.timezone.utc)
    detail = {
        "eventVersion": "1.09",
        "userIdentity": caller,
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": operation,
        "awsRegion": region,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    for sink in RECORD_SINKS:
        try:
            sink(account, region, dict(detail))
        except Exception as e:  # the emulator's bookkeeping never fails a call
            print(f"trailkeeper_events: {operation} not delivered by {sink.__name__}: {e}")
    events_backends[account][region].put_events([{
        "Source": f"aws.{service}",
        "DetailType": API_CALL,
        "Detail": json.dumps(detail),
    }])


def _wrap_app(app_class):
    call = app_class.__call__

    def recording_call(self, environ, start_response):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = SCOPE.search(auth)
        if scope is None:
            return call(self, environ, start_response)
        access_key, region, service = scope.group(1), scope.group(2), scope.group(3)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        operation = _operation(environ, service, body)
        interesting = (
            operation is not None
            and service not in ("sts", "sqs")
            and not operation.startswith(READ_PREFIXES)
            and operation not in NOT_MANAGEMENT
        )
        if not interesting:
            return call(self, environ, start_response)
        from moto.iam.models import get_account_id_from

        account = environ.get("HTTP_X_MOTO_ACCOUNT_ID") or get_account_id_from(access_key)
        if service == "iam":
            region = "us-east-1"  # IAM's events are delivered in us-east-1
        logging_before = _logging_trail(account, region)
        status = {}

        def capture(code, headers, *rest):
            status["code"] = int(code.split()[0])
            return start_response(code, headers, *rest)

        response = call(self, environ, capture)
        if status.get("code", 500) < 300 and (logging_before or _logging_trail(account, region)):
            try:
                _emit(account, region, service, operation, _caller(account, access_key))
            except Exception as e:  # the emulator's bookkeeping never fails a call
                print(f"trailkeeper_events: no event for {operation}: {e}")
        return response

    app_class.__call__ = recording_call


def _principal_admits(statement, principal_arn, account):
    from trailkeeper_strict import _as_list

    principal = statement.get("Principal")
    if principal == "*":
        return True
    aws = _as_list(principal.get("AWS")) if isinstance(principal, dict) else []
    return any(p in ("*", account, principal_arn, f"arn:aws:iam::{account}:root") for p in aws)


def _bus_admits(policy_text, principal_arn, account, bus_arn, rule_arn):
    from trailkeeper_strict import _org_of, evaluate

    org = _org_of(account)
    context = {"aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": account}
    if rule_arn is not None:  # a rule forwarding the event; a caller's PutEvents has none
        context.update({"aws:SourceArn": rule_arn, "aws:SourceAccount": account})
    if org is not None:
        context["aws:PrincipalOrgID"] = org[0]
    admits = lambda statement: _principal_admits(statement, principal_arn, account)  # noqa: E731
    return evaluate(policy_text, admits, "events:PutEvents", bus_arn, context)


def _role_may_put(account, role_arn, bus_arn, rule_arn):
    from moto.iam.models import iam_backends
    from trailkeeper_strict import allows, evaluate

    try:
        role = iam_backends[account]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return False
    # A trust policy names no resource: the role itself is what is assumed.
    trust = role.assume_role_policy_document
    context = {"aws:SourceAccount": account, "aws:SourceArn": rule_arn}
    if not allows(trust, "events.amazonaws.com", "sts:AssumeRole", None, context):
        return False
    return any(evaluate(policy, lambda _: True, "events:PutEvents", bus_arn, {}) for policy in role.policies.values())


def _forward(rule, target, event):
    from moto.events.models import events_backends
    from moto.utilities.arns import parse_arn

    arn = parse_arn(target["Arn"])
    role = target.get("RoleArn")
    sender = rule.account_id
    if role and not _role_may_put(sender, role, target["Arn"], rule.arn):
        print(f"trailkeeper_events: {rule.arn} -> {target['Arn']}: the role {role} may not put events there")
        return
    if arn.account != sender and not _bus_admits(
        events_backends[arn.account][arn.region].event_buses.get(arn.resource_id).policy
        if arn.resource_id in events_backends[arn.account][arn.region].event_buses else None,
        role or f"arn:aws:iam::{sender}:root", sender, target["Arn"], rule.arn,
    ):
        print(f"trailkeeper_events: {rule.arn} -> {target['Arn']}: the bus's policy does not admit {sender}")
        return
    bus = events_backends[arn.account][arn.region].event_buses.get(arn.resource_id)
    if bus is None:
        return
    for receiving in list(bus.rules.values()):
        receiving.send_to_targets(copy.deepcopy(event))


def _queue_admits(rule, queue_arn):
    from moto.sqs.models import sqs_backends
    from moto.utilities.arns import parse_arn
    from trailkeeper_strict import allows

    arn = parse_arn(queue_arn)
    queue = sqs_backends[arn.account][arn.region].queues.get(arn.resource_id)
    if queue is None:
        return False
    return allows(queue.policy, "events.amazonaws.com", "sqs:SendMessage", queue_arn, {"aws:SourceArn": rule.arn})


def _put_across_accounts(entry, account, principal_arn):
    """A caller's PutEvents entry for another account's bus: delivered when its policy admits."""
    from moto.events.models import events_backends
    from moto.events.utils import _BASE_EVENT_MESSAGE
    from moto.utilities.arns import parse_arn

    arn = parse_arn(entry["EventBusName"])
    backend = events_backends[arn.account][arn.region]
    bus = backend.event_buses.get(arn.resource_id)
    if bus is None or not _bus_admits(bus.policy, principal_arn, account, entry["EventBusName"], None):
        return {"ErrorCode": "AccessDeniedException",
                "ErrorMessage": f"{principal_arn} is not authorized to perform: events:PutEvents on resource: {entry['EventBusName']}"}
    try:
        detail = json.loads(entry.get("Detail") or "{}")
    except ValueError:
        return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    event = copy.deepcopy(_BASE_EVENT_MESSAGE)
    event.update({"id": str(uuid.uuid4()), "detail-type": entry.get("DetailType", ""), "source": entry["Source"],
                  "account": account, "region": arn.region, "resources": entry.get("Resources", []),
                  "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "detail": detail})
    for rule in list(bus.rules.values()):
        rule.send_to_targets(copy.deepcopy(event))
    return {"EventId": event["id"]}


def _strict_put_events(handler_class):
    put_events = handler_class.put_events

    def strict(self):
        entries = self._get_param("Entries") or []
        account = self.current_account
        scope = SCOPE.search(self.headers.get("Authorization", ""))
        caller = _caller(account, scope.group(1) if scope else "")
        principal_arn = caller.get("sessionContext", {}).get("sessionIssuer", {}).get("arn", caller["arn"])
        results, local = [None] * len(entries), []
        for i, entry in enumerate(entries):
            bus = entry.get("EventBusName") or ""
            if (entry.get("Source") or "").startswith("aws."):
                results[i] = {"ErrorCode": "NotAuthorizedForSourceException",
                              "ErrorMessage": "Not authorized for the source."}
            elif bus.startswith("arn:") and bus.split(":")[4] != account:
                results[i] = _put_across_accounts(entry, account, principal_arn)
            else:
                local.append(i)
        if local:
            for i, result in zip(local, self.events_backend.put_events([entries[i] for i in local])):
                results[i] = result
        return json.dumps({"FailedEntryCount": len([r for r in results if "ErrorCode" in r]), "Entries": results})

    handler_class.put_events = strict


def install():
    from moto.events import models as events
    from moto.events.responses import EventsHandler
    from moto.moto_server import werkzeug_app

    if getattr(events.Rule, "_trailkeeper_events", False):
        return
    events.Rule._trailkeeper_events = True
    from moto.events.utils import EventTemplateParser

    if '"account"' not in EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE.replace(
            '"version": "0",', '"version": "0", "account": "<account>",')
    _wrap_app(werkzeug_app.DomainDispatcherApplication)
    _strict_put_events(EventsHandler)

    send_to_targets = events.Rule.send_to_targets

    def delivering_send_to_targets(self, original_event, transform_input=True):
        if not self.event_pattern.matches_event(original_event):
            return
        others = []
        for target in self.targets:
            if ":event-bus/" in target["Arn"]:
                _forward(self, target, original_event)
            elif ":sqs:" in target["Arn"] and not _queue_admits(self, target["Arn"]):
                print(f"trailkeeper_events: {self.arn} -> {target['Arn']}: the queue's policy does not admit the rule")
            else:
                others.append(target)
        if others:
            clone = copy.copy(self)
            clone.targets = others
            send_to_targets(clone, original_event, transform_input)

    events.Rule.send_to_targets = delivering_send_to_targets

    put_targets = events.EventsBackend.put_targets

    def strict_put_targets(self, name, event_bus_arn, targets):
        """An event bus of another Region as a target needs a role (eb-cross-region.html)."""
        for target in targets:
            parts = target["Arn"].split(":")
            if ":event-bus/" in target["Arn"] and len(parts) > 3 and parts[3] != self.region_name and not target.get("RoleArn"):
                raise events.ValidationException(
                    "RoleArn is required for target arn: " + target["Arn"]
                )
        return put_targets(self, name, event_bus_arn, targets)

    events.EventsBackend.put_targets = strict_put_targets

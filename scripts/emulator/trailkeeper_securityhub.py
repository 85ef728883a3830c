"""AWS Security Hub's finding rules, as its guides document them; moto stores every finding it is
sent, ignores GetFindings' filters, and lacks BatchUpdateFindings. Test tooling only, never the
product; installed by trailkeeper_strict.install().

BatchImportFindings (Security Hub user guide, "BatchImportFindings for finding providers"; partner
guide, "Guidelines for using the BatchImportFindings API"; "Required top-level ASFF attributes"):
- "must be called by ... The account that is associated with the findings. The identifier of the
  associated account must match the value of the AwsAccountId attribute"; with the custom
  integration's product ARN `arn:{partition}:securityhub:{region}:{account}:product/{account}/default`,
  of the caller's account and the Region called.
- "Security Hub CSPM can only accept finding updates for accounts that have Security Hub CSPM
  enabled ... the findings are returned in the FailedFindings list, with an InvalidAccess error".
- "up to 100 findings per batch, up to 240 KB per finding, and up to 6 MB per batch"; the
  required attributes (AwsAccountId, CreatedAt, Description, GeneratorId, Id, ProductArn,
  Resources, SchemaVersion 2018-10-08, Severity, Title, Types, UpdatedAt); Title at most 256
  characters, Description 1024 (partner guide, "Guidelines for mapping findings into the ASFF").
- An existing Id is an update: "If UpdatedAt on the update matches or occurs before UpdatedAt on
  the existing finding, Security Hub ignores the update request"; BatchImportFindings "cannot be
  used to update ... Note, UserDefinedFields, VerificationState, Workflow" (API reference).
- After the call (Workflow, API reference): a new finding's workflow is NEW; "Security Hub also
  resets WorkFlowStatus from NOTIFIED or RESOLVED to NEW ... The record state changes from
  ARCHIVED to ACTIVE ... The compliance status changes from PASSED to either WARNING, FAILED, or
  NOT_AVAILABLE".
- "Security Hub deletes findings 90 days after the most recent update" (required attributes,
  CreatedAt): GetFindings no longer returns them.
GetFindings: the filters trailkeeper sends (StringFilters EQUALS/PREFIX/NOT_EQUALS/PREFIX_NOT_EQUALS),
MaxResults 1-100 with NextToken. BatchUpdateFindings: up to 100 finding identifiers; Workflow.Status
one of NEW, NOTIFIED, RESOLVED, SUPPRESSED; unknown findings come back in UnprocessedFindings.
Throttling ("GetFindings - RateLimit of 3 requests per second. BurstLimit of 6 requests per
second. BatchImportFindings - RateLimit of 10 ... BurstLimit of 30", API reference introduction):
a token bucket per account, Region and operation, answering LimitExceededException (429).
https://docs.aws.amazon.com/securityhub/latest/userguide/finding-update-batchimportfindings.html
https://docs.aws.amazon.com/securityhub/latest/partnerguide/guidelines-batchimportfindings.html
https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html
https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchImportFindings.html
https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindings.html
https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_Workflow.html
https://docs.aws.amazon.com/securityhub/1.0/APIReference/Welcome.html
"""
import datetime
import json
import threading
import time

from moto.core.exceptions import JsonRESTError

SCHEMA_VERSION = "2018-10-08"
REQUIRED = ("AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn", "Resources",
            "SchemaVersion", "Title", "UpdatedAt")
COMPLIANCE = {"PASSED", "WARNING", "FAILED", "NOT_AVAILABLE"}
SEVERITY = {"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
WORKFLOW = {"NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"}
RECORD_STATES = {"ACTIVE", "ARCHIVED"}
RETENTION = datetime.timedelta(days=90)
# (rate per second, burst) per operation.
RATES = {"GetFindings": (3, 6), "BatchImportFindings": (10, 30), "BatchUpdateFindings": (10, 30)}
# Fields BatchImportFindings cannot change once a finding exists.
CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow")
# Top-level fields a provider sets through FindingProviderFields.
PROVIDER_FIELDS = ("Confidence", "Criticality", "RelatedFindings", "Severity", "Types")

_BUCKETS = {}
_LOCK = threading.Lock()


class _Error(JsonRESTError):
    def __init__(self, status, error_type, message):
        self.code = status
        super().__init__(error_type, message)


def _throttle(account, region, operation):
    """LimitExceededException past the operation's burst, refilled at its rate."""
    rate, burst = RATES[operation]
    now = time.monotonic()
    with _LOCK:
        tokens, at = _BUCKETS.get((account, region, operation), (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1:
            _BUCKETS[(account, region, operation)] = (tokens, now)
            raise _Error(429, "LimitExceededException", f"{operation}: rate exceeded ({rate} per second, burst {burst})")
        _BUCKETS[(account, region, operation)] = (tokens - 1, now)


def _time(text):
    """A finding's timestamp (RFC 3339 / ISO 8601), or None when it is not one."""
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def product_arn(partition, region, account):
    """The custom integration's product ARN of `account` in `region`."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def refusal(finding, account, region, partition):
    """(error code, message) of a finding Security Hub refuses from `account` in `region`, or None."""
    missing = [a for a in REQUIRED if not finding.get(a)]
    provider = finding.get("FindingProviderFields") or {}
    if not (finding.get("Severity") or provider.get("Severity")):
        missing.append("Severity")
    if not (finding.get("Types") or provider.get("Types")):
        missing.append("Types")
    if missing:
        return "InvalidInput", f"Finding is missing required attributes: {', '.join(missing)}"
    if finding["AwsAccountId"] != account:
        return "AccessDenied", (f"BatchImportFindings must be called by the account of the finding: AwsAccountId "
                                f"{finding['AwsAccountId']}, called by {account}")
    if finding["ProductArn"] != product_arn(partition, region, account):
        return "AccessDenied", (f"ProductArn {finding['ProductArn']} is not this account's custom integration in "
                                f"{region} ({product_arn(partition, region, account)})")
    if finding["SchemaVersion"] != SCHEMA_VERSION:
        return "InvalidInput", f"SchemaVersion must be {SCHEMA_VERSION}"
    if len(finding["Title"]) > 256 or len(finding["Description"]) > 1024:
        return "InvalidInput", "Title is limited to 256 characters and Description to 1024"
    text = ((finding.get("Remediation") or {}).get("Recommendation") or {}).get("Text") or ""
    if len(text) > 512:
        return "InvalidInput", "Remediation.Recommendation.Text is limited to 512 characters"
    if not isinstance(finding["Resources"], list) or not 1 <= len(finding["Resources"]) <= 32:
        return "InvalidInput", "Resources holds 1 to 32 resources"
    if any(not r.get("Type") or not r.get("Id") for r in finding["Resources"]):
        return "InvalidInput", "Each resource needs Type and Id"
    for field in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
        if finding.get(field) is not None and _time(finding[field]) is None:
            return "InvalidInput", f"{field} is not an ISO 8601 timestamp"
    status = (finding.get("Compliance") or {}).get("Status")
    if status is not None and status not in COMPLIANCE:
        return "InvalidInput", f"Compliance.Status {status} is not one of {sorted(COMPLIANCE)}"
    if finding.get("RecordState", "ACTIVE") not in RECORD_STATES:
        return "InvalidInput", f"RecordState {finding.get('RecordState')} is not ACTIVE or ARCHIVED"
    label = (finding.get("Severity") or provider.get("Severity") or {}).get("Label")
    if label is not None and label not in SEVERITY:
        return "InvalidInput", f"Severity.Label {label} is not one of {sorted(SEVERITY)}"
    if len(json.dumps(finding)) > 240 * 1024:
        return "InvalidInput", "A finding is limited to 240 KB"
    return None


def _with_provider_fields(finding, previous):
    """The top-level Severity, Types ... as the provider's FindingProviderFields give them, unless a
    customer changed them with BatchUpdateFindings (then theirs stand)."""
    provider = dict(finding.get("FindingProviderFields") or {})
    for field in PROVIDER_FIELDS:
        if field not in provider and finding.get(field) is not None:
            provider[field] = finding[field]
    finding["FindingProviderFields"] = provider
    customer_set = set((previous or {}).get("_customer_set", []))
    for field in PROVIDER_FIELDS:
        if field in customer_set:
            finding[field] = previous[field]
        elif field in provider:
            finding[field] = provider[field]
    finding["_customer_set"] = sorted(customer_set)
    return finding


def import_finding(backend, finding, partition):
    """Creates or updates one finding of `backend`'s account; returns a refusal or None."""
    problem = refusal(finding, backend.account_id, backend.region_name, partition)
    if problem is not None:
        return problem
    if not backend.enabled:
        return "InvalidAccess", f"Account {backend.account_id} is not subscribed to AWS Security Hub in {backend.region_name}"
    existing = next((f for f in backend.findings if f.id == finding["Id"]), None)
    finding = dict(finding)
    finding.setdefault("RecordState", "ACTIVE")
    finding["Region"] = backend.region_name
    fields = dict(finding.get("ProductFields") or {})
    fields.update({
        "aws/securityhub/FindingId": f"{finding['ProductArn']}/{finding['Id']}",
        "aws/securityhub/ProductName": "Default",
        "aws/securityhub/CompanyName": "Personal",
    })
    finding["ProductFields"] = fields
    if existing is None:
        for field in CUSTOMER_FIELDS:
            finding.pop(field, None)
        finding["Workflow"] = {"Status": "NEW"}
        finding["WorkflowState"] = "NEW"
        from moto.securityhub.models import Finding

        backend.findings.append(Finding(finding["Id"], _with_provider_fields(finding, None)))
        return None
    old = existing.data
    if _time(finding["UpdatedAt"]) <= _time(old["UpdatedAt"]):
        return None
    for field in CUSTOMER_FIELDS:
        finding.pop(field, None)
        if field in old:
            finding[field] = old[field]
    old_status = (old.get("Compliance") or {}).get("Status")
    new_status = (finding.get("Compliance") or {}).get("Status")
    reopened = old.get("RecordState") == "ARCHIVED" and finding["RecordState"] == "ACTIVE"
    failed_again = old_status == "PASSED" and new_status in ("WARNING", "FAILED", "NOT_AVAILABLE")
    if (reopened or failed_again) and (finding.get("Workflow") or {}).get("Status") in ("NOTIFIED", "RESOLVED"):
        finding["Workflow"] = {"Status": "NEW"}
        finding["WorkflowState"] = "NEW"
    existing.data = _with_provider_fields(finding, old)
    return None


def _visible(finding):
    """Findings not updated for 90 days are gone."""
    updated = _time(finding.get("UpdatedAt"))
    if updated is None:
        return True
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.now(datetime.timezone.utc) - updated < RETENTION


FILTER_FIELDS = {
    "Id": lambda f: f.get("Id"),
    "ProductArn": lambda f: f.get("ProductArn"),
    "AwsAccountId": lambda f: f.get("AwsAccountId"),
    "GeneratorId": lambda f: f.get("GeneratorId"),
    "RecordState": lambda f: f.get("RecordState"),
    "Region": lambda f: f.get("Region"),
    "WorkflowStatus": lambda f: (f.get("Workflow") or {}).get("Status"),
    "ComplianceStatus": lambda f: (f.get("Compliance") or {}).get("Status"),
}


def _matches(finding, filters):
    """Whether `finding` passes the StringFilters: values of one field are ORed (the negative
    comparisons ANDed), fields ANDed."""
    for field, conditions in (filters or {}).items():
        if field not in FILTER_FIELDS:
            raise _Error(400, "InvalidInputException", f"Filter {field} is not supported by this emulator")
        value = FILTER_FIELDS[field](finding) or ""
        positive = [c for c in conditions if c.get("Comparison") in ("EQUALS", "PREFIX")]
        negative = [c for c in conditions if c.get("Comparison") in ("NOT_EQUALS", "PREFIX_NOT_EQUALS")]
        if positive and not any(
            value == c["Value"] if c["Comparison"] == "EQUALS" else value.startswith(c["Value"]) for c in positive
        ):
            return False
        if any(
            value == c["Value"] if c["Comparison"] == "NOT_EQUALS" else value.startswith(c["Value"]) for c in negative
        ):
            return False
    return True


def _public(finding):
    return {k: v for k, v in finding.items() if not k.startswith("_")}


def install():
    """Replaces moto's BatchImportFindings and GetFindings, adds BatchUpdateFindings. Idempotent."""
    from moto.securityhub import responses, urls
    from moto.utilities.utils import get_partition

    response = responses.SecurityHubResponse
    if getattr(response, "_trailkeeper_findings", False):
        return
    response._trailkeeper_findings = True
    urls.url_paths.setdefault("{0}/findings/batchupdate$", response.dispatch)

    def hub_enabled(backend):
        if not backend.enabled:
            raise _Error(401, "InvalidAccessException",
                         f"Account {backend.account_id} is not subscribed to AWS Security Hub in {backend.region_name}")

    def batch_import_findings(self):
        backend = self.securityhub_backend
        _throttle(backend.account_id, backend.region_name, "BatchImportFindings")
        raw = self.body.decode() if isinstance(self.body, bytes) else self.body
        if len(raw or "") > 6 * 1024 * 1024:
            raise _Error(400, "InvalidInputException", "A batch is limited to 6 MB")
        findings = json.loads(raw or "{}").get("Findings") or []
        if not 1 <= len(findings) <= 100:
            raise _Error(400, "InvalidInputException", f"Findings: 1 to 100 per request, not {len(findings)}")
        partition = get_partition(backend.region_name)
        failed = []
        for finding in findings:
            problem = import_finding(backend, finding, partition)
            if problem is not None:
                failed.append({"Id": finding.get("Id", ""), "ErrorCode": problem[0], "ErrorMessage": problem[1]})
        return json.dumps({"FailedCount": len(failed), "SuccessCount": len(findings) - len(failed),
                           "FailedFindings": failed})

    def get_findings(self):
        backend = self.securityhub_backend
        _throttle(backend.account_id, backend.region_name, "GetFindings")
        hub_enabled(backend)
        params = json.loads(self.body or "{}")
        limit = params.get("MaxResults", 100)
        if not 1 <= int(limit) <= 100:
            raise _Error(400, "InvalidInputException", "MaxResults must be a number between 1 and 100")
        kept = [f.data for f in backend.findings if _visible(f.data) and _matches(f.data, params.get("Filters"))]
        start = int(params.get("NextToken") or 0)
        page = kept[start:start + int(limit)]
        out = {"Findings": [_public(f) for f in page]}
        if start + int(limit) < len(kept):
            out["NextToken"] = str(start + int(limit))
        return json.dumps(out)

    def batch_update_findings(self):
        backend = self.securityhub_backend
        _throttle(backend.account_id, backend.region_name, "BatchUpdateFindings")
        hub_enabled(backend)
        params = json.loads(self.body or "{}")
        identifiers = params.get("FindingIdentifiers") or []
        if not 1 <= len(identifiers) <= 100:
            raise _Error(400, "InvalidInputException", f"FindingIdentifiers: 1 to 100 per request, not {len(identifiers)}")
        workflow = (params.get("Workflow") or {}).get("Status")
        if workflow is not None and workflow not in WORKFLOW:
            raise _Error(400, "InvalidInputException", f"Workflow.Status {workflow} is not one of {sorted(WORKFLOW)}")
        note = params.get("Note")
        if note is not None and not (note.get("Text") and note.get("UpdatedBy")):
            raise _Error(400, "InvalidInputException", "Note needs Text and UpdatedBy")
        processed, unprocessed = [], []
        for ident in identifiers:
            finding = next((f for f in backend.findings
                            if f.id == ident.get("Id") and f.data.get("ProductArn") == ident.get("ProductArn")), None)
            if finding is None or not _visible(finding.data):
                unprocessed.append({"FindingIdentifier": ident, "ErrorCode": "FindingNotFound",
                                    "ErrorMessage": "Finding not found"})
                continue
            if workflow is not None:
                finding.data["Workflow"] = {"Status": workflow}
                finding.data["WorkflowState"] = workflow
            if note is not None:
                finding.data["Note"] = dict(note, UpdatedAt=datetime.datetime.now(datetime.timezone.utc).isoformat())
            severity = params.get("Severity")
            if severity is not None:
                finding.data["Severity"] = severity
                finding.data["_customer_set"] = sorted(set(finding.data.get("_customer_set", [])) | {"Severity"})
            processed.append(ident)
        return json.dumps({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})

    response.batch_import_findings = batch_import_findings
    response.get_findings = get_findings
    response.batch_update_findings = batch_update_findings

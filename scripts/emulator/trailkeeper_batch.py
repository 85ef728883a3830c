"""S3 Batch Replication in the test emulator (moto has no S3 Batch Operations): S3 Control's
CreateJob, DescribeJob and ListJobs for the S3ReplicateObject operation with a manifest S3 generates
from the source's replication configuration, run asynchronously as the job's role, judged as S3
documents.

Test tooling only, never the product; loaded by trailkeeper_strict.install().
https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-batch-replication-batch.html
"""
import datetime
import hashlib
import threading
import time

import trailkeeper_replication as replication
from moto.core.exceptions import ServiceException

BATCH_OPERATIONS = "batchoperations.s3.amazonaws.com"

_jobs = {}  # (account, job id) -> job dict
_by_token = {}  # (account, client request token) -> job id
_lock = threading.RLock()


class _Refused(ServiceException):
    """An S3 Control error: its code (the model's status when it names one) and message."""


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def create_job(response, account, region, params):
    """CreateJob preconditions, then a job in status New.

    - The caller needs s3:CreateJob and iam:PassRole of the job's role: "To create an S3 Batch
      Operations job, the s3:CreateJob user permission is required. The same entity that creates
      the job must also have the iam:PassRole permission".
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html
    - A ClientRequestToken sent again returns the job it created (idempotency).
      https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_CreateJob.html
    - Only the replication operation with a generated manifest is modelled (what trailkeeper
      sends); "Your source bucket must have an existing replication configuration" is judged when
      the job runs, as is the role (S3 assumes it then).
    """
    token = params.get("ClientRequestToken") or ""
    with _lock:
        if (account, token) in _by_token:
            return _by_token[(account, token)]
    role_arn = params.get("RoleArn") or ""
    caller = replication.caller_role(response)
    if caller is not None:
        if not replication.role_allows(caller, "s3:CreateJob", "*"):
            raise _Refused("AccessDenied", "Access Denied: s3:CreateJob is not allowed to the caller")
        if not replication.role_allows(caller, "iam:PassRole", role_arn, {"iam:PassedToService": BATCH_OPERATIONS}):
            raise _Refused("AccessDenied", f"Access Denied: iam:PassRole on {role_arn} is not allowed to the caller")
    operation = params.get("Operation") or {}
    if "S3ReplicateObject" not in operation:
        raise _Refused("InvalidRequest", "the emulator models only the S3ReplicateObject operation")
    generator = (params.get("ManifestGenerator") or {}).get("S3JobManifestGenerator")
    if not generator or not generator.get("SourceBucket"):
        raise _Refused("InvalidRequest", "a Batch Replication job needs a manifest or a manifest generator")
    job_id = hashlib.sha256(f"{account}/{token}/{time.time()}".encode()).hexdigest()[:32]
    job = {
        "JobId": job_id,
        "JobArn": f"arn:aws:s3:{region}:{account}:job/{job_id}",
        "Account": account,
        "Region": region,
        "Status": "New",
        "RoleArn": role_arn,
        "Priority": params.get("Priority") or 0,
        "Description": params.get("Description") or "",
        "ConfirmationRequired": bool(params.get("ConfirmationRequired")),
        "Generator": generator,
        "CreationTime": _now(),
        "Due": time.time() + replication.DELAY_SECONDS,
        "Succeeded": 0,
        "Failed": 0,
        "Total": 0,
        "FailureReasons": [],
        "TaskFailures": {},
    }
    with _lock:
        _jobs[(account, job_id)] = job
        _by_token[(account, token)] = job_id
    return job_id


def _fail(job, code, reason):
    job["Status"] = "Failed"
    job["FailureReasons"] = [{"FailureCode": code, "FailureReason": reason}]
    job["TerminationDate"] = _now()


def run(job):
    """Runs a due job once, as S3 Batch Operations does: assume the job's role (trust, with and
    without the job as source), generate the manifest (the role's s3:GetReplicationConfiguration
    and s3:PutInventoryConfiguration on the source; the source's replication configuration), then
    for each eligible object version whose replication status is in the filter, the role's
    s3:InitiateReplication and the replication itself as the replication configuration's role
    (trailkeeper_replication.replicate: the same checks as live replication).
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-batch-replication-policies.html
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-failure-codes.html"""
    from moto.s3.models import s3_backends

    account = job["Account"]
    role = replication.role_by_arn(job["RoleArn"])
    contexts = replication.trust_contexts(job["JobArn"], account)
    if role is None or not replication.service_may_assume(role, BATCH_OPERATIONS, contexts):
        return _fail(job, "AssumeRoleNotPermitted", f"S3 Batch Operations cannot assume {job['RoleArn']}")
    generator = job["Generator"]
    bucket_name = replication._bucket_of(generator["SourceBucket"])
    source_arn = f"arn:aws:s3:::{bucket_name}"
    backend = s3_backends[account]["aws"]
    try:
        source = backend.get_bucket(bucket_name)
    except Exception:
        return _fail(job, "SrcBucketNotFound", f"The source bucket {bucket_name} does not exist")
    if source.region_name != job["Region"]:
        return _fail(job, "SrcBucketInvalidRegion", "The source bucket is not in the job's Region")
    for action in ("s3:GetReplicationConfiguration", "s3:PutInventoryConfiguration"):
        if not replication.role_allows(role, action, source_arn):
            return _fail(job, "ManifestGenerationFailed", f"the job's role may not {action} on {source_arn}")
    if not getattr(source, "replication", None):
        return _fail(job, "SrcBucketReplicationConfigMissing",
                     f"Amazon S3 couldn't find a replication configuration for {bucket_name}")
    wanted = set((generator.get("Filter") or {}).get("ObjectReplicationStatuses") or [])
    eligible_only = bool((generator.get("Filter") or {}).get("EligibleForReplication"))
    for name in list(source.keys.keys()):
        for key in source.keys.getlist(name):
            if not hasattr(key, "value"):
                continue  # a delete marker
            status = getattr(key, "_trailkeeper_replication_status", None) or "NONE"
            if wanted and status not in wanted:
                continue
            rule = replication.eligible_rule(source, key)
            if rule is None:
                if eligible_only:
                    continue
                job["Failed"] += 1
                job["TaskFailures"][key.name] = "SrcObjectNotEligible"
                continue
            job["Total"] += 1
            if not replication.role_allows(role, "s3:InitiateReplication", f"{source_arn}/{key.name}"):
                job["Failed"] += 1
                job["TaskFailures"][key.name] = "InitiateReplicationNotPermitted"
                continue
            outcome, failure = replication.replicate(backend, source, key, rule, replication._ORIGINAL["put_object"])
            key._trailkeeper_replication_status = outcome
            key._trailkeeper_replication_failure = failure
            if outcome == "COMPLETED":
                job["Succeeded"] += 1
            else:
                job["Failed"] += 1
                job["TaskFailures"][key.name] = failure
    job["Status"] = "Complete"
    job["TerminationDate"] = _now()


def settle():
    """Runs the jobs that came due (a job reads New, then Active, then Complete or Failed)."""
    now = time.time()
    with _lock:
        for job in list(_jobs.values()):
            if job["Status"] == "New":
                job["Status"] = "Active"
            if job["Status"] == "Active" and job["Due"] <= now:
                run(job)


def describe(job):
    out = {
        "JobId": job["JobId"],
        "JobArn": job["JobArn"],
        "Status": job["Status"],
        "Priority": job["Priority"],
        "Description": job["Description"],
        "ConfirmationRequired": job["ConfirmationRequired"],
        "RoleArn": job["RoleArn"],
        "CreationTime": job["CreationTime"],
        "Operation": {"S3ReplicateObject": {}},
        "ManifestGenerator": {"S3JobManifestGenerator": job["Generator"]},
        "ProgressSummary": {
            "TotalNumberOfTasks": job["Total"],
            "NumberOfTasksSucceeded": job["Succeeded"],
            "NumberOfTasksFailed": job["Failed"],
        },
        "Report": {"Enabled": False},
    }
    if job.get("TerminationDate"):
        out["TerminationDate"] = job["TerminationDate"]
    if job["FailureReasons"]:
        out["FailureReasons"] = job["FailureReasons"]
    return out


def _answer(response, action, result):
    """`result` serialized as S3 Control answers `action`: a `<{action}Result>` root, where moto
    writes `<{action}Response>` (the Rust SDK reads the root by name)."""
    from moto.core.responses import ActionResult

    status, headers, body = response.serialized(ActionResult(result))
    if isinstance(body, bytes):
        body = body.decode()
    body = body.replace(f"<{action}Response", f"<{action}Result").replace(f"</{action}Response>", f"</{action}Result>")
    return status, headers, body


def install():
    from moto.s3control import responses, urls

    cls = responses.S3ControlResponse
    if getattr(cls, "_trailkeeper_batch", False):
        return
    cls._trailkeeper_batch = True

    def create(self):
        replication.settle()
        job_id = create_job(self, self.current_account, self.region, {
            name: self._get_param(name)
            for name in ("ClientRequestToken", "RoleArn", "Operation", "ManifestGenerator", "Priority",
                         "Description", "ConfirmationRequired")
        })
        return _answer(self, "CreateJob", {"JobId": job_id})

    def describe_job(self):
        replication.settle()
        settle()
        job = _jobs.get((self.current_account, self._get_param("JobId")))
        if job is None:
            raise _Refused("NotFoundException", "The specified job was not found")
        return _answer(self, "DescribeJob", {"Job": describe(job)})

    def list_jobs(self):
        replication.settle()
        settle()
        listed = [
            {"JobId": j["JobId"], "Description": j["Description"], "Operation": "S3ReplicateObject",
             "Priority": j["Priority"], "Status": j["Status"], "CreationTime": j["CreationTime"],
             "ProgressSummary": describe(j)["ProgressSummary"]}
            for (account, _), j in _jobs.items() if account == self.current_account
        ]
        return _answer(self, "ListJobs", {"Jobs": listed})

    replication.AFTER_SETTLE.append(settle)
    cls.create_job = create
    cls.describe_job = describe_job
    cls.list_jobs = list_jobs
    urls.url_paths["{0}/v20180820/jobs$"] = cls.dispatch
    urls.url_paths["{0}/v20180820/jobs/(?P<id>[^/]+)$"] = cls.dispatch
    urls.url_paths["/v20180820/jobs"] = cls.dispatch
    urls.url_paths["/v20180820/jobs/<id>"] = cls.dispatch

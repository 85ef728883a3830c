"""S3 replication in the test emulator, as strict as S3: what PutBucketReplication checks, the
configuration read back as it was written (moto drops SourceSelectionCriteria and answers every
DeleteMarkerReplication as Disabled), and live replication of new objects, asynchronously, as the
replication role (its trust, its permissions, both keys), each failure with the reason S3
documents.

Test tooling only, never the product; loaded by trailkeeper_strict.install().
"""
import json
import os
import threading
import time

import iam_policy
from moto.s3.exceptions import S3ClientError

S3 = "s3.amazonaws.com"
# How long a new object reads PENDING before S3 replicates it (observed on a later request).
DELAY_SECONDS = float(os.environ.get("TRAILKEEPER_REPLICATION_DELAY_SECONDS", "1"))

_request = threading.local()
_pending = []  # [due, source account, bucket name, key object]
_settling = threading.local()
# What else comes due with time, settled on each S3 request too (S3 Batch Operations' jobs).
AFTER_SETTLE = []


class _Refused(S3ClientError):
    code = 400

    def __init__(self, error_type, message):
        super().__init__(error_type, message)


class _Denied(_Refused):
    code = 403


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _bucket_of(arn_or_name):
    return arn_or_name.split(":::", 1)[-1]


def _lock_enabled(bucket):
    return bool(bucket.object_lock_enabled)


def _truthy(value):
    return value is True or str(value).lower() == "true"


def _bucket_key(bucket):
    """Whether `bucket` encrypts new objects with an S3 Bucket Key by default."""
    rule = (getattr(bucket, "encryption", None) or {}).get("Rule") or {}
    return _truthy(rule.get("BucketKeyEnabled"))


# --- IAM as S3 uses it ----------------------------------------------------------------------------

def _iam(account):
    from moto.iam.models import iam_backends

    return iam_backends[account]["global"]


def role_by_arn(role_arn):
    """The IAM role `role_arn` names, or None when it does not exist."""
    parts = role_arn.split(":")
    if len(parts) < 6:
        return None
    try:
        return _iam(parts[4]).get_role_by_arn(role_arn)
    except Exception:
        return None


def identity_policy(role):
    """The role's inline and attached managed policies, as one document."""
    statements = []
    for text in role.policies.values():
        statements += _as_list(iam_policy.parse(text).get("Statement"))
    for managed in role.managed_policies.values():
        versions = [v for v in getattr(managed, "versions", []) if getattr(v, "is_default", False)]
        document = versions[0].document if versions else getattr(managed, "document", "")
        statements += _as_list(iam_policy.parse(document).get("Statement"))
    return {"Version": "2012-10-17", "Statement": statements}


def role_allows(role, action, resource, context=None):
    return iam_policy.decide(identity_policy(role), None, action, resource, context or {}) == iam_policy.ALLOW


def service_may_assume(role, service, contexts):
    """Whether the trust policy of `role` lets `service` assume it in every one of `contexts`."""
    document = role.assume_role_policy_document
    return all(
        iam_policy.decide(document, {"Service": service}, "sts:AssumeRole", None, c) == iam_policy.ALLOW
        for c in contexts
    )


def trust_contexts(source_arn, account):
    """The request contexts a service's AssumeRole is judged in. AWS's documented trust policy
    for the replication role has no condition, and no page says whether S3 sends aws:SourceArn
    and aws:SourceAccount when it assumes it; a trust policy must work either way, so it is judged
    both without those keys and with them (the source bucket, or the Batch Operations job, and its
    account).
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html
    https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html"""
    return [{}, {"aws:SourceArn": source_arn, "aws:SourceAccount": account}]


def caller_role(response):
    """The IAM role whose session signed `response`'s request, or None: the emulator's static
    credentials act as the account's root, or the session's role does not exist in IAM (moto
    keeps an assumed role's access key in IAM, with the role's ARN)."""
    from moto.iam.models import iam_backends

    access_key = response.get_access_key()
    for _, backends in list(iam_backends.items()):
        found = backends["aws"].access_keys.get(access_key)
        role_arn = getattr(found, "role_arn", None)
        if role_arn:
            return role_by_arn(role_arn)
    return None


def caller_may_pass(response, role_arn, service):
    """iam:PassRole of `role_arn` to `service` by the caller of `response` (a role judged by its
    identity policies; the account's root may pass any role of its account).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html"""
    caller = caller_role(response)
    if caller is None:
        return True
    return role_allows(caller, "iam:PassRole", role_arn, {"iam:PassedToService": service})


# --- KMS as S3 uses it ----------------------------------------------------------------------------

def _kms_key(key_id, region, account):
    """The KMS key `key_id` (an ARN or an id in `region`), or None."""
    from moto.kms.models import kms_backends

    if key_id.startswith("arn:"):
        parts = key_id.split(":")
        region, account = parts[3], parts[4]
    try:
        backend = kms_backends[account][region]
        return backend.keys[backend.any_id_to_key_id(key_id)]
    except Exception:
        return None


def _names_root_only(principal, account):
    """Whether a key policy statement's principal is the account itself (its root or its id):
    such a statement lets IAM policies grant the key ("Allows access to the AWS account and
    enables IAM policies")."""
    if not isinstance(principal, dict) or set(principal) != {"AWS"}:
        return False
    names = _as_list(principal["AWS"])
    return bool(names) and all(n == account or (n.startswith("arn:") and n.endswith(f":{account}:root")) for n in names)


def kms_allows(role, key, action, context):
    """Whether `role` may do `action` with `key`: its key policy allows the role outright, or
    allows the account (root) and the role's identity policies allow it; an explicit Deny in
    either refuses. https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
    https://docs.aws.amazon.com/kms/latest/developerguide/iam-policies.html"""
    account = key.account_id
    context = dict(context, **{"kms:CallerAccount": role.arn.split(":")[4]})
    statements = _as_list(iam_policy.parse(key.policy).get("Statement"))
    root = [s for s in statements if _names_root_only(s.get("Principal"), account)]
    direct = [s for s in statements if s not in root]
    principal = {"AWS": role.arn}
    decided = iam_policy.decide({"Statement": direct}, principal, action, "*", context)
    if decided == iam_policy.DENY:
        return False
    identity = iam_policy.decide(identity_policy(role), None, action, key.arn, context)
    if identity == iam_policy.DENY:
        return False
    if decided == iam_policy.ALLOW:
        return True
    delegated = iam_policy.decide({"Statement": root}, principal, action, "*", context)
    return delegated == iam_policy.ALLOW and identity == iam_policy.ALLOW


# --- PutBucketReplication -------------------------------------------------------------------------

def check_replication(backend, bucket_name, config, response=None):
    """PutBucketReplication preconditions.

    - Both buckets versioned: "Both source and destination buckets must have versioning enabled"
      (moto checks the source only).
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-requirements.html
    - A destination without Object Lock is accepted from a locked source: AWS documents setting up
      replication first and enabling Object Lock on the destination after ("Option 2"), and each
      object replicated meanwhile FAILs (DstBucketObjectLockConfigMissing, at replication time).
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html
    - SSE-KMS objects are replicated only with SourceSelectionCriteria SseKmsEncryptedObjects
      and a ReplicaKmsKeyID for each destination.
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html
    - The destination bucket must exist.
    - The role must exist, and whoever puts the configuration needs iam:PassRole on it: "the IAM
      principal who's creating replication rules" needs iam:PassRole.
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html
    """
    source = backend.get_bucket(bucket_name)
    if source.versioning_status != "Enabled":
        raise _Refused("InvalidRequest", "Versioning must be 'Enabled' on the bucket to apply a replication configuration")
    role_arn = config.get("Role") or ""
    if role_by_arn(role_arn) is None:
        raise _Refused("InvalidArgument", f"Invalid ReplicationConfiguration role: {role_arn} does not exist")
    if response is not None and not caller_may_pass(response, role_arn, S3):
        raise _Denied("AccessDenied", f"Access Denied: iam:PassRole on {role_arn} is not allowed to the caller")
    for rule in _as_list(config.get("Rule")):
        destination = rule.get("Destination") or {}
        name = _bucket_of(destination.get("Bucket", ""))
        try:
            target = backend.get_bucket(name)
        except Exception:
            raise _Refused("InvalidRequest", f"Destination bucket must exist: {name}")
        if target.versioning_status != "Enabled":
            raise _Refused("InvalidRequest", "Destination bucket must have versioning enabled.")
        criteria = (rule.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects") or {}
        replica_key = (destination.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
        if criteria.get("Status") == "Enabled" and not replica_key:
            raise _Refused("InvalidArgument", "ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present.")
        if replica_key and criteria.get("Status") != "Enabled":
            raise _Refused("InvalidArgument", "SseKmsEncryptedObjects must be specified if EncryptionConfiguration is present.")


# --- Replicating one object -----------------------------------------------------------------------

def eligible_rule(bucket, key):
    """The enabled rule of `bucket`'s replication configuration that replicates `key`, or None:
    its prefix matches, and an SSE-KMS object only when the rule selects SSE-KMS objects."""
    replication = getattr(bucket, "replication", None)
    if not replication or getattr(key, "_trailkeeper_replica", False):
        return None
    for rule in _as_list(replication.get("Rule")):
        if rule.get("Status") != "Enabled":
            continue
        prefix = ((rule.get("Filter") or {}).get("Prefix")) or rule.get("Prefix") or ""
        if not key.name.startswith(prefix):
            continue
        criteria = (rule.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects") or {}
        if key.encryption == "aws:kms" and criteria.get("Status") != "Enabled":
            continue
        return rule
    return None


def replicate(backend, source, key, rule, put_object):
    """Replicates `key` of bucket `source` by `rule` as S3 does, as the configuration's role:
    COMPLETED (the replica written, with the source's retention and legal hold) or FAILED with the
    failure reason S3 documents (nothing written).
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-failure-codes.html"""
    failure = _why_not(backend, source, key, rule)
    if failure is not None:
        return "FAILED", failure
    destination = rule.get("Destination") or {}
    name = _bucket_of(destination.get("Bucket", ""))
    target = backend.get_bucket(name)
    replica_key = (destination.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
    # "If your source objects use Object Lock, Amazon S3 ... applies those same retention controls
    # to your replicas, overriding the default retention period configured on your destination
    # buckets." https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html
    replica = put_object(
        backend, name, key.name, key.value,
        encryption="aws:kms" if replica_key else None,
        kms_key_id=replica_key,
        bucket_key_enabled=_bucket_key(target) or None,
        lock_mode=key.lock_mode,
        lock_legal_status=key.lock_legal_status,
        lock_until=key.lock_until,
    )
    replica._trailkeeper_replica = True
    replica._trailkeeper_replication_status = "REPLICA"
    return "COMPLETED", None


def _why_not(backend, source, key, rule):
    """The failure reason of replicating `key`, or None when S3 would replicate it."""
    account = source.account_id
    partition = "aws"
    source_arn = f"arn:{partition}:s3:::{source.name}"
    object_arn = f"{source_arn}/{key.name}"
    role = role_by_arn((source.replication or {}).get("Role") or "")
    # "Amazon S3 can't assume the IAM role that's specified in the replication configuration."
    if role is None or not service_may_assume(role, S3, trust_contexts(source_arn, account)):
        return "AssumeRoleNotPermitted"
    # The role's permissions on the source object (replication-failure-codes; Object Lock needs
    # s3:GetObjectRetention and s3:GetObjectLegalHold: object-lock-managing, "Using Object Lock
    # with S3 Replication").
    needed = [("s3:GetObjectVersionForReplication", "SrcGetObjectNotPermitted"),
              ("s3:GetObjectVersionAcl", "SrcGetAclNotPermitted")]
    if _lock_enabled(source):
        needed += [("s3:GetObjectRetention", "SrcGetRetentionNotPermitted"),
                   ("s3:GetObjectLegalHold", "SrcGetLegalHoldNotPermitted")]
    if backend.get_object_tagging(key).get("Tags"):
        needed.append(("s3:GetObjectVersionTagging", "SrcGetTaggingNotPermitted"))
    for action, reason in needed:
        if not role_allows(role, action, object_arn):
            return reason
    if key.encryption == "aws:kms" and key.kms_key_id:
        source_key = _kms_key(key.kms_key_id, source.region_name, account)
        if source_key is None or not source_key.enabled:
            return "SrcKmsKeyInvalidState"
        # With an S3 Bucket Key the encryption context is the bucket's ARN, else the object's.
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html
        context = {"kms:ViaService": f"s3.{source.region_name}.amazonaws.com",
                   "kms:EncryptionContext:aws:s3:arn": source_arn if _truthy(key.bucket_key_enabled) else object_arn}
        if not kms_allows(role, source_key, "kms:Decrypt", context):
            return "SrcGetObjectNotPermitted"

    destination = rule.get("Destination") or {}
    name = _bucket_of(destination.get("Bucket", ""))
    try:
        target = backend.get_bucket(name)
    except Exception:
        return "DstBucketNotFound"
    if target.versioning_status != "Enabled":
        return "DstBucketUnversioned"
    if _lock_enabled(source) and not _lock_enabled(target):
        return "DstBucketObjectLockConfigMissing"
    target_arn = f"arn:{partition}:s3:::{name}"
    if not role_allows(role, "s3:ReplicateObject", f"{target_arn}/{key.name}"):
        return "DstPutObjectNotPermitted"
    if backend.get_object_tagging(key).get("Tags") and not role_allows(role, "s3:ReplicateTags", f"{target_arn}/{key.name}"):
        return "DstPutTaggingNotPermitted"
    replica_key_id = (destination.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
    if replica_key_id:
        # "The AWS KMS key must have been created in the same AWS Region as the destination
        # buckets." (replication-config-for-kms-objects)
        replica_key = _kms_key(replica_key_id, target.region_name, account)
        if replica_key is None or replica_key.region != target.region_name:
            return "DstKmsKeyNotFound"
        if not replica_key.enabled:
            return "DstKmsKeyInvalidState"
        bucket_key = _bucket_key(target)
        context = {"kms:ViaService": f"s3.{target.region_name}.amazonaws.com",
                   "kms:EncryptionContext:aws:s3:arn": target_arn if bucket_key else f"{target_arn}/{key.name}"}
        # "kms:Decrypt and kms:GenerateDataKey* actions at the destination bucket"
        # (DstPutObjectNotPermitted); Decrypt because "To use replication with an S3 Bucket Key,
        # the AWS KMS key policy for the KMS key that's used to encrypt the object replica must
        # include the kms:Decrypt permission" (replication-config-for-kms-objects).
        actions = ["kms:GenerateDataKey"] + (["kms:Decrypt"] if bucket_key else [])
        if not all(kms_allows(role, replica_key, a, context) for a in actions):
            return "DstPutObjectNotPermitted"
    return None


def settle(now=None):
    """Replicates every pending object whose time has come: S3 replicates asynchronously, so a new
    object reads PENDING first and COMPLETED (or FAILED) on a later request.
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-status.html"""
    if getattr(_settling, "active", False) or not _pending:
        return
    from moto.s3.models import s3_backends

    now = time.time() if now is None else now
    _settling.active = True
    try:
        due = [p for p in _pending if p[0] <= now]
        for item in due:
            _pending.remove(item)
            _, account, bucket_name, key = item
            backend = s3_backends[account]["aws"]
            try:
                bucket = backend.get_bucket(bucket_name)
            except Exception:
                continue
            rule = eligible_rule(bucket, key)
            if rule is None:
                continue
            status, failure = replicate(backend, bucket, key, rule, _ORIGINAL["put_object"])
            key._trailkeeper_replication_status = status
            key._trailkeeper_replication_failure = failure
    finally:
        _settling.active = False


def failures_response(request, full_url, headers):
    """GET /moto-api/trailkeeper/replication?bucket=B&key=K: the object's replication status and
    failure reason as JSON (S3 sends the reason in its replication failure events, which the
    emulator does not model; tests read it here)."""
    from urllib.parse import parse_qs, urlparse
    from moto.s3.models import s3_backends

    settle()
    query = parse_qs(urlparse(full_url).query)
    bucket, name = query.get("bucket", [""])[0], query.get("key", [""])[0]
    for account in list(s3_backends.keys()):
        backend = s3_backends[account]["aws"]
        try:
            found = backend.get_bucket(bucket)
        except Exception:
            continue
        key = found.keys.get(name)
        if key is not None:
            return 200, {"Content-Type": "application/json"}, json.dumps({
                "status": getattr(key, "_trailkeeper_replication_status", None),
                "failure": getattr(key, "_trailkeeper_replication_failure", None),
            })
    return 404, {}, json.dumps({"error": "NoSuchKey"})


_ORIGINAL = {}


def install():
    from moto.s3 import models, responses
    from moto.core.responses import ActionResult
    from moto.moto_api._internal import urls as moto_api_urls

    backend = models.S3Backend
    if getattr(backend, "_trailkeeper_replication", False):
        return
    backend._trailkeeper_replication = True
    put_bucket_replication, put_object = backend.put_bucket_replication, backend.put_object
    _ORIGINAL["put_object"] = put_object

    setup_class = responses.S3Response.setup_class

    def observing_setup_class(self, request, *args, **kwargs):
        # The request being served (its caller, for iam:PassRole), and replication that came due.
        _request.response = self
        out = setup_class(self, request, *args, **kwargs)
        settle()
        for hook in AFTER_SETTLE:
            hook()
        return out

    responses.S3Response.setup_class = observing_setup_class

    def strict_put_bucket_replication(self, bucket_name, replication):
        check_replication(self, bucket_name, replication, getattr(_request, "response", None))
        return put_bucket_replication(self, bucket_name, replication)

    backend.put_bucket_replication = strict_put_bucket_replication

    def get_bucket_replication(self):
        self.data["Action"] = "GetBucketReplication"
        replication = self.backend.get_bucket_replication(self.bucket_name)
        if not replication:
            from moto.s3.exceptions import ReplicationConfigurationNotFoundError

            raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
        rules = []
        for rule in _as_list(replication["Rule"]):
            out = {
                "ID": rule["ID"],
                "Priority": rule["Priority"],
                "Status": rule["Status"],
                "DeleteMarkerReplication": rule.get("DeleteMarkerReplication") or {"Status": "Disabled"},
                "Filter": rule.get("Filter") or {"Prefix": ""},
                "Destination": rule["Destination"],
            }
            if rule.get("SourceSelectionCriteria"):
                out["SourceSelectionCriteria"] = rule["SourceSelectionCriteria"]
            rules.append(out)
        return self.serialized(ActionResult({"ReplicationConfiguration": {"Role": replication["Role"], "Rules": rules}}))

    responses.S3Response.get_bucket_replication = get_bucket_replication

    def replicating_put_object(self, bucket_name, key_name, value, *args, **kwargs):
        """A new object of a bucket whose rule replicates it reads PENDING, and is replicated
        after DELAY_SECONDS (settle)."""
        key = put_object(self, bucket_name, key_name, value, *args, **kwargs)
        bucket = self.get_bucket(bucket_name)
        if eligible_rule(bucket, key) is not None:
            key._trailkeeper_replication_status = "PENDING"
            _pending.append([time.time() + DELAY_SECONDS, self.account_id, bucket_name, key])
        return key

    backend.put_object = replicating_put_object

    response_dict = models.FakeKey.response_dict

    def with_replication_status(self):
        headers = response_dict.fget(self)
        status = getattr(self, "_trailkeeper_replication_status", None)
        if status:
            headers["x-amz-replication-status"] = status
        return headers

    models.FakeKey.response_dict = property(with_replication_status)
    moto_api_urls.url_paths["{0}/moto-api/trailkeeper/replication"] = failures_response

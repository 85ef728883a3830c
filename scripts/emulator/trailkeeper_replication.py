"""S3 replication in the test emulator: the preconditions S3 checks at PutBucketReplication, the
configuration read back as it was written (moto drops SourceSelectionCriteria and answers every
DeleteMarkerReplication as Disabled), and live replication of new objects with their status.

Test tooling only, never the product; loaded by trailkeeper_strict.install().
"""
from moto.s3.exceptions import S3ClientError


class _Refused(S3ClientError):
    code = 400

    def __init__(self, error_type, message):
        super().__init__(error_type, message)


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _bucket_of(arn_or_name):
    return arn_or_name.split(":::", 1)[-1]


def _lock_enabled(bucket):
    return bool(bucket.object_lock_enabled)


def check_replication(backend, bucket_name, config):
    """PutBucketReplication preconditions.

    - Both buckets versioned: "Both source and destination buckets must have versioning enabled"
      (moto checks the source only).
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-requirements.html
    - A source with Object Lock needs destinations with Object Lock: "To replicate objects from a
      source bucket with Object Lock enabled, the destination bucket must also have Object Lock
      enabled" (DstBucketObjectLockConfigMissing).
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-replication
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-failure-codes.html
    - SSE-KMS objects are replicated only with SourceSelectionCriteria SseKmsEncryptedObjects
      and a ReplicaKmsKeyID for each destination.
      https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html
    - The destination bucket must exist.
    """
    source = backend.get_bucket(bucket_name)
    if source.versioning_status != "Enabled":
        raise _Refused("InvalidRequest", "Versioning must be 'Enabled' on the bucket to apply a replication configuration")
    for rule in _as_list(config.get("Rule")):
        destination = rule.get("Destination") or {}
        name = _bucket_of(destination.get("Bucket", ""))
        try:
            target = backend.get_bucket(name)
        except Exception:
            raise _Refused("InvalidRequest", f"Destination bucket must exist: {name}")
        if target.versioning_status != "Enabled":
            raise _Refused("InvalidRequest", "Destination bucket must have versioning enabled.")
        if _lock_enabled(source) and not _lock_enabled(target):
            raise _Refused(
                "InvalidRequest",
                "Replication destination must have Object Lock enabled when the source bucket has Object Lock enabled.",
            )
        criteria = (rule.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects") or {}
        replica_key = (destination.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
        if criteria.get("Status") == "Enabled" and not replica_key:
            raise _Refused("InvalidArgument", "ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present.")
        if replica_key and criteria.get("Status") != "Enabled":
            raise _Refused("InvalidArgument", "SseKmsEncryptedObjects must be specified if EncryptionConfiguration is present.")


def install():
    from moto.s3 import models, responses
    from moto.core.responses import ActionResult

    backend = models.S3Backend
    if getattr(backend, "_trailkeeper_replication", False):
        return
    backend._trailkeeper_replication = True
    put_bucket_replication, put_object = backend.put_bucket_replication, backend.put_object

    def strict_put_bucket_replication(self, bucket_name, replication):
        check_replication(self, bucket_name, replication)
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
        """Live replication: each new object of a bucket with an enabled rule is copied into the
        destination (with the destination's default retention) and reads COMPLETED there as
        x-amz-replication-status; the replica reads REPLICA.
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-status.html"""
        key = put_object(self, bucket_name, key_name, value, *args, **kwargs)
        bucket = self.get_bucket(bucket_name)
        replication = getattr(bucket, "replication", None)
        if not replication or getattr(key, "_trailkeeper_replica", False):
            return key
        for rule in _as_list(replication.get("Rule")):
            if rule.get("Status") != "Enabled":
                continue
            destination = (rule.get("Destination") or {})
            name = _bucket_of(destination.get("Bucket", ""))
            replica_key = (destination.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
            try:
                target_backend = self
                target = self.get_bucket(name)
            except Exception:
                key._trailkeeper_replication_status = "FAILED"
                continue
            if target.versioning_status != "Enabled" or (_lock_enabled(bucket) and not _lock_enabled(target)):
                key._trailkeeper_replication_status = "FAILED"
                continue
            replica = put_object(target_backend, name, key_name, value, encryption="aws:kms" if replica_key else None,
                                 kms_key_id=replica_key)
            replica._trailkeeper_replica = True
            replica._trailkeeper_replication_status = "REPLICA"
            key._trailkeeper_replication_status = "COMPLETED"
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

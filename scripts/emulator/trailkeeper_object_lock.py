"""Object Lock on an existing bucket, as S3 has allowed it since November 2023; moto refuses any
bucket that holds objects ("Bucket needs to be empty"). Test tooling only, never the product;
installed by trailkeeper_strict.install().

- "You can enable Object Lock for new or existing buckets" (PutObjectLockConfiguration, API
  reference), once "you ... enable S3 Versioning" ("Before you lock any objects, you must enable S3
  Versioning and Object Lock on a general purpose bucket"): a bucket whose versioning is not
  Enabled is refused (InvalidBucketState), one that holds objects is not.
- After the call: "The rule specified in the Object Lock configuration will be applied by default
  to every new object placed in the specified bucket": the versions written before keep no
  retention (moto leaves them as they are), the new ones get the default retention.
- "After you enable Object Lock on a bucket, you can't disable Object Lock or suspend versioning
  for that bucket": PutBucketVersioning Suspended is refused (InvalidBucketState); moto accepts it.
https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectLockConfiguration.html
https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-configure.html
"""


def install():
    """Replaces S3Backend.put_object_lock_configuration, guards put_bucket_versioning. Idempotent."""
    from moto.s3 import models
    from moto.s3.exceptions import InvalidBucketState

    backend = models.S3Backend
    if getattr(backend, "_trailkeeper_object_lock", False):
        return
    backend._trailkeeper_object_lock = True
    put_bucket_versioning = backend.put_bucket_versioning

    def put_object_lock_configuration(self, bucket_name, lock_enabled, mode=None, days=None, years=None):
        bucket = self.get_bucket(bucket_name)
        if bucket.versioning_status != "Enabled":
            raise InvalidBucketState(
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
            )
        if lock_enabled:
            bucket.object_lock_enabled = True
        bucket.default_lock_mode = mode
        bucket.default_lock_days = days
        bucket.default_lock_years = years

    def strict_put_bucket_versioning(self, bucket_name, status):
        if status != "Enabled" and self.get_bucket(bucket_name).object_lock_enabled:
            raise InvalidBucketState(
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
            )
        return put_bucket_versioning(self, bucket_name, status)

    backend.put_object_lock_configuration = put_object_lock_configuration
    backend.put_bucket_versioning = strict_put_bucket_versioning

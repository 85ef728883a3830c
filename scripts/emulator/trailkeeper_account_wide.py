"""What the account-wide CIS controls read (3.3 AWS Config recorders, the regions of an account),
as AWS answers it, in the test emulator (installed by trailkeeper_strict.install; test tooling
only, never the product).

- DescribeRegions answers the Regions enabled for the account, of its own partition, unless
  AllRegions is true: "Describes the Regions that are enabled for your account, or all Regions",
  AllRegions: "Indicates whether to display all Regions, including Regions that are disabled for
  your account"; "You can't describe or access the Regions of one type of account from another".
  moto lists every Region of every partition (38), opt-in ones and China's and GovCloud's too.
  Regions launched before March 20, 2019 are enabled by default; the others are opt-in.
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRegions.html
  https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html
  https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html
  TRAILKEEPER_EMULATOR_REGIONS=us-east-1,eu-west-1 (the server's environment) narrows the Regions
  enabled by default for a whole run: a benchmark of hundreds of accounts would otherwise have the
  emulator build an EC2 backend per account and Region. AWS has no such thing, nor the product.
- PutDeliveryChannel checks its bucket: NoSuchBucketException when it does not exist,
  InsufficientDeliveryPolicyException when its policy does not let AWS Config (the
  config.amazonaws.com service principal, aws:SourceAccount the account) check the bucket
  (s3:GetBucketAcl) and put the account's objects under the channel's prefix
  (s3:PutObject on {prefix}/AWSLogs/{account}/Config/*, s3:x-amz-acl bucket-owner-full-control).
  moto assumes the bucket and its policy are right.
  https://docs.aws.amazon.com/config/latest/APIReference/API_PutDeliveryChannel.html
  https://docs.aws.amazon.com/config/latest/developerguide/s3-bucket-policy.html
- A recorder's status after StartConfigurationRecorder: lastStatus is one of Pending, Success,
  Failure (moto answers PENDING, forever); a recorder that records and whose channel's bucket
  admits AWS Config delivers: Success; one whose bucket is gone or refuses it: Failure, with the
  error code.
  https://docs.aws.amazon.com/config/latest/APIReference/API_ConfigurationRecorderStatus.html
"""
import os

# Regions launched before March 20, 2019, in the aws partition (manage-acct-regions.html).
ENABLED_BY_DEFAULT = {
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-south-1",
}
CONFIG = "config.amazonaws.com"


def _partition(region):
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def enabled_by_default(region):
    """Whether a Region is enabled for every account of its partition (China's and GovCloud's
    Regions are not opt-in)."""
    narrowed = os.environ.get("TRAILKEEPER_EMULATOR_REGIONS", "").strip()
    if narrowed:
        return region in {r.strip() for r in narrowed.split(",")}
    return _partition(region) != "aws" or region in ENABLED_BY_DEFAULT


def _install_regions():
    from moto.core.responses import ActionResult
    from moto.ec2.models.availability_zones_and_regions import Region
    from moto.ec2.responses.availability_zones_and_regions import AvailabilityZonesAndRegions

    def describe_regions(self):
        self.error_on_dryrun()
        names = self._get_param("RegionNames", []) or []
        every = str(self._get_param("AllRegions", "false")).lower() == "true"
        partition = _partition(self.region)
        shown = []
        for region in self.ec2_backend.describe_regions(names):
            if _partition(region.name) != partition:
                continue
            enabled = enabled_by_default(region.name)
            if not enabled and not every:
                continue
            status = "opt-in-not-required" if enabled else "not-opted-in"
            shown.append(Region(region.name, region.endpoint, status))
        return ActionResult({"Regions": shown})

    if not getattr(AvailabilityZonesAndRegions, "_trailkeeper_account_wide", False):
        AvailabilityZonesAndRegions._trailkeeper_account_wide = True
        AvailabilityZonesAndRegions.describe_regions = describe_regions


def _bucket_of(account, bucket):
    from moto.s3.models import s3_backends

    for backend in s3_backends[account].values():
        found = backend.buckets.get(bucket)
        if found is not None:
            return found
    return None


def _delivery_problem(account, channel):
    """Why AWS Config cannot deliver to the channel's bucket: (error code, message), or None."""
    import trailkeeper_strict

    bucket_name = getattr(channel, "s3_bucket_name", None) or (channel.get("s3BucketName") if isinstance(channel, dict) else None)
    prefix = getattr(channel, "s3_key_prefix", None) if not isinstance(channel, dict) else channel.get("s3KeyPrefix")
    bucket = _bucket_of(account, bucket_name) if bucket_name else None
    if bucket is None:
        return "NoSuchBucketException", f"Cannot find a S3 bucket with the name {bucket_name}."
    policy = bucket.policy.decode() if isinstance(bucket.policy, bytes) else bucket.policy
    root = f"{prefix}/" if prefix else ""
    context = {"aws:SourceAccount": account, "s3:x-amz-acl": "bucket-owner-full-control"}
    check = policy and trailkeeper_strict.allows(
        policy, CONFIG, "s3:GetBucketAcl", f"arn:aws:s3:::{bucket_name}", {"aws:SourceAccount": account})
    put = policy and trailkeeper_strict.allows(
        policy, CONFIG, "s3:PutObject",
        f"arn:aws:s3:::{bucket_name}/{root}AWSLogs/{account}/Config/ConfigWritabilityCheckFile", context)
    if not (check and put):
        return ("InsufficientDeliveryPolicyException",
                f"Insufficient delivery policy to s3 bucket: {bucket_name}, unable to write to bucket, provided "
                f"s3 key prefix is '{prefix}'.")
    return None


def _install_config():
    from moto.config import models
    from moto.core.exceptions import JsonRESTError

    class Refused(JsonRESTError):
        code = 400

    backend = models.ConfigBackend
    if getattr(backend, "_trailkeeper_account_wide", False):
        return
    backend._trailkeeper_account_wide = True
    put_delivery_channel = backend.put_delivery_channel

    def strict_put_delivery_channel(self, delivery_channel):
        if self.recorders and delivery_channel.get("s3BucketName"):
            problem = _delivery_problem(self.account_id, delivery_channel)
            if problem:
                raise Refused(*problem)
        return put_delivery_channel(self, delivery_channel)

    backend.put_delivery_channel = strict_put_delivery_channel

    describe_status = backend.describe_configuration_recorder_status

    def delivering_status(self, recorder_names):
        statuses = describe_status(self, recorder_names)
        channel = next(iter(self.delivery_channels.values()), None)
        for status in statuses:
            if not status.get("recording"):
                if status.get("lastStatus") == "PENDING":
                    status["lastStatus"] = "Pending"
                continue
            problem = _delivery_problem(self.account_id, channel) if channel is not None else (
                "NoAvailableDeliveryChannelException", "no delivery channel")
            if problem:
                status["lastStatus"] = "Failure"
                status["lastErrorCode"], status["lastErrorMessage"] = problem
            else:
                status["lastStatus"] = "Success"
        return statuses

    backend.describe_configuration_recorder_status = delivering_status


def install():
    """Idempotent."""
    _install_regions()
    _install_config()

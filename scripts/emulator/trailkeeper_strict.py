"""AWS preconditions the test emulator enforces on top of moto (which stores what it is sent).

Loaded into the moto server by scripts/patch-moto.py; test tooling only, never the product. Each
rule cites the AWS page it comes from. Policies are judged as IAM judges them
(scripts/emulator/iam_policy.py: every condition operator, NotPrincipal/NotAction/NotResource,
policy variables), with the request context the service documents for its request
(aws:SourceArn, aws:SourceAccount, s3:x-amz-acl, the CloudTrail encryption context).
"""
import json
import pathlib

import iam_policy
import trailkeeper_delegated
import trailkeeper_trail_access
from moto.core.exceptions import JsonRESTError

CLOUDTRAIL = "cloudtrail.amazonaws.com"
LOG_DELIVERY = "delivery.logs.amazonaws.com"


class _Refused(JsonRESTError):
    code = 400

    def __init__(self, error_type: str, message: str):
        super().__init__(error_type, message)


def _as_list(value):
    return iam_policy.as_list(value)


def _principal_is(statement, service):
    return iam_policy.principal_matches(statement.get("Principal"), {"Service": service})


def evaluate(policy_text, principal_ok, action, resource, context):
    """Whether `policy_text` allows `action` on `resource` (None: a trust policy, which names no
    resource) in `context` for a principal `principal_ok(statement)` accepts, and no Deny stops
    it; statements are judged as IAM judges them (scripts/emulator/iam_policy.py). Identity
    policies pass a `principal_ok` that accepts every statement."""
    policy = iam_policy.parse(policy_text)
    kept = [st for st in _as_list(policy.get("Statement")) if principal_ok(st)]
    stripped = [{k: v for k, v in st.items() if k not in ("Principal", "NotPrincipal")} for st in kept]
    return iam_policy.decide({"Statement": stripped}, None, action, resource, context) == iam_policy.ALLOW


def allows(policy_text, service, action, resource, context):
    """Whether `policy_text` lets `service` do `action` on `resource` in `context`, and no Deny stops it."""
    return iam_policy.decide(policy_text, {"Service": service}, action, resource, context) == iam_policy.ALLOW


def allows_principal(policy_text, principal_arn, action, resource, context):
    """Whether a resource policy lets the IAM principal `principal_arn` do `action`."""
    return iam_policy.decide(policy_text, {"AWS": principal_arn}, action, resource, context) == iam_policy.ALLOW


def _s3_backend(account_id, partition):
    from moto.s3.models import s3_backends

    return s3_backends[account_id][partition]


def _org_of(account_id):
    """(organization id, management account id, enabled service principals) or None."""
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[account_id]["aws"]
    org = backend.org
    if org is None and account_id in organizations_backends.master_accounts:
        master, partition = organizations_backends.master_accounts[account_id]
        backend = organizations_backends[master][partition]
        org = backend.org
    if org is None:
        return None
    services = [s["ServicePrincipal"] for s in backend.services]
    return org.id, org.master_account_id, services


def _is_delegated_administrator(account_id, service):
    """Whether the Organization of `account_id` registered it as a delegated administrator of
    `service` (CloudTrail's RegisterOrganizationDelegatedAdmin registers it with Organizations)."""
    from moto.organizations.models import organizations_backends

    org = _org_of(account_id)
    if org is None:
        return False
    management = organizations_backends[org[1]]["aws"]
    return any(
        admin.account.id == account_id and service in admin.services
        for admin in getattr(management, "admins", [])
    )


def _service_context(trail_arn, account_id):
    """What CloudTrail sends with its requests to S3 and KMS: the trail's ARN and account, and the
    account's Organization when it has one (aws:SourceOrgID, "present in the request context of a
    service principal acting on behalf of a resource that belongs to an organization":
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-sourceorgid)."""
    context = {"aws:SourceArn": trail_arn, "aws:SourceAccount": account_id}
    org = _org_of(account_id)
    if org is not None:
        context["aws:SourceOrgID"] = org[0]
    return context


def _key_home(kms_key_id, region, account_id):
    """(region, account) of a key named by ARN (another account's key for a log archive) or by id."""
    if kms_key_id.startswith("arn:"):
        parts = kms_key_id.split(":")
        return parts[3], parts[4]
    return region, account_id


def check_trail(trail_arn, account_id, region, partition, bucket, prefix, kms_key_id, is_org):
    """CreateTrail/UpdateTrail preconditions.

    - Bucket policy: CloudTrail must be able to GetBucketAcl on the bucket and PutObject under
      `[prefix/]AWSLogs/{account}/` (and `AWSLogs/{o-id}/` for an Organization trail) with the
      bucket-owner-full-control ACL, for this trail's source ARN; else
      InsufficientS3BucketPolicyException.
      https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
    - Key policy: CloudTrail must be allowed kms:GenerateDataKey* for the trail's encryption
      context (kms:EncryptionContext:aws:cloudtrail:arn = the trail ARN) and source ARN; else
      InsufficientEncryptionPolicyException.
      https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
    - Organization trail: only the management account or a delegated administrator of CloudTrail
      creates one ("You can create an organization trail ... from the management account or a
      delegated administrator account"), with trusted access for CloudTrail enabled
      (CloudTrailAccessNotEnabledException) and the service-linked role
      AWSServiceRoleForCloudTrail in the management account (NoManagementAccountSLRExistsException).
      https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html
      https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-delegated-administrator.html
      https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-an-organizational-trail-prepare.html
      https://docs.aws.amazon.com/awscloudtrail/latest/userguide/using-service-linked-roles-create-slr-for-org-trails.html
    - The key itself (DescribeKey for CloudTrail, Decrypt with a Bucket Key, the caller's own
      permission) and the S3KeyPrefix: trailkeeper_trail_access.

    `account_id` is the caller's account; the trail's owner is the account of `trail_arn` (the
    management account for an Organization trail of a delegated administrator:
    trailkeeper_delegated), whose paths and source CloudTrail's requests carry.
    """
    import trailkeeper_trail_access as access

    owner = trail_arn.split(":")[4]
    org = _org_of(account_id) if is_org else None
    if is_org:
        management = org is not None and org[1] == account_id
        if not management and not _is_delegated_administrator(account_id, CLOUDTRAIL):
            raise _Refused(
                "NotOrganizationMasterAccountException",
                "This operation can be performed only by the management account of an organization.",
            )
        if CLOUDTRAIL not in org[2]:
            raise _Refused(
                "CloudTrailAccessNotEnabledException",
                "Trusted access for CloudTrail is not enabled in AWS Organizations.",
            )
        from moto.iam.models import iam_backends

        if not any(r.name == "AWSServiceRoleForCloudTrail" for r in iam_backends[org[1]][partition].roles.values()):
            raise _Refused(
                "NoManagementAccountSLRExistsException",
                "The management account has no service-linked role AWSServiceRoleForCloudTrail.",
            )

    # The bucket may be another account's (a log-archive account): S3 bucket names are global.
    target = _s3_backend(account_id, partition).get_bucket(bucket)
    if access.prefix_refused(prefix, target, owner):
        raise _Refused(
            "InvalidS3PrefixException",
            f"S3KeyPrefix {prefix} includes AWSLogs/, which a trail into another account's bucket may not.",
        )
    policy = target.policy
    policy_text = policy.decode() if policy else ""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    service_context = _service_context(trail_arn, owner)
    write_context = dict(service_context, **{"s3:x-amz-acl": "bucket-owner-full-control"})
    base = f"{bucket_arn}/{prefix.strip('/')}/AWSLogs" if prefix else f"{bucket_arn}/AWSLogs"
    paths = [f"{base}/{owner}/CloudTrail/{region}/2026/01/01/file.json.gz"]
    if is_org:
        paths.append(f"{base}/{org[0]}/{owner}/CloudTrail/{region}/2026/01/01/file.json.gz")
    if not allows(policy_text, CLOUDTRAIL, "s3:GetBucketAcl", bucket_arn, service_context) or not all(
        allows(policy_text, CLOUDTRAIL, "s3:PutObject", path, write_context) for path in paths
    ):
        raise _Refused(
            "InsufficientS3BucketPolicyException",
            f"Incorrect S3 bucket policy is detected for bucket: {bucket}",
        )

    if kms_key_id:
        from moto.kms.models import kms_backends

        key_region, key_account = _key_home(kms_key_id, region, account_id)
        # "The KMS key and the Amazon S3 bucket must be in the same AWS Region."
        # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/encrypting-cloudtrail-log-files-with-aws-kms.html
        if key_region != target.region_name:
            raise _Refused(
                "InvalidKmsKeyIdException",
                f"KMS key {kms_key_id} is not in the Region of bucket {bucket} ({target.region_name}).",
            )
        backend = kms_backends[key_account][key_region]
        try:
            key = backend.keys[backend.any_id_to_key_id(kms_key_id)]
        except Exception:
            raise _Refused("KmsKeyNotFoundException", f"KMS key {kms_key_id} does not exist.")
        context = dict(service_context, **{"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn})
        refusal = None
        if not allows(key.policy, CLOUDTRAIL, "kms:GenerateDataKey", "*", context):
            refusal = "the key policy does not let CloudTrail kms:GenerateDataKey for this trail"
        else:
            refusal = access.key_refusal(key, key_account, partition, access.caller(partition, account_id),
                                         service_context, trail_arn, access.bucket_key_enabled(target))
        if refusal is not None:
            raise _Refused(
                "InsufficientEncryptionPolicyException",
                f"Insufficient permissions to access S3 bucket or KMS key: {refusal}.",
            )


def flow_log_bucket_policy(partition, bucket, account_id, region):
    """The policy AWS attaches for flow logs to S3 (VPC user guide, "Amazon S3 bucket permissions
    for flow logs"): "This policy overwrites any existing policy attached to the bucket."
    https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-permissions.html"""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    source = f"arn:{partition}:logs:{region}:{account_id}:*"
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AWSLogDeliveryWrite", "Effect": "Allow", "Principal": {"Service": LOG_DELIVERY},
             "Action": "s3:PutObject", "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
             "Condition": {"StringEquals": {"aws:SourceAccount": account_id, "s3:x-amz-acl": "bucket-owner-full-control"},
                           "ArnLike": {"aws:SourceArn": source}}},
            {"Sid": "AWSLogDeliveryAclCheck", "Effect": "Allow", "Principal": {"Service": LOG_DELIVERY},
             "Action": "s3:GetBucketAcl", "Resource": bucket_arn,
             "Condition": {"StringEquals": {"aws:SourceAccount": account_id}, "ArnLike": {"aws:SourceArn": source}}},
        ],
    })


def flow_logs_to_s3(account_id, partition, region, destination):
    """CreateFlowLogs to S3, when the caller owns the bucket and may read and write its policy:
    AWS attaches its own delivery policy unless the bucket's policy already lets the log
    delivery service write under AWSLogs/{account}/ and read the ACL.
    https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-permissions.html"""
    bucket, _, sub = destination.split(":", 5)[5].partition("/")
    backend = _s3_backend(account_id, partition)
    stored = backend.get_bucket(bucket).policy
    policy_text = stored.decode() if stored else ""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    source = f"arn:{partition}:logs:{region}:{account_id}:*"
    context = {"aws:SourceAccount": account_id, "aws:SourceArn": source.replace("*", "delivery-source")}
    key = f"{bucket_arn}/{sub.strip('/') + '/' if sub else ''}AWSLogs/{account_id}/vpcflowlogs/{region}/file.log.gz"
    write_context = dict(context, **{"s3:x-amz-acl": "bucket-owner-full-control"})
    if allows(policy_text, LOG_DELIVERY, "s3:GetBucketAcl", bucket_arn, context) and allows(
        policy_text, LOG_DELIVERY, "s3:PutObject", key, write_context
    ):
        return
    backend.put_bucket_policy(bucket, flow_log_bucket_policy(partition, bucket, account_id, region).encode())


def check_log_group_key(account_id, region, group, key_arn):
    """CreateLogGroup with kmsKeyId and AssociateKmsKey: the key must exist in the group's region
    and its policy must let CloudWatch Logs of that region use it for this group's ARN (the
    kms:EncryptionContext:aws:logs:arn context); else AccessDeniedException.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"""
    from moto.kms.models import kms_backends
    from moto.utilities.utils import get_partition

    partition = get_partition(region)
    group_arn = f"arn:{partition}:logs:{region}:{account_id}:log-group:{group}"
    refused = _Refused(
        "AccessDeniedException",
        f"The specified KMS key does not exist or is not allowed to be used with Arn '{group_arn}'",
    )
    key_region = key_arn.split(":")[3] if key_arn.startswith("arn:") else region
    if key_region != region:
        raise refused
    backend = kms_backends[account_id][region]
    try:
        key = backend.keys[backend.any_id_to_key_id(key_arn)]
    except Exception:
        raise refused
    context = {"kms:EncryptionContext:aws:logs:arn": group_arn, "aws:SourceAccount": account_id}
    # CloudWatch Logs' principal is regional, and in aws-cn under the partition's domain.
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    if not allows(key.policy, f"logs.{region}.{domain}", "kms:GenerateDataKey", "*", context):
        raise refused


def _delivery_of(trail, region):
    """What GetTrailStatus in `region` says of `trail`'s deliveries from that Region (see
    delivering_get_trail_status)."""
    import calendar
    import re
    import time

    out = {}
    try:
        bucket = _s3_backend(trail.account_id, trail.partition).get_bucket(trail.bucket_name)
    except Exception:
        return {"LatestDeliveryError": "NoSuchBucket"}
    prefix = f"{trail.s3_key_prefix.strip('/')}/" if trail.s3_key_prefix else ""
    # Log files: {account}_CloudTrail_{region}_{YYYYMMDDTHHmmZ}_{id}.json.gz; digests end with the
    # time to the second: {account}_CloudTrail-Digest_{region}_{trail}_{home}_{YYYYMMDDTHHmmssZ}.json.gz
    # (CloudTrail user guide, "CloudTrail log file examples" and "CloudTrail digest file structure").
    stamp = re.compile(r"_(\d{8}T\d{4})(\d{2})?Z[_.]")
    newest = {"CloudTrail": None, "CloudTrail-Digest": None}
    for key in list(bucket.keys.keys()):
        if not key.startswith(f"{prefix}AWSLogs/"):
            continue
        kind = ("CloudTrail-Digest" if f"/CloudTrail-Digest/{region}/" in key
                else "CloudTrail" if f"/CloudTrail/{region}/" in key else None)
        found = stamp.search(key)
        if kind is None or found is None:
            continue
        when = calendar.timegm(time.strptime(found.group(1), "%Y%m%dT%H%M")) + int(found.group(2) or 0)
        if newest[kind] is None or when > newest[kind]:
            newest[kind] = when
    if newest["CloudTrail"] is not None:
        out["LatestDeliveryTime"] = newest["CloudTrail"]
    if newest["CloudTrail-Digest"] is not None:
        out["LatestDigestDeliveryTime"] = newest["CloudTrail-Digest"]
    bucket_arn = f"arn:{trail.partition}:s3:::{trail.bucket_name}"
    policy = bucket.policy.decode() if bucket.policy else ""
    owner = trail.arn.split(":")[4]
    context = dict(_service_context(trail.arn, owner), **{"s3:x-amz-acl": "bucket-owner-full-control"})
    path = f"{bucket_arn}/{prefix}AWSLogs/{owner}/CloudTrail/{region}/x.json.gz"
    if not allows(policy, CLOUDTRAIL, "s3:PutObject", path, context):
        out["LatestDeliveryError"] = "AccessDenied"
    elif trail.kms_key_id:
        from moto.kms.models import kms_backends

        region, key_account = _key_home(trail.kms_key_id, trail.region_name, trail.account_id)
        backend = kms_backends[key_account][region]
        try:
            key = backend.keys[backend.any_id_to_key_id(trail.kms_key_id)]
        except Exception:
            key = None
        kms_context = dict(_service_context(trail.arn, owner),
                           **{"kms:EncryptionContext:aws:cloudtrail:arn": trail.arn})
        if key is None or key.key_state != "Enabled":
            out["LatestDeliveryError"] = "KMS.DisabledException"
        elif not allows(key.policy, CLOUDTRAIL, "kms:GenerateDataKey", "*", kms_context):
            out["LatestDeliveryError"] = "KMS.AccessDeniedException"
    return out


_REGION_KEYS = {}


def _public_key_of(region):
    """The DER (PKCS#1) public key CloudTrail signs `region`'s digests with (see list_public_keys)."""
    if region not in _REGION_KEYS:
        fixtures = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"
        name = "cloudtrail-test-key.pub.der" if region == "us-east-1" else f"cloudtrail-test-key-{region}.pub.der"
        if (fixtures / name).is_file():
            _REGION_KEYS[region] = (fixtures / name).read_bytes()
        else:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _REGION_KEYS[region] = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return _REGION_KEYS[region]


def install():
    """Wraps the moto backends the rules apply to. Idempotent."""
    import trailkeeper_cbor
    import trailkeeper_policies
    import trailkeeper_replication

    trailkeeper_cbor.install()
    trailkeeper_policies.install()
    trailkeeper_replication.install()
    trailkeeper_delegated.install()
    trailkeeper_trail_access.install()
    __import__("trailkeeper_selectors").install()
    __import__("trailkeeper_securityhub").install()
    __import__("trailkeeper_object_lock").install()
    __import__("trailkeeper_batch").install()
    __import__("trailkeeper_sqs_visibility").install()
    __import__("trailkeeper_account_wide").install()
    from moto.cloudtrail import models as cloudtrail
    from moto.ec2.models import flow_logs
    from moto.iam import models as iam

    # The service-linked role's name as AWS spells it (moto would make AWSServiceRoleForcloudtrail).
    iam.SERVICE_NAME_CONVERSION.setdefault("cloudtrail", "CloudTrail")
    # Config's too: AWSServiceRoleForConfig (moto: AWSServiceRoleForconfig), so a second apply finds it.
    # https://docs.aws.amazon.com/config/latest/developerguide/using-service-linked-roles-config.html
    iam.SERVICE_NAME_CONVERSION.setdefault("config", "Config")

    # CloudTrail supports a delegated administrator (moto's list omits it):
    # https://docs.aws.amazon.com/organizations/latest/userguide/services-that-can-integrate-cloudtrail.html
    from moto.organizations.models import FakeDelegatedAdministrator

    if CLOUDTRAIL not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
        FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(CLOUDTRAIL)

    backend = cloudtrail.CloudTrailBackend
    if getattr(backend, "_trailkeeper_strict", False):
        return
    backend._trailkeeper_strict = True
    create_trail, update_trail = backend.create_trail, backend.update_trail

    def strict_create_trail(self, name, bucket_name, s3_key_prefix, sns_topic_name, is_global, is_multi_region,
                            log_validation, is_org_trail, cw_log_group_arn, cw_role_arn, kms_key_id, tags_list):
        from moto.utilities.utils import get_partition

        partition = get_partition(self.region_name)
        owner = trailkeeper_delegated.owner_of_new_trail(self.account_id, bool(is_org_trail))
        arn = f"arn:{partition}:cloudtrail:{self.region_name}:{owner}:trail/{name}"
        try:
            _s3_backend(self.account_id, partition).get_bucket(bucket_name)
        except Exception:
            pass  # moto's own check reports a missing bucket
        else:
            check_trail(arn, self.account_id, self.region_name, partition, bucket_name, s3_key_prefix,
                        kms_key_id, bool(is_org_trail))
        trailkeeper_delegated.creating_for(owner)
        try:
            return create_trail(self, name, bucket_name, s3_key_prefix, sns_topic_name, is_global, is_multi_region,
                                log_validation, is_org_trail, cw_log_group_arn, cw_role_arn, kms_key_id, tags_list)
        finally:
            trailkeeper_delegated.creating_for(None)

    def strict_update_trail(self, name, s3_bucket_name, s3_key_prefix, sns_topic_name, include_global_service_events,
                            is_multi_region_trail, enable_log_file_validation, is_organization_trail,
                            cw_log_group_arn, cw_role_arn, kms_key_id):
        trail = self.get_trail(name_or_arn=name)
        bucket = s3_bucket_name if s3_bucket_name is not None else trail.bucket_name
        prefix = s3_key_prefix if s3_key_prefix is not None else trail.s3_key_prefix
        key = kms_key_id if kms_key_id is not None else trail.kms_key_id
        is_org = is_organization_trail if is_organization_trail is not None else trail.is_org_trail
        check_trail(trail.arn, self.account_id, trail.region_name, trail.partition, bucket, prefix, key, bool(is_org))
        return update_trail(self, name, s3_bucket_name, s3_key_prefix, sns_topic_name, include_global_service_events,
                            is_multi_region_trail, enable_log_file_validation, is_organization_trail,
                            cw_log_group_arn, cw_role_arn, kms_key_id)

    backend.create_trail = strict_create_trail
    backend.update_trail = strict_update_trail

    from moto.cloudtrail import responses as cloudtrail_responses

    def organization_describe_trails(self):
        """Members of an Organization see its Organization trails (CloudTrail user guide,
        "Organization trails": member accounts can see the organization trail, not change it);
        moto lists only the caller's own. Reading such a trail's selectors or tags stays refused
        (TrailNotFound), as AWS refuses it to members; its status is answered with the full ARN
        (see delivering_get_trail_status).
        https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html"""
        include_shadow_trails = self._get_bool_param("includeShadowTrails", True)
        backend = self.cloudtrail_backend
        trails = list(backend.describe_trails(include_shadow_trails))
        org = _org_of(backend.account_id)
        if include_shadow_trails and org is not None and org[1] != backend.account_id:
            for regional in cloudtrail.cloudtrail_backends[org[1]].values():
                trails.extend(
                    t for t in regional.trails.values()
                    if t.is_org_trail and (t.is_multi_region or t.region_name == backend.region_name)
                )
        return json.dumps({"trailList": [t.description(include_region=True) for t in trails]})

    cloudtrail_responses.CloudTrailResponse.describe_trails = organization_describe_trails

    def delivering_get_trail_status(self):
        """GetTrailStatus with delivery as it happened: moto reports a delivery "now" whenever
        the trail logs. Here LatestDeliveryTime is the time of the newest log file under the
        trail's prefix (from its name, as CloudTrail names them:
        {account}_CloudTrail_{region}_{YYYYMMDDTHHmmZ}_{id}.json.gz, so a test delivers by putting
        one), LatestDigestDeliveryTime the same for digests (each of the Region the call is made
        in: "This operation returns trail status from a single Region"), and LatestDeliveryError what a
        delivery would meet now: AccessDenied when the bucket policy no longer admits CloudTrail,
        KMS.DisabledException / KMS.AccessDeniedException for the key.
        A member of an Organization gets the status of the Organization's trail when it names
        the trail by its full ARN ("If the trail is an organization trail and you are a member
        account in the organization in AWS Organizations, you must provide the full ARN of that
        trail, and not just the name"); by name it is another account's unknown trail.
        https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html"""
        name = self._get_param("Name")
        backend = self.cloudtrail_backend
        parts = name.split(":") if name.startswith("arn:") else []
        # Another account's trail, unless it is one this account created for its management account
        # (a delegated administrator's Organization trail: trailkeeper_delegated).
        own = any(t.arn == name for t in backend.describe_trails(True))
        if len(parts) == 6 and parts[4] != backend.account_id and not own:
            from moto.cloudtrail.exceptions import TrailNotFoundException

            org = _org_of(backend.account_id)
            owner = cloudtrail.cloudtrail_backends[parts[4]][parts[3]] if org and org[1] == parts[4] else None
            if owner is None or not any(t.arn == name and t.is_org_trail for t in owner.trails.values()):
                raise TrailNotFoundException(account_id=backend.account_id, name=name)
            backend = owner
        status = backend.get_trail_status(name)
        description = status.description()
        for key in ("LatestDeliveryTime", "LatestDeliveryAttemptTime", "LatestDeliveryAttemptSucceeded"):
            description.pop(key, None)
        trail = next(
            (t for t in backend.describe_trails(True) if name in (t.trail_name, t.arn)), None
        )
        if trail is not None:
            description.update(_delivery_of(trail, self.region))
        return json.dumps(description)

    cloudtrail_responses.CloudTrailResponse.get_trail_status = delivering_get_trail_status

    def list_public_keys(self):
        """ListPublicKeys, which moto lacks: the key that signs the digest files of this region.
        "Each digest file is signed with a private key unique to its Region. When you validate a
        digest file from a specific Region, you must look in the same Region for its corresponding
        public key": so each region serves its own key. us-east-1's is the test key of
        tests/fixtures/cloudtrail-test-key.*, eu-west-1's tests/fixtures/cloudtrail-test-key-eu-west-1.*
        (the tests sign their digest chains with the private halves); any other region's is made
        here, once per server, and no one holds its private half. Valid for all time; the
        fingerprint is the MD5 of the DER form, as CloudTrail's is a hex digest.
        https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_ListPublicKeys.html"""
        import base64
        import hashlib

        der = _public_key_of(self.region)
        return json.dumps({"PublicKeyList": [{
            "Value": base64.b64encode(der).decode(),
            "ValidityStartTime": 0,
            "ValidityEndTime": 4102444800,
            "Fingerprint": hashlib.md5(der).hexdigest(),
        }]})

    cloudtrail_responses.CloudTrailResponse.list_public_keys = list_public_keys

    from moto.core.utils import extract_region_from_aws_authorization
    from moto.s3 import responses as s3_responses
    from moto.s3.exceptions import S3ClientError

    def in_bucket_region(handler):
        """An object request signed for another region than its bucket's is refused: S3 answers
        AuthorizationHeaderMalformed ("the region 'us-east-1' is wrong; expecting 'eu-west-1'"),
        or PermanentRedirect from another region's endpoint; moto serves every bucket from every
        region. GetBucketLocation stays answered from any region: it is how a reader finds the
        region to ask (awscli's S3ClientProvider does).
        https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList"""
        def refusing(self, *args, **kwargs):
            signed_for = extract_region_from_aws_authorization(self.request.headers.get("Authorization", ""))
            try:
                location = self.backend.get_bucket(self.bucket_name).location
            except Exception:
                location = None  # moto reports a missing bucket
            if signed_for and location and signed_for != location:
                raise S3ClientError(
                    "AuthorizationHeaderMalformed",
                    f"The authorization header is malformed; the region '{signed_for}' is wrong; "
                    f"expecting '{location}'",
                )
            return handler(self, *args, **kwargs)
        return refusing

    for name in ("get_object", "head_object", "put_object", "list_objects", "list_objects_v2"):
        setattr(s3_responses.S3Response, name, in_bucket_region(getattr(s3_responses.S3Response, name)))

    flow_backend = flow_logs.FlowLogsBackend
    create_flow_logs = flow_backend.create_flow_logs

    def strict_create_flow_logs(self, resource_type, resource_ids, traffic_type, deliver_logs_permission_arn,
                                log_destination_type, log_destination, log_group_name, log_format,
                                max_aggregation_interval):
        created = create_flow_logs(self, resource_type, resource_ids, traffic_type, deliver_logs_permission_arn,
                                   log_destination_type, log_destination, log_group_name, log_format,
                                   max_aggregation_interval)
        if log_destination_type == "s3" and created[0]:
            flow_logs_to_s3(self.account_id, self.partition, self.region_name, log_destination)
        return created

    flow_backend.create_flow_logs = strict_create_flow_logs

    # A moto bug, not a rule: bucket policies are applied to object requests without their
    # conditions, so the usual "deny aws:SecureTransport false" statement denies every request.
    # Requests here stand for the SDK's, which are TLS in AWS: such statements do not apply.
    from moto.s3 import models as s3_models

    def get_permission_over_tls(self, action, resource):
        from moto.iam.access_control import IAMPolicy, PermissionResult

        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy.decode())
        policy["Statement"] = [
            st for st in _as_list(policy.get("Statement"))
            if str(((st.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport", "")).lower() != "false"
        ]
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    s3_models.FakeBucket.get_permission = get_permission_over_tls

    # A moto gap, not a rule: DescribeLogGroups ignores logGroupIdentifiers (names in a
    # non-monitoring account, "Use this array to filter the list of log groups returned"), so
    # every group of the region would come back.
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogGroups.html
    from moto.logs import responses as logs_responses

    describe_log_groups = logs_responses.LogsResponse.describe_log_groups

    def describe_log_groups_by_identifier(self):
        identifiers = self._get_param("logGroupIdentifiers")
        if not identifiers:
            return describe_log_groups(self)
        if len(identifiers) > 50:
            raise _Refused("InvalidParameterException", "logGroupIdentifiers: at most 50 members")
        groups = [g for name, g in self.logs_backend.groups.items() if name in identifiers or getattr(g, "arn", None) in identifiers]
        return json.dumps({"logGroups": [g.to_describe_dict() for g in sorted(groups, key=lambda g: g.name)]})

    logs_responses.LogsResponse.describe_log_groups = describe_log_groups_by_identifier

    from moto.logs import models as logs_models

    create_log_group = logs_models.LogsBackend.create_log_group

    def strict_create_log_group(self, log_group_name, tags, **kwargs):
        if kwargs.get("kmsKeyId"):
            check_log_group_key(self.account_id, self.region_name, log_group_name, kwargs["kmsKeyId"])
        return create_log_group(self, log_group_name, tags, **kwargs)

    logs_models.LogsBackend.create_log_group = strict_create_log_group

    def associate_kms_key(self):
        """AssociateKmsKey, which moto lacks, with the key policy rule of check_log_group_key."""
        name, key = self._get_param("logGroupName"), self._get_param("kmsKeyId")
        group = self.logs_backend.groups.get(name)
        if group is None:
            raise _Refused("ResourceNotFoundException", "The specified log group does not exist.")
        check_log_group_key(self.logs_backend.account_id, self.logs_backend.region_name, name, key)
        group.kms_key_id = key
        return "{}"

    logs_responses.LogsResponse.associate_kms_key = associate_kms_key

    put_metric_filter = logs_models.LogsBackend.put_metric_filter

    def strict_put_metric_filter(self, filter_name, filter_pattern, log_group_name, metric_transformations):
        """PutMetricFilter "creates or updates" (moto appends a second filter of the same name);
        the group must exist (ResourceNotFoundException); one metric transformation ("Fixed number
        of 1 item"); at most 100 filters per group (LimitExceededException):
        https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutMetricFilter.html
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html"""
        if log_group_name not in self.groups:
            raise _Refused("ResourceNotFoundException", "The specified log group does not exist.")
        if len(metric_transformations or []) != 1:
            raise _Refused("InvalidParameterException", "metricTransformations: exactly 1 member")
        kept = self.filters.metric_filters
        others = [f for f in kept if not (f["filterName"] == filter_name and f["logGroupName"] == log_group_name)]
        if sum(1 for f in others if f["logGroupName"] == log_group_name) >= 100:
            raise _Refused("LimitExceededException", "Resource limit exceeded: 100 metric filters per log group")
        self.filters.metric_filters = others
        return put_metric_filter(self, filter_name, filter_pattern, log_group_name, metric_transformations)

    logs_models.LogsBackend.put_metric_filter = strict_put_metric_filter

    # CloudTrail's events on EventBridge, and EventBridge's delivery rules.
    import trailkeeper_events

    trailkeeper_events.install()
    # CloudTrail -> CloudWatch Logs -> metric filters -> alarms -> SNS through KMS.
    import trailkeeper_monitoring

    trailkeeper_monitoring.install()

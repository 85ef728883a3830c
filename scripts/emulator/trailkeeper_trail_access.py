"""What CloudTrail checks of the key, the bucket and the caller at CreateTrail/UpdateTrail, beyond
the bucket and key policies' statements for CloudTrail itself (trailkeeper_strict.check_trail
calls these). Test tooling only, never the product.

- DescribeKey: "CloudTrail requires the ability to describe the properties of the KMS key":
  a key whose policy does not let CloudTrail describe it is refused.
- Decrypt with an S3 Bucket Key: "If you are using an existing S3 bucket with an S3 Bucket Key,
  kms:Decrypt permissions are required to create or update a trail with SSE-KMS encryption
  enabled", and the page shows the statement for the CloudTrail service principal. Whose Decrypt
  is not said: the emulator takes the strictest reading and requires both, CloudTrail's (with its
  source context) and the caller's (in the trail's encryption context).
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
- The caller's permission on the key is judged as KMS judges any principal: the key policy must
  admit the caller, directly or through its account's root; through the root (and always for a
  key of another account) the caller's identity policy must allow it too, when the caller's role
  exists in the emulator's IAM (trailkeeper's tests mostly assume roles that do not).
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
- S3KeyPrefix: "For security reasons, unauthorized users cannot create a trail that includes
  AWSLogs/ as the S3KeyPrefix parameter" (on the page for a bucket that receives several accounts'
  logs): a prefix holding `AWSLogs/` into another account's bucket is refused
  (InvalidS3PrefixException).
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-set-bucket-policy-for-multiple-accounts.html
"""
import threading

import iam_policy

CLOUDTRAIL = "cloudtrail.amazonaws.com"

_REQUEST = threading.local()


def remember_caller(response):
    """Notes who sends the CloudTrail request `response` answers (the server serves each request
    on its own thread): the role of STS credentials, else the account's root."""
    from moto.sts.models import sts_backends

    access_key = response.get_access_key()
    account = response.current_account
    arn = None
    for backends in list(sts_backends.values()):
        for backend in list(backends.values()):
            assumed = backend.get_assumed_role_from_access_key(access_key)
            if assumed is not None:
                arn, account = assumed.role_arn, assumed.account_id
                break
        if arn:
            break
    _REQUEST.caller = {"arn": arn, "account": account}


def forget_caller():
    _REQUEST.caller = None


def caller(partition, account_id):
    """The principal of the request being served: {"arn", "account"} (an account's root when the
    credentials are no assumed role, as the tests' static credentials are)."""
    found = getattr(_REQUEST, "caller", None) or {"arn": None, "account": account_id}
    arn = found["arn"] or f"arn:{partition}:iam::{found['account']}:root"
    return {"arn": arn, "account": found["account"]}


def bucket_key_enabled(bucket):
    rule = (bucket.encryption or {}).get("Rule") or {}
    return str(rule.get("BucketKeyEnabled", False)).lower() == "true"


def _without_account_root(policy_text, account, partition):
    """The key policy without the statements that name `account` (its root: every principal of it,
    through IAM)."""
    policy = iam_policy.parse(policy_text)
    root = {account, f"arn:{partition}:iam::{account}:root"}
    kept = []
    for statement in iam_policy.as_list(policy.get("Statement")):
        principal = statement.get("Principal")
        names = iam_policy.as_list(principal.get("AWS")) if isinstance(principal, dict) else []
        if not root.intersection(names):
            kept.append(statement)
    return {"Statement": kept}


def _identity_allows(principal, partition, action, resource, context):
    """The caller's identity policies (inline and attached) on `action`: None when its role is not
    in the emulator's IAM (nothing to judge)."""
    from moto.iam.models import iam_backends

    arn = principal["arn"]
    if ":role/" not in arn:
        return None
    try:
        role = iam_backends[principal["account"]][partition].get_role(arn.rsplit("/", 1)[-1])
    except Exception:
        return None
    statements = []
    for document in list(role.policies.values()):
        statements.extend(iam_policy.as_list(iam_policy.parse(document).get("Statement")))
    for managed in list(role.managed_policies.values()):
        document = next((v.document for v in managed.versions if v.version_id == managed.default_version_id), "")
        if document:
            statements.extend(iam_policy.as_list(iam_policy.parse(document).get("Statement")))
    return iam_policy.decide({"Statement": statements}, None, action, resource, context) == iam_policy.ALLOW


def caller_may(key, key_account, partition, principal, action, context):
    """Whether `principal` may do `action` with `key` (of `key_account`), as KMS judges it."""
    arn = principal["arn"]
    full_context = dict(context, **{
        "aws:PrincipalArn": arn, "aws:PrincipalAccount": principal["account"], "kms:CallerAccount": principal["account"],
    })
    allowed = iam_policy.decide(key.policy, {"AWS": arn}, action, "*", full_context) == iam_policy.ALLOW
    identity = _identity_allows(principal, partition, action, key.arn, full_context)
    if principal["account"] == key_account:
        direct = iam_policy.decide(
            _without_account_root(key.policy, key_account, partition), {"AWS": arn}, action, "*", full_context
        ) == iam_policy.ALLOW
        return direct or (allowed and identity is not False)
    return allowed and identity is not False


def key_refusal(key, key_account, partition, principal, service_context, trail_arn, bucket_key):
    """Why CloudTrail refuses `key` for the trail (None: it accepts it)."""
    if iam_policy.decide(key.policy, {"Service": CLOUDTRAIL}, "kms:DescribeKey", "*", service_context) != iam_policy.ALLOW:
        return "the key policy does not let CloudTrail describe the key (kms:DescribeKey)"
    if not bucket_key:
        return None
    if iam_policy.decide(key.policy, {"Service": CLOUDTRAIL}, "kms:Decrypt", "*", service_context) != iam_policy.ALLOW:
        return "the bucket has an S3 Bucket Key: the key policy must let CloudTrail kms:Decrypt"
    context = {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn}
    org = _organization_of(principal["account"])
    if org is not None:
        context["aws:PrincipalOrgID"] = org
    if not caller_may(key, key_account, partition, principal, "kms:Decrypt", context):
        return f"the bucket has an S3 Bucket Key: {principal['arn']} may not kms:Decrypt with the key"
    return None


def _organization_of(account_id):
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[account_id]["aws"]
    if backend.org is not None:
        return backend.org.id
    if account_id in organizations_backends.master_accounts:
        master, partition = organizations_backends.master_accounts[account_id]
        org = organizations_backends[master][partition].org
        return org.id if org is not None else None
    return None


def prefix_refused(prefix, bucket, trail_owner):
    """A trail's S3KeyPrefix holding `AWSLogs/` into another account's bucket."""
    return bool(prefix) and "AWSLogs/" in prefix and bucket.account_id != trail_owner


def install():
    """Notes the caller of CreateTrail and UpdateTrail for check_trail. Idempotent."""
    from moto.cloudtrail import responses

    cls = responses.CloudTrailResponse
    if getattr(cls, "_trailkeeper_callers", False):
        return
    cls._trailkeeper_callers = True
    for name in ("create_trail", "update_trail"):
        handler = getattr(cls, name)

        def noting(self, _handler=handler):
            remember_caller(self)
            try:
                return _handler(self)
            finally:
                forget_caller()

        setattr(cls, name, noting)


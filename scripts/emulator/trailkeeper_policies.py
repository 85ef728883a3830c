"""What S3 and KMS check of a bucket or key policy when it is written, which moto stores unread:
its size, that the IAM roles and users it names exist, and (KMS) that the key stays manageable.

Test tooling only, never the product; loaded by trailkeeper_strict.install().

- Size. S3: "Bucket policies are limited to 20 KB in size" (20,480 bytes; Service Quotas
  L-748707F3 "Bucket policy size").
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-iam-policies.html
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/add-bucket-policy.html
  KMS: a key policy document is "Up to 32 kilobytes (32,768 bytes)"; "The key policy size quota is
  32 kilobytes (32768 bytes)"; the refusal is LimitExceededException, "The request was rejected
  because a length constraint or quota was exceeded".
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html#key-policy-format
  https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html#API_PutKeyPolicy_Errors
  Counted here in bytes of the document as it is sent (UTF-8, whitespace included): trailkeeper
  sends compact JSON and measures it the same way. AWS documents no error code for an oversized
  bucket policy; this answers 400 PolicyTooLarge "Policy exceeds the maximum allowed document
  size.", the answer S3-compatible stores give (trailkeeper treats it, and MalformedPolicy, as a
  refused policy).
- Principals that do not exist. S3 refuses the policy with 400 MalformedPolicy "Invalid principal
  in policy" when "the Principal is an AWS Identity and Access Management (IAM) user or role" that
  does not exist (was deleted).
  https://repost.aws/knowledge-center/s3-invalid-principal-in-policy-error
  KMS (CreateKey with Policy, PutKeyPolicy): "The principals in the key policy must exist and be
  visible to KMS", else MalformedPolicyDocumentException.
  https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html#KMS-CreateKey-request-Policy
  https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html#KMS-PutKeyPolicy-request-Policy
  Checked here: the IAM role and user ARNs of Principal and NotPrincipal, against the emulator's
  IAM (a role by its path and name). Account ids and roots, "*", services and ARNs with wildcards
  are not; nor are principals named only in Condition values, which nothing resolves (why
  trailkeeper names members' roles by condition).
- Lockout safety check (KMS): "The key policy must allow the calling principal to make a
  subsequent PutKeyPolicy request on the KMS key ... (To omit this condition, set
  BypassPolicyLockoutSafetyCheck to true.)", else MalformedPolicyDocumentException. The caller is
  the role of an assumed-role session, else the account (credentials moto did not issue). A
  statement admitting the caller's account root delegates to IAM and passes: the emulator does not
  judge the caller's identity policies.
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#prevent-unmanageable-key
"""
import re

import iam_policy
from moto.core.exceptions import JsonRESTError
from moto.s3.exceptions import S3ClientError

S3_POLICY_LIMIT = 20 * 1024
KMS_POLICY_LIMIT = 32 * 1024

_IAM_IDENTITY = re.compile(r"arn:([^:]+):iam::(\d{12}):(role|user)/(.+)")


class _S3Refused(S3ClientError):
    code = 400

    def __init__(self, error_type, message):
        super().__init__(error_type, message)


class _KmsRefused(JsonRESTError):
    code = 400

    def __init__(self, error_type, message):
        super().__init__(error_type, message)


def _size(policy):
    return len(policy if isinstance(policy, (bytes, bytearray)) else policy.encode())


def named_principals(policy_text):
    """The AWS principals (ARNs or account ids) of the Principal and NotPrincipal elements."""
    policy = iam_policy.parse(policy_text)
    out = []
    for statement in iam_policy.as_list(policy.get("Statement")):
        for element in ("Principal", "NotPrincipal"):
            value = statement.get(element)
            if isinstance(value, dict):
                out.extend(n for n in iam_policy.as_list(value.get("AWS")) if isinstance(n, str))
    return out


def _exists(arn):
    """Whether the IAM role or user `arn` exists in the emulator's IAM (a backend never made is an
    account with no roles or users; it is not made here)."""
    from moto.iam.models import iam_backends

    partition, account, kind, rest = _IAM_IDENTITY.fullmatch(arn).groups()
    if account not in iam_backends or partition not in iam_backends[account].keys():
        return False
    backend = iam_backends[account][partition]
    path, _, name = rest.rpartition("/")
    path = f"/{path}/" if path else "/"
    found = backend.roles.values() if kind == "role" else backend.users.values()
    return any(e.name == name and e.path == path for e in found)


def missing_principals(policy_text):
    """The IAM role and user ARNs the policy names as principals that do not exist."""
    return [
        arn for arn in named_principals(policy_text)
        if "*" not in arn and _IAM_IDENTITY.fullmatch(arn) and not _exists(arn)
    ]


def check_bucket_policy(policy):
    """PutBucketPolicy: the size limit, then the principals (see the module's docstring)."""
    if _size(policy) > S3_POLICY_LIMIT:
        raise _S3Refused("PolicyTooLarge", "Policy exceeds the maximum allowed document size.")
    if missing_principals(policy):
        raise _S3Refused("MalformedPolicy", "Invalid principal in policy")


def _caller(response):
    """The principal of a request: the role of an assumed-role session moto issued, else the
    account's root (requests with other credentials act as the account)."""
    from moto.sts.models import sts_backends

    access_key = response.get_access_key()
    for account in list(sts_backends.keys()):
        for backend in list(sts_backends[account].values()):
            session = backend.get_assumed_role_from_access_key(access_key)
            if session is not None:
                return session.arn, session.account_id
    account = response.current_account
    return f"arn:{response.partition}:iam::{account}:root", account


def check_key_policy(response, policy, bypass_lockout_check):
    """CreateKey with a Policy and PutKeyPolicy: size, principals, lockout (module's docstring)."""
    if _size(policy) > KMS_POLICY_LIMIT:
        raise _KmsRefused(
            "LimitExceededException",
            f"Policy document size {_size(policy)} exceeds the limit of {KMS_POLICY_LIMIT} bytes.",
        )
    if missing_principals(policy):
        raise _KmsRefused(
            "MalformedPolicyDocumentException",
            "Policy contains a statement with one or more invalid principals.",
        )
    if bypass_lockout_check:
        return
    caller, account = _caller(response)
    # aws:PrincipalArn of a role session is the role's ARN.
    principal_arn = iam_policy._session_role(caller) or caller
    context = {"kms:CallerAccount": account, "aws:PrincipalArn": principal_arn, "aws:PrincipalAccount": account}
    if iam_policy.decide(policy, {"AWS": caller}, "kms:PutKeyPolicy", "*", context) != iam_policy.ALLOW:
        raise _KmsRefused(
            "MalformedPolicyDocumentException",
            "The new key policy will not allow you to update the key policy in the future.",
        )


def install():
    """Wraps S3's PutBucketPolicy and KMS's CreateKey and PutKeyPolicy. Idempotent."""
    from moto.kms import responses as kms_responses
    from moto.s3 import models as s3_models

    backend = s3_models.S3Backend
    if getattr(backend, "_trailkeeper_policies", False):
        return
    backend._trailkeeper_policies = True
    put_bucket_policy = backend.put_bucket_policy

    def strict_put_bucket_policy(self, bucket_name, policy):
        self.get_bucket(bucket_name)  # NoSuchBucket first, as S3 answers
        check_bucket_policy(policy)
        return put_bucket_policy(self, bucket_name, policy)

    backend.put_bucket_policy = strict_put_bucket_policy

    kms = kms_responses.KmsResponse
    create_key, put_key_policy = kms.create_key, kms.put_key_policy

    def strict_create_key(self):
        policy = self._get_param("Policy")
        if policy is not None:
            check_key_policy(self, policy, bool(self._get_param("BypassPolicyLockoutSafetyCheck")))
        return create_key(self)

    def strict_put_key_policy(self):
        self._validate_cmk_id(self._get_param("KeyId"))  # NotFoundException first
        check_key_policy(self, self._get_param("Policy") or "",
                         bool(self._get_param("BypassPolicyLockoutSafetyCheck")))
        return put_key_policy(self)

    kms.create_key = strict_create_key
    kms.put_key_policy = strict_put_key_policy


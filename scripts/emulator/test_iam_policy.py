"""The emulator's IAM evaluator against the cases IAM's user guide gives, each both ways
(run by tests/emulator_policy.rs: `python3 -m unittest scripts/emulator/test_iam_policy.py`)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from iam_policy import ALLOW, DENY, IMPLICIT_DENY, decide  # noqa: E402

ROLE = "arn:aws:iam::111122223333:role/trailkeeper"
SESSION = "arn:aws:sts::111122223333:assumed-role/trailkeeper/s1"
BUCKET = "arn:aws:s3:::b"


def allow(condition=None, **extra):
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"}
    if condition:
        statement["Condition"] = condition
    statement.update(extra)
    return {"Statement": [statement]}


def get(policy, context=None, principal=None, action="s3:GetObject", resource=f"{BUCKET}/k"):
    return decide(policy, principal or {"AWS": SESSION}, action, resource, context or {})


class Operators(unittest.TestCase):
    def test_null_allows_on_absence_and_presence_as_asked(self):
        absent = allow({"Null": {"aws:SourceVpce": "true"}})
        self.assertEqual(get(absent), ALLOW)
        self.assertEqual(get(absent, {"aws:SourceVpce": "vpce-1"}), IMPLICIT_DENY)
        present = allow({"Null": {"aws:SourceVpce": "false"}})
        self.assertEqual(get(present, {"aws:SourceVpce": "vpce-1"}), ALLOW)
        self.assertEqual(get(present), IMPLICIT_DENY)

    def test_a_negated_operator_is_true_on_an_absent_key_and_a_deny_with_it_bites(self):
        deny = {"Statement": [
            allow()["Statement"][0],
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:SourceOrgID": "o-abc"}}},
        ]}
        self.assertEqual(get(deny, {"aws:SourceOrgID": "o-other"}), DENY)
        self.assertEqual(get(deny), DENY, "absent key: StringNotEquals holds")
        self.assertEqual(get(deny, {"aws:SourceOrgID": "o-abc"}), ALLOW)

    def test_if_exists_holds_on_absence_and_is_judged_on_presence(self):
        deny = {"Statement": [
            allow()["Statement"][0],
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
             "Condition": {"StringNotEqualsIfExists": {"aws:SourceOrgID": "o-abc"}}},
        ]}
        self.assertEqual(get(deny), DENY)
        self.assertEqual(get(deny, {"aws:SourceOrgID": "o-abc"}), ALLOW)
        policy = allow({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:s3:::src"}})
        self.assertEqual(get(policy), ALLOW)
        self.assertEqual(get(policy, {"aws:SourceArn": "arn:aws:s3:::other"}), IMPLICIT_DENY)

    def test_set_operators(self):
        any_of = allow({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}})
        self.assertEqual(get(any_of, {"aws:TagKeys": ["x", "b"]}), ALLOW)
        self.assertEqual(get(any_of, {"aws:TagKeys": ["x"]}), IMPLICIT_DENY)
        self.assertEqual(get(any_of), IMPLICIT_DENY, "ForAnyValue is false on an absent key")
        all_of = allow({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}})
        self.assertEqual(get(all_of, {"aws:TagKeys": ["a", "b"]}), ALLOW)
        self.assertEqual(get(all_of, {"aws:TagKeys": ["a", "c"]}), IMPLICIT_DENY)
        self.assertEqual(get(all_of), ALLOW, "ForAllValues is true on an absent key")

    def test_string_arn_numeric_date_ip_bool(self):
        self.assertEqual(get(allow({"StringEqualsIgnoreCase": {"s3:prefix": "Logs/"}}), {"s3:prefix": "logs/"}), ALLOW)
        self.assertEqual(get(allow({"StringEquals": {"s3:prefix": "Logs/"}}), {"s3:prefix": "logs/"}), IMPLICIT_DENY)
        like = allow({"ArnLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:*:trail/tk"}})
        self.assertEqual(get(like, {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/tk"}), ALLOW)
        self.assertEqual(get(like, {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/other"}),
                         IMPLICIT_DENY)
        # ArnLike matches part by part: a wildcard does not reach across the service's colon.
        self.assertEqual(get(allow({"ArnLike": {"aws:SourceArn": "arn:aws:s3*"}}), {"aws:SourceArn": "arn:aws:s3:::b"}),
                         IMPLICIT_DENY)
        self.assertEqual(get(allow({"NumericLessThanEquals": {"s3:max-keys": "10"}}), {"s3:max-keys": "5"}), ALLOW)
        self.assertEqual(get(allow({"NumericLessThanEquals": {"s3:max-keys": "10"}}), {"s3:max-keys": "50"}),
                         IMPLICIT_DENY)
        self.assertEqual(get(allow({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}),
                             {"aws:CurrentTime": "2026-06-01T00:00:00Z"}), ALLOW)
        self.assertEqual(get(allow({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}),
                             {"aws:CurrentTime": "2025-06-01T00:00:00Z"}), IMPLICIT_DENY)
        self.assertEqual(get(allow({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), {"aws:SourceIp": "10.1.2.3"}), ALLOW)
        self.assertEqual(get(allow({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), {"aws:SourceIp": "10.1.2.3"}),
                         IMPLICIT_DENY)
        self.assertEqual(get(allow({"Bool": {"aws:SecureTransport": "false"}}), {"aws:SecureTransport": False}), ALLOW)
        self.assertEqual(get(allow({"Bool": {"aws:SecureTransport": "false"}}), {"aws:SecureTransport": "true"}),
                         IMPLICIT_DENY)

    def test_condition_key_names_are_not_case_sensitive(self):
        self.assertEqual(get(allow({"StringEquals": {"AWS:SourceAccount": "1"}}), {"aws:sourceaccount": "1"}), ALLOW)

    def test_all_blocks_and_keys_must_hold_and_values_are_alternatives(self):
        policy = allow({"StringEquals": {"aws:SourceAccount": ["1", "2"], "s3:x-amz-acl": "bucket-owner-full-control"}})
        self.assertEqual(get(policy, {"aws:SourceAccount": "2", "s3:x-amz-acl": "bucket-owner-full-control"}), ALLOW)
        self.assertEqual(get(policy, {"aws:SourceAccount": "2"}), IMPLICIT_DENY)


class Elements(unittest.TestCase):
    def test_principals(self):
        by_role = allow(Principal={"AWS": ROLE})
        self.assertEqual(get(by_role), ALLOW, "a session of the role")
        self.assertEqual(get(by_role, principal={"AWS": "arn:aws:sts::111122223333:assumed-role/other/s"}),
                         IMPLICIT_DENY)
        by_account = allow(Principal={"AWS": "arn:aws:iam::111122223333:root"})
        self.assertEqual(get(by_account), ALLOW)
        self.assertEqual(get(by_account, principal={"AWS": "arn:aws:iam::444455556666:role/x"}), IMPLICIT_DENY)
        by_service = allow(Principal={"Service": "cloudtrail.amazonaws.com"})
        self.assertEqual(get(by_service, principal={"Service": "cloudtrail.amazonaws.com"}), ALLOW)
        self.assertEqual(get(by_service), IMPLICIT_DENY)
        with_path = allow(Principal={"AWS": "arn:aws:iam::111122223333:role/ops/trailkeeper"})
        self.assertEqual(get(with_path), ALLOW, "a session ARN carries no role path")

    def test_not_principal_not_action_not_resource(self):
        policy = {"Statement": [
            allow()["Statement"][0],
            {"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "s3:*", "Resource": "*"},
        ]}
        self.assertEqual(get(policy), ALLOW)
        self.assertEqual(get(policy, principal={"AWS": "arn:aws:iam::111122223333:user/u"}), DENY)
        not_action = {"Statement": [{"Effect": "Allow", "Principal": "*", "NotAction": "s3:Delete*", "Resource": "*"}]}
        self.assertEqual(get(not_action), ALLOW)
        self.assertEqual(get(not_action, action="s3:DeleteObject"), IMPLICIT_DENY)
        not_resource = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                                       "NotResource": f"{BUCKET}/secret/*"}]}
        self.assertEqual(get(not_resource), ALLOW)
        self.assertEqual(get(not_resource, resource=f"{BUCKET}/secret/x"), IMPLICIT_DENY)

    def test_actions_ignore_case_and_resources_do_not(self):
        self.assertEqual(get(allow(Action="S3:getobject")), ALLOW)
        self.assertEqual(get(allow(), resource="arn:aws:s3:::B/k"), IMPLICIT_DENY)

    def test_policy_variables(self):
        own_path = allow(Resource=f"{BUCKET}/AWSLogs/${{aws:SourceAccount}}/*")
        self.assertEqual(get(own_path, {"aws:SourceAccount": "1"}, resource=f"{BUCKET}/AWSLogs/1/x"), ALLOW)
        self.assertEqual(get(own_path, {"aws:SourceAccount": "1"}, resource=f"{BUCKET}/AWSLogs/2/x"), IMPLICIT_DENY)
        self.assertEqual(get(own_path, {}, resource=f"{BUCKET}/AWSLogs/1/x"), IMPLICIT_DENY, "no value, no match")
        default = allow(Resource=f"{BUCKET}/${{aws:username, 'shared'}}/*")
        self.assertEqual(get(default, resource=f"{BUCKET}/shared/x"), ALLOW)

    def test_an_explicit_deny_wins_and_nothing_is_an_implicit_deny(self):
        policy = {"Statement": [allow()["Statement"][0],
                                {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
        self.assertEqual(get(policy), DENY)
        self.assertEqual(get({"Statement": []}), IMPLICIT_DENY)

    def test_identity_policies_name_no_principal(self):
        identity = {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}
        self.assertEqual(decide(identity, None, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k", {}), ALLOW)
        self.assertEqual(decide(identity, None, "kms:Encrypt", "arn:aws:kms:us-east-1:1:key/k", {}), IMPLICIT_DENY)


if __name__ == "__main__":
    unittest.main()

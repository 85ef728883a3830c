//! The replica's roles, judged as IAM judges them (scripts/emulator/iam_policy.py), both ways.

use serde_json::{Value, json};

use super::*;

use crate::policy_eval::{decide, decisions, request};

const ACCOUNT: &str = "999988887777";
const SOURCE_KEY: &str = "arn:aws:kms:eu-west-1:999988887777:key/source";
const REPLICA_KEY: &str = "arn:aws:kms:eu-central-1:999988887777:key/replica";

fn spec() -> LogArchiveSpec {
    serde_json::from_value(json!({
        "accountId": ACCOUNT,
        "region": "eu-west-1",
        "replication": {"region": "eu-central-1"},
    }))
    .unwrap()
}

fn source() -> String {
    format!("arn:aws:s3:::{}", bucket_name(&spec()))
}

fn replica() -> String {
    format!("arn:aws:s3:::{}", replica_bucket_name(&spec()).unwrap())
}

/// KMS's request context when S3 calls it for `bucket_arn` (with an S3 Bucket Key the encryption
/// context is the bucket's ARN, else the object's) in `region`.
fn through_s3(region: &str, s3_arn: &str) -> Value {
    json!({
        "kms:ViaService": format!("s3.{region}.amazonaws.com"),
        "kms:EncryptionContext:aws:s3:arn": s3_arn,
    })
}

#[test]
fn the_replication_role_may_decrypt_with_the_replicas_key_for_its_bucket_key_through_s3_only() {
    let policy = replication_role_policy(&spec(), SOURCE_KEY, REPLICA_KEY);
    let replica = replica();
    let replica_object = format!("{replica}/AWS/CloudTrail/x.json.gz");
    let requests = [
        // S3 checks the replica's Bucket Key with Decrypt, then encrypts with it.
        request(
            Value::Null,
            "kms:Decrypt",
            Some(REPLICA_KEY),
            through_s3("eu-central-1", &replica),
        ),
        request(
            Value::Null,
            "kms:GenerateDataKey",
            Some(REPLICA_KEY),
            through_s3("eu-central-1", &replica),
        ),
        request(
            Value::Null,
            "kms:Encrypt",
            Some(REPLICA_KEY),
            through_s3("eu-central-1", &replica_object),
        ),
        // Not for another bucket, not through S3 of another region, not outside S3.
        request(
            Value::Null,
            "kms:Decrypt",
            Some(REPLICA_KEY),
            through_s3("eu-central-1", "arn:aws:s3:::elsewhere"),
        ),
        request(
            Value::Null,
            "kms:Decrypt",
            Some(REPLICA_KEY),
            through_s3("eu-west-1", &replica),
        ),
        request(
            Value::Null,
            "kms:Decrypt",
            Some(REPLICA_KEY),
            json!({"kms:EncryptionContext:aws:s3:arn": replica}),
        ),
    ];
    assert_eq!(
        decisions(&policy, &requests),
        [
            "Allow",
            "Allow",
            "Allow",
            "ImplicitDeny",
            "ImplicitDeny",
            "ImplicitDeny"
        ]
    );
}

#[test]
fn s3_may_assume_the_replication_role_with_or_without_a_source_in_the_request_but_not_for_another_bucket() {
    let trust = replication_role_trust(&spec());
    let s3 = || json!({"Service": "s3.amazonaws.com"});
    let requests = [
        // What AWS documents: no source keys in the request.
        request(s3(), "sts:AssumeRole", None, json!({})),
        // S3 naming this archive bucket and account.
        request(
            s3(),
            "sts:AssumeRole",
            None,
            json!({"aws:SourceArn": source(), "aws:SourceAccount": ACCOUNT}),
        ),
        // Another account's bucket, or another bucket of this account: refused.
        request(
            s3(),
            "sts:AssumeRole",
            None,
            json!({"aws:SourceArn": "arn:aws:s3:::someone-elses", "aws:SourceAccount": "111122223333"}),
        ),
        request(
            s3(),
            "sts:AssumeRole",
            None,
            json!({"aws:SourceAccount": "111122223333"}),
        ),
        request(
            s3(),
            "sts:AssumeRole",
            None,
            json!({"aws:SourceArn": "arn:aws:s3:::another-of-mine", "aws:SourceAccount": ACCOUNT}),
        ),
        // Nobody but S3.
        request(
            json!({"Service": "ec2.amazonaws.com"}),
            "sts:AssumeRole",
            None,
            json!({}),
        ),
        request(
            json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:role/admin")}),
            "sts:AssumeRole",
            None,
            json!({}),
        ),
    ];
    assert_eq!(
        decisions(&trust, &requests),
        [
            "Allow",
            "Allow",
            "ImplicitDeny",
            "ImplicitDeny",
            "ImplicitDeny",
            "ImplicitDeny",
            "ImplicitDeny"
        ]
    );
}

#[test]
fn batch_operations_may_assume_the_batch_replication_role_for_this_accounts_jobs_only() {
    let trust = batch_replication_role_trust(&spec());
    let batch = || json!({"Service": BATCH_OPERATIONS_SERVICE});
    let job = format!("arn:aws:s3:eu-west-1:{ACCOUNT}:job/abc");
    let requests = [
        request(batch(), "sts:AssumeRole", None, json!({})),
        request(
            batch(),
            "sts:AssumeRole",
            None,
            json!({"aws:SourceArn": job, "aws:SourceAccount": ACCOUNT}),
        ),
        request(
            batch(),
            "sts:AssumeRole",
            None,
            json!({"aws:SourceArn": "arn:aws:s3:eu-west-1:111122223333:job/abc", "aws:SourceAccount": "111122223333"}),
        ),
        request(
            json!({"Service": "s3.amazonaws.com"}),
            "sts:AssumeRole",
            None,
            json!({}),
        ),
    ];
    assert_eq!(
        decisions(&trust, &requests),
        ["Allow", "Allow", "ImplicitDeny", "ImplicitDeny"]
    );
}

#[test]
fn the_batch_replication_role_generates_the_manifest_and_initiates_replication_of_the_archive_only() {
    let policy = batch_replication_role_policy(&spec());
    let source = source();
    let object = format!("{source}/AWS/CloudTrail/x.json.gz");
    let allowed = |action: &str, resource: &str| decide(&policy, Value::Null, action, Some(resource), json!({}));
    assert_eq!(allowed("s3:InitiateReplication", &object), "Allow");
    assert_eq!(allowed("s3:GetReplicationConfiguration", &source), "Allow");
    assert_eq!(allowed("s3:PutInventoryConfiguration", &source), "Allow");
    // Nothing else: no replication of another bucket, no object written, no object read.
    assert_eq!(
        allowed("s3:InitiateReplication", "arn:aws:s3:::elsewhere/x"),
        "ImplicitDeny"
    );
    assert_eq!(allowed("s3:PutObject", &object), "ImplicitDeny");
    assert_eq!(allowed("s3:GetObject", &object), "ImplicitDeny");
    assert_eq!(allowed("s3:PutReplicationConfiguration", &source), "ImplicitDeny");
}

use serde_json::json;

use super::*;
use crate::api::{Admission, LogArchiveSpec, RetentionPolicySpec};

fn spec(organization: Option<&str>) -> LogArchiveSpec {
    serde_json::from_value(json!({
        "accountId": "999988887777",
        "region": "eu-west-1",
        "organizationId": organization,
        "auditors": ["arn:aws:iam::999988887777:role/auditor"],
        "credentials": {"assumeRoleArn": "arn:aws:iam::999988887777:role/trailkeeper"},
    }))
    .unwrap()
}

fn retention() -> RetentionPolicySpec {
    serde_json::from_value(json!({})).unwrap()
}

/// Member accounts 100000000000 + i, each with a trail named like the ones of a LoggingBaselineSet.
fn members(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| {
            let account = format!("{}", 100_000_000_000u64 + i as u64);
            Member {
                trail_arn: format!("arn:aws:cloudtrail:us-east-1:{account}:trail/trailkeeper"),
                role_arn: Some(format!("arn:aws:iam::{account}:role/trailkeeper")),
                account_id: account,
                organization: false,
            }
        })
        .collect()
}

fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in {policy}"))
}

#[test]
fn three_members_are_admitted_each_by_its_trail_and_under_its_own_path() {
    let archive = archive(&spec(None), &retention(), &members(3)).unwrap();
    assert_eq!(archive.admission, Admission::Trails);
    let storage = archive.account.storage.as_ref().unwrap();
    assert_eq!(
        storage.trail_bucket.name,
        "trailkeeper-999988887777-log-archive-eu-west-1"
    );
    assert!(storage.trail_bucket.object_lock);
    let write = statement(&storage.trail_bucket.policy, "CloudTrailWrite");
    let bucket = "arn:aws:s3:::trailkeeper-999988887777-log-archive-eu-west-1";
    assert_eq!(
        write["Resource"],
        json!([
            format!("{bucket}/AWS/CloudTrail/AWSLogs/100000000000/*"),
            format!("{bucket}/AWS/CloudTrail/AWSLogs/100000000001/*"),
            format!("{bucket}/AWS/CloudTrail/AWSLogs/100000000002/*"),
        ])
    );
    let arns: Vec<_> = members(3).into_iter().map(|m| m.trail_arn).collect();
    assert_eq!(write["Condition"]["StringEquals"]["aws:SourceArn"], json!(arns));
    assert_eq!(
        write["Condition"]["StringEquals"]["s3:x-amz-acl"],
        "bucket-owner-full-control"
    );
    let acl = statement(&storage.trail_bucket.policy, "CloudTrailAclCheck");
    assert_eq!(acl["Condition"]["StringEquals"]["aws:SourceArn"], json!(arns));
    statement(&storage.trail_bucket.policy, "DenyInsecureTransport");

    let key = &archive.account.key;
    assert_eq!(
        key.source,
        KeySource::Create {
            alias: ARCHIVE_KEY_ALIAS.into(),
            description:
                "trailkeeper: encrypts the CloudTrail logs of the members of the log archive in account 999988887777"
                    .into()
        }
    );
    let encrypt = statement(&key.policy, "CloudTrailEncryptLogs");
    assert_eq!(encrypt["Condition"]["StringEquals"]["aws:SourceArn"], json!(arns));
    assert_eq!(
        encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        json!(arns)
    );
    // CreateTrail into a bucket with a Bucket Key: the members' trailkeeper roles may Decrypt.
    let members_decrypt = statement(&key.policy, "MembersCreateTrailsWithBucketKey");
    assert_eq!(members_decrypt["Action"], "kms:Decrypt");
    assert_eq!(
        members_decrypt["Condition"]["ArnEquals"]["aws:PrincipalArn"][0],
        "arn:aws:iam::100000000000:role/trailkeeper"
    );
    let auditors = statement(&key.policy, "AuditorsDecryptLogs");
    assert_eq!(
        auditors["Condition"]["StringEquals"]["kms:CallerAccount"],
        "999988887777"
    );
    statement(&key.policy, "TrailkeeperMaintainsKey");
}

#[test]
fn a_member_removed_leaves_no_statement_naming_it() {
    let all = archive(&spec(None), &retention(), &members(3)).unwrap();
    let fewer = archive(&spec(None), &retention(), &members(2)).unwrap();
    let gone = "100000000002";
    let text = |a: &DesiredArchive| {
        format!(
            "{}{}",
            a.account.storage.as_ref().unwrap().trail_bucket.policy,
            a.account.key.policy
        )
    };
    assert!(text(&all).contains(gone));
    assert!(!text(&fewer).contains(gone), "{}", text(&fewer));
}

#[test]
fn no_member_admits_no_trail_at_all() {
    let archive = archive(&spec(None), &retention(), &[]).unwrap();
    let policy = &archive.account.storage.as_ref().unwrap().trail_bucket.policy;
    assert_eq!(policy["Statement"].as_array().unwrap().len(), 1, "{policy}");
    assert!(
        !archive
            .account
            .key
            .policy
            .to_string()
            .contains("cloudtrail.amazonaws.com")
    );
}

#[test]
fn an_organization_trail_member_is_admitted_under_the_organizations_path_too() {
    let mut all = members(2);
    all[0].organization = true;
    let archive = archive(&spec(Some("o-abcdefghij")), &retention(), &all).unwrap();
    let policy = &archive.account.storage.as_ref().unwrap().trail_bucket.policy;
    let resources = statement(policy, "CloudTrailWrite")["Resource"].to_string();
    assert!(
        resources.contains("/AWS/CloudTrail/AWSLogs/o-abcdefghij/*"),
        "{resources}"
    );
    assert!(
        resources.contains("/AWS/CloudTrail/AWSLogs/100000000000/*"),
        "{resources}"
    );

    let refused = super::archive(&spec(None), &retention(), &all).unwrap_err();
    assert!(refused.contains("set spec.organizationId"), "{refused}");
}

/// How many members the per-trail policies hold, and 1,000 members within S3's and KMS's limits.
#[test]
fn a_thousand_members_fit_the_policy_size_limits_by_admitting_the_organization() {
    let largest_by_trails = (1..=1000)
        .take_while(|n| {
            archive(&spec(Some("o-abcdefghij")), &retention(), &members(*n))
                .unwrap()
                .admission
                == Admission::Trails
        })
        .last()
        .unwrap();
    // About 220 bytes a member in the bucket policy, which fills first.
    // 87 with 12-digit accounts, the default trail name and prefix, one role each.
    assert_eq!(largest_by_trails, 87);
    let at_limit = archive(&spec(Some("o-abcdefghij")), &retention(), &members(largest_by_trails)).unwrap();
    assert!(at_limit.bucket_policy_bytes <= BUCKET_POLICY_LIMIT);
    assert!(at_limit.key_policy_bytes <= KEY_POLICY_LIMIT);

    let thousand = archive(&spec(Some("o-abcdefghij")), &retention(), &members(1000)).unwrap();
    assert_eq!(thousand.admission, Admission::Organization);
    let policy = &thousand.account.storage.as_ref().unwrap().trail_bucket.policy;
    assert_eq!(
        thousand.bucket_policy_bytes,
        serde_json::to_string(policy).unwrap().len()
    );
    assert!(
        thousand.bucket_policy_bytes <= BUCKET_POLICY_LIMIT,
        "{}",
        thousand.bucket_policy_bytes
    );
    assert!(
        thousand.key_policy_bytes <= KEY_POLICY_LIMIT,
        "{}",
        thousand.key_policy_bytes
    );
    let write = statement(policy, "CloudTrailWrite");
    assert_eq!(write["Condition"]["StringEquals"]["aws:SourceOrgID"], "o-abcdefghij");
    assert_eq!(
        write["Resource"],
        "arn:aws:s3:::trailkeeper-999988887777-log-archive-eu-west-1/AWS/CloudTrail/AWSLogs/*"
    );
    let encrypt = statement(&thousand.account.key.policy, "CloudTrailEncryptLogs");
    assert_eq!(encrypt["Condition"]["StringEquals"]["aws:SourceOrgID"], "o-abcdefghij");
    let members_decrypt = statement(&thousand.account.key.policy, "MembersCreateTrailsWithBucketKey");
    assert_eq!(
        members_decrypt["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
        "o-abcdefghij"
    );
    assert_eq!(
        members_decrypt["Condition"]["ArnLike"]["aws:PrincipalArn"],
        json!(["arn:aws:iam::*:role/trailkeeper"])
    );

    let refused = archive(&spec(None), &retention(), &members(1000)).unwrap_err();
    assert!(
        refused.contains("1000 members") && refused.contains("set spec.organizationId"),
        "{refused}"
    );
}

#[test]
fn a_member_delivers_into_the_archive_and_keeps_no_bucket_or_key() {
    let baseline: LoggingBaselineSpec = serde_json::from_value(json!({
        "accountId": "100000000000", "primaryRegion": "us-east-1",
        "storage": {"archiveRef": {"name": "org-archive"}}
    }))
    .unwrap();
    let trail_policy = TrailPolicySpec::default();
    let retention = retention();
    let mut account = super::super::account(&AccountSpecs {
        baseline: &baseline,
        trail_policy: &trail_policy,
        retention: &retention,
    });
    let target = ArchiveTarget {
        name: "audit/org-archive".into(),
        bucket: "archive-bucket".into(),
        key_prefix: "org/".into(),
        key_arn: "arn:aws:kms:eu-west-1:999988887777:key/k".into(),
        admitted: true,
        late: None,
    };
    with_archive(&mut account, &target);
    assert_eq!(account.storage, None);
    assert_eq!(account.key.source, KeySource::None);
    let super::super::DesiredTrail::Managed(settings) = &account.trail else {
        panic!("a managed trail")
    };
    assert_eq!(settings.bucket.as_deref(), Some("archive-bucket"));
    assert_eq!(settings.key_prefix.as_deref(), Some("org"));
    assert_eq!(
        member_of(&baseline, &trail_policy).trail_arn,
        "arn:aws:cloudtrail:us-east-1:100000000000:trail/trailkeeper"
    );
}

#[test]
fn a_reader_reads_and_decrypts_its_accounts_logs_only() {
    let mut spec = spec(Some("o-abcdefghij"));
    spec.readers = vec![
        serde_json::from_value(json!({
            "principal": "arn:aws:iam::555566667777:role/payments-auditor",
            "accounts": ["100000000001"]
        }))
        .unwrap(),
    ];
    let archive = archive(&spec, &retention(), &members(3)).unwrap();
    let policy = &archive.account.storage.as_ref().unwrap().trail_bucket.policy;
    let bucket = "arn:aws:s3:::trailkeeper-999988887777-log-archive-eu-west-1";
    assert_eq!(
        statement(policy, "Reader0GetObjects")["Resource"],
        json!([
            format!("{bucket}/AWS/CloudTrail/AWSLogs/100000000001/*"),
            format!("{bucket}/AWS/CloudTrail/AWSLogs/o-abcdefghij/100000000001/*"),
        ])
    );
    assert_eq!(
        statement(policy, "Reader0ListPrefixes")["Condition"]["StringLike"]["s3:prefix"],
        json!([
            "AWS/CloudTrail/AWSLogs/100000000001/*",
            "AWS/CloudTrail/AWSLogs/o-abcdefghij/100000000001/*"
        ])
    );
    let decrypt = statement(&archive.account.key.policy, "Reader0DecryptLogs");
    assert_eq!(
        decrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        json!(["arn:aws:cloudtrail:*:100000000001:trail/*"])
    );
    assert_eq!(
        decrypt["Principal"]["AWS"],
        "arn:aws:iam::555566667777:role/payments-auditor"
    );
}

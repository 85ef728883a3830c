use serde_json::json;

use super::*;
use crate::api::{Admission, LogArchiveSpec, RetentionPolicySpec};

// The policies judged as IAM judges them (scripts/emulator/iam_policy.py), both ways.
use crate::policy_eval;

const ORGANIZATION: &str = "o-abcdefghij";
const BUCKET: &str = "arn:aws:s3:::trailkeeper-999988887777-log-archive-eu-west-1";

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

/// The archive admitting the Organization, as the spec asks with an approval.
fn admitting_the_organization() -> LogArchiveSpec {
    let mut spec = spec(Some(ORGANIZATION));
    spec.admission = Admission::Organization;
    spec.approval = Some(crate::api::Approval {
        reference: "CHG-42".into(),
        reason: Some("more members than the policies can name".into()),
    });
    spec
}

fn retention() -> RetentionPolicySpec {
    serde_json::from_value(json!({})).unwrap()
}

fn account_of(i: usize) -> String {
    format!("{}", 100_000_000_000u64 + i as u64)
}

/// Member accounts 100000000000 + i, each with a trail named like the ones of a LoggingBaselineSet.
fn members(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| {
            let account = account_of(i);
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

fn bucket_policy_of(archive: &DesiredArchive) -> &Value {
    &archive.account.storage.as_ref().unwrap().trail_bucket.policy
}

/// A log file of `account`'s folder, as CloudTrail writes it.
fn log_file(account: &str) -> String {
    format!(
        "{BUCKET}/AWS/CloudTrail/AWSLogs/{account}/CloudTrail/us-east-1/2026/12/04/{account}_CloudTrail_us-east-1_20261204T0000Z_x.json.gz"
    )
}

/// What CloudTrail sends S3 and KMS on behalf of `trail` (an account of the Organization).
fn cloudtrail_context(trail: &str, organization: &str) -> Value {
    let owner = trail.split(':').nth(4).unwrap();
    json!({"aws:SourceArn": trail, "aws:SourceAccount": owner, "aws:SourceOrgID": organization,
           "s3:x-amz-acl": "bucket-owner-full-control", "kms:EncryptionContext:aws:cloudtrail:arn": trail})
}

fn cloudtrail(action: &str, resource: &str, trail: &str, organization: &str) -> Value {
    policy_eval::request(
        json!({"Service": "cloudtrail.amazonaws.com"}),
        action,
        Some(resource),
        cloudtrail_context(trail, organization),
    )
}

/// A role's Decrypt with the archive's key in `trail`'s encryption context.
fn role_decrypt(role: &str, trail: &str, organization: &str) -> Value {
    let account = role.split(':').nth(4).unwrap();
    policy_eval::request(
        json!({"AWS": role}),
        "kms:Decrypt",
        Some("*"),
        json!({"aws:PrincipalArn": role, "aws:PrincipalAccount": account, "kms:CallerAccount": account,
               "aws:PrincipalOrgID": organization, "kms:EncryptionContext:aws:cloudtrail:arn": trail}),
    )
}

fn print_sizes(what: &str, archive: &DesiredArchive) {
    println!(
        "{what}: bucket policy {} of {BUCKET_POLICY_LIMIT} bytes, key policy {} of {KEY_POLICY_LIMIT} bytes",
        archive.bucket_policy_bytes, archive.key_policy_bytes
    );
    assert!(archive.bucket_policy_bytes <= BUCKET_POLICY_LIMIT);
    assert!(archive.key_policy_bytes <= KEY_POLICY_LIMIT);
    assert_eq!(
        archive.bucket_policy_bytes,
        serde_json::to_string(bucket_policy_of(archive)).unwrap().len()
    );
    assert_eq!(
        archive.key_policy_bytes,
        serde_json::to_string(&archive.account.key.policy).unwrap().len()
    );
}

/// Each member's trail writes and encrypts under its own account's path only, and its role
/// decrypts for its own trail only; a non-member's trail or role gets nothing (`admitting`: the
/// archive's policies, `members`: the first ones are judged).
fn each_member_under_its_own_path_only(archive: &DesiredArchive, members: &[Member], organization_admitted: bool) {
    let (bucket, key) = (bucket_policy_of(archive), &archive.account.key.policy);
    let outsider = "300000000000";
    let outsider_trail = format!("arn:aws:cloudtrail:us-east-1:{outsider}:trail/trailkeeper");
    let judged = &members[..3.min(members.len())];
    let mut bucket_requests = Vec::new();
    let mut expected = Vec::new();
    for (i, member) in judged.iter().enumerate() {
        let other = &judged[(i + 1) % judged.len()];
        bucket_requests.push(cloudtrail("s3:GetBucketAcl", BUCKET, &member.trail_arn, ORGANIZATION));
        expected.push("Allow");
        bucket_requests.push(cloudtrail(
            "s3:PutObject",
            &log_file(&member.account_id),
            &member.trail_arn,
            ORGANIZATION,
        ));
        expected.push("Allow");
        // Under another member's path (a trail whose S3KeyPrefix names that path): refused.
        bucket_requests.push(cloudtrail(
            "s3:PutObject",
            &log_file(&other.account_id),
            &member.trail_arn,
            ORGANIZATION,
        ));
        expected.push("ImplicitDeny");
    }
    // A trail of an account outside the Organization, under its own path and under a member's.
    for path in [outsider, judged[0].account_id.as_str()] {
        bucket_requests.push(cloudtrail(
            "s3:PutObject",
            &log_file(path),
            &outsider_trail,
            "o-otherorgxyz",
        ));
        expected.push("ImplicitDeny");
    }
    // A trail of another name, of a member's account.
    let renamed = format!("arn:aws:cloudtrail:us-east-1:{}:trail/another", judged[0].account_id);
    bucket_requests.push(cloudtrail(
        "s3:PutObject",
        &log_file(&judged[0].account_id),
        &renamed,
        ORGANIZATION,
    ));
    expected.push("ImplicitDeny");
    // Without admitting the Organization, a trail so named of an account of the Organization that
    // is no member is refused; admitting it, such a trail writes under its own path only.
    bucket_requests.push(cloudtrail(
        "s3:PutObject",
        &log_file(outsider),
        &outsider_trail,
        ORGANIZATION,
    ));
    expected.push(if organization_admitted { "Allow" } else { "ImplicitDeny" });
    bucket_requests.push(cloudtrail(
        "s3:PutObject",
        &log_file(&judged[0].account_id),
        &outsider_trail,
        ORGANIZATION,
    ));
    expected.push("ImplicitDeny");
    assert_eq!(policy_eval::decisions(bucket, &bucket_requests), expected, "{bucket}");

    let mut key_requests = Vec::new();
    let mut expected = Vec::new();
    for (i, member) in judged.iter().enumerate() {
        let other = &judged[(i + 1) % judged.len()];
        for action in ["kms:GenerateDataKey", "kms:DescribeKey", "kms:Decrypt"] {
            key_requests.push(cloudtrail(action, "*", &member.trail_arn, ORGANIZATION));
            expected.push("Allow");
        }
        let role = member.role_arn.as_deref().unwrap();
        key_requests.push(role_decrypt(role, &member.trail_arn, ORGANIZATION));
        expected.push("Allow");
        // S2: its role may not decrypt another member's logs.
        key_requests.push(role_decrypt(role, &other.trail_arn, ORGANIZATION));
        expected.push("ImplicitDeny");
    }
    key_requests.push(cloudtrail("kms:GenerateDataKey", "*", &outsider_trail, "o-otherorgxyz"));
    expected.push("ImplicitDeny");
    key_requests.push(cloudtrail("kms:GenerateDataKey", "*", &renamed, ORGANIZATION));
    expected.push("ImplicitDeny");
    // A role of another name (or path) of a member's account, and the outsider's role.
    let renamed_role = format!("arn:aws:iam::{}:role/ops/trailkeeper", judged[0].account_id);
    key_requests.push(role_decrypt(&renamed_role, &judged[0].trail_arn, ORGANIZATION));
    expected.push("ImplicitDeny");
    let outsider_role = format!("arn:aws:iam::{outsider}:role/trailkeeper");
    key_requests.push(role_decrypt(&outsider_role, &outsider_trail, "o-otherorgxyz"));
    expected.push("ImplicitDeny");
    assert_eq!(policy_eval::decisions(key, &key_requests), expected, "{key}");
}

#[test]
fn three_members_are_admitted_each_by_its_trail_and_under_its_own_path_only() {
    let archive = archive(&spec(None), &retention(), &members(3)).unwrap();
    assert_eq!(archive.admission, Admission::Trails);
    print_sizes("3 members named one by one", &archive);
    let storage = archive.account.storage.as_ref().unwrap();
    assert_eq!(
        storage.trail_bucket.name,
        "trailkeeper-999988887777-log-archive-eu-west-1"
    );
    assert!(storage.trail_bucket.object_lock);
    // One write statement per member, binding its trail to its path.
    let write = statement(&storage.trail_bucket.policy, "CloudTrailWrite100000000001");
    assert_eq!(
        write["Resource"],
        format!("{BUCKET}/AWS/CloudTrail/AWSLogs/100000000001/*")
    );
    assert_eq!(
        write["Condition"]["StringEquals"]["aws:SourceArn"],
        "arn:aws:cloudtrail:us-east-1:100000000001:trail/trailkeeper"
    );
    let arns: Vec<_> = members(3).into_iter().map(|m| m.trail_arn).collect();
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
    // U1: CloudTrail's own Decrypt, under the same source condition.
    let decrypt = statement(&key.policy, "CloudTrailDecryptForBucketKey");
    assert_eq!(decrypt["Condition"]["StringEquals"]["aws:SourceArn"], json!(arns));
    statement(&key.policy, "Member100000000002CreatesTrail");
    statement(&key.policy, "TrailkeeperMaintainsKey");
    assert!(
        archive
            .admits
            .contains("each by its ARN and under its own account's path only")
    );

    each_member_under_its_own_path_only(&archive, &members(3), false);
}

/// How many members fit named one by one, readers counted: printed, pinned, and past it the
/// archive is refused with that number and what to set, never switched to the Organization.
#[test]
fn members_named_one_by_one_fit_within_the_limits() {
    let fit = members_that_fit(&spec(Some(ORGANIZATION)), &members(200));
    let at_limit = archive(&spec(Some(ORGANIZATION)), &retention(), &members(fit)).unwrap();
    print_sizes(&format!("{fit} members named one by one"), &at_limit);
    // 12-digit accounts, the default trail name and prefix, one role each; the bucket policy
    // fills first (one write statement and one source ARN a member).
    assert_eq!(fit, 43);
    let refused = archive(&spec(Some(ORGANIZATION)), &retention(), &members(fit + 1)).unwrap_err();
    println!("{} members: {refused}", fit + 1);
    assert!(
        refused.contains(&format!("{} members", fit + 1)) && refused.contains(&format!("{fit} of them fit")),
        "{refused}"
    );
    assert!(refused.contains("spec.admission: Organization"), "{refused}");

    // Readers count: one reader of 50 accounts leaves room for fewer members.
    let mut with_reader = spec(Some(ORGANIZATION));
    with_reader.readers = vec![
        serde_json::from_value(json!({
            "principal": "arn:aws:iam::555566667777:role/payments-auditor",
            "accounts": (0..50).map(account_of).collect::<Vec<_>>()
        }))
        .unwrap(),
    ];
    let fit_with_reader = members_that_fit(&with_reader, &members(200));
    let at_limit = archive(&with_reader, &retention(), &members(fit_with_reader)).unwrap();
    print_sizes(
        &format!("{fit_with_reader} members and a reader of 50 accounts"),
        &at_limit,
    );
    assert_eq!(fit_with_reader, 9);
}

/// At 90 members the policies cannot name each trail: refused, unless the spec admits the
/// Organization, whose statements still narrow by the members' trail names and keep each trail
/// under its own account's path.
#[test]
fn at_ninety_members_the_organization_is_admitted_only_when_asked_for() {
    let refused = archive(&spec(Some(ORGANIZATION)), &retention(), &members(90)).unwrap_err();
    assert!(
        refused.contains("90 members") && refused.contains("43 of them fit"),
        "{refused}"
    );

    let admitted = archive(&admitting_the_organization(), &retention(), &members(90)).unwrap();
    assert_eq!(admitted.admission, Admission::Organization);
    print_sizes("90 members, admitting the Organization", &admitted);
    let write = statement(bucket_policy_of(&admitted), "CloudTrailWrite");
    assert_eq!(write["Condition"]["StringEquals"]["aws:SourceOrgID"], ORGANIZATION);
    assert_eq!(
        write["Condition"]["ArnLike"]["aws:SourceArn"],
        json!(["arn:aws:cloudtrail:*:*:trail/trailkeeper"])
    );
    let encrypt = statement(&admitted.account.key.policy, "CloudTrailEncryptLogs");
    assert_eq!(
        encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        json!(["arn:aws:cloudtrail:*:*:trail/trailkeeper"])
    );
    assert!(admitted.admits.contains("any trail of Organization o-abcdefghij named"));
    each_member_under_its_own_path_only(&admitted, &members(90), true);

    let thousand = archive(&admitting_the_organization(), &retention(), &members(1000)).unwrap();
    print_sizes("1000 members, admitting the Organization", &thousand);
}

/// N1: admitting the Organization, the members' roles keep their path.
#[test]
fn admitting_the_organization_keeps_the_roles_path() {
    let mut all = members(2);
    all[0].role_arn = Some(format!("arn:aws:iam::{}:role/ops/trailkeeper", all[0].account_id));
    let admitted = archive(&admitting_the_organization(), &retention(), &all).unwrap();
    let decrypt = statement(&admitted.account.key.policy, "MembersCreateTrailsWithBucketKey");
    assert_eq!(
        decrypt["Condition"]["ArnLike"]["aws:PrincipalArn"],
        json!(["arn:aws:iam::*:role/ops/trailkeeper", "arn:aws:iam::*:role/trailkeeper"])
    );
    let key = &admitted.account.key.policy;
    let someone = "arn:aws:iam::300000000000:role/ops/trailkeeper";
    let someone_trail = "arn:aws:cloudtrail:us-east-1:300000000000:trail/trailkeeper";
    let another = "arn:aws:iam::300000000000:role/evil/trailkeeper";
    assert_eq!(
        policy_eval::decisions(
            key,
            &[
                role_decrypt(someone, someone_trail, ORGANIZATION),
                role_decrypt(another, someone_trail, ORGANIZATION),
                // Its own account's trail only.
                role_decrypt(someone, &all[1].trail_arn, ORGANIZATION),
            ]
        ),
        ["Allow", "ImplicitDeny", "ImplicitDeny"]
    );
}

/// F5: readers count, and push an archive past the limits into a refusal, never into admitting
/// the Organization; admitting it, the sizes are checked again.
#[test]
fn readers_past_the_limits_refuse_the_archive_and_never_admit_the_organization() {
    let mut crowded = spec(Some(ORGANIZATION));
    crowded.readers = (0..20)
        .map(|i| {
            serde_json::from_value(json!({
                "principal": format!("arn:aws:iam::55556666{i:04}:role/reader"),
                "accounts": (0..50).map(account_of).collect::<Vec<_>>()
            }))
            .unwrap()
        })
        .collect();
    let refused = archive(&crowded, &retention(), &members(3)).unwrap_err();
    assert!(
        refused.contains("with 20 readers of 1000 accounts") && refused.contains("0 of them fit"),
        "{refused}"
    );
    crowded.admission = Admission::Organization;
    crowded.approval = admitting_the_organization().approval;
    let still = archive(&crowded, &retention(), &members(3)).unwrap_err();
    assert!(
        still.contains("admitting the Organization") && still.contains("fewer accounts per reader"),
        "{still}"
    );
}

#[test]
fn a_member_removed_leaves_no_statement_naming_it() {
    let all = archive(&spec(None), &retention(), &members(3)).unwrap();
    let fewer = archive(&spec(None), &retention(), &members(2)).unwrap();
    let gone = "100000000002";
    let text = |a: &DesiredArchive| format!("{}{}", bucket_policy_of(a), a.account.key.policy);
    assert!(text(&all).contains(gone));
    assert!(!text(&fewer).contains(gone), "{}", text(&fewer));
}

#[test]
fn no_member_admits_no_trail_at_all() {
    let archive = archive(&spec(None), &retention(), &[]).unwrap();
    let policy = bucket_policy_of(&archive);
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

/// An Organization trail's paths: its account's and the Organization's; its ARN the management
/// account's whoever created it (F3).
#[test]
fn an_organization_trail_member_is_admitted_under_the_organizations_path_too() {
    let mut all = members(2);
    all[0].organization = true;
    // Created by a delegated administrator (100000000000): the management account owns it.
    all[0] = all[0].clone().owned_by("100000000099");
    assert_eq!(
        all[0].trail_arn,
        "arn:aws:cloudtrail:us-east-1:100000000099:trail/trailkeeper"
    );
    assert!(all[0].is(
        "100000000000",
        "arn:aws:cloudtrail:us-east-1:100000000000:trail/trailkeeper"
    ));
    assert!(
        !all[1]
            .clone()
            .owned_by("100000000099")
            .trail_arn
            .contains("100000000099")
    );
    let archive = archive(&spec(Some(ORGANIZATION)), &retention(), &all).unwrap();
    let write = statement(bucket_policy_of(&archive), "CloudTrailWrite100000000000");
    assert_eq!(
        write["Resource"],
        json!([
            format!("{BUCKET}/AWS/CloudTrail/AWSLogs/100000000099/*"),
            format!("{BUCKET}/AWS/CloudTrail/AWSLogs/{ORGANIZATION}/*")
        ])
    );
    let org_file = format!(
        "{BUCKET}/AWS/CloudTrail/AWSLogs/{ORGANIZATION}/100000000055/CloudTrail/us-east-1/2026/12/04/x.json.gz"
    );
    assert_eq!(
        policy_eval::decisions(
            bucket_policy_of(&archive),
            &[
                cloudtrail("s3:PutObject", &org_file, &all[0].trail_arn, ORGANIZATION),
                // The other member's own trail may not write under the Organization's path.
                cloudtrail("s3:PutObject", &org_file, &all[1].trail_arn, ORGANIZATION),
            ]
        ),
        ["Allow", "ImplicitDeny"]
    );

    let refused = super::archive(&spec(None), &retention(), &all).unwrap_err();
    assert!(refused.contains("set spec.organizationId"), "{refused}");
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
        admitted_at: None,
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
    let mut spec = spec(Some(ORGANIZATION));
    spec.readers = vec![
        serde_json::from_value(json!({
            "principal": "arn:aws:iam::555566667777:role/payments-auditor",
            "accounts": ["100000000001"]
        }))
        .unwrap(),
    ];
    let archive = archive(&spec, &retention(), &members(3)).unwrap();
    let policy = bucket_policy_of(&archive);
    assert_eq!(
        statement(policy, "Reader0GetObjects")["Resource"],
        json!([
            format!("{BUCKET}/AWS/CloudTrail/AWSLogs/100000000001/*"),
            format!("{BUCKET}/AWS/CloudTrail/AWSLogs/{ORGANIZATION}/100000000001/*"),
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

/// F4: a reader of an account under an Organization trail decrypts its logs, whose encryption
/// context is the Organization trail's ARN (the management account's), through S3 only.
#[test]
fn a_reader_of_an_account_under_an_organization_trail_decrypts_its_logs_through_s3() {
    let mut spec = spec(Some(ORGANIZATION));
    let reader = "arn:aws:iam::555566667777:role/payments-auditor";
    spec.readers = vec![serde_json::from_value(json!({"principal": reader, "accounts": ["100000000055"]})).unwrap()];
    let mut all = members(2);
    all[0].organization = true;
    let archive = archive(&spec, &retention(), &all).unwrap();
    let org_trail = all[0].trail_arn.clone();
    let read = |trail: &str, via_s3: bool| {
        let object = format!("{BUCKET}/AWS/CloudTrail/AWSLogs/{ORGANIZATION}/100000000055/CloudTrail/x.json.gz");
        let mut context = json!({"kms:EncryptionContext:aws:cloudtrail:arn": trail,
                                 "kms:EncryptionContext:aws:s3:arn": object,
                                 "aws:PrincipalArn": reader, "kms:CallerAccount": "555566667777"});
        if via_s3 {
            context["kms:ViaService"] = json!("s3.eu-west-1.amazonaws.com");
        }
        policy_eval::request(json!({"AWS": reader}), "kms:Decrypt", Some("*"), context)
    };
    assert_eq!(
        policy_eval::decisions(
            &archive.account.key.policy,
            &[
                read(&org_trail, true),
                read(&org_trail, false),
                // Another member's own trail: not the reader's account.
                read(&all[1].trail_arn, true),
                read("arn:aws:cloudtrail:us-east-1:100000000055:trail/own", true),
            ]
        ),
        ["Allow", "ImplicitDeny", "ImplicitDeny", "Allow"]
    );
}

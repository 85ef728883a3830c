//! The log-archive account (issue 29): members' trails deliver into one archive bucket and key
//! whose policies admit exactly them, as the strict emulator checks cross-account deliveries
//! (CreateTrail refused into a bucket or with a key whose policy does not admit the trail).

mod common;

use common::{REGION, base_config, inspector, new_account, trail_only};
use trailkeeper::api::{
    Admission, LogArchiveSpec, LoggingBaselineSpec, PolicyRef, RetentionPolicySpec, TrailPolicySpec,
};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::desired::archive::{ArchiveTarget, Member, member_of};
use trailkeeper::engine::account::{
    AccountReport, Component, ComponentState, ReconcileOptions, RunMode, account_clients, reconcile_account,
};
use trailkeeper::engine::archive::{ArchiveOptions, ArchiveReport, archive_clients, reconcile_archive};

const ARCHIVE: &str = "audit/org-archive";

fn archive_spec(account: &str, organization: Option<&str>) -> LogArchiveSpec {
    serde_json::from_value(serde_json::json!({
        "accountId": account,
        "region": REGION,
        "organizationId": organization,
        "credentials": {"assumeRoleArn": format!("arn:aws:iam::{account}:role/trailkeeper")},
        "administrators": [format!("arn:aws:iam::{account}:role/admin")],
        "auditors": [format!("arn:aws:iam::{account}:role/auditor")],
    }))
    .unwrap()
}

fn member_spec(account: &str) -> LoggingBaselineSpec {
    let mut spec = trail_only(account);
    spec.storage.archive_ref = Some(PolicyRef {
        name: "org-archive".into(),
    });
    spec
}

async fn reconcile(spec: &LogArchiveSpec, members: &[Member]) -> ArchiveReport {
    reconcile_with(spec, members, ArchiveOptions::new(RunMode::Apply)).await
}

async fn reconcile_with(spec: &LogArchiveSpec, members: &[Member], options: ArchiveOptions) -> ArchiveReport {
    reconcile_archive(
        archive_clients(&base_config().await, spec),
        spec,
        &RetentionPolicySpec::default(),
        members,
        options,
    )
    .await
}

/// Puts a log file or digest (`kind`) of `member`'s trail into the archive as CloudTrail would
/// have `minutes_ago`.
pub async fn deliver_into(archive: &str, bucket: &str, member: &str, kind: &str, minutes_ago: i64) {
    let secs = common::now_secs() - minutes_ago * 60;
    let stamp = aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let digits: String = stamp.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let name = match kind {
        "CloudTrail" => format!("{member}_CloudTrail_{REGION}_{}Z_test.json.gz", &digits[..13]),
        _ => format!(
            "{member}_CloudTrail-Digest_{REGION}_trailkeeper_{REGION}_{}Z.json.gz",
            &digits[..15]
        ),
    };
    let key = format!(
        "AWS/CloudTrail/AWSLogs/{member}/{kind}/{REGION}/{}/{name}",
        stamp[..10].replace('-', "/")
    );
    let aws = inspector(archive).await;
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
}

/// Where a member delivers, as the archive's status would tell it after `report`.
fn target(report: &ArchiveReport, member: &LoggingBaselineSpec) -> ArchiveTarget {
    let member = member_of(member, &TrailPolicySpec::default());
    report
        .target_for(ARCHIVE, &member)
        .expect("the archive has its bucket and key")
}

async fn reconcile_member(
    member: &LoggingBaselineSpec,
    trail_policy: &TrailPolicySpec,
    target: ArchiveTarget,
) -> AccountReport {
    let retention = RetentionPolicySpec::default();
    let specs = AccountSpecs {
        baseline: member,
        trail_policy,
        retention: &retention,
    };
    let options = ReconcileOptions {
        archive: Some(target),
        ..ReconcileOptions::new(RunMode::Apply)
    };
    reconcile_account(account_clients(&base_config().await, &specs), &specs, options).await
}

/// The mode and days of a bucket's Object Lock default retention, as S3 reports them.
async fn default_retention(s3: &aws_sdk_s3::Client, bucket: &str) -> (Option<String>, Option<i32>) {
    let lock = s3.get_object_lock_configuration().bucket(bucket).send().await.unwrap();
    let rule = lock
        .object_lock_configuration
        .and_then(|c| c.rule)
        .and_then(|r| r.default_retention);
    (
        rule.as_ref()
            .and_then(|r| r.mode.as_ref())
            .map(|m| m.as_str().to_string()),
        rule.and_then(|r| r.days),
    )
}

async fn bucket_policy(archive: &str, bucket: &str) -> String {
    let aws = inspector(archive).await;
    let policy = aws.s3.get_bucket_policy().bucket(bucket).send().await.unwrap();
    policy.policy.unwrap()
}

async fn key_policy(archive: &str, key: &str) -> String {
    let aws = inspector(archive).await;
    let policy = aws
        .kms
        .get_key_policy()
        .key_id(key)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    policy.policy.unwrap()
}

/// The operator's role in the archive account (`credentials.assumeRoleArn`), with the archive's
/// IAM document (`iam-policy --document archive`): the emulator judges its iam:PassRole of the
/// replication roles and its s3:CreateJob.
async fn operator_role(archive: &str) {
    let aws = inspector(archive).await;
    // The role itself is one of the account's seeded roles (common::ACCOUNT_ROLES), assumable by
    // the account; only its policy is the archive's.
    common::create_roles_in(archive, &["trailkeeper"]).await;
    let mut policy = trailkeeper::desired::iam::archive_policy(&Default::default());
    // moto's policy validator refuses an S3 ARN with a region (`arn:aws:s3:*:*:job/*`), which IAM
    // accepts for S3 Batch Operations jobs: the job statement scoped to "*" here (a moto bug).
    for statement in policy["Statement"].as_array_mut().unwrap() {
        if statement["Resource"].as_str().is_some_and(|r| r.contains(":job/")) {
            statement["Resource"] = serde_json::json!("*");
        }
    }
    aws.iam
        .put_role_policy()
        .role_name("trailkeeper")
        .policy_name("trailkeeper")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
}

/// `{status} {key}` of the newest log file, as the archive's status reports it.
fn newest_replication(report: &ArchiveReport) -> String {
    report
        .replication
        .as_ref()
        .and_then(|r| r.newest_object.clone())
        .unwrap_or_default()
}

/// The reason ReplicationReady is not True (None when it is).
fn batch_state(report: &ArchiveReport) -> Option<&'static str> {
    match report.account.components.get(&Component::Replication) {
        Some(ComponentState::NotEffective { reason, .. }) => Some(*reason),
        _ => None,
    }
}

/// Reconciles until the Batch Replication job has ended (the emulator runs it after a second).
async fn finished_batch(spec: &LogArchiveSpec, members: &[Member], mut options: ArchiveOptions) -> ArchiveReport {
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let report = reconcile_with(spec, members, options.clone()).await;
        let batch = report.replication.as_ref().and_then(|r| r.batch.clone());
        let ended = batch
            .as_ref()
            .is_some_and(|b| matches!(b.job_status.as_deref(), Some("Complete" | "Failed" | "Cancelled")));
        if ended {
            return report;
        }
        options.batch_replication = batch;
    }
    panic!("the Batch Replication job did not end");
}

/// The replica of `key` is locked as the source object is (mode and retain-until date, read back).
async fn assert_replica_locked_as_source(archive: &str, bucket: &str, replica: &str, key: &str) {
    let us = inspector(archive).await;
    let eu = common::inspector_in(archive, "eu-west-1").await;
    let source = us.s3.head_object().bucket(bucket).key(key).send().await.unwrap();
    let copy = eu.s3.head_object().bucket(replica).key(key).send().await.unwrap();
    assert_eq!(copy.replication_status.as_ref().map(|s| s.as_str()), Some("REPLICA"));
    assert!(source.object_lock_mode.is_some(), "{source:?}");
    assert_eq!(copy.object_lock_mode, source.object_lock_mode);
    assert_eq!(copy.object_lock_retain_until_date, source.object_lock_retain_until_date);
}

/// The key of the newest object in `bucket`.
async fn newest_key(archive: &str, bucket: &str) -> String {
    let aws = inspector(archive).await;
    let listed = aws.s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    listed
        .contents()
        .iter()
        .max_by_key(|o| o.last_modified)
        .and_then(|o| o.key.clone())
        .unwrap()
}

#[tokio::test]
async fn members_deliver_into_the_archive_a_new_one_waits_for_admission_and_one_removed_keeps_its_logs() {
    let archive_account = new_account();
    let spec = archive_spec(&archive_account, None);
    let members: Vec<LoggingBaselineSpec> = (0..4).map(|_| member_spec(&new_account())).collect();
    let trail_policy = TrailPolicySpec::default();
    let as_members =
        |specs: &[&LoggingBaselineSpec]| -> Vec<Member> { specs.iter().map(|s| member_of(s, &trail_policy)).collect() };

    // Three members: the archive admits them, then each creates its trail into the archive.
    let first = as_members(&[&members[0], &members[1], &members[2]]);
    let report = reconcile(&spec, &first).await;
    assert!(
        !report.account.failed(),
        "{:?} {:?}",
        report.account.error,
        report.account.components
    );
    assert_eq!(report.admission, Some(Admission::Trails));
    assert!(report.members.iter().all(|(_, admitted)| *admitted));
    let bucket = report.account.bucket_name.clone().unwrap();
    let key_arn = report.account.key_arn.clone().unwrap();
    assert_eq!(bucket, format!("trailkeeper-{archive_account}-log-archive-{REGION}"));
    for member in &members[..3] {
        let applied = reconcile_member(member, &trail_policy, target(&report, member)).await;
        assert!(!applied.failed(), "{:?} {:?}", applied.error, applied.components);
        let aws = inspector(&member.account_id).await;
        let trail = aws.cloudtrail.get_trail().name("trailkeeper").send().await.unwrap();
        let trail = trail.trail.unwrap();
        assert_eq!(trail.s3_bucket_name.as_deref(), Some(bucket.as_str()));
        assert_eq!(trail.s3_key_prefix.as_deref(), Some("AWS/CloudTrail"));
        assert_eq!(trail.kms_key_id.as_deref(), Some(key_arn.as_str()));
        assert_eq!(
            aws.bucket_names().await,
            Vec::<String>::new(),
            "a member keeps no bucket"
        );
        assert_eq!(
            applied.components.get(&Component::Storage),
            Some(&ComponentState::NotManaged)
        );
    }

    // A fourth member before the archive admits it: its CreateTrail is never attempted (the
    // emulator, as CloudTrail, would refuse it: shown by the same call made directly).
    let fourth = &members[3];
    let waiting = reconcile_member(fourth, &trail_policy, target(&report, fourth)).await;
    match waiting.components.get(&Component::Storage) {
        Some(ComponentState::WaitingForArchive(message)) => {
            assert!(
                message.contains(ARCHIVE) && message.contains(&fourth.account_id),
                "{message}"
            )
        }
        other => panic!("the fourth member waits for the archive: {other:?}"),
    }
    assert_eq!(
        waiting.components.get(&Component::Trail),
        Some(&ComponentState::Waiting(Component::Storage))
    );
    assert!(
        !waiting.applied.iter().any(|c| c.action == "create the trail"),
        "{:?}",
        waiting.applied
    );
    let fourth_aws = inspector(&fourth.account_id).await;
    assert!(
        fourth_aws
            .cloudtrail
            .get_trail()
            .name("trailkeeper")
            .send()
            .await
            .is_err()
    );
    let refused = fourth_aws
        .cloudtrail
        .create_trail()
        .name("trailkeeper")
        .s3_bucket_name(&bucket)
        .s3_key_prefix("AWS/CloudTrail")
        .kms_key_id(&key_arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused.as_service_error().and_then(|e| e.meta().code()),
        Some("InsufficientS3BucketPolicyException")
    );

    // The archive admits it; then its trail is created.
    let all = as_members(&[&members[0], &members[1], &members[2], fourth]);
    let report = reconcile(&spec, &all).await;
    assert!(!report.account.failed(), "{:?}", report.account.components);
    assert!(
        bucket_policy(&archive_account, &bucket)
            .await
            .contains(&fourth.account_id)
    );
    let admitted = reconcile_member(fourth, &trail_policy, target(&report, fourth)).await;
    assert!(!admitted.failed(), "{:?} {:?}", admitted.error, admitted.components);
    assert!(
        admitted.applied.iter().any(|c| c.action == "create the trail"),
        "{:?}",
        admitted.applied
    );

    // A member delivers; then it leaves: its statements go, its logs stay (under the lock).
    let leaving = &members[2];
    let aws = inspector(&archive_account).await;
    let object = format!(
        "AWS/CloudTrail/AWSLogs/{0}/CloudTrail/{REGION}/2026/12/04/{0}_CloudTrail_{REGION}_20261204T0000Z_x.json.gz",
        leaving.account_id
    );
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key(&object)
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    let remaining = as_members(&[&members[0], &members[1], fourth]);
    let report = reconcile(&spec, &remaining).await;
    assert!(!report.account.failed(), "{:?}", report.account.components);
    let policies = format!(
        "{}{}",
        bucket_policy(&archive_account, &bucket).await,
        key_policy(&archive_account, &key_arn).await
    );
    assert!(!policies.contains(&leaving.account_id), "{policies}");
    assert!(policies.contains(&members[0].account_id), "{policies}");
    let kept = aws.s3.head_object().bucket(&bucket).key(&object).send().await.unwrap();
    assert!(
        kept.object_lock_retain_until_date.is_some(),
        "the archive's default retention locks it"
    );
    // Its trail can no longer deliver there: CloudTrail (the emulator) reports AccessDenied, while
    // a member still admitted delivers.
    let status_of = |account: String| async move {
        let aws = inspector(&account).await;
        let status = aws
            .cloudtrail
            .get_trail_status()
            .name("trailkeeper")
            .send()
            .await
            .unwrap();
        status.latest_delivery_error
    };
    assert_eq!(
        status_of(leaving.account_id.clone()).await.as_deref(),
        Some("AccessDenied")
    );
    assert_eq!(status_of(members[0].account_id.clone()).await, None);

    // In line: no write.
    let again = reconcile(&spec, &remaining).await;
    assert!(again.account.in_sync(), "{:?}", again.account.components);
    assert_eq!(again.account.calls.writes, 0, "{:?}", again.account.calls.by_action);
}

#[tokio::test]
async fn a_member_that_stopped_delivering_is_named_late_by_the_archive_and_in_its_own_delivery_health() {
    let archive_account = new_account();
    let mut spec = archive_spec(&archive_account, None);
    // Only the listings of the delivery proof among the archive's ListBucket calls.
    spec.audit_queries.enabled = false;
    let members: Vec<LoggingBaselineSpec> = (0..3).map(|_| member_spec(&new_account())).collect();
    let trail_policy = TrailPolicySpec::default();
    let admitted: Vec<Member> = members.iter().map(|m| member_of(m, &trail_policy)).collect();
    let report = reconcile(&spec, &admitted).await;
    let bucket = report.account.bucket_name.clone().unwrap();
    for member in &members {
        let applied = reconcile_member(member, &trail_policy, target(&report, member)).await;
        assert!(!applied.failed(), "{:?}", applied.components);
    }
    let (delivering, stopped, new) = (&members[0].account_id, &members[1].account_id, &members[2].account_id);
    for kind in ["CloudTrail", "CloudTrail-Digest"] {
        deliver_into(&archive_account, &bucket, delivering, kind, 5).await;
        deliver_into(&archive_account, &bucket, stopped, kind, 4 * 60).await;
    }
    let options = ArchiveOptions {
        delivered_before: [delivering.clone(), stopped.clone()].into(),
        ..ArchiveOptions::new(RunMode::Apply)
    };
    let report = reconcile_with(&spec, &admitted, options).await;
    let verdict = |account: &str| {
        report
            .delivery
            .iter()
            .find(|d| d.account_id == account)
            .unwrap()
            .clone()
    };
    assert_eq!(verdict(delivering).problem, None);
    assert!(
        verdict(delivering)
            .log_file
            .unwrap()
            .0
            .contains(&format!("AWSLogs/{delivering}/CloudTrail/"))
    );
    let late = verdict(stopped).problem.unwrap();
    assert!(
        late.contains(stopped.as_str()) && late.contains("nothing delivered for"),
        "{late}"
    );
    assert_eq!(verdict(new).problem, None, "a new member awaits its first delivery");
    // The listing is bounded: per member, today's folder of log files and of digests (and
    // yesterday's when today's is empty), never the bucket; besides, one HeadBucket (also
    // s3:ListBucket) for each of the two buckets. The new member's folders are empty both days (4
    // listings); the others' today's folders hold their files (2 each, 4 for the stopped member
    // when four hours ago was yesterday).
    let listings = report
        .account
        .calls
        .by_action
        .get("s3:ListBucket")
        .map(|(n, _)| *n)
        .unwrap_or(0);
    assert!((2 + 8..=2 + 10).contains(&listings), "{listings}");

    // The member's own DeliveryHealthy names it late: from GetTrailStatus and from the archive.
    let own = reconcile_member(&members[1], &trail_policy, target(&report, &members[1])).await;
    let condition = trailkeeper::controller::status::delivery_condition(&own).unwrap();
    assert_eq!(condition.status, "False", "{condition:?}");
    let problems: Vec<_> = own.delivery.iter().filter_map(|d| d.problem.clone()).collect();
    assert!(
        problems.iter().any(|p| p.contains(&format!("account {stopped}"))),
        "{problems:?}"
    );
    let fine = reconcile_member(&members[0], &trail_policy, target(&report, &members[0])).await;
    assert_eq!(
        trailkeeper::controller::status::delivery_condition(&fine)
            .unwrap()
            .status,
        "True"
    );
}

/// `trailkeeper verify` on the manifests of an archive and a member: the member's digests and log
/// files in the archive (written as CloudTrail writes them) are verified with the archive
/// account's credentials; one log file changed afterwards is named.
#[tokio::test]
async fn verify_checks_a_members_digests_in_the_archive() {
    let archive_account = new_account();
    let spec = archive_spec(&archive_account, None);
    let member = member_spec(&new_account());
    let report = reconcile(&spec, &[member_of(&member, &TrailPolicySpec::default())]).await;
    let bucket = report.account.bucket_name.clone().unwrap();
    let aws = inspector(&archive_account).await;
    let now = common::now_secs();
    let end = now - now % 3600 - 3600;
    let chain = common::chain::write_chain(
        &aws,
        common::chain::ChainSpec {
            bucket: &bucket,
            root: &format!("AWS/CloudTrail/AWSLogs/{}/", member.account_id),
            account: &member.account_id,
            region: REGION,
            end,
            hours: 3,
            files_per_digest: 2,
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("archive.yaml");
    let archive_doc = serde_json::json!({
        "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LogArchive",
        "metadata": {"name": "org-archive", "namespace": "audit"}, "spec": spec,
    });
    let member_doc = serde_json::json!({
        "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaseline",
        "metadata": {"name": "member", "namespace": "audit"}, "spec": member,
    });
    std::fs::write(
        &manifests,
        format!(
            "{}---\n{}",
            serde_yaml::to_string(&archive_doc).unwrap(),
            serde_yaml::to_string(&member_doc).unwrap()
        ),
    )
    .unwrap();
    let start = aws_smithy_types::DateTime::from_secs(end - 4 * 3600)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let verify = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
            .args([
                "verify",
                "-f",
                manifests.to_str().unwrap(),
                "--start-time",
                &start,
                "-o",
                "json",
            ])
            .env("AWS_ENDPOINT_URL", &common::moto().endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .expect("the binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = verify();
    assert_eq!(code, Some(0), "{out}{err}");
    let verified: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified[0]["valid"], true, "{out}");
    assert_eq!(verified[0]["report"]["digests"], 3, "{out}");
    assert_eq!(verified[0]["report"]["logFiles"], 6, "{out}");

    // A log file of the member rewritten in the archive: named, exit 1.
    let tampered = &chain.log_files[1];
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key(tampered)
        .body(common::chain::gzip(b"{}").into())
        .send()
        .await
        .unwrap();
    let (code, out, err) = verify();
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains(tampered.as_str()), "{out}");
}

/// The Glue table `name` of the archive's audit database: its projected accounts and the
/// storage template Athena reads a partition from.
async fn projection_of(aws: &common::Inspector, database: &str, name: &str) -> (String, String) {
    let table = aws
        .glue
        .get_table()
        .database_name(database)
        .name(name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let parameters = table.parameters.unwrap_or_default();
    (
        parameters.get("projection.account.values").cloned().unwrap_or_default(),
        parameters.get("storage.location.template").cloned().unwrap_or_default(),
    )
}

/// Athena in the archive account: a table whose account partition lists the members, one per
/// layout of their logs (members with trails of their own under `AWSLogs/{account}/`, the
/// Organization trail's accounts under `AWSLogs/{o-id}/{account}/`), each member's projected
/// partition holding its logs and no one else's; the named queries read both tables; results
/// encrypted with the archive's key.
#[tokio::test]
async fn the_archives_athena_table_answers_a_query_per_member_account() {
    let management = new_account();
    let organization = common::create_organization(&inspector(&management).await).await;
    let archive_account = common::create_member_account(&inspector(&management).await, "log-archive").await;
    let spec = archive_spec(&archive_account, Some(&organization));
    let members: Vec<LoggingBaselineSpec> = (0..2).map(|_| member_spec(&new_account())).collect();
    let organization_member = member_spec(&management);
    let organization_trail = TrailPolicySpec {
        organization_trail: true,
        ..TrailPolicySpec::default()
    };
    let mut admitted: Vec<Member> = members
        .iter()
        .map(|m| member_of(m, &TrailPolicySpec::default()))
        .collect();
    admitted.push(member_of(&organization_member, &organization_trail));
    let report = reconcile(&spec, &admitted).await;
    assert!(
        !report.account.failed(),
        "{:?} {:?}",
        report.account.error,
        report.account.components
    );
    let bucket = report.account.bucket_name.clone().unwrap();
    for member in &members {
        deliver_into(&archive_account, &bucket, &member.account_id, "CloudTrail", 3).await;
    }
    let aws = inspector(&archive_account).await;
    // The Organization trail's log file of the management account, where CloudTrail puts it.
    let today = trailkeeper::judge::archive_delivery::day_of(common::now_secs());
    let stamp = aws_smithy_types::DateTime::from_secs(common::now_secs() - 180)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let digits: String = stamp.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key(format!(
            "AWS/CloudTrail/AWSLogs/{organization}/{management}/CloudTrail/{REGION}/{}/{management}_CloudTrail_{REGION}_{}Z_org.json.gz",
            stamp[..10].replace('-', "/"),
            &digits[..13]
        ))
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();

    let status = report.audit_queries.clone().unwrap();
    let organization_table = status
        .organization_table
        .clone()
        .expect("a table over the Organization trail's accounts");
    let (own_accounts, own_template) = projection_of(&aws, &status.database, &status.table).await;
    let mut accounts: Vec<String> = members.iter().map(|m| m.account_id.clone()).collect();
    accounts.sort();
    assert_eq!(own_accounts, accounts.join(","));
    assert_eq!(
        own_template,
        format!("s3://{bucket}/AWS/CloudTrail/AWSLogs/${{account}}/CloudTrail/${{region}}/${{date}}")
    );
    let (organization_accounts, organization_template) =
        projection_of(&aws, &status.database, &organization_table).await;
    assert_eq!(organization_accounts, management);
    assert_eq!(
        organization_template,
        format!("s3://{bucket}/AWS/CloudTrail/AWSLogs/{organization}/${{account}}/CloudTrail/${{region}}/${{date}}")
    );
    // What Athena reads for `WHERE account = '...' AND region = ... AND date = today`: the
    // partition's location, from the template of the member's table.
    let mut queried: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.account_id.as_str(), own_template.as_str()))
        .collect();
    queried.push((management.as_str(), organization_template.as_str()));
    for (account, template) in queried {
        let location = template
            .replace("${account}", account)
            .replace("${region}", REGION)
            .replace("${date}", &today);
        let prefix = location.strip_prefix(&format!("s3://{bucket}/")).unwrap();
        let listed = aws
            .s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys.len(), 1, "{account}: {keys:?}");
        assert!(keys[0].contains(&format!("/{account}_CloudTrail_")), "{keys:?}");
    }
    let work_group = aws
        .athena
        .get_work_group()
        .work_group(&status.work_group)
        .send()
        .await
        .unwrap();
    let configuration = work_group.work_group.unwrap().configuration.unwrap();
    let encryption = configuration
        .result_configuration
        .unwrap()
        .encryption_configuration
        .unwrap();
    assert_eq!(encryption.kms_key.as_deref(), report.account.key_arn.as_deref());
    assert_eq!(configuration.enforce_work_group_configuration, Some(true));
    assert!(status.named_queries > 0);
    // Each named query reads both tables: a member is found whichever holds it.
    let ids = aws
        .athena
        .list_named_queries()
        .work_group(&status.work_group)
        .send()
        .await
        .unwrap()
        .named_query_ids
        .unwrap_or_default();
    for id in ids {
        let query = aws.athena.get_named_query().named_query_id(id).send().await.unwrap();
        let sql = query.named_query.unwrap().query_string;
        for table in [&status.table, &organization_table] {
            assert!(sql.contains(&format!("\"{}\".\"{table}\"", status.database)), "{sql}");
        }
    }
    let again = reconcile(&spec, &admitted).await;
    assert_eq!(again.account.calls.writes, 0, "{:?}", again.account.calls.by_action);
}

fn with_replica(mut spec: LogArchiveSpec) -> LogArchiveSpec {
    spec.replication = Some(serde_json::from_value(serde_json::json!({"region": "eu-west-1"})).unwrap());
    spec
}

#[tokio::test]
async fn the_archive_is_replicated_into_a_locked_replica_and_its_status_is_observed() {
    let archive_account = new_account();
    let spec = with_replica(archive_spec(&archive_account, None));
    operator_role(&archive_account).await;
    let member = member_spec(&new_account());
    let members = vec![member_of(&member, &TrailPolicySpec::default())];
    let report = reconcile(&spec, &members).await;
    assert!(
        !report.account.failed(),
        "{:?} {:?}",
        report.account.error,
        report.account.components
    );
    assert_eq!(
        report.account.components.get(&Component::Replication),
        Some(&ComponentState::Repaired)
    );
    let replication = report.replication.clone().unwrap();
    assert!(replication.rule_in_force);
    // A new archive holds nothing to replicate retroactively: no Batch Replication.
    assert_eq!(replication.batch, None);
    let replica = format!("trailkeeper-{archive_account}-log-archive-replica-eu-west-1");
    assert_eq!(replication.bucket, replica);

    // Read back: the replica is locked as the archive is, versioned, encrypted with its own key.
    let eu = common::inspector_in(&archive_account, "eu-west-1").await;
    assert_eq!(
        default_retention(&eu.s3, &replica).await,
        (Some("GOVERNANCE".into()), Some(365))
    );
    let versioning = eu.s3.get_bucket_versioning().bucket(&replica).send().await.unwrap();
    assert_eq!(
        versioning.status.map(|s| s.as_str().to_string()).as_deref(),
        Some("Enabled")
    );
    let replica_key = replication.key_arn.clone().unwrap();
    assert!(replica_key.contains(":eu-west-1:"), "{replica_key}");

    // The rule: every object, SSE-KMS objects with the replica's key, no delete markers.
    let aws = inspector(&archive_account).await;
    let bucket = report.account.bucket_name.clone().unwrap();
    let config = aws.s3.get_bucket_replication().bucket(&bucket).send().await.unwrap();
    let config = config.replication_configuration.unwrap();
    assert_eq!(
        config.role,
        format!("arn:aws:iam::{archive_account}:role/trailkeeper-log-archive-replication")
    );
    let rule = &config.rules[0];
    assert_eq!(rule.status.as_str(), "Enabled");
    assert_eq!(
        rule.delete_marker_replication
            .as_ref()
            .and_then(|d| d.status.as_ref())
            .map(|s| s.as_str()),
        Some("Disabled")
    );
    assert_eq!(
        rule.destination
            .as_ref()
            .and_then(|d| d.encryption_configuration.as_ref())
            .and_then(|e| e.replica_kms_key_id.as_deref()),
        Some(replica_key.as_str())
    );
    // The role: only S3 for this bucket may assume it; it replicates, and deletes nothing.
    let role = aws
        .iam
        .get_role_policy()
        .role_name("trailkeeper-log-archive-replication")
        .policy_name("trailkeeper-replication")
        .send()
        .await
        .unwrap();
    let policy = common::urlencoding_decode(&role.policy_document);
    assert!(
        policy.contains("s3:ReplicateObject") && !policy.contains("s3:ReplicateDelete"),
        "{policy}"
    );

    // A delivery reads PENDING (young: in line), then COMPLETED; the replica has the source's lock.
    deliver_into(&archive_account, &bucket, &member.account_id, "CloudTrail", 1).await;
    let options = ArchiveOptions {
        delivered_before: [member.account_id.clone()].into(),
        ..ArchiveOptions::new(RunMode::Apply)
    };
    let pending = reconcile_with(&spec, &members, options.clone()).await;
    // The emulator replicates a second after the put: read sooner it is PENDING; on a loaded
    // machine the reconcile may read it COMPLETED already. Either is in line (the emulator's own
    // tests show PENDING before COMPLETED).
    let first = newest_replication(&pending);
    assert!(
        first.starts_with("PENDING ") || first.starts_with("COMPLETED "),
        "{first}"
    );
    assert!(pending.account.in_sync(), "{:?}", pending.account.components);
    assert_eq!(pending.account.calls.writes, 0, "{:?}", pending.account.calls.by_action);
    let key = newest_key(&archive_account, &bucket).await;
    assert_eq!(
        common::moto_api::replication_outcome(&bucket, &key).await,
        ("COMPLETED".into(), None)
    );
    let again = reconcile_with(&spec, &members, options.clone()).await;
    assert!(
        newest_replication(&again).starts_with("COMPLETED "),
        "{}",
        newest_replication(&again)
    );
    assert!(again.account.in_sync(), "{:?}", again.account.components);
    assert_eq!(again.account.calls.writes, 0, "{:?}", again.account.calls.by_action);
    assert_replica_locked_as_source(&archive_account, &bucket, &replica, &key).await;

    // Drift: the rule removed behind trailkeeper's back is put back, and what was delivered
    // meanwhile (S3 does not replicate it retroactively) is brought over by Batch Replication.
    aws.s3.delete_bucket_replication().bucket(&bucket).send().await.unwrap();
    deliver_into(&archive_account, &bucket, &member.account_id, "CloudTrail-Digest", 0).await;
    let repaired = reconcile_with(&spec, &members, options.clone()).await;
    assert!(aws.s3.get_bucket_replication().bucket(&bucket).send().await.is_ok());
    assert_eq!(
        batch_state(&repaired),
        Some(trailkeeper::engine::archive::BATCH_REPLICATION_RUNNING)
    );
    assert_eq!(
        repaired.account.calls.by_action.get("s3:CreateJob").map(|c| c.0),
        Some(1)
    );
    let batch = repaired.replication.as_ref().and_then(|r| r.batch.clone());
    let running = ArchiveOptions {
        batch_replication: batch.clone(),
        ..options.clone()
    };
    // Observed until it ends; never created twice for the same need.
    let done = finished_batch(&spec, &members, running).await;
    let finished = done.replication.as_ref().and_then(|r| r.batch.clone()).unwrap();
    assert_eq!(finished.job_status.as_deref(), Some("Complete"), "{finished:?}");
    assert!(finished.objects_replicated >= 1, "{finished:?}");
    assert!(!done.account.calls.by_action.contains_key("s3:CreateJob"));
    assert!(done.account.in_sync(), "{:?}", done.account.components);
    let digest = newest_key(&archive_account, &bucket).await;
    assert_replica_locked_as_source(&archive_account, &bucket, &replica, &digest).await;

    // Every call the archive's reconciles made is granted by `iam-policy --document archive`, or
    // (the keys' maintenance) by the key policies of the keys trailkeeper creates.
    let policy = trailkeeper::desired::iam::archive_policy(&Default::default());
    let by_key_policy = trailkeeper::desired::iam::key_maintenance_actions(false);
    let granted: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            v => vec![v.as_str().unwrap_or_default().to_string()],
        })
        .collect();
    for report in [&report, &pending, &again, &repaired, &done] {
        for action in report.account.calls.by_action.keys() {
            assert!(
                // AssumeRole is the operator identity's (its own policy), into the archive's role.
                ["sts:GetCallerIdentity", "sts:AssumeRole"].contains(action)
                    || granted.iter().any(|g| g == action)
                    || by_key_policy.contains(action),
                "{action} is called in the archive account but not granted by the archive policy"
            );
        }
    }
}

/// Replication proven, not assumed (issue 42): with the replication role's kms:Decrypt removed
/// behind trailkeeper's back, S3 fails the next log file (the replica's Bucket Key needs it);
/// ReplicationReady says so, naming the object and what to check; trailkeeper repairs the role and
/// S3 Batch Replication brings the FAILED object over, with the source's lock.
#[tokio::test]
async fn a_failed_replication_is_reported_and_the_object_brought_over_once_the_role_is_repaired() {
    let archive_account = new_account();
    let spec = with_replica(archive_spec(&archive_account, None));
    operator_role(&archive_account).await;
    let member = member_spec(&new_account());
    let members = vec![member_of(&member, &TrailPolicySpec::default())];
    let first = reconcile(&spec, &members).await;
    assert!(!first.account.failed(), "{:?}", first.account.components);
    let bucket = first.account.bucket_name.clone().unwrap();
    let replica = first.replication.as_ref().unwrap().bucket.clone();

    // The role's policy without kms:Decrypt on the replica's key.
    let aws = inspector(&archive_account).await;
    let role = "trailkeeper-log-archive-replication";
    let got = aws
        .iam
        .get_role_policy()
        .role_name(role)
        .policy_name("trailkeeper-replication")
        .send()
        .await
        .unwrap();
    let mut policy: serde_json::Value =
        serde_json::from_str(&common::urlencoding_decode(&got.policy_document)).unwrap();
    for statement in policy["Statement"].as_array_mut().unwrap() {
        if statement["Sid"] == "EncryptReplicas" {
            statement["Action"] = serde_json::json!(["kms:Encrypt", "kms:GenerateDataKey"]);
        }
    }
    aws.iam
        .put_role_policy()
        .role_name(role)
        .policy_name("trailkeeper-replication")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    deliver_into(&archive_account, &bucket, &member.account_id, "CloudTrail", 1).await;
    let key = newest_key(&archive_account, &bucket).await;
    assert_eq!(
        common::moto_api::replication_outcome(&bucket, &key).await,
        ("FAILED".into(), Some("DstPutObjectNotPermitted".into()))
    );

    let options = ArchiveOptions {
        delivered_before: [member.account_id.clone()].into(),
        ..ArchiveOptions::new(RunMode::Apply)
    };
    let failing = reconcile_with(&spec, &members, options.clone()).await;
    assert_eq!(newest_replication(&failing), format!("FAILED {key}"));
    let Some(ComponentState::NotEffective { reason, message }) =
        failing.account.components.get(&Component::Replication)
    else {
        panic!("{:?}", failing.account.components);
    };
    assert_eq!(*reason, trailkeeper::engine::archive::REPLICATION_FAILING);
    assert!(message.contains(&key) && message.contains("kms:Decrypt"), "{message}");
    let conditions = trailkeeper::controller::status::conditions(&failing.account);
    let ready = conditions.iter().find(|c| c.type_ == "ReplicationReady").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ReplicationFailing")
    );
    // The role repaired, and a job for the FAILED object created, in that reconcile.
    assert_eq!(
        failing.account.calls.by_action.get("iam:PutRolePolicy").map(|c| c.0),
        Some(1)
    );
    assert_eq!(
        failing.account.calls.by_action.get("s3:CreateJob").map(|c| c.0),
        Some(1)
    );

    let done = finished_batch(
        &spec,
        &members,
        ArchiveOptions {
            batch_replication: failing.replication.as_ref().and_then(|r| r.batch.clone()),
            ..options.clone()
        },
    )
    .await;
    let batch = done.replication.as_ref().and_then(|r| r.batch.clone()).unwrap();
    assert_eq!(
        (
            batch.job_status.as_deref(),
            batch.objects_replicated,
            batch.objects_failed
        ),
        (Some("Complete"), 1, 0)
    );
    assert_eq!(newest_replication(&done), format!("COMPLETED {key}"));
    assert_replica_locked_as_source(&archive_account, &bucket, &replica, &key).await;
    assert!(done.account.in_sync(), "{:?}", done.account.components);

    // In line now: zero writes, the job kept in status and never run again.
    let settled = reconcile_with(
        &spec,
        &members,
        ArchiveOptions {
            batch_replication: Some(batch.clone()),
            ..options
        },
    )
    .await;
    assert_eq!(settled.account.calls.writes, 0, "{:?}", settled.account.calls.by_action);
    assert_eq!(settled.replication.and_then(|r| r.batch), Some(batch));
}

/// S3 does not replicate retroactively: logs delivered before `replication` was added reach the
/// replica by one S3 Batch Replication job, with their lock; a reconcile while it runs creates
/// no other.
#[tokio::test]
async fn logs_delivered_before_replication_was_added_reach_the_replica_by_batch_replication() {
    let archive_account = new_account();
    let plain = archive_spec(&archive_account, None);
    operator_role(&archive_account).await;
    let member = member_spec(&new_account());
    let members = vec![member_of(&member, &TrailPolicySpec::default())];
    let first = reconcile(&plain, &members).await;
    assert!(!first.account.failed(), "{:?}", first.account.components);
    let bucket = first.account.bucket_name.clone().unwrap();
    for minutes_ago in [30, 20, 10] {
        deliver_into(&archive_account, &bucket, &member.account_id, "CloudTrail", minutes_ago).await;
    }

    let spec = with_replica(plain);
    let options = ArchiveOptions {
        delivered_before: [member.account_id.clone()].into(),
        ..ArchiveOptions::new(RunMode::Apply)
    };
    let added = reconcile_with(&spec, &members, options.clone()).await;
    assert_eq!(
        batch_state(&added),
        Some(trailkeeper::engine::archive::BATCH_REPLICATION_RUNNING)
    );
    let batch = added.replication.as_ref().and_then(|r| r.batch.clone()).unwrap();
    assert!(
        batch.need.contains("held objects when the replication rule was put"),
        "{batch:?}"
    );
    assert!(batch.job_id.is_some(), "{batch:?}");
    let replica = added.replication.as_ref().unwrap().bucket.clone();

    let running = ArchiveOptions {
        batch_replication: Some(batch),
        ..options
    };
    let again = reconcile_with(&spec, &members, running.clone()).await;
    assert!(
        !again.account.calls.by_action.contains_key("s3:CreateJob"),
        "{:?}",
        again.account.calls.by_action
    );
    let done = finished_batch(&spec, &members, running).await;
    let finished = done.replication.as_ref().and_then(|r| r.batch.clone()).unwrap();
    assert_eq!(
        (finished.job_status.as_deref(), finished.objects_replicated),
        (Some("Complete"), 3),
        "{finished:?}"
    );
    assert!(done.account.in_sync(), "{:?}", done.account.components);
    let aws = inspector(&archive_account).await;
    let listed = aws.s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    for object in listed.contents() {
        let key = object.key.clone().unwrap();
        assert_replica_locked_as_source(&archive_account, &bucket, &replica, &key).await;
    }
}

/// S3 accepts a replication rule from a locked bucket into a replica without Object Lock and fails
/// every object (DstBucketObjectLockConfigMissing: the emulator as S3); trailkeeper locks the
/// replica before it puts the rule, and when the replica is not locked (an existing bucket:
/// turning Object Lock on in place is irreversible, so trailkeeper holds it back) the rule is never
/// sent.
#[tokio::test]
async fn a_replication_into_an_unlocked_replica_is_never_attempted() {
    let archive_account = new_account();
    let spec = with_replica(archive_spec(&archive_account, None));
    let replica = format!("trailkeeper-{archive_account}-log-archive-replica-eu-west-1");
    let eu = common::inspector_in(&archive_account, "eu-west-1").await;
    eu.s3
        .create_bucket()
        .bucket(&replica)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Someone's object in it: S3 would lock it in place (allowed on a versioned bucket since
    // 2023), but that cannot be undone and leaves the object unlocked: trailkeeper holds it back.
    eu.s3
        .put_object()
        .bucket(&replica)
        .key("someone")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    let member = member_spec(&new_account());
    let report = reconcile(&spec, &[member_of(&member, &TrailPolicySpec::default())]).await;
    assert!(
        matches!(
            report.account.components.get(&Component::Replication),
            Some(ComponentState::ApprovalRequired(m)) if m.contains("has no Object Lock")
        ),
        "{:?}",
        report.account.components
    );
    assert!(
        !report
            .account
            .calls
            .by_action
            .contains_key("s3:PutReplicationConfiguration"),
        "{:?}",
        report.account.calls.by_action
    );
    // What S3 would do, asked directly: the rule is accepted, and each new object FAILs.
    let aws = inspector(&archive_account).await;
    let bucket = report.account.bucket_name.clone().unwrap();
    let replica_key = report.replication.as_ref().and_then(|r| r.key_arn.clone()).unwrap();
    // trailkeeper put no rule: the test's own, with a role of its own.
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = aws
        .iam
        .create_role()
        .role_name("replication")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    // It may do everything, so that the replica's missing lock is what S3 fails on.
    let everything = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["s3:*", "kms:*"], "Resource": "*"}]});
    aws.iam
        .put_role_policy()
        .role_name("replication")
        .policy_name("everything")
        .policy_document(everything.to_string())
        .send()
        .await
        .unwrap();
    aws.s3
        .put_bucket_replication()
        .bucket(&bucket)
        .replication_configuration(
            aws_sdk_s3::types::ReplicationConfiguration::builder()
                .role(role)
                .rules(
                    aws_sdk_s3::types::ReplicationRule::builder()
                        .id("x")
                        .status(aws_sdk_s3::types::ReplicationRuleStatus::Enabled)
                        .source_selection_criteria(
                            aws_sdk_s3::types::SourceSelectionCriteria::builder()
                                .sse_kms_encrypted_objects(
                                    aws_sdk_s3::types::SseKmsEncryptedObjects::builder()
                                        .status(aws_sdk_s3::types::SseKmsEncryptedObjectsStatus::Enabled)
                                        .build()
                                        .unwrap(),
                                )
                                .build(),
                        )
                        .destination(
                            aws_sdk_s3::types::Destination::builder()
                                .bucket(format!("arn:aws:s3:::{replica}"))
                                .encryption_configuration(
                                    aws_sdk_s3::types::EncryptionConfiguration::builder()
                                        .replica_kms_key_id(replica_key)
                                        .build(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    deliver_into(&archive_account, &bucket, &member.account_id, "CloudTrail", 1).await;
    let key = newest_key(&archive_account, &bucket).await;
    assert_eq!(
        common::moto_api::replication_outcome(&bucket, &key).await,
        ("FAILED".into(), Some("DstBucketObjectLockConfigMissing".into()))
    );
}

#[tokio::test]
async fn drift_on_the_archives_bucket_policy_key_policy_and_lock_is_repaired() {
    let archive_account = new_account();
    let spec = archive_spec(&archive_account, None);
    let member = member_spec(&new_account());
    let members = vec![member_of(&member, &TrailPolicySpec::default())];
    let report = reconcile(&spec, &members).await;
    assert!(!report.account.failed(), "{:?}", report.account.components);
    let bucket = report.account.bucket_name.clone().unwrap();
    let key_arn = report.account.key_arn.clone().unwrap();

    let aws = inspector(&archive_account).await;
    let foreign = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Other", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                       "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]
    });
    aws.s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(foreign.to_string())
        .send()
        .await
        .unwrap();
    let key_policy_base = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Root", "Effect": "Allow",
                       "Principal": {"AWS": format!("arn:aws:iam::{archive_account}:root")},
                       "Action": "kms:*", "Resource": "*"}]
    });
    aws.kms
        .put_key_policy()
        .key_id(&key_arn)
        .policy_name("default")
        .policy(key_policy_base.to_string())
        .send()
        .await
        .unwrap();
    aws.s3
        .put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(
            aws_sdk_s3::types::ObjectLockConfiguration::builder()
                .object_lock_enabled(aws_sdk_s3::types::ObjectLockEnabled::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let repaired = reconcile(&spec, &members).await;
    assert!(!repaired.account.failed(), "{:?}", repaired.account.components);
    let fields: Vec<_> = repaired.account.drift.iter().map(|d| d.field.as_str()).collect();
    assert!(fields.contains(&"policy"), "{fields:?}");
    let bucket_now = bucket_policy(&archive_account, &bucket).await;
    assert!(
        bucket_now.contains(&members[0].trail_arn) && !bucket_now.contains("\"Other\""),
        "{bucket_now}"
    );
    assert!(
        key_policy(&archive_account, &key_arn)
            .await
            .contains(&members[0].trail_arn)
    );
    assert_eq!(default_retention(&aws.s3, &bucket).await.1, Some(365));

    let again = reconcile(&spec, &members).await;
    assert!(again.account.in_sync(), "{:?}", again.account.components);
    assert_eq!(again.account.calls.writes, 0, "{:?}", again.account.calls.by_action);
}

#[tokio::test]
async fn an_organization_trail_delivers_into_the_archive_under_the_organizations_path() {
    let management = new_account();
    let aws = inspector(&management).await;
    let organization = common::create_organization(&aws).await;
    let archive_account = common::create_member_account(&aws, "log-archive").await;
    let spec = archive_spec(&archive_account, Some(&organization));
    let member = member_spec(&management);
    let trail_policy = TrailPolicySpec {
        organization_trail: true,
        ..TrailPolicySpec::default()
    };
    let members = vec![member_of(&member, &trail_policy)];
    let report = reconcile(&spec, &members).await;
    assert!(
        !report.account.failed(),
        "{:?} {:?}",
        report.account.error,
        report.account.components
    );
    let bucket = report.account.bucket_name.clone().unwrap();
    let policy = bucket_policy(&archive_account, &bucket).await;
    assert!(
        policy.contains(&format!("/AWS/CloudTrail/AWSLogs/{organization}/*")),
        "{policy}"
    );

    let applied = reconcile_member(&member, &trail_policy, target(&report, &member)).await;
    assert!(!applied.failed(), "{:?} {:?}", applied.error, applied.components);
    let trail = aws
        .cloudtrail
        .get_trail()
        .name("trailkeeper")
        .send()
        .await
        .unwrap()
        .trail
        .unwrap();
    assert_eq!(trail.is_organization_trail, Some(true));
    assert_eq!(trail.s3_bucket_name.as_deref(), Some(bucket.as_str()));

    // Without the Organization's id the archive refuses, before any call.
    let refused = reconcile(&archive_spec(&archive_account, None), &members).await;
    let error = refused.account.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("set spec.organizationId"), "{error}");
    assert_eq!(refused.account.calls.reads + refused.account.calls.writes, 0);

    // N4: the Organization trail writes every account's folder under AWSLogs/{o-id}/: the archive
    // lists them (one listing with a delimiter) and tells the accounts that deliver from those
    // that went quiet (one key after the window's start each).
    let (recent, old) = (
        common::create_member_account(&aws, "recent").await,
        common::create_member_account(&aws, "old").await,
    );
    let listings = |report: &ArchiveReport| {
        report
            .account
            .calls
            .by_action
            .get("s3:ListBucket")
            .map_or(0, |(n, _)| *n)
    };
    let before = listings(&reconcile(&spec, &members).await);
    let archive_aws = inspector(&archive_account).await;
    for (account, minutes_ago) in [(&recent, 5), (&old, 3 * 60), (&management, 10)] {
        let secs = common::now_secs() - minutes_ago * 60;
        let stamp = aws_smithy_types::DateTime::from_secs(secs)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap();
        let digits: String = stamp.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
        let key = format!(
            "AWS/CloudTrail/AWSLogs/{organization}/{account}/CloudTrail/{REGION}/{}/{account}_CloudTrail_{REGION}_{}Z_x.json.gz",
            stamp[..10].replace('-', "/"),
            &digits[..13]
        );
        archive_aws
            .s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(b"{}".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let report = reconcile(&spec, &members).await;
    let delivery = report
        .delivery
        .iter()
        .find(|d| d.account_id == management)
        .expect("the member's delivery");
    let (mut delivering, quiet) = delivery.organization_accounts.clone().expect("its accounts");
    delivering.sort();
    let mut expected = vec![recent.clone(), management.clone()];
    expected.sort();
    assert_eq!((delivering, quiet), (expected, vec![old.clone()]));
    // One listing of one key per account folder (three), and one listing fewer of the member's
    // own folders (its today's folder now holds a log file: yesterday's is not listed).
    // Within ten minutes after midnight UTC the member's file (written ten minutes ago) is in
    // yesterday's folder: today's is still empty, and both are listed as before.
    let same_day = (common::now_secs() - 10 * 60) / 86_400 == common::now_secs() / 86_400;
    assert_eq!(
        listings(&report),
        if same_day { before + 2 } else { before + 3 },
        "{:?}",
        report.account.calls.by_action
    );
}

/// F3: an Organization trail a delegated administrator creates is the management account's: the
/// archive reads the management account from its own account (DescribeOrganization) and names
/// that trail in its member list and policies; the member's trail, created under that ARN, is
/// admitted.
#[tokio::test]
async fn a_delegated_administrators_organization_trail_is_admitted_by_the_management_accounts_arn() {
    let management = new_account();
    let aws = inspector(&management).await;
    let organization = common::create_organization(&aws).await;
    aws.organizations
        .enable_aws_service_access()
        .service_principal("cloudtrail.amazonaws.com")
        .send()
        .await
        .unwrap();
    aws.iam
        .create_service_linked_role()
        .aws_service_name("cloudtrail.amazonaws.com")
        .send()
        .await
        .unwrap();
    let archive_account = common::create_member_account(&aws, "log-archive").await;
    let admin = common::create_member_account(&aws, "admin").await;
    aws.organizations
        .register_delegated_administrator()
        .account_id(&admin)
        .service_principal("cloudtrail.amazonaws.com")
        .send()
        .await
        .unwrap();
    let spec = archive_spec(&archive_account, Some(&organization));
    let member = member_spec(&admin);
    let trail_policy = TrailPolicySpec {
        organization_trail: true,
        ..TrailPolicySpec::default()
    };
    let report = reconcile(&spec, &[member_of(&member, &trail_policy)]).await;
    assert!(
        !report.account.failed(),
        "{:?} {:?}",
        report.account.error,
        report.account.components
    );
    let owned = format!("arn:aws:cloudtrail:{REGION}:{management}:trail/trailkeeper");
    assert_eq!(report.members[0].0.trail_arn, owned);
    assert_eq!(report.members[0].0.account_id, admin);
    let bucket = report.account.bucket_name.clone().unwrap();
    let policy = bucket_policy(&archive_account, &bucket).await;
    assert!(
        policy.contains(&owned) && !policy.contains(&format!(":{admin}:trail/")),
        "{policy}"
    );
    assert!(policy.contains(&format!("/AWSLogs/{management}/*")), "{policy}");

    let target = report
        .target_for(ARCHIVE, &member_of(&member, &trail_policy))
        .expect("the archive has its bucket and key");
    assert!(target.admitted, "the member finds itself admitted by its own ARN");
    let applied = reconcile_member(&member, &trail_policy, target).await;
    assert!(!applied.failed(), "{:?} {:?}", applied.error, applied.components);
    assert_eq!(applied.trail_arn.as_deref(), Some(owned.as_str()));
    let admin_aws = inspector(&admin).await;
    let trail = admin_aws
        .cloudtrail
        .get_trail()
        .name("trailkeeper")
        .send()
        .await
        .unwrap();
    assert_eq!(trail.trail().and_then(|t| t.trail_arn()), Some(owned.as_str()));
}

/// N3: CloudTrail may refuse a member's trail for a while after its archive admitted it (S3 and
/// KMS apply new policies after a moment): the member waits and tries again soon, not Failed;
/// long after the admission the same refusal is a failure that names the archive.
#[tokio::test]
async fn a_members_trail_refused_just_after_its_admission_waits_for_the_policies_to_apply() {
    let archive_account = new_account();
    let spec = archive_spec(&archive_account, None);
    let member = member_spec(&new_account());
    let trail_policy = TrailPolicySpec::default();
    // The archive's policies in AWS do not name the member yet; its status already says admitted.
    let report = reconcile(&spec, &[]).await;
    assert!(!report.account.failed(), "{:?}", report.account.components);
    let mut target = report
        .target_for(ARCHIVE, &member_of(&member, &trail_policy))
        .expect("the archive has its bucket and key");
    target.admitted = true;
    target.admitted_at = Some(common::now_secs() - 30);
    let waiting = reconcile_member(&member, &trail_policy, target.clone()).await;
    match waiting.components.get(&Component::Trail) {
        Some(ComponentState::WaitingForArchive(message)) => assert!(
            message.contains("still refuses it (InsufficientS3BucketPolicyException: ") && message.contains(ARCHIVE),
            "{message}"
        ),
        other => panic!("the member waits for the archive's policies: {other:?}"),
    }
    assert!(waiting.retry_soon && !waiting.failed(), "{:?}", waiting.components);

    target.admitted_at = Some(common::now_secs() - 3600);
    let failed = reconcile_member(&member, &trail_policy, target).await;
    match failed.components.get(&Component::Trail) {
        Some(ComponentState::Failed(e)) => {
            assert_eq!(e.code, "InsufficientS3BucketPolicyException");
            assert!(e.message.contains("has admitted") && e.message.contains(ARCHIVE), "{e}");
        }
        other => panic!("long after the admission the refusal is a failure: {other:?}"),
    }
    assert!(!failed.retry_soon);
}

/// Admitting the Organization is asked for in the spec and reviewed: without an approval that is
/// new against the one in force, nothing is written (ApprovalRequired); with it, the policies
/// admit the Organization's trails bearing the members' trail names, each under its own
/// account's path, and a member's trail is created.
#[tokio::test]
async fn admitting_the_organization_needs_a_new_approval_and_writes_nothing_without_it() {
    let management = new_account();
    let aws = inspector(&management).await;
    let organization = common::create_organization(&aws).await;
    let archive_account = common::create_member_account(&aws, "log-archive").await;
    let member = member_spec(&common::create_member_account(&aws, "member").await);
    let trail_policy = TrailPolicySpec::default();
    let members = vec![member_of(&member, &trail_policy)];
    let mut spec = archive_spec(&archive_account, Some(&organization));
    spec.admission = Admission::Organization;
    spec.approval = Some(trailkeeper::api::Approval {
        reference: "CHG-1".into(),
        reason: None,
    });
    let reused = ArchiveOptions {
        admission_in_force: Some(Admission::Trails),
        admission_approval: Some("CHG-1".into()),
        ..ArchiveOptions::new(RunMode::Apply)
    };
    let refused = reconcile_with(&spec, &members, reused).await;
    match refused.account.components.get(&Component::Storage) {
        Some(ComponentState::ApprovalRequired(message)) => {
            assert!(message.contains("widens who may write"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(refused.admission, None);
    assert_eq!(refused.account.calls.reads + refused.account.calls.writes, 0);

    let approved = reconcile(&spec, &members).await;
    assert!(
        !approved.account.failed(),
        "{:?} {:?}",
        approved.account.error,
        approved.account.components
    );
    assert_eq!(approved.admission, Some(Admission::Organization));
    assert_eq!(approved.admission_approval.as_deref(), Some("CHG-1"));
    assert!(
        approved
            .admits
            .as_deref()
            .unwrap_or_default()
            .contains("any trail of Organization"),
        "{:?}",
        approved.admits
    );
    let bucket = approved.account.bucket_name.clone().unwrap();
    let policy = bucket_policy(&archive_account, &bucket).await;
    assert!(
        policy.contains("aws:SourceOrgID") && policy.contains("trail/trailkeeper"),
        "{policy}"
    );
    let applied = reconcile_member(&member, &trail_policy, target(&approved, &member)).await;
    assert!(!applied.failed(), "{:?} {:?}", applied.error, applied.components);
}

mod operator {
    use std::time::Duration;

    use kube::api::{Api, DeleteParams, PostParams};
    use serde_json::json;
    use trailkeeper::api::{LogArchive, LoggingBaseline};
    use trailkeeper::controller::baselines::Settings;

    use super::common::{self, cluster};

    const TIMEOUT: Duration = Duration::from_secs(180);

    fn member(ns: &str, account: &str, archive: &str) -> LoggingBaseline {
        let mut b = common::baseline(account);
        b.metadata.namespace = Some(ns.to_string());
        b.spec.flow_logs.enabled = false;
        b.spec.storage.archive_ref = Some(trailkeeper::api::PolicyRef { name: archive.into() });
        b
    }

    fn condition(b: &LoggingBaseline, type_: &str) -> Option<(String, String, String)> {
        let c = b.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?;
        Some((c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    async fn admitted(archives: &Api<LogArchive>) -> Vec<String> {
        let archive = archives.get("org-archive").await.unwrap();
        let status = archive.status.unwrap_or_default();
        status
            .members
            .iter()
            .filter(|m| m.admitted)
            .map(|m| m.account_id.clone())
            .collect()
    }

    /// The operator: an archive and its members in one namespace; a member that names no archive
    /// that exists waits with a reason naming it; members come and go.
    #[tokio::test]
    async fn the_operator_admits_members_into_the_archive_before_their_trails_and_drops_those_that_leave() {
        let client = cluster::admin().await;
        cluster::install_crds(&client).await;
        let ns = cluster::fresh_namespace(&client, "archive").await;
        let settings = Settings {
            resync: Duration::from_secs(5),
            retry_base: Duration::from_secs(1),
            watch_namespace: Some(ns.clone()),
            ..Settings::default()
        };
        let (stop, controller, ctx) = cluster::start_controller(common::base_config().await, settings).await;
        let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
        let archives: Api<LogArchive> = Api::namespaced(client.clone(), &ns);

        // A member first: no archive yet, so no trail, and a reason naming the archive.
        let accounts: Vec<String> = (0..3).map(|_| common::new_account()).collect();
        let first = member(&ns, &accounts[0], "org-archive");
        baselines.create(&PostParams::default(), &first).await.unwrap();
        let name0 = first.metadata.name.clone().unwrap();
        cluster::eventually("the member waits for its archive", TIMEOUT, || async {
            let b = baselines.get(&name0).await.unwrap();
            condition(&b, "StorageReady").is_some_and(|(s, reason, message)| {
                s == "False" && reason == "WaitingForLogArchive" && message.contains("org-archive")
            })
        })
        .await;
        let aws0 = common::inspector(&accounts[0]).await;
        assert!(aws0.cloudtrail.get_trail().name("trailkeeper").send().await.is_err());

        let archive_account = common::new_account();
        let archive: LogArchive = serde_json::from_value(json!({
            "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LogArchive",
            "metadata": {"name": "org-archive", "namespace": ns},
            "spec": {"accountId": archive_account, "region": common::REGION,
                     "credentials": {"assumeRoleArn": format!("arn:aws:iam::{archive_account}:role/trailkeeper")}}
        }))
        .unwrap();
        archives.create(&PostParams::default(), &archive).await.unwrap();
        for account in &accounts[1..] {
            baselines
                .create(&PostParams::default(), &member(&ns, account, "org-archive"))
                .await
                .unwrap();
        }
        let bucket = format!("trailkeeper-{archive_account}-log-archive-{}", common::REGION);
        for account in &accounts {
            let name = format!("acct-{account}");
            cluster::eventually(&format!("{name} ready"), TIMEOUT, || async {
                let b = baselines.get(&name).await.unwrap();
                condition(&b, "Ready").is_some_and(|(s, _, _)| s == "True")
            })
            .await;
            let aws = common::inspector(account).await;
            let trail = aws
                .cloudtrail
                .get_trail()
                .name("trailkeeper")
                .send()
                .await
                .unwrap()
                .trail
                .unwrap();
            assert_eq!(trail.s3_bucket_name.as_deref(), Some(bucket.as_str()));
        }
        let mut expected = accounts.clone();
        expected.sort();
        assert_eq!(admitted(&archives).await, expected);

        // In line, the archive is observed once per resync (5 s here), not again on each of its
        // own status writes: its account's identity checks over 11 s (one per reconcile).
        let archive_spec = archives.get("org-archive").await.unwrap().spec;
        let archive_clients = ctx.aws.for_baseline(
            &format!("logarchive/{ns}/org-archive"),
            &trailkeeper::desired::archive::as_baseline(&archive_spec),
        );
        let checks = || {
            archive_clients
                .calls
                .snapshot()
                .by_action
                .get("sts:GetCallerIdentity")
                .map_or(0, |(n, _)| *n)
        };
        let before = checks();
        tokio::time::sleep(Duration::from_secs(11)).await;
        let reconciles = checks() - before;
        assert!((1..=3).contains(&reconciles), "{reconciles} archive reconciles in 11 s");
        let status = archives.get("org-archive").await.unwrap().status.unwrap();
        assert_eq!(status.admitted_members, 3);
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            "{:?}",
            status.conditions
        );

        // A member whose trail stopped delivering is named late by the archive and in its own
        // DeliveryHealthy.
        for kind in ["CloudTrail", "CloudTrail-Digest"] {
            super::deliver_into(&archive_account, &bucket, &accounts[0], kind, 2).await;
            super::deliver_into(&archive_account, &bucket, &accounts[1], kind, 4 * 60).await;
        }
        cluster::eventually("the archive names the late member", TIMEOUT, || async {
            let status = archives.get("org-archive").await.unwrap().status.unwrap_or_default();
            let healthy = status.conditions.iter().find(|c| c.type_ == "DeliveryHealthy");
            status.late_members == vec![accounts[1].clone()]
                && healthy.is_some_and(|c| c.status == "False" && c.message.contains(&accounts[1]))
        })
        .await;
        let late = format!("acct-{}", accounts[1]);
        cluster::eventually("the late member's DeliveryHealthy is False", TIMEOUT, || async {
            let b = baselines.get(&late).await.unwrap();
            condition(&b, "DeliveryHealthy").is_some_and(|(s, _, m)| s == "False" && m.contains(&accounts[1]))
        })
        .await;

        // A member leaves: the archive stops admitting it; its logs stay.
        let leaving = format!("acct-{}", accounts[2]);
        baselines.delete(&leaving, &DeleteParams::default()).await.unwrap();
        cluster::eventually("the archive drops the member that left", TIMEOUT, || async {
            !admitted(&archives).await.contains(&accounts[2])
        })
        .await;
        let aws = common::inspector(&archive_account).await;
        let policy = aws
            .s3
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap();
        assert!(
            !policy.contains(&accounts[2]) && policy.contains(&accounts[0]),
            "{policy}"
        );

        let _ = stop.send(());
        controller.await.expect("the controller ends without a panic");
    }
}

/// `iam-policy -f` of members only: the archive's keys for CreateTrail's Decrypt, and no trail
/// bucket of their own to write or read.
#[test]
fn the_policy_of_members_grants_the_archives_key_and_no_trail_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("members.yaml");
    std::fs::write(
        &manifests,
        r#"
apiVersion: trailkeeper.io/v1alpha1
kind: LogArchive
metadata: {name: org-archive, namespace: audit}
spec: {accountId: "777788889999", region: eu-west-1}
---
apiVersion: trailkeeper.io/v1alpha1
kind: LoggingBaseline
metadata: {name: member, namespace: audit}
spec:
  accountId: "111122223333"
  primaryRegion: us-east-1
  storage: {archiveRef: {name: org-archive}}
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args(["iam-policy", "-f", manifests.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let archive_keys = statements.iter().find(|s| s["Sid"] == "ArchiveKeysForTrails").unwrap();
    assert_eq!(archive_keys["Action"], serde_json::json!(["kms:Decrypt"]));
    assert_eq!(archive_keys["Resource"], "arn:aws:kms:eu-west-1:777788889999:key/*");
    let text = policy.to_string();
    assert!(!text.contains("-*-cloudtrail-"), "{text}");
    assert!(!statements.iter().any(|s| s["Sid"] == "VerifyIntegrity"));
}

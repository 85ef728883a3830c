//! The account engine against the moto server: convergence, zero writes when in line, drift
//! found and repaired, adoption, existing trails, wrong credentials, parallel accounts.

mod common;

use aws_sdk_s3::types::{ObjectLockEnabled, ServerSideEncryption};
use common::*;
use serde_json::Value;
use trailkeeper::api::{LoggingBaselineSpec, Mode, RetentionPolicySpec, TrailPolicySpec, TrailSource};
use trailkeeper::desired::{self, AccountSpecs};
use trailkeeper::engine::account::{
    AccountReport, ComponentState, EngineError, ReconcileOptions, RunMode, account_clients, reconcile_account,
};

async fn run(spec: &LoggingBaselineSpec, mode: RunMode) -> AccountReport {
    let (trail_policy, retention) = default_policies();
    run_with(spec, &trail_policy, &retention, mode).await
}

async fn run_with(
    spec: &LoggingBaselineSpec,
    trail_policy: &TrailPolicySpec,
    retention: &RetentionPolicySpec,
    mode: RunMode,
) -> AccountReport {
    let base = base_config().await;
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy,
        retention,
    };
    reconcile_account(account_clients(&base, &specs), &specs, ReconcileOptions::new(mode)).await
}

fn assert_clean(report: &AccountReport) {
    assert!(report.error.is_none(), "error: {:?}", report.error);
    assert!(!report.failed(), "failed components: {:?}", report.components);
}

/// Converges a fresh account and checks the next apply and plan are read-only and in sync.
async fn converged(account: &str) -> LoggingBaselineSpec {
    let spec = spec(account);
    let first = run(&spec, RunMode::Apply).await;
    assert_clean(&first);
    assert!(!first.applied.is_empty());
    let plan = run(&spec, RunMode::Plan).await;
    assert!(
        plan.in_sync(),
        "not in sync after one apply: drift {:?} pending {:?}",
        plan.drift,
        plan.pending
    );
    spec
}

#[tokio::test]
async fn a_fresh_account_converges_in_one_apply_and_then_costs_reads_only() {
    let account = new_account();
    let spec = spec(&account);
    let first = run(&spec, RunMode::Apply).await;
    assert_clean(&first);
    assert!(first.calls.writes > 0);
    assert_eq!(
        first.calls.writes as usize,
        first.applied.len(),
        "one write per applied change"
    );
    for mode in [RunMode::Apply, RunMode::Plan] {
        let again = run(&spec, mode).await;
        assert_clean(&again);
        assert!(
            again.in_sync(),
            "{mode:?}: drift {:?} pending {:?}",
            again.drift,
            again.pending
        );
        assert_eq!(again.calls.writes, 0, "{mode:?} wrote: {:?}", again.calls.by_action);
        assert!(again.applied.is_empty());
        assert!(again.drift.is_empty());
    }
}

/// The floor of docs/performance.md, held in every CI run (the fleet benchmark prints the same
/// ratio without failing): a fresh account with the audit queries converges in the fewest writes,
/// and an account in line costs the fewest reads plus one HeadBucket a bucket. A change that adds
/// a call fails here; one that saves a call fails too, and moves the floor in the docs.
#[tokio::test]
async fn the_calls_of_a_fresh_and_an_in_sync_account_stay_at_the_floor() {
    let mut spec = spec(&new_account());
    spec.audit_queries.enabled = true;
    let without_credentials = |report: &AccountReport| {
        let assumed = report.calls.by_action.get("sts:AssumeRole").map_or(0, |(n, _)| *n);
        (report.calls.reads - assumed, report.calls.writes)
    };
    let fresh = run(&spec, RunMode::Apply).await;
    assert_clean(&fresh);
    assert_eq!(
        without_credentials(&fresh).1,
        FLOOR_WRITES,
        "{:?}",
        fresh.calls.by_action
    );
    let again = run(&spec, RunMode::Apply).await;
    assert_clean(&again);
    assert_eq!(
        without_credentials(&again),
        (FLOOR_READS + READS_ABOVE_THE_FLOOR, 0),
        "{:?}",
        again.calls.by_action
    );
}

#[tokio::test]
async fn the_converged_account_matches_the_baseline_when_read_back_independently() {
    let account = new_account();
    let spec = converged(&account).await;
    let aws = inspector(&account).await;
    let bucket = desired::trail_bucket_name(&spec);
    let access_bucket = desired::access_log_bucket_name(&spec);
    let trail_arn = desired::trail_arn(&spec);

    let trail = aws
        .cloudtrail
        .get_trail()
        .name(&trail_arn)
        .send()
        .await
        .unwrap()
        .trail
        .unwrap();
    assert_eq!(trail.is_multi_region_trail, Some(true));
    assert_eq!(trail.include_global_service_events, Some(true));
    assert_eq!(trail.log_file_validation_enabled, Some(true));
    assert_eq!(trail.s3_bucket_name.as_deref(), Some(bucket.as_str()));
    assert_eq!(trail.s3_key_prefix.as_deref(), Some("AWS/CloudTrail"));
    let key_arn = trail.kms_key_id.clone().expect("the trail is encrypted");
    let status = aws.cloudtrail.get_trail_status().name(&trail_arn).send().await.unwrap();
    assert_eq!(status.is_logging, Some(true));

    let lock = aws
        .s3
        .get_object_lock_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let lock = lock.object_lock_configuration.unwrap();
    assert_eq!(lock.object_lock_enabled, Some(ObjectLockEnabled::Enabled));
    let retention = lock.rule.unwrap().default_retention.unwrap();
    assert_eq!(retention.mode.unwrap().as_str(), "GOVERNANCE");
    assert_eq!(retention.days, Some(365));

    let encryption = aws.s3.get_bucket_encryption().bucket(&bucket).send().await.unwrap();
    let rule = &encryption.server_side_encryption_configuration.unwrap().rules[0];
    let default = rule.apply_server_side_encryption_by_default.as_ref().unwrap();
    assert_eq!(default.sse_algorithm, ServerSideEncryption::AwsKms);
    assert_eq!(default.kms_master_key_id.as_deref(), Some(key_arn.as_str()));
    assert_eq!(rule.bucket_key_enabled, Some(true));

    let policy: Value = serde_json::from_str(
        &aws.s3
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap(),
    )
    .unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let write = statements.iter().find(|s| s["Sid"] == "CloudTrailWrite").unwrap();
    assert_eq!(write["Condition"]["StringEquals"]["aws:SourceArn"], trail_arn.as_str());
    assert_eq!(
        write["Resource"],
        format!("arn:aws:s3:::{bucket}/AWS/CloudTrail/AWSLogs/{account}/*").as_str()
    );
    assert!(
        statements
            .iter()
            .any(|s| s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == "false")
    );

    assert_public_access_blocked(&aws, &bucket).await;
    let logging = aws.s3.get_bucket_logging().bucket(&bucket).send().await.unwrap();
    assert_eq!(logging.logging_enabled.unwrap().target_bucket, access_bucket);
    // Logs are kept forever by default: no expiring lifecycle rule.
    let lifecycle = aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        lifecycle
            .rules()
            .iter()
            .all(|r| r.expiration.is_none() && r.noncurrent_version_expiration.is_none()),
        "{lifecycle:?}"
    );
    // Its one rule of trailkeeper's own aborts incomplete uploads.
    assert!(
        lifecycle
            .rules()
            .iter()
            .any(|r| r.abort_incomplete_multipart_upload().is_some()),
        "{lifecycle:?}"
    );

    let access_encryption = aws
        .s3
        .get_bucket_encryption()
        .bucket(&access_bucket)
        .send()
        .await
        .unwrap();
    let access_rule = &access_encryption.server_side_encryption_configuration.unwrap().rules[0];
    assert_eq!(
        access_rule
            .apply_server_side_encryption_by_default
            .as_ref()
            .unwrap()
            .sse_algorithm,
        ServerSideEncryption::Aes256
    );
    let access_versioning = aws
        .s3
        .get_bucket_versioning()
        .bucket(&access_bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(access_versioning.status.unwrap().as_str(), "Enabled");
    // The trail bucket is versioned and tagged as trailkeeper's; the access-log bucket blocks
    // public access too.
    let versioning = aws.s3.get_bucket_versioning().bucket(&bucket).send().await.unwrap();
    assert_eq!(versioning.status.unwrap().as_str(), "Enabled");
    let tags = aws.s3.get_bucket_tagging().bucket(&bucket).send().await.unwrap();
    assert!(
        tags.tag_set().iter().any(|t| t.key().starts_with("trailkeeper")),
        "{:?}",
        tags.tag_set()
    );
    assert_public_access_blocked(&aws, &access_bucket).await;

    let rotation = aws.kms.get_key_rotation_status().key_id(&key_arn).send().await.unwrap();
    assert!(rotation.key_rotation_enabled);
    let key_policy: Value = serde_json::from_str(
        &aws.kms
            .get_key_policy()
            .key_id(&key_arn)
            .policy_name("default")
            .send()
            .await
            .unwrap()
            .policy
            .unwrap(),
    )
    .unwrap();
    let sids: Vec<&str> = key_policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    for sid in [
        "EnableIAMPolicies",
        "KeyAdministrators",
        "CloudTrailEncryptLogs",
        "CloudTrailDescribeKey",
        "OperatorsDecryptLogs",
        // The account role trailkeeper assumes maintains the key through its policy.
        "TrailkeeperMaintainsKey",
    ] {
        assert!(sids.contains(&sid), "key policy lacks {sid}: {sids:?}");
    }
    let aliases = aws.kms.list_aliases().key_id(&key_arn).send().await.unwrap();
    assert!(
        aliases
            .aliases()
            .iter()
            .any(|a| a.alias_name() == Some(desired::KEY_ALIAS))
    );
}

/// Makes drift behind trailkeeper's back, then checks plan finds `field` and apply repairs it.
/// Converges a fresh account, drifts it with `make_drift`, and checks that a plan names `field`
/// without writing and an apply repairs it. Returns the account's inspector and spec, for a test
/// to read the repair back from AWS itself.
/// All four settings of the bucket's public access block are on.
async fn assert_public_access_blocked(aws: &Inspector, bucket: &str) {
    let pab = aws.s3.get_public_access_block().bucket(bucket).send().await.unwrap();
    let pab = pab.public_access_block_configuration.unwrap();
    assert_eq!(
        (
            pab.block_public_acls,
            pab.ignore_public_acls,
            pab.block_public_policy,
            pab.restrict_public_buckets
        ),
        (Some(true), Some(true), Some(true), Some(true)),
        "{bucket}"
    );
}

async fn drift_is_found_and_repaired<F, Fut>(field: &str, make_drift: F) -> (Inspector, LoggingBaselineSpec)
where
    F: FnOnce(Inspector, LoggingBaselineSpec) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let account = new_account();
    let spec = converged(&account).await;
    make_drift(inspector(&account).await, spec.clone()).await;

    let plan = run(&spec, RunMode::Plan).await;
    assert_clean(&plan);
    assert!(!plan.in_sync(), "plan missed the drift of {field}");
    assert_eq!(plan.calls.writes, 0);
    assert!(
        plan.drift.iter().any(|d| d.field == field),
        "plan does not name {field}: {:?}",
        plan.drift
    );

    let apply = run(&spec, RunMode::Apply).await;
    assert_clean(&apply);
    assert!(!apply.applied.is_empty());
    let after = run(&spec, RunMode::Plan).await;
    assert!(after.in_sync(), "{field} not repaired: {:?}", after.drift);
    (inspector(&account).await, spec)
}

#[tokio::test]
async fn stopped_logging_is_found_and_restarted() {
    drift_is_found_and_repaired("logging", |aws, spec| async move {
        aws.cloudtrail
            .stop_logging()
            .name(desired::trail_arn(&spec))
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn disabled_log_file_validation_is_found_and_enabled() {
    drift_is_found_and_repaired("logFileValidation", |aws, spec| async move {
        aws.cloudtrail
            .update_trail()
            .name(desired::trail_arn(&spec))
            .enable_log_file_validation(false)
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn removed_bucket_encryption_is_found_and_restored() {
    drift_is_found_and_repaired("encryption", |aws, spec| async move {
        aws.s3
            .delete_bucket_encryption()
            .bucket(desired::trail_bucket_name(&spec))
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_replaced_bucket_policy_is_found_and_restored() {
    drift_is_found_and_repaired("policy", |aws, spec| async move {
        let bucket = desired::trail_bucket_name(&spec);
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "Open", "Effect": "Allow",
            "Principal": "*", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
        aws.s3
            .put_bucket_policy()
            .bucket(&bucket)
            .policy(policy.to_string())
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn disabled_key_rotation_is_found_and_enabled() {
    drift_is_found_and_repaired("rotation", |aws, _spec| async move {
        let key_id = aws.trail_key_id().await;
        aws.kms.disable_key_rotation().key_id(&key_id).send().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_removed_public_access_block_is_found_and_restored() {
    drift_is_found_and_repaired("publicAccessBlock", |aws, spec| async move {
        aws.s3
            .delete_public_access_block()
            .bucket(desired::trail_bucket_name(&spec))
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn observe_mode_reports_drift_and_writes_nothing() {
    let account = new_account();
    let mut spec = spec(&account);
    spec.mode = Mode::Observe;
    let report = run(&spec, RunMode::Apply).await;
    assert_clean(&report);
    assert_eq!(report.calls.writes, 0);
    assert!(report.applied.is_empty());
    assert!(report.drift.iter().any(|d| d.field == "exists"));
    assert!(!report.pending.is_empty());
    let aws = inspector(&account).await;
    assert!(
        aws.s3
            .head_bucket()
            .bucket(desired::trail_bucket_name(&spec))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_existing_trail_of_the_same_name_is_adopted_not_duplicated() {
    let account = new_account();
    let spec = spec(&account);
    let aws = inspector(&account).await;
    let legacy = format!("legacy-{account}");
    common::trail_destination(&aws, &account, &legacy, None, &spec.trail.name, None).await;
    aws.cloudtrail
        .create_trail()
        .name(&spec.trail.name)
        .s3_bucket_name(&legacy)
        .send()
        .await
        .unwrap();

    let report = run(&spec, RunMode::Apply).await;
    assert_clean(&report);
    assert!(
        !report.calls.by_action.contains_key("cloudtrail:CreateTrail"),
        "{:?}",
        report.calls.by_action
    );
    assert!(report.calls.by_action.contains_key("cloudtrail:UpdateTrail"));
    let trails = aws.cloudtrail.describe_trails().send().await.unwrap();
    assert_eq!(trails.trail_list().len(), 1);
    let trail = &trails.trail_list()[0];
    assert_eq!(
        trail.s3_bucket_name.as_deref(),
        Some(desired::trail_bucket_name(&spec).as_str())
    );
    assert_eq!(trail.log_file_validation_enabled, Some(true));
    assert!(run(&spec, RunMode::Plan).await.in_sync());
}

#[tokio::test]
async fn an_existing_organization_trail_is_verified_without_a_second_trail() {
    let account = new_account();
    let aws = inspector(&account).await;
    let organization = common::create_organization(&aws).await;
    let arn =
        common::create_trail_recording_management_events(&aws, &account, "organization-trail", Some(&organization))
            .await;

    let mut spec = spec(&account);
    // This test is about the trail: the regional parts would add writes of their own.
    spec.flow_logs.enabled = false;
    spec.trail.source = TrailSource::Existing;
    spec.trail.existing_trail_arn = Some(arn.clone());
    let trail_policy = TrailPolicySpec {
        organization_trail: true,
        ..Default::default()
    };
    let retention = RetentionPolicySpec::default();

    let plan = run_with(&spec, &trail_policy, &retention, RunMode::Plan).await;
    assert_clean(&plan);
    // Logging is stopped (never started): reported, and not repaired since the policy manages nothing.
    assert!(
        plan.not_compliant.iter().any(|d| d.field == "logging"),
        "{:?}",
        plan.not_compliant
    );
    assert_eq!(
        plan.components.get(&trailkeeper::engine::account::Component::Trail),
        Some(&ComponentState::NotCompliant)
    );

    aws.cloudtrail.start_logging().name(&arn).send().await.unwrap();
    let apply = run_with(&spec, &trail_policy, &retention, RunMode::Apply).await;
    assert_clean(&apply);
    assert!(apply.in_sync(), "{:?} {:?}", apply.drift, apply.not_compliant);
    assert_eq!(apply.calls.writes, 0);
    assert_eq!(apply.trail_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(
        aws.cloudtrail
            .describe_trails()
            .send()
            .await
            .unwrap()
            .trail_list()
            .len(),
        1
    );
    assert!(
        aws.s3.list_buckets().send().await.unwrap().buckets().len() == 1,
        "no trailkeeper bucket for an Existing trail"
    );
}

#[tokio::test]
async fn credentials_of_another_account_write_nothing_and_name_both_accounts() {
    let account = new_account();
    let mut spec = spec(&account);
    // The ambient identity is moto's default account, not this one.
    spec.credentials = None;
    let report = run(&spec, RunMode::Apply).await;
    let Some(EngineError::WrongAccount { expected, actual, .. }) = &report.error else {
        panic!("expected WrongAccount, got {:?}", report.error)
    };
    assert_eq!(expected, &account);
    let message = report.error.as_ref().unwrap().to_string();
    assert!(
        message.contains(&account) && message.contains(actual.as_str()),
        "{message}"
    );
    assert_eq!(report.calls.writes, 0);
    assert!(report.failed());
}

#[tokio::test]
async fn two_accounts_in_one_apply_converge_in_parallel_without_interference() {
    let (a, b) = (new_account(), new_account());
    let base = base_config().await;
    let baselines: Vec<_> = [&a, &b]
        .iter()
        .map(|account| trailkeeper::manifests::ResolvedBaseline {
            id: format!("accounts/{account}"),
            baseline: baseline(account),
            trail_policy: TrailPolicySpec::default(),
            retention: RetentionPolicySpec::default(),
            retention_policy_name: "built-in".into(),
            archive: None,
        })
        .collect();
    let started = std::time::Instant::now();
    let reports = trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Apply).await;
    let elapsed = started.elapsed();
    for (_, r) in &reports {
        assert_clean(r);
    }
    // Each account waits ~2 s for CloudTrail's write pacing: in sequence they would take twice that.
    let slowest = reports.iter().map(|(_, r)| r.duration).max().unwrap();
    assert!(
        elapsed < slowest * 2,
        "accounts ran in sequence: {elapsed:?} for a slowest account of {slowest:?}"
    );
    for account in [&a, &b] {
        let aws = inspector(account).await;
        let buckets = aws.bucket_names().await;
        assert_eq!(buckets.len(), 2, "{account}: {buckets:?}");
        assert!(
            buckets.iter().all(|name| name.contains(account.as_str())),
            "{account}: {buckets:?}"
        );
    }
    let plans = trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Plan).await;
    assert!(plans.iter().all(|(_, r)| r.in_sync() && r.calls.writes == 0));
}

#[tokio::test]
async fn a_key_scheduled_for_deletion_is_recovered() {
    drift_is_found_and_repaired("state", |aws, _spec| async move {
        let key_id = aws.trail_key_id().await;
        aws.kms
            .schedule_key_deletion()
            .key_id(&key_id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_replaced_key_policy_and_removed_tags_are_restored() {
    let repaired = drift_is_found_and_repaired("policy", |aws, spec| async move {
        let key_id = aws.trail_key_id().await;
        // The account root alone (KMS refuses a policy that would lock its caller out).
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "RootOnly", "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:root", spec.account_id)}, "Action": "kms:*", "Resource": "*"}]});
        aws.kms
            .put_key_policy()
            .key_id(&key_id)
            .policy_name("default")
            .policy(policy.to_string())
            .send()
            .await
            .unwrap();
        aws.kms
            .untag_resource()
            .key_id(&key_id)
            .tag_keys(desired::MANAGED_BY_TAG)
            .send()
            .await
            .unwrap();
    })
    .await;
    // Read back from KMS itself: the tag is there again, and the policy is trailkeeper's.
    let (aws, _) = repaired;
    let key_id = aws.trail_key_id().await;
    let tags = aws.kms.list_resource_tags().key_id(&key_id).send().await.unwrap();
    assert!(
        tags.tags().iter().any(|t| t.tag_key() == desired::MANAGED_BY_TAG),
        "{:?}",
        tags.tags()
    );
    let policy = aws
        .kms
        .get_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    let policy = policy.policy().unwrap_or_default();
    assert!(!policy.contains("RootOnly"), "{policy}");
    assert!(policy.contains("cloudtrail.amazonaws.com"), "{policy}");
}

#[tokio::test]
async fn insight_and_advanced_event_selectors_from_the_policy_are_applied_and_kept() {
    let account = new_account();
    let spec = spec(&account);
    let trail_policy: TrailPolicySpec = serde_yaml::from_str(
        r#"
insightSelectors: [ApiCallRateInsight]
advancedEventSelectors:
  - name: management
    fieldSelectors: [{field: eventCategory, equals: [Management]}]
  - name: s3-writes
    fieldSelectors:
      - {field: eventCategory, equals: [Data]}
      - {field: resources.type, equals: ["AWS::S3::Object"]}
      - {field: readOnly, equals: ["false"]}
"#,
    )
    .unwrap();
    let retention = RetentionPolicySpec::default();
    let first = run_with(&spec, &trail_policy, &retention, RunMode::Apply).await;
    assert_clean(&first);
    assert!(first.calls.by_action.contains_key("cloudtrail:PutInsightSelectors"));
    let again = run_with(&spec, &trail_policy, &retention, RunMode::Apply).await;
    assert!(again.in_sync(), "{:?}", again.drift);
    assert_eq!(again.calls.writes, 0);

    let aws = inspector(&account).await;
    let selectors = aws
        .cloudtrail
        .get_event_selectors()
        .trail_name(desired::trail_arn(&spec))
        .send()
        .await
        .unwrap();
    assert_eq!(selectors.advanced_event_selectors().len(), 2);
    let insights = aws
        .cloudtrail
        .get_insight_selectors()
        .trail_name(desired::trail_arn(&spec))
        .send()
        .await
        .unwrap();
    assert_eq!(insights.insight_selectors().len(), 1);
}

/// A lifecycle rule trailkeeper did not write (here one that would expire every log after a day)
/// is reported as drift of the lifecycle and replaced: only trailkeeper's rules remain, and logs
/// are kept forever again.
#[tokio::test]
async fn a_lifecycle_rule_trailkeeper_did_not_write_is_reported_and_replaced() {
    let (aws, spec) = drift_is_found_and_repaired("lifecycle", |aws, spec| async move {
        use aws_sdk_s3::types::{
            BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
        };
        let rule = LifecycleRule::builder()
            .id("people-expire")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(LifecycleExpiration::builder().days(1).build())
            .build()
            .unwrap();
        aws.s3
            .put_bucket_lifecycle_configuration()
            .bucket(desired::trail_bucket_name(&spec))
            .lifecycle_configuration(BucketLifecycleConfiguration::builder().rules(rule).build().unwrap())
            .send()
            .await
            .unwrap();
    })
    .await;
    let rules = aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(desired::trail_bucket_name(&spec))
        .send()
        .await
        .unwrap()
        .rules
        .unwrap_or_default();
    assert!(rules.iter().all(|r| r.id() != Some("people-expire")), "{rules:?}");
    assert!(
        rules.iter().all(|r| r.expiration().is_none()),
        "logs are kept forever: {rules:?}"
    );
    assert!(!rules.is_empty(), "trailkeeper's own rule is back: {rules:?}");
}

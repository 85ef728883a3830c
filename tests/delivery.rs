//! Delivery health against the emulator: the trail's deliveries are what its bucket holds (the
//! test delivers by putting a log file named as CloudTrail names them) and what a delivery would
//! meet now (a bucket policy or key broken behind trailkeeper's back); flow logs report FAILED.

mod common;

use common::*;
use trailkeeper::api::{LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec};
use trailkeeper::controller::status;
use trailkeeper::desired::{self, AccountSpecs};
use trailkeeper::engine::account::{AccountReport, ReconcileOptions, RunMode, account_clients, reconcile_account};
use trailkeeper::judge::delivery;

async fn run(spec: &LoggingBaselineSpec) -> AccountReport {
    let base = base_config().await;
    let (trail_policy, retention) = (TrailPolicySpec::default(), RetentionPolicySpec::default());
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    reconcile_account(
        account_clients(&base, &specs),
        &specs,
        ReconcileOptions::new(RunMode::Apply),
    )
    .await
}

fn delivery_condition(report: &AccountReport) -> (String, String) {
    let c = status::delivery_condition(report).expect("the trail's deliveries were read");
    (c.status, c.message)
}

#[tokio::test]
async fn a_trail_that_delivers_is_healthy_and_one_that_stopped_is_not() {
    let account = new_account();
    let aws = inspector(&account).await;
    let spec = trail_only(&account);
    let first = run(&spec).await;
    assert!(!first.failed(), "{:?}", first.components);
    // Just started: awaiting its first delivery, not an alarm.
    let (state, message) = delivery_condition(&run(&spec).await);
    assert_eq!(state, "True", "{message}");
    assert!(message.contains("awaiting its first delivery"), "{message}");

    deliver(&aws, &spec, "CloudTrail", 3).await;
    deliver(&aws, &spec, "CloudTrail-Digest", 20).await;
    let healthy = run(&spec).await;
    let (state, message) = delivery_condition(&healthy);
    assert_eq!(state, "True", "{message}");
    let log_files = healthy.delivery.iter().find(|f| f.component == "cloudtrail").unwrap();
    assert!((120..=300).contains(&log_files.age_seconds.unwrap()), "{log_files:?}");

    // Delivery stopped two hours ago (a newer file never came), digests too: a digest arriving
    // would show the trail alive in a quiet account (a_quiet_account_whose_digests_arrive_is_healthy).
    let stopped_account = new_account();
    let aws = inspector(&stopped_account).await;
    let spec = trail_only(&stopped_account);
    run(&spec).await;
    deliver(&aws, &spec, "CloudTrail", 120).await;
    deliver(&aws, &spec, "CloudTrail-Digest", 150).await;
    let stopped = run(&spec).await;
    let (state, message) = delivery_condition(&stopped);
    assert_eq!(state, "False");
    assert!(
        message.starts_with("cloudtrail: nothing delivered for 1") && message.contains("(alarm after 60 minutes)"),
        "{message}"
    );
    // Delivery resumed: the alarm clears.
    deliver(&aws, &spec, "CloudTrail", 1).await;
    deliver(&aws, &spec, "CloudTrail-Digest", 1).await;
    assert_eq!(delivery_condition(&run(&spec).await).0, "True");
}

/// GetTrailStatus speaks for one Region: each enforced Region's deliveries are read there, and a
/// Region whose deliveries stopped is named while the home Region's still arrive.
#[tokio::test]
async fn each_enforced_regions_deliveries_are_judged_from_that_region() {
    let account = new_account();
    let aws = inspector(&account).await;
    let mut spec = trail_only(&account);
    spec.regions = vec![REGION.to_string(), "eu-west-1".to_string()];
    let first = run(&spec).await;
    assert!(!first.failed(), "{:?}", first.components);
    deliver(&aws, &spec, "CloudTrail", 2).await;
    deliver(&aws, &spec, "CloudTrail-Digest", 20).await;
    deliver_from(&aws, &spec, "CloudTrail", "eu-west-1", 150).await;
    deliver_from(&aws, &spec, "CloudTrail-Digest", "eu-west-1", 180).await;
    let report = run(&spec).await;
    let (state, message) = delivery_condition(&report);
    assert_eq!(state, "False", "{message}");
    assert!(
        message.starts_with("cloudtrail/eu-west-1: nothing delivered for 15"),
        "{message}"
    );
    let home = report.delivery.iter().find(|f| f.component == "cloudtrail").unwrap();
    assert!(home.problem.is_none() && home.age_seconds.unwrap() < 300, "{home:?}");
    // The Region delivers again: healthy.
    deliver_from(&aws, &spec, "CloudTrail", "eu-west-1", 1).await;
    deliver_from(&aws, &spec, "CloudTrail-Digest", "eu-west-1", 1).await;
    let (state, message) = delivery_condition(&run(&spec).await);
    assert_eq!(state, "True", "{message}");
}

/// An account with no activity writes no log file for hours, while CloudTrail delivers a digest
/// every hour: the trail is alive, the log files' lateness no alarm. Digests named as CloudTrail
/// names them (the time to the second), which the emulator's GetTrailStatus reads.
#[tokio::test]
async fn a_quiet_account_whose_digests_arrive_is_healthy() {
    let account = new_account();
    let aws = inspector(&account).await;
    let spec = trail_only(&account);
    run(&spec).await;
    deliver(&aws, &spec, "CloudTrail", 300).await;
    let secs = now_secs() - 20 * 60;
    let stamp = aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let compact: String = stamp.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let digest = format!(
        "{prefix}/AWSLogs/{account}/CloudTrail-Digest/{REGION}/{day}/{account}_CloudTrail-Digest_{REGION}_trailkeeper_{REGION}_{compact}Z.json.gz",
        prefix = spec.storage.key_prefix,
        day = &stamp[..10].replace('-', "/"),
    );
    aws.s3
        .put_object()
        .bucket(desired::trail_bucket_name(&spec))
        .key(digest)
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    let report = run(&spec).await;
    let (state, message) = delivery_condition(&report);
    assert_eq!(state, "True", "{message}");
    let digests = report
        .delivery
        .iter()
        .find(|f| f.component == "cloudtrail-digest")
        .unwrap();
    assert!((1100..=1500).contains(&digests.age_seconds.unwrap()), "{digests:?}");
    let log_files = report.delivery.iter().find(|f| f.component == "cloudtrail").unwrap();
    assert!(log_files.age_seconds.unwrap() >= 300 * 60, "{log_files:?}");
}

#[tokio::test]
async fn a_bucket_policy_broken_behind_trailkeepers_back_is_a_delivery_error_until_repaired() {
    let account = new_account();
    let aws = inspector(&account).await;
    let spec = trail_only(&account);
    run(&spec).await;
    deliver(&aws, &spec, "CloudTrail", 2).await;
    deliver(&aws, &spec, "CloudTrail-Digest", 2).await;
    let bucket = desired::trail_bucket_name(&spec);
    let locked_out = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
    aws.s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(locked_out.to_string())
        .send()
        .await
        .unwrap();
    // This reconcile reads the error (before it restores the policy)...
    let broken = run(&spec).await;
    let (state, message) = delivery_condition(&broken);
    assert_eq!(state, "False");
    assert!(message.contains("AccessDenied"), "{message}");
    let failing = delivery::first_problem(&broken.delivery).unwrap();
    assert_eq!(
        (failing.component.as_str(), failing.error.as_deref()),
        ("cloudtrail", Some("AccessDenied"))
    );
    assert!(broken.applied.iter().any(|c| c.action == "put the bucket policy"));
    // ...and the next finds delivery possible again.
    assert_eq!(delivery_condition(&run(&spec).await).0, "True");
}

#[tokio::test]
async fn a_disabled_key_is_a_delivery_error() {
    let account = new_account();
    let aws = inspector(&account).await;
    let mut spec = trail_only(&account);
    run(&spec).await;
    deliver(&aws, &spec, "CloudTrail", 2).await;
    aws.kms
        .disable_key()
        .key_id(aws.trail_key_id().await)
        .send()
        .await
        .unwrap();
    spec.mode = trailkeeper::api::Mode::Observe; // read what is, repair nothing
    let report = run(&spec).await;
    let failing = delivery::first_problem(&report.delivery).expect("a failing part");
    assert_eq!(failing.error.as_deref(), Some("KMS.DisabledException"));
    // Observe wrote nothing: the key is still disabled in KMS.
    assert_eq!(report.calls.writes, 0, "{:?}", report.calls.by_action);
    assert_eq!(aws.trail_key_state().await, "Disabled");

    // Enforce re-enables it (read back from KMS), and delivery is possible again.
    spec.mode = trailkeeper::api::Mode::Enforce;
    let repaired = run(&spec).await;
    assert!(
        repaired.calls.by_action.contains_key("kms:EnableKey"),
        "{:?}",
        repaired.calls.by_action
    );
    assert_eq!(aws.trail_key_state().await, "Enabled");
    assert_eq!(delivery_condition(&run(&spec).await).0, "True");
}

#[tokio::test]
async fn a_flow_log_whose_delivery_failed_is_reported() {
    let account = new_account();
    let aws = inspector(&account).await;
    let vpc = aws.ec2.create_vpc().cidr_block("10.3.0.0/16").send().await.unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut spec = trail_only(&account);
    spec.flow_logs.enabled = true;
    spec.regions = vec![REGION.to_string()];
    let format = trailkeeper::desired::regional::flow_logs(&AccountSpecs {
        baseline: &spec,
        trail_policy: &TrailPolicySpec::default(),
        retention: &RetentionPolicySpec::default(),
    })
    .unwrap()
    .format();
    // Someone else's flow log, compliant in format, into a group that does not exist: the
    // emulator (like AWS) reports its delivery FAILED.
    aws.ec2
        .create_flow_logs()
        .resource_type(aws_sdk_ec2::types::FlowLogsResourceType::Vpc)
        .resource_ids(&vpc_id)
        .traffic_type(aws_sdk_ec2::types::TrafficType::All)
        .log_group_name("/someone/missing")
        .deliver_logs_permission_arn(format!("arn:aws:iam::{account}:role/someone"))
        .log_format(format)
        .max_aggregation_interval(60)
        .send()
        .await
        .unwrap();
    let report = run(&spec).await;
    let failing: Vec<&delivery::DeliveryFinding> = report.delivery.iter().filter(|f| f.problem.is_some()).collect();
    let flow = failing
        .iter()
        .find(|f| f.component == format!("vpc-flow-logs/{REGION}"))
        .unwrap_or_else(|| panic!("{:?}", report.delivery));
    let problem = flow.problem.as_deref().unwrap();
    assert!(problem.contains("FAILED") && problem.contains(&vpc_id), "{problem}");
}

/// A stopped recorder trailkeeper keeps is reported by a plan (or in Observe mode), and started
/// again by an apply (issue 43: logging is never left stopped), which reports it delivering.
#[tokio::test]
async fn a_configuration_recorder_that_stopped_recording_is_reported() {
    let account = new_account();
    let aws = inspector(&account).await;
    let mut spec = trail_only(&account);
    spec.regions = vec![REGION.to_string()];
    spec.config_rules.enabled = true;
    spec.config_rules.create_recorder = true;
    let first = run(&spec).await;
    assert!(
        delivery::first_problem(&first.delivery).is_none(),
        "{:?}",
        first.delivery
    );
    let recorders = aws.config.describe_configuration_recorders().send().await.unwrap();
    let name = recorders.configuration_recorders()[0].name().unwrap().to_string();
    aws.config
        .stop_configuration_recorder()
        .configuration_recorder_name(&name)
        .send()
        .await
        .unwrap();
    let mut observed = spec.clone();
    observed.mode = trailkeeper::api::Mode::Observe;
    let report = run(&observed).await;
    let failing = delivery::first_problem(&report.delivery).expect("a failing part");
    assert_eq!(failing.component, format!("aws-config/{REGION}"));
    assert!(
        failing
            .problem
            .as_deref()
            .unwrap()
            .contains(&format!("recorder {name} is not recording")),
        "{failing:?}"
    );
    let repaired = run(&spec).await;
    assert!(
        repaired
            .applied
            .iter()
            .any(|c| c.action == "start the configuration recorder"),
        "{:?}",
        repaired.applied
    );
    assert!(
        delivery::first_problem(&repaired.delivery).is_none(),
        "{:?}",
        repaired.delivery
    );
}

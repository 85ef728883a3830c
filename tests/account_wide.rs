//! The account-wide CIS controls (3.3 AWS Config, 3.6 key rotation, 3.7 flow logs) without paying
//! for them on every reconcile (issue 43), against the emulator: a reconcile reads the regions it
//! keeps, the sweep the others; a baseline that keeps every region keeps (and passes) them all; a
//! slow AssumeRole is not a failure. The emulator answers DescribeRegions with the account's 17
//! regions enabled by default (scripts/emulator/trailkeeper_account_wide.py).

mod common;

use std::time::Duration;

use common::*;
use trailkeeper::api::{ControlResult, LoggingBaselineSpec};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::engine::account::{AccountReport, ReconcileOptions, RunMode, account_clients, reconcile_account};
use trailkeeper::engine::sweep::{Scope, SweepOptions, sweep_account};
use trailkeeper::judge::evidence::OtherRegions;

/// The regions an account has enabled in the emulator (AWS's default ones).
const ENABLED: usize = 17;

async fn run(spec: &LoggingBaselineSpec, mode: RunMode) -> AccountReport {
    let (trail_policy, retention) = default_policies();
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let base = base_config().await;
    reconcile_account(account_clients(&base, &specs), &specs, ReconcileOptions::new(mode)).await
}

fn result(report: &AccountReport, id: &str) -> (ControlResult, String) {
    let controls = trailkeeper::judge::compliance::evaluate(&report.evidence);
    let c = controls.into_iter().find(|c| c.id == id).unwrap();
    (c.result, c.evidence)
}

fn calls(report: &AccountReport, action: &str) -> u32 {
    report.calls.by_action.get(action).map_or(0, |(n, _)| *n)
}

/// A baseline whose controls judge every enabled region (no complianceRegions) and that keeps one.
fn one_region(account: &str) -> LoggingBaselineSpec {
    let mut spec = spec(account);
    spec.compliance_regions.clear();
    spec
}

#[tokio::test]
async fn a_reconcile_reads_the_region_it_keeps_and_the_sweep_reads_the_other_sixteen() {
    let account = new_account();
    let spec = one_region(&account);
    let applied = run(&spec, RunMode::Apply).await;
    assert!(!applied.failed(), "{:?} {:?}", applied.error, applied.components);
    let plan = run(&spec, RunMode::Plan).await;
    assert!(plan.in_sync(), "{:?} {:?}", plan.drift, plan.pending);
    // The kept region only: no DescribeRegions, one DescribeVpcs (the flow logs part's, shared).
    assert_eq!(calls(&plan, "ec2:DescribeRegions"), 0, "{:?}", plan.calls.by_action);
    assert_eq!(calls(&plan, "ec2:DescribeVpcs"), 1, "{:?}", plan.calls.by_action);
    assert_eq!(plan.evidence.other_regions, OtherRegions::NotSwept);
    let (config, evidence) = result(&plan, "3.3");
    assert_eq!(config, ControlResult::Fail);
    assert!(
        evidence.contains("account-wide sweep, which has not run yet"),
        "{evidence}"
    );

    // The sweep: the sixteen others, four reads each (recorders, VPCs, flow logs, keys), and who
    // the credentials are and which regions are enabled.
    let (trail_policy, retention) = default_policies();
    let specs = AccountSpecs {
        baseline: &spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let clients = account_clients(&base_config().await, &specs);
    // The role assumed first (the controller keeps credentials for their lifetime).
    trailkeeper::aws::sts::caller_identity(&clients).await.unwrap();
    let options = SweepOptions {
        scope: Scope::Account,
        forwarding: None,
        write: true,
        previous: None,
        now: "2026-12-07T00:00:00Z".into(),
    };
    let swept = sweep_account(&clients, &specs, options).await.sweep;
    assert_eq!(swept.error, None);
    assert_eq!(swept.regions.len(), ENABLED - 1);
    assert!(swept.regions.iter().all(|r| r.region != REGION));
    assert_eq!(swept.reads, 2 + 4 * (ENABLED as u32 - 1), "reads of a sweep");
    assert_eq!(swept.writes, 0);
    println!("a sweep of {} regions: {} reads", swept.regions.len(), swept.reads);
    // Each region has its default VPC, without a flow log, and no recorder.
    let west = swept.regions.iter().find(|r| r.region == "us-west-2").unwrap();
    assert_eq!(west.vpcs, 1);
    assert_eq!(west.vpcs_without_flow_logs.len(), 1, "{west:?}");
    assert_eq!(west.config.as_deref(), Some("no configuration recorder"));

    // Folded in: the controls judge all seventeen, the kept region as read now.
    let mut judged = plan.clone();
    judged.evidence.other_regions = OtherRegions::Swept(swept.clone());
    let (flow, evidence) = result(&judged, "3.7");
    assert_eq!(flow, ControlResult::Fail);
    assert!(
        evidence.contains(&format!(
            "in {ENABLED} regions (16 of them as the account-wide sweep of"
        )),
        "{evidence}"
    );
    // Sixteen default VPCs without a flow log: ten named, six counted.
    assert!(
        evidence.contains("eu-north-1:vpc-") && evidence.contains("and 6 more"),
        "{evidence}"
    );
    assert!(
        !evidence.contains(&format!("{REGION}:vpc-")),
        "the kept region has its flow log: {evidence}"
    );

    // A region read again (an event came from it) changes that region only.
    let aws = inspector_in(&account, "us-west-2").await;
    let vpc = aws.ec2.describe_vpcs().send().await.unwrap().vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    aws.ec2
        .create_flow_logs()
        .resource_ids(&vpc)
        .resource_type(aws_sdk_ec2::types::FlowLogsResourceType::Vpc)
        .traffic_type(aws_sdk_ec2::types::TrafficType::Reject)
        .log_destination_type(aws_sdk_ec2::types::LogDestinationType::S3)
        .log_destination(format!(
            "arn:aws:s3:::{}",
            trailkeeper::desired::access_log_bucket_name(&spec)
        ))
        .send()
        .await
        .unwrap();
    let options = SweepOptions {
        scope: Scope::Regions(vec!["us-west-2".into()]),
        forwarding: None,
        write: true,
        previous: Some(swept.clone()),
        now: "2026-12-07T01:00:00Z".into(),
    };
    let refreshed = sweep_account(&clients, &specs, options).await.sweep;
    assert_eq!(refreshed.time, swept.time, "a region read again is not a sweep");
    assert_eq!(refreshed.refreshed.as_deref(), Some("2026-12-07T01:00:00Z"));
    assert_eq!(refreshed.reads, 1 + 4, "who the credentials are, and one region");
    let west = refreshed.regions.iter().find(|r| r.region == "us-west-2").unwrap();
    assert!(west.vpcs_without_flow_logs.is_empty(), "{west:?}");
    assert_eq!(refreshed.regions.len(), ENABLED - 1);
}

/// `regions: ["*"]` with a recorder kept: every enabled region gets its flow logs and recorder,
/// and the account passes 3.3, 3.6 and 3.7 judged by the reconcile alone (no sweep needed).
#[tokio::test]
async fn a_baseline_that_keeps_every_region_keeps_and_passes_the_account_wide_controls() {
    let account = new_account();
    let mut spec = one_region(&account);
    spec.regions = vec!["*".into()];
    spec.config_rules.create_recorder = true;
    let applied = run(&spec, RunMode::Apply).await;
    assert!(!applied.failed(), "{:?} {:?}", applied.error, applied.components);
    assert_eq!(applied.regions.len(), ENABLED, "{:?}", applied.regions);
    let plan = run(&spec, RunMode::Plan).await;
    assert!(plan.in_sync(), "{:?} {:?}", plan.drift, plan.pending);
    assert_eq!(
        calls(&plan, "ec2:DescribeRegions"),
        1,
        "the regions kept are read each reconcile"
    );
    assert_eq!(plan.evidence.other_regions, OtherRegions::None);
    for id in ["3.3", "3.6", "3.7"] {
        let (verdict, evidence) = result(&plan, id);
        assert_eq!(verdict, ControlResult::Pass, "{id}: {evidence}");
    }
    let (_, evidence) = result(&plan, "3.7");
    assert!(evidence.contains(&format!("in {ENABLED} regions")), "{evidence}");

    // Someone stops a recorder: the next reconcile starts it again (logging is never left off).
    let aws = inspector_in(&account, "eu-north-1").await;
    aws.config
        .stop_configuration_recorder()
        .configuration_recorder_name("default")
        .send()
        .await
        .unwrap();
    let repaired = run(&spec, RunMode::Apply).await;
    assert!(
        repaired
            .applied
            .iter()
            .any(|c| c.resource == "config:eu-north-1:recorder/default"
                && c.action == "start the configuration recorder"),
        "{:?}",
        repaired.applied
    );
    let status = aws
        .config
        .describe_configuration_recorder_status()
        .send()
        .await
        .unwrap();
    assert!(status.configuration_recorders_status()[0].recording());
}

/// An AssumeRole that answers after 6 s (a slow STS, a loaded machine): the account is reconciled,
/// not failed with "identity resolver timed out after 5s" (the SDK's default before issue 43).
#[tokio::test]
async fn a_six_second_assume_role_does_not_fail_the_account() {
    let account = new_account();
    let spec = spec(&account);
    let proxy = proxy::Proxy::start(None).await;
    proxy.delay_answers(Some(Duration::from_secs(6)));
    let slow = proxy.base_config().await;
    let sts = aws_sdk_sts::Client::from_conf(aws_sdk_sts::config::Builder::from(&slow).build());
    let base = base_config().await;
    let identity = trailkeeper::aws::AccountIdentity::with_sts(&base, REGION, spec.credentials.as_ref(), &sts);
    let clients = trailkeeper::aws::AccountClients::from_identity(identity, REGION, Default::default());
    let (trail_policy, retention) = default_policies();
    let specs = AccountSpecs {
        baseline: &spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let started = std::time::Instant::now();
    let report = reconcile_account(clients, &specs, ReconcileOptions::new(RunMode::Plan)).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(
        report.identity.as_ref().map(|i| i.account.as_str()),
        Some(account.as_str())
    );
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "the role was assumed through the slow STS"
    );
}

/// The Must-show of issue 43: someone's Config recorder stopped in a region the baseline does not
/// keep fails 3.3 in its status within seconds of the call's event, through the sweep's own
/// forwarding rule there, without waiting for the next sweep (a day by default) or the resync (an
/// hour with events). On a real API server, the controller in this process, AWS on the emulator
/// (which records the call as CloudTrail would and puts its event on the region's default bus).
#[tokio::test]
async fn a_recorder_stopped_where_the_baseline_keeps_nothing_fails_3_3_within_seconds_of_its_event() {
    use kube::api::{Api, PostParams};
    use trailkeeper::api::LoggingBaseline;
    const OTHER: &str = "eu-north-1";
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "sweep").await;
    let operator = inspector("123456789012").await;
    let name = format!("tk-sweep-{}", std::process::id());
    let events = trailkeeper::drift_events::queue::EventSettings {
        queue_url: operator.new_queue(&name).await,
        bus_name: format!("tk-bus-sweep-{}", std::process::id()),
        organization_id: None,
    };
    let settings = trailkeeper::controller::baselines::Settings {
        resync: Duration::from_secs(3600),
        retry_base: Duration::from_secs(1),
        watch_namespace: Some(ns.clone()),
        events: Some(events),
        ..Default::default()
    };
    let (stop, running, _ctx) = cluster::start_controller(base_config().await, settings).await;

    // Someone's recorder of everything in a region the baseline does not keep, delivering.
    let account = new_account();
    let theirs = inspector_in(&account, OTHER).await;
    // Their bucket in us-east-1: AWS Config delivers across regions.
    let bucket = format!("someone-config-{account}");
    let home = inspector(&account).await;
    home.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let delivery = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": format!("arn:aws:s3:::{bucket}")},
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/{account}/Config/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]});
    theirs
        .s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(delivery.to_string())
        .send()
        .await
        .unwrap();
    let group = aws_sdk_config::types::RecordingGroup::builder()
        .all_supported(true)
        .include_global_resource_types(false)
        .build();
    theirs
        .config
        .put_configuration_recorder()
        .configuration_recorder(
            aws_sdk_config::types::ConfigurationRecorder::builder()
                .name("theirs")
                .role_arn(format!("arn:aws:iam::{account}:role/someone"))
                .recording_group(group)
                .build(),
        )
        .send()
        .await
        .unwrap();
    theirs
        .config
        .put_delivery_channel()
        .delivery_channel(
            aws_sdk_config::types::DeliveryChannel::builder()
                .name("default")
                .s3_bucket_name(&bucket)
                .build(),
        )
        .send()
        .await
        .unwrap();
    theirs
        .config
        .start_configuration_recorder()
        .configuration_recorder_name("theirs")
        .send()
        .await
        .unwrap();

    // The baseline keeps us-east-1 (with a recorder of its own, global types there) and judges
    // eu-north-1 too: the sweep's.
    let mut b = baseline(&account);
    b.metadata.namespace = Some(ns.clone());
    b.spec = trail_only(&account);
    b.spec.compliance_regions = vec![REGION.into(), OTHER.into()];
    b.spec.config_rules.create_recorder = true;
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let name = b.metadata.name.clone().unwrap();
    api.create(&PostParams::default(), &b).await.unwrap();
    let control = |b: &LoggingBaseline, id: &str| {
        b.status
            .as_ref()
            .and_then(|s| s.compliance.as_ref())
            .and_then(|c| c.controls.iter().find(|c| c.id == id).cloned())
    };
    let rule_in_other = || async {
        inspector_in(&account, OTHER)
            .await
            .events
            .list_targets_by_rule()
            .rule(trailkeeper::desired::events::FORWARD_RULE)
            .send()
            .await
            .is_ok_and(|t| !t.targets().is_empty())
    };
    cluster::eventually(
        "3.3 passes with the sweep of eu-north-1 in status",
        Duration::from_secs(240),
        || async {
            api.get(&name).await.is_ok_and(|b| {
                b.status.as_ref().is_some_and(|s| s.compliance_sweep.is_some())
                    && control(&b, "3.3").is_some_and(|c| c.result == ControlResult::Pass)
            }) && rule_in_other().await
        },
    )
    .await;
    let before = api.get(&name).await.unwrap().status.unwrap().compliance_sweep.unwrap();
    assert!(before.regions.iter().any(|r| r.region == OTHER), "{before:?}");

    let stopped = std::time::Instant::now();
    theirs
        .config
        .stop_configuration_recorder()
        .configuration_recorder_name("theirs")
        .send()
        .await
        .unwrap();
    cluster::eventually(
        "3.3 fails naming the stopped recorder",
        Duration::from_secs(60),
        || async {
            api.get(&name).await.is_ok_and(|b| {
                control(&b, "3.3").is_some_and(|c| {
                    c.result == ControlResult::Fail
                        && c.evidence.contains(&format!("{OTHER}: recorder theirs"))
                        && c.evidence.contains("recording=false")
                })
            })
        },
    )
    .await;
    let took = stopped.elapsed();
    println!("3.3 Fail in status {took:?} after StopConfigurationRecorder in {OTHER} (sweep every 24 h, resync 1 h)");
    let after = api.get(&name).await.unwrap().status.unwrap().compliance_sweep.unwrap();
    assert_eq!(
        after.time, before.time,
        "the sweep did not run again: one region was read"
    );
    assert!(after.refreshed.is_some(), "{after:?}");
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

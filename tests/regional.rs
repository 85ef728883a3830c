//! The regional baseline on moto: flow logs for every VPC in every region, log group retention,
//! Config rules; and with aws-smithy-mocks what moto lacks (SSM associations, Config compliance).

mod common;

use aws_sdk_ec2::types::{FlowLogsResourceType, LogDestinationType, TrafficType};
use common::*;
use trailkeeper::api::{Approval, LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::desired::regional::{self, FLOW_LOG_GROUP};
use trailkeeper::engine::account::{AccountReport, Component, ComponentState};

async fn apply_with(
    spec: &LoggingBaselineSpec,
    retention: &RetentionPolicySpec,
    previous: Option<&str>,
) -> AccountReport {
    apply_with_retention(spec, retention, previous).await
}

async fn apply(spec: &LoggingBaselineSpec) -> AccountReport {
    apply_with(spec, &RetentionPolicySpec::default(), None).await
}

async fn create_vpc(aws: &Inspector, cidr: &str) -> String {
    let created = aws.ec2.create_vpc().cidr_block(cidr).send().await.unwrap();
    created.vpc.unwrap().vpc_id.unwrap()
}

async fn vpcs(aws: &Inspector) -> Vec<String> {
    let out = aws.ec2.describe_vpcs().send().await.unwrap();
    out.vpcs().iter().filter_map(|v| v.vpc_id.clone()).collect()
}

async fn flow_logs(aws: &Inspector) -> Vec<aws_sdk_ec2::types::FlowLog> {
    aws.ec2.describe_flow_logs().send().await.unwrap().flow_logs().to_vec()
}

fn spec_in(account: &str, regions: &[&str]) -> LoggingBaselineSpec {
    let mut spec = spec(account);
    spec.regions = regions.iter().map(|r| r.to_string()).collect();
    spec
}

#[tokio::test]
async fn every_vpc_of_every_region_gets_one_compliant_flow_log_and_new_vpcs_are_covered_next_time() {
    let account = new_account();
    let (east, west) = (
        inspector_in(&account, "us-east-1").await,
        inspector_in(&account, "eu-west-1").await,
    );
    // moto gives each region a default VPC: cover those as someone else would, with a compliant
    // flow log, so that the three VPCs of this test are the ones that matter.
    let format = regional::flow_logs(&AccountSpecs {
        baseline: &spec(&account),
        trail_policy: &TrailPolicySpec::default(),
        retention: &RetentionPolicySpec::default(),
    })
    .unwrap()
    .format();
    east.s3
        .create_bucket()
        .bucket(format!("others-{account}"))
        .send()
        .await
        .unwrap();
    let cover = |aws: &Inspector, vpc: String| {
        let (ec2, format, bucket) = (
            aws.ec2.clone(),
            format.clone(),
            format!("arn:aws:s3:::others-{account}"),
        );
        async move {
            ec2.create_flow_logs()
                .resource_ids(vpc)
                .resource_type(FlowLogsResourceType::Vpc)
                .traffic_type(TrafficType::All)
                .log_destination_type(LogDestinationType::S3)
                .log_destination(bucket)
                .log_format(format)
                .max_aggregation_interval(60)
                .send()
                .await
                .unwrap();
        }
    };
    for aws in [&east, &west] {
        for vpc in vpcs(aws).await {
            cover(aws, vpc).await;
        }
    }
    let a = create_vpc(&east, "10.1.0.0/16").await;
    let b = create_vpc(&east, "10.2.0.0/16").await;
    let c = create_vpc(&west, "10.3.0.0/16").await;
    cover(&east, b.clone()).await;
    let before = flow_logs(&east).await.len() + flow_logs(&west).await.len();

    let spec = spec_in(&account, &["us-east-1", "eu-west-1"]);
    let report = apply(&spec).await;
    assert!(!report.failed(), "{:?}", report.components);
    let after_east = flow_logs(&east).await;
    let after_west = flow_logs(&west).await;
    assert_eq!(
        after_east.len() + after_west.len() - before,
        2,
        "exactly two flow logs created"
    );
    for vpc in [&a, &c] {
        let created: Vec<_> = after_east
            .iter()
            .chain(&after_west)
            .filter(|f| f.resource_id.as_deref() == Some(vpc))
            .collect();
        assert_eq!(created.len(), 1, "{vpc}");
        assert_eq!(
            created[0].log_format.as_deref(),
            Some(format.as_str()),
            "the custom format round-trips"
        );
        assert_eq!(created[0].log_group_name.as_deref(), Some(FLOW_LOG_GROUP));
        assert_eq!(created[0].max_aggregation_interval, Some(600));
    }
    let detail = report.details.get(&Component::FlowLogs).unwrap().join("; ");
    assert!(
        detail.contains("us-east-1: 3/3 VPCs covered") && detail.contains("eu-west-1: 2/2 VPCs covered"),
        "{detail}"
    );

    let again = apply(&spec).await;
    assert_eq!(again.calls.writes, 0, "{:?}", again.calls.by_action);
    assert!(again.in_sync(), "{:?}", again.drift);

    // Two new VPCs of a region: covered by one CreateFlowLogs call.
    let d = create_vpc(&west, "10.4.0.0/16").await;
    let e = create_vpc(&west, "10.5.0.0/16").await;
    let next = apply(&spec).await;
    assert!(next.applied.iter().any(|c| c.action.contains(&d)), "{:?}", next.applied);
    assert_eq!(
        next.calls.by_action.get("ec2:CreateFlowLogs").map(|(n, _)| *n),
        Some(1),
        "{:?}",
        next.calls.by_action
    );
    for vpc in [&d, &e] {
        assert_eq!(
            flow_logs(&west)
                .await
                .iter()
                .filter(|f| f.resource_id.as_deref() == Some(vpc.as_str()))
                .count(),
            1,
            "{vpc}"
        );
    }
}

async fn retention_of(aws: &Inspector, group: &str) -> Option<i32> {
    let out = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap();
    out.log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(group))
        .unwrap()
        .retention_in_days()
}

#[tokio::test]
async fn log_group_retention_goes_from_forever_to_days_with_approval_and_back() {
    let account = new_account();
    let aws = inspector(&account).await;
    let mut spec = spec(&account);
    spec.instance_logs.enabled = true;
    spec.instance_logs.windows_files.clear();
    spec.instance_logs.linux_files = vec!["/var/log/messages".into()];
    // moto lacks SSM associations: the association write fails, the log groups are made first.
    apply(&spec).await;
    assert_eq!(
        retention_of(&aws, FLOW_LOG_GROUP).await,
        None,
        "never expire by default"
    );
    assert_eq!(retention_of(&aws, "/var/log/messages").await, None);

    let mut ninety = RetentionPolicySpec::default();
    ninety.flow_logs.retention_days = Some(90);
    ninety.instance_logs.retention_days = Some(90);
    let report = apply_with(&spec, &ninety, None).await;
    assert!(matches!(
        report.components.get(&Component::Retention),
        Some(ComponentState::ApprovalRequired(_))
    ));
    assert_eq!(
        retention_of(&aws, FLOW_LOG_GROUP).await,
        None,
        "not shortened without approval"
    );

    ninety.approval = Some(Approval {
        reference: "CHG-90".into(),
        reason: None,
    });
    apply_with(&spec, &ninety, None).await;
    assert_eq!(retention_of(&aws, FLOW_LOG_GROUP).await, Some(90));
    assert_eq!(retention_of(&aws, "/var/log/messages").await, Some(90));

    apply_with(&spec, &RetentionPolicySpec::default(), Some("CHG-90")).await;
    assert_eq!(retention_of(&aws, FLOW_LOG_GROUP).await, None, "back to never expire");
    assert_eq!(retention_of(&aws, "/var/log/messages").await, None);
}

#[tokio::test]
async fn config_rules_need_a_recorder_and_are_then_deployed_once() {
    let account = new_account();
    let aws = inspector(&account).await;
    let mut spec = spec(&account);
    spec.config_rules.enabled = true;
    spec.flow_logs.enabled = false;
    let report = apply(&spec).await;
    let Some(ComponentState::Failed(e)) = report.components.get(&Component::ConfigRules) else {
        panic!("{:?}", report.components)
    };
    assert_eq!(e.code, "NoConfigurationRecorder");

    let recorder = aws_sdk_config::types::ConfigurationRecorder::builder()
        .name("default")
        .role_arn(format!("arn:aws:iam::{account}:role/config"))
        .build();
    aws.config
        .put_configuration_recorder()
        .configuration_recorder(recorder)
        .send()
        .await
        .unwrap();
    let report = apply(&spec).await;
    assert_eq!(
        report.components.get(&Component::ConfigRules),
        Some(&ComponentState::Repaired)
    );
    let rules = aws.config.describe_config_rules().send().await.unwrap();
    let names: Vec<&str> = rules
        .config_rules()
        .iter()
        .filter_map(|r| r.config_rule_name())
        .collect();
    assert_eq!(
        names.len(),
        regional::config_rules(
            &AccountSpecs {
                baseline: &spec,
                trail_policy: &TrailPolicySpec::default(),
                retention: &RetentionPolicySpec::default()
            },
            report.key_arn.as_deref()
        )
        .len()
    );
    assert!(names.contains(&"trailkeeper-multi-region-cloudtrail-enabled"));
    // The lock rule judges the trail bucket only (read back from Config).
    let lock = rules
        .config_rules()
        .iter()
        .find(|r| r.config_rule_name() == Some("trailkeeper-s3-bucket-default-lock-enabled"))
        .unwrap();
    let scope = lock.scope().expect("the lock rule is scoped");
    assert_eq!(scope.compliance_resource_types(), ["AWS::S3::Bucket"]);
    assert_eq!(
        scope.compliance_resource_id(),
        Some(trailkeeper::desired::trail_bucket_name(&spec).as_str())
    );
    let again = apply(&spec).await;
    assert_eq!(again.calls.writes, 0, "{:?}", again.calls.by_action);
    // moto lacks DescribeComplianceByConfigRule: the status says compliance is unavailable.
    let detail = again.details.get(&Component::ConfigRules).unwrap().join("; ");
    assert!(detail.contains("rules, compliance"), "{detail}");
    // `report` gives the rules beside the controls (README, the binary's table), in both formats.
    use trailkeeper::cli::{Format, output::render_compliance};
    let judged = [("accounts/a".to_string(), again)];
    let markdown = render_compliance(&judged, Format::Markdown);
    let line = markdown
        .lines()
        .find(|l| l.starts_with("AWS Config rules: "))
        .unwrap_or_else(|| panic!("no Config rules line:\n{markdown}"));
    assert!(line.contains("rules, compliance"), "{line}");
    assert!(
        markdown
            .find("| 3.1 ")
            .is_some_and(|controls| controls < markdown.find(line).unwrap())
    );
    let json: serde_json::Value = serde_json::from_str(&render_compliance(&judged, Format::Json)).unwrap();
    assert_eq!(json[0]["configRules"], serde_json::json!([detail]));
}

#[tokio::test]
async fn a_non_compliant_flow_log_is_reported_and_replaced_only_when_the_spec_says_so() {
    let account = new_account();
    let aws = inspector(&account).await;
    aws.s3
        .create_bucket()
        .bucket(format!("others-{account}"))
        .send()
        .await
        .unwrap();
    for vpc in vpcs(&aws).await {
        // Only rejected traffic, the default format: not the baseline.
        aws.ec2
            .create_flow_logs()
            .resource_ids(vpc)
            .resource_type(FlowLogsResourceType::Vpc)
            .traffic_type(TrafficType::Reject)
            .log_destination_type(LogDestinationType::S3)
            .log_destination(format!("arn:aws:s3:::others-{account}"))
            .send()
            .await
            .unwrap();
    }
    let mut spec = spec(&account);
    let report = apply(&spec).await;
    let Some(ComponentState::Failed(e)) = report.components.get(&Component::FlowLogs) else {
        panic!("{:?}", report.components)
    };
    assert!(
        e.message.contains("not compliant (set replaceNonCompliant to replace)"),
        "{e}"
    );
    assert!(
        flow_logs(&aws)
            .await
            .iter()
            .all(|f| f.traffic_type == Some(TrafficType::Reject)),
        "left as it is"
    );

    spec.flow_logs.replace_non_compliant = true;
    let report = apply(&spec).await;
    assert!(!report.failed(), "{:?}", report.components);
    let logs = flow_logs(&aws).await;
    assert!(
        logs.iter().all(|f| f.traffic_type == Some(TrafficType::All)),
        "{logs:?}"
    );
}

#[tokio::test]
async fn a_changed_trust_policy_of_the_delivery_role_is_restored() {
    let account = new_account();
    let spec = spec(&account);
    assert!(!apply(&spec).await.failed());
    let iam_config = base_config().await;
    let header_account = account.clone();
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&iam_config)
            .interceptor(common::MotoAccount(header_account))
            .build(),
    );
    let open = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]});
    iam.update_assume_role_policy()
        .role_name(regional::FLOW_LOG_ROLE)
        .policy_document(open.to_string())
        .send()
        .await
        .unwrap();
    let report = apply(&spec).await;
    assert!(
        report.drift.iter().any(|d| d.field == "trustPolicy"),
        "{:?}",
        report.drift
    );
    assert!(apply(&spec).await.in_sync());
}

#[tokio::test]
async fn with_create_recorder_a_recorder_is_created_delivering_to_the_access_log_bucket() {
    let account = new_account();
    let aws = inspector(&account).await;
    let mut spec = spec(&account);
    spec.config_rules.enabled = true;
    spec.config_rules.create_recorder = true;
    spec.flow_logs.enabled = false;
    let report = apply(&spec).await;
    assert_eq!(
        report.components.get(&Component::ConfigRules),
        Some(&ComponentState::Repaired),
        "{:?}",
        report.components
    );
    let recorders = aws.config.describe_configuration_recorders().send().await.unwrap();
    let recorder = &recorders.configuration_recorders()[0];
    assert!(recorder.role_arn().unwrap().ends_with("/AWSServiceRoleForConfig"));
    let channels = aws.config.describe_delivery_channels().send().await.unwrap();
    let channel = &channels.delivery_channels()[0];
    assert_eq!(
        channel.s3_bucket_name(),
        Some(trailkeeper::desired::access_log_bucket_name(&spec).as_str())
    );
    assert_eq!(channel.s3_key_prefix(), Some("AWS/Config"));
    assert!(
        !aws.config
            .describe_config_rules()
            .send()
            .await
            .unwrap()
            .config_rules()
            .is_empty()
    );
    // Config's service-linked role is AWSServiceRoleForConfig, as AWS names it: found again, not
    // created again (it was sent with every apply while moto named it AWSServiceRoleForconfig).
    let role = aws
        .iam
        .get_role()
        .role_name("AWSServiceRoleForConfig")
        .send()
        .await
        .expect("the service-linked role, by AWS's name");
    assert_eq!(
        role.role().map(|r| r.path()),
        Some("/aws-service-role/config.amazonaws.com/")
    );
    let again = apply(&spec).await;
    assert!(
        !again.calls.by_action.contains_key("iam:CreateServiceLinkedRole"),
        "{:?}",
        again.calls.by_action
    );
    assert_eq!(again.calls.writes, 0, "{:?}", again.calls.by_action);
}

/// A reconcile of `spec` in `mode` through a proxy, which holds each answer back `delay`.
async fn run_behind_a_proxy(
    spec: &LoggingBaselineSpec,
    mode: trailkeeper::engine::account::RunMode,
    delay: Option<std::time::Duration>,
) -> (AccountReport, common::proxy::Proxy) {
    use trailkeeper::engine::account::{ReconcileOptions, account_clients, reconcile_account};
    let proxy = common::proxy::Proxy::start(None).await;
    proxy.delay_answers(delay);
    let base = proxy.base_config().await;
    let (trail_policy, retention) = default_policies();
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let report = reconcile_account(account_clients(&base, &specs), &specs, ReconcileOptions::new(mode)).await;
    (report, proxy)
}

/// A plan of `spec` (reads only) through a proxy that holds each answer back 200 ms.
async fn plan_behind_a_slow_proxy(spec: &LoggingBaselineSpec) -> (AccountReport, common::proxy::Proxy) {
    let delay = std::time::Duration::from_millis(200);
    run_behind_a_proxy(spec, trailkeeper::engine::account::RunMode::Plan, Some(delay)).await
}

/// CloudTrail writes are paced to one a second per account (README, the binary's table: "paced to
/// its quota of one mutating call per second"): the writes of a fresh account's trail
/// (CreateTrail, PutEventSelectors, StartLogging, ...) reach the endpoint at least a second apart.
#[tokio::test]
async fn an_accounts_cloudtrail_writes_reach_aws_a_second_apart() {
    let spec = trail_only(&new_account());
    let (report, proxy) = run_behind_a_proxy(&spec, trailkeeper::engine::account::RunMode::Apply, None).await;
    assert!(!report.failed(), "{:?} {:?}", report.error, report.components);
    let writes = proxy.writes_to("cloudtrail");
    assert!(writes.len() >= 3, "{writes:?}");
    for pair in writes.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        // The pacer waits a second between the starts of two writes; the proxy sees each a
        // little after it starts, so allow its own jitter.
        assert!(
            gap >= std::time::Duration::from_millis(950),
            "{} then {} {gap:?} apart",
            pair[0].0,
            pair[1].0
        );
    }
}

/// An account's regions are reconciled four at a time (README, "Under stress"): with each AWS
/// answer held back 200 ms by a proxy, a reconcile of six regions has requests in flight in four
/// regions at once, never more (the proxy reads each request's signing region).
#[tokio::test]
async fn an_accounts_regions_are_reconciled_four_at_a_time() {
    let account = new_account();
    let regions = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
    ];
    let spec = spec_in(&account, &regions);
    let converged = apply(&spec).await;
    assert!(!converged.failed(), "{:?}", converged.components);

    let (report, proxy) = plan_behind_a_slow_proxy(&spec).await;
    assert!(!report.failed(), "{:?} {:?}", report.error, report.components);
    assert!(report.in_sync(), "{:?}", report.drift);
    assert_eq!(
        proxy.most_regions_at_once(),
        4,
        "regions with a request in flight at once, of {}",
        regions.len()
    );
}

/// Within an account, independent reads run concurrently (README, the binary's table): a
/// one-region, trail-only reconcile behind a proxy holding each answer 200 ms has the key, both
/// buckets and the trail observed at once.
#[tokio::test]
async fn an_accounts_independent_reads_are_in_flight_together() {
    let account = new_account();
    let spec = trail_only(&account);
    assert!(!apply(&spec).await.failed());
    let started = std::time::Instant::now();
    let (report, proxy) = plan_behind_a_slow_proxy(&spec).await;
    assert!(report.in_sync(), "{:?} {:?}", report.error, report.drift);
    let reads = report.calls.reads;
    println!(
        "{reads} reads in {:.1} s, at most {} at once",
        started.elapsed().as_secs_f64(),
        proxy.most_requests_at_once()
    );
    assert!(
        proxy.most_requests_at_once() >= 4,
        "at most {} at once",
        proxy.most_requests_at_once()
    );
    // One after the other they would take at least 200 ms each.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(200) * reads,
        "{:?}",
        started.elapsed()
    );
}

//! The monitoring controls (CIS v3.0.0 section 4) against the moto server: one apply creates every
//! control's filter and alarm and the encrypted topic; tampering with them is repaired; in line
//! costs no write; the controls are judged from what is read back.

mod common;

use common::*;
use trailkeeper::api::{
    LoggingBaselineSpec, MonitoringControls, RetentionPolicySpec, SubscriptionProtocol, TopicSubscription,
    TrailCloudWatchLogs, TrailPolicySpec,
};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::desired::monitoring::{CONTROLS, METRIC_NAMESPACE, TOPIC_NAME};
use trailkeeper::engine::account::{AccountReport, ReconcileOptions, RunMode, account_clients, reconcile_account};
use trailkeeper::judge::compliance::{ControlResult, evaluate};

const GROUP: &str = "aws-cloudtrail-logs-monitoring-test";

async fn run(spec: &LoggingBaselineSpec, policy: &TrailPolicySpec, mode: RunMode) -> AccountReport {
    let retention = RetentionPolicySpec::default();
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: policy,
        retention: &retention,
    };
    reconcile_account(
        account_clients(&base_config().await, &specs),
        &specs,
        ReconcileOptions::new(mode),
    )
    .await
}

/// The trail's log group and the role CloudTrail writes to it with (the user's, so made here).
async fn trail_log_group(aws: &Inspector, account: &str) -> TrailCloudWatchLogs {
    aws.logs.create_log_group().log_group_name(GROUP).send().await.unwrap();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws.iam
        .create_role()
        .role_name("cloudtrail-to-logs")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    TrailCloudWatchLogs {
        log_group_arn: format!("arn:aws:logs:{REGION}:{account}:log-group:{GROUP}:*"),
        role_arn: format!("arn:aws:iam::{account}:role/cloudtrail-to-logs"),
    }
}

fn monitored(logs: TrailCloudWatchLogs) -> TrailPolicySpec {
    TrailPolicySpec {
        cloud_watch_logs: Some(logs),
        monitoring: Some(MonitoringControls {
            topic_arn: None,
            subscriptions: vec![TopicSubscription {
                protocol: SubscriptionProtocol::Email,
                endpoint: "secops@example.com".into(),
            }],
        }),
        ..Default::default()
    }
}

fn assert_clean(report: &AccountReport) {
    assert!(report.error.is_none(), "error: {:?}", report.error);
    assert!(!report.failed(), "failed: {:?}", report.components);
}

fn section4(report: &AccountReport) -> Vec<(String, ControlResult, String)> {
    evaluate(&report.evidence)
        .into_iter()
        .filter(|c| c.id.starts_with("4."))
        .map(|c| (c.id, c.result, c.evidence))
        .collect()
}

async fn converged() -> (String, Inspector, LoggingBaselineSpec, TrailPolicySpec) {
    let account = new_account();
    let aws = inspector(&account).await;
    let policy = monitored(trail_log_group(&aws, &account).await);
    let spec = trail_only(&account);
    let first = run(&spec, &policy, RunMode::Apply).await;
    assert_clean(&first);
    (account, aws, spec, policy)
}

#[tokio::test]
async fn one_apply_creates_every_control_and_the_next_writes_nothing() {
    let (account, aws, spec, policy) = converged().await;
    let topic = format!("arn:aws:sns:{REGION}:{account}:{TOPIC_NAME}");

    // Read back independently: a filter per control with its pattern, an alarm on its metric
    // notifying the topic, the topic encrypted with the trail's key and subscribed.
    let filters = aws
        .logs
        .describe_metric_filters()
        .log_group_name(GROUP)
        .send()
        .await
        .unwrap();
    let alarms = aws.cloudwatch.describe_alarms().send().await.unwrap();
    for c in &CONTROLS {
        let f = filters
            .metric_filters()
            .iter()
            .find(|f| f.filter_name() == Some(c.name().as_str()))
            .unwrap_or_else(|| panic!("no filter for {}", c.cis));
        assert_eq!(f.filter_pattern(), Some(c.pattern));
        let m = &f.metric_transformations()[0];
        assert_eq!((m.metric_namespace(), m.metric_name()), (METRIC_NAMESPACE, c.metric));
        let a = alarms
            .metric_alarms()
            .iter()
            .find(|a| a.alarm_name() == Some(c.name().as_str()))
            .unwrap_or_else(|| panic!("no alarm for {}", c.cis));
        assert_eq!(
            (a.namespace(), a.metric_name()),
            (Some(METRIC_NAMESPACE), Some(c.metric))
        );
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic));
        assert_eq!(a.threshold(), Some(1.0));
    }
    let attributes = aws.sns.get_topic_attributes().topic_arn(&topic).send().await.unwrap();
    let key = attributes.attributes().and_then(|a| a.get("KmsMasterKeyId")).cloned();
    let key_id = aws.trail_key_id().await;
    assert!(
        key.as_deref().is_some_and(|k| k.ends_with(&key_id)),
        "{key:?}, {key_id}"
    );
    let subscriptions = aws
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    assert_eq!(subscriptions.subscriptions()[0].endpoint(), Some("secops@example.com"));
    // The key admits CloudWatch alarms, which publish to the topic encrypted with it.
    let policy_doc = key_policy_of(&aws, &key_id).await;
    assert!(
        policy_doc.to_string().contains("cloudwatch.amazonaws.com"),
        "{policy_doc}"
    );

    let again = run(&spec, &policy, RunMode::Apply).await;
    assert_clean(&again);
    assert_eq!(again.calls.writes, 0, "in line: {:?}", again.calls.by_action);
    for (id, result, evidence) in section4(&again) {
        assert_eq!(result, ControlResult::Pass, "{id}: {evidence}");
    }
}

#[tokio::test]
async fn an_edited_pattern_a_deleted_alarm_a_redirected_alarm_and_a_rekeyed_topic_are_repaired() {
    let (account, aws, spec, policy) = converged().await;
    let topic = format!("arn:aws:sns:{REGION}:{account}:{TOPIC_NAME}");
    let root = &CONTROLS[2];
    let narrowed = r#"{$.userIdentity.type="Root"}"#;
    aws.logs
        .put_metric_filter()
        .log_group_name(GROUP)
        .filter_name(root.name())
        .filter_pattern(narrowed)
        .metric_transformations(
            aws_sdk_cloudwatchlogs::types::MetricTransformation::builder()
                .metric_namespace(METRIC_NAMESPACE)
                .metric_name(root.metric)
                .metric_value("1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    aws.cloudwatch
        .delete_alarms()
        .alarm_names(CONTROLS[4].name())
        .send()
        .await
        .unwrap();
    let elsewhere = aws.sns.create_topic().name("nobody-reads-this").send().await.unwrap();
    let elsewhere = elsewhere.topic_arn().unwrap().to_string();
    let redirected = &CONTROLS[6];
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(redirected.name())
        .namespace(METRIC_NAMESPACE)
        .metric_name(redirected.metric)
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(300)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data("notBreaching")
        .alarm_actions(&elsewhere)
        .send()
        .await
        .unwrap();
    let other_key = aws.kms.create_key().send().await.unwrap();
    let other_key = other_key.key_metadata().unwrap().arn().unwrap().to_string();
    aws.sns
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value(&other_key)
        .send()
        .await
        .unwrap();

    // Judged before the repair (a plan reads only): the three controls fail and say why.
    let plan = run(&spec, &policy, RunMode::Plan).await;
    let failing: Vec<String> = section4(&plan)
        .into_iter()
        .filter(|(_, r, _)| *r == ControlResult::Fail)
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(failing, ["4.3", "4.5", "4.7"], "{:?}", section4(&plan));
    let fields: Vec<(String, String)> = plan
        .drift
        .iter()
        .map(|d| {
            (
                d.resource.rsplit([':', '/']).next().unwrap().to_string(),
                d.field.clone(),
            )
        })
        .collect();
    for expected in [
        (root.name(), "filterPattern".to_string()),
        (CONTROLS[4].name(), "exists".to_string()),
        (redirected.name(), "alarmActions".to_string()),
        (TOPIC_NAME.to_string(), "KmsMasterKeyId".to_string()),
    ] {
        assert!(fields.contains(&expected), "{expected:?} not in {fields:?}");
    }

    let repair = run(&spec, &policy, RunMode::Apply).await;
    assert_clean(&repair);
    assert_eq!(repair.applied.len(), 4, "{:?}", repair.applied);
    for (id, result, evidence) in section4(&repair) {
        assert_eq!(result, ControlResult::Pass, "{id} after the repair: {evidence}");
    }
    let after = run(&spec, &policy, RunMode::Apply).await;
    assert_eq!(after.calls.writes, 0, "{:?}", after.calls.by_action);
}

#[tokio::test]
async fn without_monitoring_section_4_is_judged_on_the_trails_log_group_and_fails_with_the_reason() {
    let account = new_account();
    let aws = inspector(&account).await;
    let logs = trail_log_group(&aws, &account).await;
    let policy = TrailPolicySpec {
        cloud_watch_logs: Some(logs),
        ..Default::default()
    };
    let spec = trail_only(&account);
    let report = run(&spec, &policy, RunMode::Apply).await;
    assert_clean(&report);
    let controls = section4(&report);
    assert_eq!(controls.len(), 15);
    for (id, result, evidence) in controls {
        assert_eq!(result, ControlResult::Fail, "{id}");
        assert!(
            evidence.contains(&format!("no metric filter on log group {GROUP}")),
            "{id}: {evidence}"
        );
    }
    // Nothing of the controls was created.
    let alarms = aws.cloudwatch.describe_alarms().send().await.unwrap();
    assert!(alarms.metric_alarms().is_empty());
}

/// A member account under the management account's Organization trail: its section 4 is judged
/// by the Organization trail's log group and alarms in the management account ("covered by"), as
/// `report` over both accounts and the controller (from the owner's status) judge it.
#[tokio::test]
async fn a_member_under_the_organization_trail_passes_with_the_owners_evidence() {
    let management = new_account();
    let aws = inspector(&management).await;
    create_organization(&aws).await;
    let mut policy = monitored(trail_log_group(&aws, &management).await);
    policy.organization_trail = true;
    let management_spec = trail_only(&management);
    let owner = run(&management_spec, &policy, RunMode::Apply).await;
    assert_clean(&owner);
    let member = create_member_account(&aws, &format!("member-{management}")).await;
    let mut member_spec = trail_only(&member);
    member_spec.trail.source = trailkeeper::api::TrailSource::Existing;
    member_spec.trail.existing_trail_arn = Some(trailkeeper::desired::trail_arn(&management_spec));
    let adopted = TrailPolicySpec {
        organization_trail: true,
        ..Default::default()
    };
    let member_report = run(&member_spec, &adopted, RunMode::Apply).await;
    assert_clean(&member_report);

    // Alone, the member cannot see the alarms: NotApplicable, pointing at the trail.
    for (id, result, evidence) in section4(&member_report) {
        assert_eq!(result, ControlResult::NotApplicable, "{id}: {evidence}");
    }
    let both = trailkeeper::judge::coverage::statuses(&[
        (management.as_str(), &owner.evidence),
        (member.as_str(), &member_report.evidence),
    ]);
    let trail = trailkeeper::desired::trail_arn(&management_spec);
    for c in both[1].controls.iter().filter(|c| c.id.starts_with("4.")) {
        assert_eq!(c.result, ControlResult::Pass, "{}: {}", c.id, c.evidence);
        assert!(
            c.evidence
                .starts_with(&format!("covered by {trail}: metric filter trailkeeper-cis-")),
            "{}: {}",
            c.id,
            c.evidence
        );
    }

    // One trail records the member's management events: nothing to report. Its own trail beside
    // the Organization's is a second, charged copy.
    assert_eq!(member_report.duplicate_trails, None);
    assert_eq!(owner.duplicate_trails, None);
    let own = run(&trail_only(&member), &TrailPolicySpec::default(), RunMode::Apply).await;
    assert_clean(&own);
    let d = own
        .duplicate_trails
        .expect("the Organization trail and the member's own");
    assert_eq!(d.paid_copies, 1);
    assert!(d.trails.contains(&trail), "{:?}", d.trails);
}

/// An hour of events in trailkeeper's trail bucket: `files` log files of `records` management
/// events each (every other one read-only) and as many S3 data events, delivered in the last
/// hour, gzipped JSON as CloudTrail writes them.
async fn deliver_events(aws: &Inspector, spec: &LoggingBaselineSpec, files: usize, records: usize) {
    use std::io::Write;
    let account = &spec.account_id;
    for i in 0..files {
        let secs = now_secs() - 60 * (5 + 10 * i as i64);
        let stamp = aws_smithy_types::DateTime::from_secs(secs)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap();
        let compact: String = stamp.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
        let key = format!(
            "{}/AWSLogs/{account}/CloudTrail/{REGION}/{}/{account}_CloudTrail_{REGION}_{}Z_{i}.json.gz",
            spec.storage.key_prefix,
            &stamp[..10].replace('-', "/"),
            &compact[..13]
        );
        let management = (0..records).map(|n| {
            serde_json::json!({"eventCategory": "Management", "managementEvent": true, "readOnly": n % 2 == 0,
                               "eventSource": "iam.amazonaws.com", "eventName": format!("Call{n}")})
        });
        let data = (0..records).map(|_| {
            serde_json::json!({"eventCategory": "Data", "managementEvent": false, "readOnly": true,
                               "eventSource": "s3.amazonaws.com", "eventName": "GetObject"})
        });
        let log = serde_json::json!({"Records": management.chain(data).collect::<Vec<_>>()});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(log.to_string().as_bytes()).unwrap();
        aws.s3
            .put_object()
            .bucket(trailkeeper::desired::trail_bucket_name(spec))
            .key(key)
            .body(gz.finish().unwrap().into())
            .send()
            .await
            .unwrap();
    }
}

/// CloudTrail charges every copy of management events after the first in a Region: a second
/// trail beside trailkeeper's is reported with the monthly cost of its copy, estimated from the
/// last hour of the account's management events (data events are not management events); a
/// second trail of write events only copies those; with one trail nothing is reported.
#[tokio::test]
async fn a_second_trail_recording_management_events_is_reported_with_its_estimated_cost() {
    let account = new_account();
    let aws = inspector(&account).await;
    let spec = trail_only(&account);
    let policy = TrailPolicySpec::default();
    let alone = run(&spec, &policy, RunMode::Apply).await;
    assert_clean(&alone);
    assert_eq!(alone.duplicate_trails, None);
    deliver_events(&aws, &spec, 2, 40).await;

    let team = create_trail_recording_management_events(&aws, &account, "team-trail", None).await;
    // Stopped, it records nothing: no duplicate yet.
    let stopped = run(&spec, &policy, RunMode::Plan).await;
    assert_eq!(stopped.duplicate_trails, None);
    aws.cloudtrail.start_logging().name(&team).send().await.unwrap();

    let report = run(&spec, &policy, RunMode::Plan).await;
    let d = report.duplicate_trails.clone().expect("the duplicate is reported");
    assert_eq!(d.region, REGION);
    assert_eq!(d.paid_copies, 1);
    assert!(d.trails.contains(&team), "{:?}", d.trails);
    // 80 management events in the last hour (the 80 data events are not) x 730 hours, each
    // copied once; x $2.00 per 100,000 copied events.
    assert_eq!(d.events_per_month, Some(58_400));
    assert_eq!(d.copied_events_per_month, Some(58_400));
    assert_eq!(d.estimated_monthly_cost_usd, Some(1.17));
    assert!(d.note.contains("AWS CloudTrail pricing"), "{}", d.note);
    assert!(d.note.contains("the primary Region"), "{}", d.note);
    let markdown = trailkeeper::cli::output::render_compliance(
        &[("accounts/a".to_string(), report)],
        trailkeeper::cli::Format::Markdown,
    );
    assert!(
        markdown.contains("Duplicate trails in us-east-1 (the primary Region only)")
            && markdown.contains("about $1.17 a month"),
        "{markdown}"
    );

    // The team's trail records write events only: only the 40 write events an hour are copies.
    aws.cloudtrail
        .put_event_selectors()
        .trail_name(&team)
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::WriteOnly)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let writes_only = run(&spec, &policy, RunMode::Plan).await;
    let d = writes_only.duplicate_trails.expect("the write events are copied");
    assert_eq!(d.events_per_month, Some(58_400));
    assert_eq!(d.copied_events_per_month, Some(29_200));
    assert_eq!(d.estimated_monthly_cost_usd, Some(0.58));
}

//! The monitoring controls (CIS v3.0.0 section 4) against the moto server: one apply creates every
//! control's filter and alarm and the topic, encrypted with the account's monitoring key; tampering
//! with them is repaired; in line costs no write; the controls are judged from what is read back.
//! The emulator runs the chain AWS runs (scripts/emulator/trailkeeper_monitoring.py): CloudTrail's
//! events reach the trail's log group, the filters count them, the alarms publish to the topic
//! through its key's policy; so each control's metric is shown to rise on its own event.

mod common;

use common::*;
use trailkeeper::api::{
    LoggingBaselineSpec, MonitoringControls, RetentionPolicySpec, SubscriptionProtocol, TopicSubscription,
    TrailCloudWatchLogs, TrailPolicySpec,
};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::desired::monitoring::{self, CONTROLS, METRIC_NAMESPACE, TOPIC_NAME};
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

/// The role as CloudTrail's user guide gives it: CloudTrail may create the trail's log stream in the
/// group and put its events there ("Sending events to CloudWatch Logs", the role policy).
async fn let_cloudtrail_deliver(aws: &Inspector, account: &str) {
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": format!("arn:aws:logs:{REGION}:{account}:log-group:{GROUP}:log-stream:{account}_CloudTrail_{REGION}*")
    }]});
    aws.iam
        .put_role_policy()
        .role_name("cloudtrail-to-logs")
        .policy_name("deliver")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
}

/// The account's monitoring key, found by its alias.
async fn monitoring_key(aws: &Inspector) -> aws_sdk_kms::types::KeyMetadata {
    let described = aws
        .kms
        .describe_key()
        .key_id(monitoring::KEY_ALIAS)
        .send()
        .await
        .unwrap();
    described.key_metadata.unwrap()
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
    let monitoring_key = monitoring_key(&aws).await;
    assert_eq!(key.as_deref(), Some(monitoring_key.arn().unwrap()));
    let subscriptions = aws
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    assert_eq!(subscriptions.subscriptions()[0].endpoint(), Some("secops@example.com"));
    // The monitoring key admits CloudWatch alarms, which publish to the topic encrypted with it;
    // the trail key does not (S3: it is CloudTrail's and its readers').
    let policy_doc = key_policy_of(&aws, monitoring_key.key_id()).await;
    assert!(
        policy_doc.to_string().contains("cloudwatch.amazonaws.com"),
        "{policy_doc}"
    );
    let trail_key = key_policy_of(&aws, &aws.trail_key_id().await).await;
    assert!(!trail_key.to_string().contains("cloudwatch"), "{trail_key}");

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

    // Judged before the repair (a plan reads only): the three controls fail and say why; the
    // others too, for the topic's new key does not let CloudWatch publish.
    let plan = run(&spec, &policy, RunMode::Plan).await;
    for (id, result, evidence) in section4(&plan) {
        assert_eq!(result, ControlResult::Fail, "{id}: {evidence}");
        let why = match id.as_str() {
            "4.3" => "pattern the benchmark prescribes",
            "4.5" => "no alarm",
            "4.7" => "nobody-reads-this, which has no confirmed subscription",
            _ => "alarms cannot publish: the topic's key policy does not admit CloudWatch",
        };
        assert!(evidence.contains(why), "{id}: {evidence}");
    }
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

/// An account whose trail delivers its events to the log group (CloudTrail may write there),
/// with the controls kept.
async fn delivering() -> (String, Inspector, LoggingBaselineSpec, TrailPolicySpec) {
    let account = new_account();
    let aws = inspector(&account).await;
    let logs = trail_log_group(&aws, &account).await;
    let_cloudtrail_deliver(&aws, &account).await;
    let policy = monitored(logs);
    let spec = trail_only(&account);
    let first = run(&spec, &policy, RunMode::Apply).await;
    assert_clean(&first);
    (account, aws, spec, policy)
}

/// The sum of each control's metric over the last hour.
async fn metric_sums(aws: &Inspector) -> std::collections::BTreeMap<&'static str, f64> {
    let now = now_secs();
    let mut sums = std::collections::BTreeMap::new();
    for c in &CONTROLS {
        let stats = aws
            .cloudwatch
            .get_metric_statistics()
            .namespace(METRIC_NAMESPACE)
            .metric_name(c.metric)
            .start_time(aws_smithy_types::DateTime::from_secs(now - 3600))
            .end_time(aws_smithy_types::DateTime::from_secs(now + 60))
            .period(3600)
            .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
            .send()
            .await
            .unwrap();
        sums.insert(c.metric, stats.datapoints().iter().filter_map(|d| d.sum()).sum());
    }
    sums
}

/// Puts `record` into the trail's log group as CloudTrail would deliver it: for the events no call
/// to the emulator can produce (a refused call, a console sign-in, the root user's).
async fn put_cloudtrail_record(aws: &Inspector, account: &str, record: serde_json::Value) {
    let stream = "records-put-by-the-test";
    let _ = aws
        .logs
        .create_log_stream()
        .log_group_name(GROUP)
        .log_stream_name(stream)
        .send()
        .await;
    let mut record = record;
    record["eventVersion"] = "1.09".into();
    record["awsRegion"] = REGION.into();
    record["recipientAccountId"] = account.into();
    record["eventID"] = format!("test-{}", now_secs()).into();
    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
        .timestamp(now_secs() * 1000)
        .message(record.to_string())
        .build()
        .unwrap();
    aws.logs
        .put_log_events()
        .log_group_name(GROUP)
        .log_stream_name(stream)
        .log_events(event)
        .send()
        .await
        .unwrap();
}

async fn default_vpc(aws: &Inspector) -> String {
    let vpcs = aws
        .ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("isDefault")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    vpcs.vpcs()[0].vpc_id().unwrap().to_string()
}

/// The event of one control: an API call the emulator records as CloudTrail would (4.4, 4.5,
/// 4.7-4.15), or a CloudTrail record put into the log group where no call can produce the event
/// on the emulator (4.1: a refused call; 4.2, 4.6: console sign-ins; 4.3: the root user).
async fn drive(aws: &Inspector, account: &str, cis: &str) {
    let user = serde_json::json!({"type": "IAMUser", "arn": format!("arn:aws:iam::{account}:user/alice"), "accountId": account});
    match cis {
        "4.1" => {
            put_cloudtrail_record(
                aws,
                account,
                serde_json::json!({
                    "eventSource": "s3.amazonaws.com", "eventName": "GetBucketPolicy", "eventType": "AwsApiCall",
                    "userIdentity": user, "sourceIPAddress": "203.0.113.7",
                    "errorCode": "AccessDenied", "errorMessage": "Access Denied"
                }),
            )
            .await
        }
        "4.2" => {
            put_cloudtrail_record(
                aws,
                account,
                serde_json::json!({
                    "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "eventType": "AwsConsoleSignIn",
                    "userIdentity": user, "sourceIPAddress": "203.0.113.7",
                    "responseElements": {"ConsoleLogin": "Success"},
                    "additionalEventData": {"MFAUsed": "No", "MobileVersion": "No"}
                }),
            )
            .await
        }
        "4.3" => put_cloudtrail_record(
            aws,
            account,
            serde_json::json!({
                "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "eventType": "AwsApiCall",
                "userIdentity": {"type": "Root", "arn": format!("arn:aws:iam::{account}:root"), "accountId": account},
                "sourceIPAddress": "203.0.113.7"
            }),
        )
        .await,
        "4.4" => {
            let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
            aws.iam
                .create_role()
                .role_name("app")
                .assume_role_policy_document(trust)
                .send()
                .await
                .unwrap();
            let policy =
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
            aws.iam
                .put_role_policy()
                .role_name("app")
                .policy_name("read")
                .policy_document(policy)
                .send()
                .await
                .unwrap();
        }
        "4.5" => {
            aws.cloudtrail.start_logging().name("trailkeeper").send().await.unwrap();
        }
        "4.6" => {
            put_cloudtrail_record(
                aws,
                account,
                serde_json::json!({
                    "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin", "eventType": "AwsConsoleSignIn",
                    "userIdentity": user, "sourceIPAddress": "203.0.113.7",
                    "errorMessage": "Failed authentication",
                    "responseElements": {"ConsoleLogin": "Failure"},
                    "additionalEventData": {"MFAUsed": "No"}
                }),
            )
            .await
        }
        "4.7" => {
            let key = aws.kms.create_key().send().await.unwrap();
            let id = key.key_metadata().unwrap().key_id().to_string();
            aws.kms.disable_key().key_id(id).send().await.unwrap();
        }
        "4.8" => {
            let bucket = format!("monitored-{account}");
            aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
            let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
            aws.s3
                .put_bucket_policy()
                .bucket(&bucket)
                .policy(policy.to_string())
                .send()
                .await
                .unwrap();
        }
        "4.9" => {
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
        }
        "4.10" => {
            aws.ec2
                .create_security_group()
                .group_name("web")
                .description("web")
                .send()
                .await
                .unwrap();
        }
        "4.11" => {
            let vpc = default_vpc(aws).await;
            aws.ec2.create_network_acl().vpc_id(vpc).send().await.unwrap();
        }
        "4.12" => {
            aws.ec2.create_internet_gateway().send().await.unwrap();
        }
        "4.13" => {
            let vpc = default_vpc(aws).await;
            aws.ec2.create_route_table().vpc_id(vpc).send().await.unwrap();
        }
        "4.14" => {
            aws.ec2.create_vpc().cidr_block("10.42.0.0/16").send().await.unwrap();
        }
        "4.15" => {
            create_organization(aws).await;
            let roots = aws.organizations.list_roots().send().await.unwrap();
            let root = roots.roots()[0].id().unwrap().to_string();
            aws.organizations
                .create_organizational_unit()
                .parent_id(root)
                .name("workloads")
                .send()
                .await
                .unwrap();
        }
        other => panic!("no event for {other}"),
    }
}

/// M7: CloudTrail's events reach the trail's log group and the filters trailkeeper writes count
/// them: each of the fifteen metrics rises by one on its control's event, and no other does.
#[tokio::test]
async fn each_cis_metric_counts_its_own_event_and_no_other() {
    let (account, aws, _, _) = delivering().await;
    for c in &CONTROLS {
        let before = metric_sums(&aws).await;
        drive(&aws, &account, c.cis).await;
        let after = metric_sums(&aws).await;
        for other in &CONTROLS {
            let rise = after[other.metric] - before[other.metric];
            let expected = if other.cis == c.cis { 1.0 } else { 0.0 };
            assert_eq!(
                rise, expected,
                "{}'s event moved {} ({}) by {rise}",
                c.cis, other.cis, other.metric
            );
        }
    }
    // The trail's deliveries are what the group holds: CloudTrail's own stream exists.
    let streams = aws
        .logs
        .describe_log_streams()
        .log_group_name(GROUP)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = streams
        .log_streams()
        .iter()
        .filter_map(|s| s.log_stream_name())
        .collect();
    assert!(
        names.contains(&format!("{account}_CloudTrail_{REGION}").as_str()),
        "{names:?}"
    );
}

/// Without the role's permission CloudTrail delivers nothing to the group, and says so in the
/// trail's status (the role policy of CloudTrail's user guide is what lets it in).
#[tokio::test]
async fn a_role_that_may_not_put_log_events_delivers_nothing() {
    let (account, aws, _, _) = converged().await;
    let before = metric_sums(&aws).await;
    drive(&aws, &account, "4.14").await;
    assert_eq!(metric_sums(&aws).await, before);
    let status = aws
        .cloudtrail
        .get_trail_status()
        .name("trailkeeper")
        .send()
        .await
        .unwrap();
    let error = status.latest_cloud_watch_logs_delivery_error().unwrap_or_default();
    assert!(error.contains("logs:CreateLogStream"), "{error}");
}

async fn subscribed_queue(aws: &Inspector, topic: &str) -> String {
    let queue = aws.sqs.create_queue().queue_name("alarms").send().await.unwrap();
    let url = queue.queue_url().unwrap().to_string();
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    aws.sns
        .subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .unwrap();
    url
}

/// The alarm names of the notifications in the queue.
async fn notified(aws: &Inspector, queue: &str) -> Vec<String> {
    let received = aws
        .sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    received
        .messages()
        .iter()
        .filter_map(|m| {
            let body: serde_json::Value = serde_json::from_str(m.body()?).ok()?;
            let message: serde_json::Value = serde_json::from_str(body["Message"].as_str()?).ok()?;
            message["AlarmName"].as_str().map(str::to_string)
        })
        .collect()
}

async fn action_history(aws: &Inspector, alarm: &str) -> Vec<String> {
    let history = aws
        .cloudwatch
        .describe_alarm_history()
        .alarm_name(alarm)
        .history_item_type(aws_sdk_cloudwatch::types::HistoryItemType::Action)
        .send()
        .await
        .unwrap();
    history
        .alarm_history_items()
        .iter()
        .filter_map(|h| h.history_summary().map(str::to_string))
        .collect()
}

/// F2: an alarm publishes through the monitoring key (its policy admits CloudWatch for this topic
/// and trailkeeper's alarms); into a topic whose key does not admit CloudWatch the action fails,
/// the alarm's history says so and nothing reaches the subscription. Section 4 then fails with the
/// reason, and the next apply puts the topic back on the monitoring key.
#[tokio::test]
async fn an_alarm_publishes_through_the_monitoring_key_and_not_through_a_key_that_refuses_cloudwatch() {
    let (account, aws, spec, policy) = delivering().await;
    let topic = format!("arn:aws:sns:{REGION}:{account}:{TOPIC_NAME}");
    let queue = subscribed_queue(&aws, &topic).await;
    let vpc = &CONTROLS[13];
    drive(&aws, &account, vpc.cis).await;
    assert_eq!(notified(&aws, &queue).await, [vpc.name()]);
    assert_eq!(
        action_history(&aws, &vpc.name()).await,
        [format!("Successfully executed action {topic}")]
    );

    // A key of the account whose policy is KMS's default (the account only): CloudWatch may not
    // use it.
    let other = aws.kms.create_key().send().await.unwrap();
    let other = other.key_metadata().unwrap().arn().unwrap().to_string();
    aws.sns
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value(&other)
        .send()
        .await
        .unwrap();
    let groups = &CONTROLS[9];
    drive(&aws, &account, groups.cis).await;
    let failed = action_history(&aws, &groups.name()).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with(&format!("Failed to execute action {topic}. Received error:"))
            && failed[0].contains("AccessDeniedException"),
        "{failed:?}"
    );
    assert!(notified(&aws, &queue).await.is_empty());

    let plan = run(&spec, &policy, RunMode::Plan).await;
    for (id, result, evidence) in section4(&plan) {
        assert_eq!(result, ControlResult::Fail, "{id}");
        assert!(
            evidence.contains("alarms cannot publish: the topic's key policy does not admit CloudWatch"),
            "{id}: {evidence}"
        );
    }
    let repair = run(&spec, &policy, RunMode::Apply).await;
    assert_clean(&repair);
    assert!(
        repair
            .applied
            .iter()
            .any(|c| c.action.starts_with("encrypt the monitoring topic")),
        "{:?}",
        repair.applied
    );
    for (id, result, evidence) in section4(&repair) {
        assert_eq!(result, ControlResult::Pass, "{id}: {evidence}");
    }
}

/// F2: an Existing-trail baseline (no trail key of its own) keeps its topic encrypted with the
/// monitoring key at once, instead of waiting for a trail key that never comes; a topic encrypted
/// with another account's key (a LogArchive's, as before) is re-keyed with the account's own key
/// of the topic's region, and until then section 4 says the alarms cannot be shown to publish.
#[tokio::test]
async fn an_existing_trail_baselines_topic_is_kept_with_the_accounts_own_key() {
    let account = new_account();
    let aws = inspector(&account).await;
    let logs = trail_log_group(&aws, &account).await;
    let managed = trail_only(&account);
    let plain = TrailPolicySpec {
        cloud_watch_logs: Some(logs.clone()),
        ..Default::default()
    };
    assert_clean(&run(&managed, &plain, RunMode::Apply).await);
    let mut existing = trail_only(&account);
    existing.trail.source = trailkeeper::api::TrailSource::Existing;
    existing.trail.existing_trail_arn = Some(trailkeeper::desired::trail_arn(&managed));
    let policy = monitored(logs);

    let first = run(&existing, &policy, RunMode::Apply).await;
    assert_clean(&first);
    let topic = format!("arn:aws:sns:{REGION}:{account}:{TOPIC_NAME}");
    let key = monitoring_key(&aws).await;
    assert_eq!(key.arn().unwrap().split(':').nth(4), Some(account.as_str()));
    assert_eq!(key.arn().unwrap().split(':').nth(3), Some(REGION));
    let attributes = aws.sns.get_topic_attributes().topic_arn(&topic).send().await.unwrap();
    assert_eq!(
        attributes
            .attributes()
            .and_then(|a| a.get("KmsMasterKeyId"))
            .map(String::as_str),
        key.arn()
    );

    let archives = format!("arn:aws:kms:{REGION}:999988887777:key/0b1c2d3e-archive");
    aws.sns
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value(&archives)
        .send()
        .await
        .unwrap();
    let plan = run(&existing, &policy, RunMode::Plan).await;
    let (_, result, evidence) = section4(&plan).remove(0);
    assert_eq!(result, ControlResult::Fail);
    assert!(evidence.contains("cannot be shown to publish"), "{evidence}");
    let repair = run(&existing, &policy, RunMode::Apply).await;
    assert_clean(&repair);
    let attributes = aws.sns.get_topic_attributes().topic_arn(&topic).send().await.unwrap();
    assert_eq!(
        attributes
            .attributes()
            .and_then(|a| a.get("KmsMasterKeyId"))
            .map(String::as_str),
        key.arn()
    );
    let again = run(&existing, &policy, RunMode::Apply).await;
    assert_eq!(again.calls.writes, 0, "{:?}", again.calls.by_action);
}

/// PutMetricFilter refuses a pattern that does not parse, as CloudWatch Logs does; TestMetricFilter
/// answers with the page's order of operations (`&&` before `||`, parentheses first).
#[tokio::test]
async fn filter_patterns_parse_and_match_as_cloudwatch_logs_documents() {
    let account = new_account();
    let aws = inspector(&account).await;
    aws.logs.create_log_group().log_group_name(GROUP).send().await.unwrap();
    let transformation = aws_sdk_cloudwatchlogs::types::MetricTransformation::builder()
        .metric_namespace(METRIC_NAMESPACE)
        .metric_name("Broken")
        .metric_value("1")
        .build()
        .unwrap();
    for broken in [
        "{ $.eventName == CreateVpc }",
        "{ ($.eventName = CreateVpc }",
        "{ $.eventName = }",
    ] {
        let refused = aws
            .logs
            .put_metric_filter()
            .log_group_name(GROUP)
            .filter_name("broken")
            .filter_pattern(broken)
            .metric_transformations(transformation.clone())
            .send()
            .await
            .expect_err(broken);
        let service = refused.into_service_error();
        assert!(service.is_invalid_parameter_exception(), "{broken}: {service:?}");
        assert_eq!(service.meta().message(), Some("Invalid metric filter pattern"));
    }
    let events = [
        r#"{"user": {"email": "John.Stiles@example.com"}, "actions": ["GET", "PUT", "DELETE"]}"#,
        r#"{"user": {"email": "someone@example.com"}, "actions": ["GET", "PUT", "nomatch"]}"#,
    ];
    let matched = |pattern: &'static str| {
        let logs = aws.logs.clone();
        async move {
            let answer = logs
                .test_metric_filter()
                .filter_pattern(pattern)
                .set_log_event_messages(Some(events.iter().map(|e| e.to_string()).collect()))
                .send()
                .await
                .unwrap();
            answer.matches().iter().map(|m| m.event_number()).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        matched(r#"{ $.user.email = "John.Stiles@example.com" || $.actions[2] = nomatch && $.actions[0] = PUT }"#)
            .await,
        [1]
    );
    assert_eq!(
        matched(r#"{ ($.user.email = "John.Stiles@example.com" || $.actions[2] = nomatch) && $.actions[0] = GET }"#)
            .await,
        [1, 2]
    );
}

/// The emulator's pattern evaluator against the examples of CloudWatch Logs' "Filter and pattern
/// syntax" page, both ways (scripts/emulator/test_trailkeeper_monitoring.py).
#[test]
fn the_emulators_filter_patterns_follow_the_syntax_page_both_ways() {
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "unittest",
            "-v",
            "scripts/emulator/test_trailkeeper_monitoring.py",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("Ran 10 tests"), "{report}");
}

/// F2: a LogArchive's member encrypts its trail with the archive's key (another account's, whose
/// policy never admits CloudWatch); its kept topic gets the member's own monitoring key, in the
/// topic's region, and the alarms can publish.
#[tokio::test]
async fn a_log_archive_members_topic_has_its_own_key_never_the_archives() {
    use trailkeeper::api::{LogArchiveSpec, PolicyRef};
    use trailkeeper::desired::archive::member_of;
    use trailkeeper::engine::archive::{ArchiveOptions, archive_clients, reconcile_archive};

    let archive = new_account();
    let archive_spec: LogArchiveSpec = serde_json::from_value(serde_json::json!({
        "accountId": archive,
        "region": REGION,
        "credentials": {"assumeRoleArn": format!("arn:aws:iam::{archive}:role/trailkeeper")},
        "administrators": [format!("arn:aws:iam::{archive}:role/admin")],
    }))
    .unwrap();
    let account = new_account();
    let aws = inspector(&account).await;
    let policy = monitored(trail_log_group(&aws, &account).await);
    let mut member = trail_only(&account);
    member.storage.archive_ref = Some(PolicyRef {
        name: "org-archive".into(),
    });
    let members = [member_of(&member, &policy)];
    let retention = RetentionPolicySpec::default();
    let archived = reconcile_archive(
        archive_clients(&base_config().await, &archive_spec),
        &archive_spec,
        &retention,
        &members,
        ArchiveOptions::new(RunMode::Apply),
    )
    .await;
    let target = archived
        .target_for("audit/org-archive", &members[0])
        .expect("the archive has its bucket and key");
    let archive_key = target.key_arn.clone();
    let specs = AccountSpecs {
        baseline: &member,
        trail_policy: &policy,
        retention: &retention,
    };
    let options = ReconcileOptions {
        archive: Some(target),
        ..ReconcileOptions::new(RunMode::Apply)
    };
    let report = reconcile_account(account_clients(&base_config().await, &specs), &specs, options).await;
    assert_clean(&report);

    let topic = format!("arn:aws:sns:{REGION}:{account}:{TOPIC_NAME}");
    let attributes = aws.sns.get_topic_attributes().topic_arn(&topic).send().await.unwrap();
    let key = attributes
        .attributes()
        .and_then(|a| a.get("KmsMasterKeyId"))
        .cloned()
        .unwrap();
    assert_ne!(key, archive_key);
    let parts: Vec<&str> = key.split(':').collect();
    assert_eq!((parts[3], parts[4]), (REGION, account.as_str()), "{key}");
    assert_eq!(Some(key.as_str()), monitoring_key(&aws).await.arn());
    for (id, result, evidence) in section4(&report) {
        assert_eq!(result, ControlResult::Pass, "{id}: {evidence}");
        assert!(evidence.contains("whose policy admits CloudWatch"), "{id}: {evidence}");
    }
}

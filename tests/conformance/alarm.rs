//! Scenario 3: an alarm publishing to an SNS topic encrypted with a customer managed key (F2,
//! M7). The key trailkeeper writes for a member's topic (`desired::monitoring::topic_key`) admits
//! CloudWatch for the account's trailkeeper alarms (aws:SourceAccount, aws:SourceArn) and for the
//! topic (SNS's encryption context aws:sns:topicArn). Each variant is a key, a topic encrypted
//! with it and an alarm publishing to it; the alarm is set to ALARM (SetAlarmState: "the action
//! configured for the appropriate state is invoked") and DescribeAlarmHistory tells whether the
//! action succeeded.

use aws_sdk_cloudwatch::types::{ComparisonOperator, HistoryItemType, StateValue, Statistic};
use serde_json::{Value, json};
use trailkeeper::api::LoggingBaselineSpec;
use trailkeeper::desired::monitoring;

use super::report::{Basis, Checks, Expect, Outcome};
use super::resources::{create_key, pause, step};
use super::target::{Cleanup, TAG, Target};

pub const SCENARIO: &str = "3 alarm into an encrypted topic";

struct Variant {
    tag: &'static str,
    check: &'static str,
    expect: &'static str,
    basis: Basis,
    key: KeyPolicy,
    /// The alarm's name: one of trailkeeper's (`trailkeeper-cis-...`) or not.
    trailkeeper_alarm: bool,
}

enum KeyPolicy {
    /// trailkeeper's topic key for this topic.
    Trailkeepers,
    /// trailkeeper's topic key written for another topic's ARN.
    ForAnotherTopic,
    /// The account's statements only: no CloudWatch statement.
    WithoutCloudWatch,
}

const VARIANTS: &[Variant] = &[
    Variant {
        tag: "key",
        check: "trailkeeper's topic key (CloudWatch with SourceAccount, SourceArn, topicArn)",
        expect: "published",
        basis: Basis::Documented,
        key: KeyPolicy::Trailkeepers,
        trailkeeper_alarm: true,
    },
    Variant {
        tag: "nocw",
        check: "a key that does not admit CloudWatch",
        expect: "failed",
        basis: Basis::Documented,
        key: KeyPolicy::WithoutCloudWatch,
        trailkeeper_alarm: true,
    },
    Variant {
        tag: "othertopic",
        check: "trailkeeper's statement for another topic (kms:EncryptionContext:aws:sns:topicArn)",
        expect: "failed",
        basis: Basis::Reading("M7: SNS's encryption context"),
        key: KeyPolicy::ForAnotherTopic,
        trailkeeper_alarm: true,
    },
    Variant {
        tag: "otheralarm",
        check: "trailkeeper's key, an alarm not named trailkeeper-cis-* (aws:SourceArn)",
        expect: "failed",
        basis: Basis::Reading("M7: CloudWatch's aws:SourceArn"),
        key: KeyPolicy::Trailkeepers,
        trailkeeper_alarm: false,
    },
];

/// The account as a baseline without credentials or administrators: the key policy's base is the
/// account root alone (a principal named outright must exist).
fn baseline(target: &Target) -> Result<LoggingBaselineSpec, String> {
    serde_json::from_value(json!({"accountId": target.archive.id, "primaryRegion": target.region}))
        .map_err(|e| format!("the baseline's spec: {e}"))
}

fn key_policy(target: &Target, variant: &Variant, topic_arn: &str) -> Result<Value, String> {
    let spec = baseline(target)?;
    Ok(match variant.key {
        KeyPolicy::Trailkeepers => monitoring::topic_key(&spec, &target.region, topic_arn).policy,
        KeyPolicy::ForAnotherTopic => {
            monitoring::topic_key(&spec, &target.region, &format!("{topic_arn}-another")).policy
        }
        KeyPolicy::WithoutCloudWatch => trailkeeper::desired::key_policy_base(&spec),
    })
}

pub async fn alarm_into_encrypted_topic(target: &Target, cleanup: &Cleanup, checks: &Checks) -> Result<(), String> {
    let results = futures::future::join_all(VARIANTS.iter().map(|v| run_variant(target, cleanup, checks, v))).await;
    results.into_iter().collect()
}

async fn run_variant(target: &Target, cleanup: &Cleanup, checks: &Checks, variant: &Variant) -> Result<(), String> {
    let account = &target.archive;
    let region = target.region.as_str();
    let topic_name = target.name(variant.tag);
    let topic_arn = format!("arn:{}:sns:{region}:{}:{topic_name}", account.partition, account.id);
    let key = create_key(
        target,
        cleanup,
        account,
        region,
        &key_policy(target, variant, &topic_arn)?,
        &format!("topic {topic_name}"),
    )
    .await?;

    let sns = account.sns(region);
    let tag = aws_sdk_sns::types::Tag::builder()
        .key(TAG)
        .value(&target.suffix)
        .build()
        .map_err(|e| e.to_string())?;
    let created = step(
        &format!("sns:CreateTopic {topic_name}"),
        sns.create_topic()
            .name(&topic_name)
            .attributes("KmsMasterKeyId", &key)
            .tags(tag)
            .send()
            .await,
    )?;
    let created_arn = created.topic_arn().unwrap_or_default().to_string();
    cleanup.topic(&sns, &created_arn);
    if created_arn != topic_arn {
        return Err(format!("sns:CreateTopic answered {created_arn}, not {topic_arn}"));
    }

    let alarm = if variant.trailkeeper_alarm {
        format!("{}{}", monitoring::NAME_PREFIX, topic_name)
    } else {
        topic_name.clone()
    };
    let cloudwatch = account.cloudwatch(region);
    let tag = aws_sdk_cloudwatch::types::Tag::builder()
        .key(TAG)
        .value(&target.suffix)
        .build();
    step(
        &format!("cloudwatch:PutMetricAlarm {alarm}"),
        cloudwatch
            .put_metric_alarm()
            .alarm_name(&alarm)
            .alarm_description("trailkeeper conformance: an alarm's publish to an encrypted topic")
            .namespace("TrailkeeperConformance")
            .metric_name(format!("Probe-{}", target.suffix))
            .statistic(Statistic::Sum)
            .period(300)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .treat_missing_data("notBreaching")
            .alarm_actions(&topic_arn)
            .tags(tag)
            .send()
            .await,
    )?;
    cleanup.alarm(&cloudwatch, &alarm);

    let (outcome, note) = publish(target, &cloudwatch, &alarm).await;
    checks.record_with(
        SCENARIO,
        variant.check,
        Expect::Status(variant.expect),
        variant.basis,
        outcome,
        note,
    );
    Ok(())
}

/// Sets the alarm to ALARM and reads its history until the action's outcome shows; a failure is
/// tried again (through OK) within the propagation window, a new key's policy not being in
/// effect at once.
async fn publish(target: &Target, cloudwatch: &aws_sdk_cloudwatch::Client, alarm: &str) -> (Outcome, Option<String>) {
    let started = std::time::Instant::now();
    let mut seen = 0;
    loop {
        let set = cloudwatch
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(StateValue::Alarm)
            .state_reason("trailkeeper conformance: does the alarm's action publish?")
            .send()
            .await;
        if let Err(e) = set {
            return (
                Outcome::Unknown(format!("SetAlarmState: {}", super::resources::code_of(e))),
                None,
            );
        }
        let summary = match action_after(target, cloudwatch, alarm, seen).await {
            Ok((summary, count)) => {
                seen = count;
                summary
            }
            Err(why) => return (Outcome::Unknown(why), None),
        };
        if summary.contains("Successfully executed action") {
            return (Outcome::Status("published".into()), Some(summary));
        }
        if !summary.contains("Failed to execute action") {
            return (Outcome::Unknown(summary), None);
        }
        if started.elapsed() >= target.propagation {
            return (Outcome::Status("failed".into()), Some(summary));
        }
        let _ = cloudwatch
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(StateValue::Ok)
            .state_reason("trailkeeper conformance: once more")
            .send()
            .await;
        pause(target.poll).await;
    }
}

/// The newest Action history item once there are more than `seen`: (its summary, how many).
async fn action_after(
    target: &Target,
    cloudwatch: &aws_sdk_cloudwatch::Client,
    alarm: &str,
    seen: usize,
) -> Result<(String, usize), String> {
    let started = std::time::Instant::now();
    let bound = target.wait.min(std::time::Duration::from_secs(180));
    loop {
        let history = cloudwatch
            .describe_alarm_history()
            .alarm_name(alarm)
            .history_item_type(HistoryItemType::Action)
            .send()
            .await
            .map_err(|e| format!("DescribeAlarmHistory: {}", super::resources::code_of(e)))?;
        let mut items = history.alarm_history_items().to_vec();
        if items.len() > seen {
            items.sort_by_key(|i| i.timestamp().map(|t| t.secs()));
            let newest = items.last().and_then(|i| i.history_summary()).unwrap_or_default();
            return Ok((newest.to_string(), items.len()));
        }
        if started.elapsed() >= bound {
            return Err(format!("no action in the alarm's history within {} s", bound.as_secs()));
        }
        pause(target.poll.min(std::time::Duration::from_secs(5))).await;
    }
}

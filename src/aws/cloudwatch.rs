//! CloudWatch: the alarms of the monitoring controls.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic, Tag};

use super::{AccountClients, AwsError, check};
use crate::desired::monitoring::DesiredAlarm;

/// An alarm on a metric, as DescribeAlarms reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedAlarm {
    pub name: String,
    /// The alarm's ARN: the source (aws:SourceArn) of its publishes to a topic.
    pub arn: String,
    pub metric_namespace: Option<String>,
    pub metric_name: Option<String>,
    pub statistic: Option<String>,
    pub period_seconds: Option<i32>,
    pub evaluation_periods: Option<i32>,
    pub threshold: Option<f64>,
    pub comparison: Option<String>,
    pub treat_missing_data: Option<String>,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
}

/// The metric alarms whose names start with `prefix` (every alarm of the region when empty).
pub async fn observe_alarms(clients: &AccountClients, prefix: &str) -> Result<Vec<ObservedAlarm>, AwsError> {
    let mut alarms = Vec::new();
    let mut token = None;
    loop {
        let sent = clients
            .cloudwatch
            .describe_alarms()
            .set_alarm_name_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
            .set_next_token(token.take())
            .send()
            .await;
        let page = check(
            sent,
            "CloudWatch",
            "DescribeAlarms",
            &format!("the alarms of {}", clients.region),
        )?;
        for a in page.metric_alarms() {
            alarms.push(ObservedAlarm {
                name: a.alarm_name().unwrap_or_default().to_string(),
                arn: a.alarm_arn().unwrap_or_default().to_string(),
                metric_namespace: a.namespace().map(str::to_string),
                metric_name: a.metric_name().map(str::to_string),
                statistic: a.statistic().map(|s| s.as_str().to_string()),
                period_seconds: a.period(),
                evaluation_periods: a.evaluation_periods(),
                threshold: a.threshold(),
                comparison: a.comparison_operator().map(|c| c.as_str().to_string()),
                treat_missing_data: a.treat_missing_data().map(str::to_string),
                actions_enabled: a.actions_enabled().unwrap_or(true),
                alarm_actions: a.alarm_actions().to_vec(),
            });
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(alarms)
}

/// Creates or replaces the alarm (PutMetricAlarm overwrites an alarm of that name: idempotent).
pub async fn put_alarm(
    clients: &AccountClients,
    alarm: &DesiredAlarm,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let sent = clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm.name)
        .alarm_description(&alarm.description)
        .namespace(&alarm.metric_namespace)
        .metric_name(&alarm.metric_name)
        .statistic(Statistic::from(alarm.statistic.as_str()))
        .period(alarm.period_seconds)
        .evaluation_periods(alarm.evaluation_periods)
        .threshold(alarm.threshold)
        .comparison_operator(ComparisonOperator::from(alarm.comparison.as_str()))
        .treat_missing_data(&alarm.treat_missing_data)
        .actions_enabled(true)
        .set_alarm_actions(Some(alarm.alarm_actions.clone()))
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .send()
        .await;
    check(sent, "CloudWatch", "PutMetricAlarm", &format!("alarm {}", alarm.name)).map(|_| ())
}

//! CloudWatch Logs: the log groups trailkeeper keeps, and their retention.

use std::collections::BTreeMap;

use super::{AccountClients, AwsError, check};

/// DescribeLogGroups takes at most this many identifiers per request.
const IDENTIFIERS_PER_REQUEST: usize = 50;

/// A log group as CloudWatch Logs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedLogGroup {
    /// None: never expire.
    pub retention_days: Option<i32>,
    pub kms_key: Option<String>,
}

/// Log group name -> what it is, for those of `names` that exist.
/// Asked by name (`logGroupIdentifiers`), so the cost does not grow with the account's other
/// groups: one request per 50 names.
pub async fn observe_log_groups(
    clients: &AccountClients,
    names: &[String],
) -> Result<BTreeMap<String, ObservedLogGroup>, AwsError> {
    let mut groups = BTreeMap::new();
    for chunk in names.chunks(IDENTIFIERS_PER_REQUEST) {
        let mut token = None;
        loop {
            let sent = clients
                .logs
                .describe_log_groups()
                .set_log_group_identifiers(Some(chunk.to_vec()))
                .set_next_token(token.take())
                .send()
                .await;
            let page = check(
                sent,
                "CloudWatch Logs",
                "DescribeLogGroups",
                &format!("the log groups of {}", clients.region),
            )?;
            for g in page.log_groups() {
                if let Some(name) = g.log_group_name().filter(|n| chunk.iter().any(|c| c == n)) {
                    groups.insert(
                        name.to_string(),
                        ObservedLogGroup {
                            retention_days: g.retention_in_days(),
                            kms_key: g.kms_key_id().map(str::to_string),
                        },
                    );
                }
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
    }
    Ok(groups)
}

pub async fn create_log_group(
    clients: &AccountClients,
    name: &str,
    kms_key: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let sent = clients
        .logs
        .create_log_group()
        .log_group_name(name)
        .set_kms_key_id(kms_key.map(str::to_string))
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await;
    match check(sent, "CloudWatch Logs", "CreateLogGroup", &format!("log group {name}")) {
        Err(e) if e.code == "ResourceAlreadyExistsException" => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Encrypts the group's new log data with `kms_key` (CloudWatch Logs checks the key policy).
pub async fn associate_key(clients: &AccountClients, name: &str, kms_key: &str) -> Result<(), AwsError> {
    let sent = clients
        .logs
        .associate_kms_key()
        .log_group_name(name)
        .kms_key_id(kms_key)
        .send()
        .await;
    check(sent, "CloudWatch Logs", "AssociateKmsKey", &format!("log group {name}")).map(|_| ())
}

/// Sets the retention, or removes it (never expire) for `None`.
pub async fn set_retention(clients: &AccountClients, name: &str, days: Option<i32>) -> Result<(), AwsError> {
    let resource = format!("log group {name}");
    match days {
        Some(days) => {
            let sent = clients
                .logs
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(days)
                .send()
                .await;
            check(sent, "CloudWatch Logs", "PutRetentionPolicy", &resource).map(|_| ())
        }
        None => {
            let sent = clients.logs.delete_retention_policy().log_group_name(name).send().await;
            check(sent, "CloudWatch Logs", "DeleteRetentionPolicy", &resource).map(|_| ())
        }
    }
}

/// A metric filter, as DescribeMetricFilters reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedMetricFilter {
    pub name: String,
    pub pattern: String,
    /// (namespace, name, value) of each metric transformation.
    pub metrics: Vec<(String, String, String)>,
}

/// The metric filters of `group` (every filter of the group: the judge reads them all). None: the
/// group does not exist.
pub async fn observe_metric_filters(
    clients: &AccountClients,
    group: &str,
) -> Result<Option<Vec<ObservedMetricFilter>>, AwsError> {
    let mut filters = Vec::new();
    let mut token = None;
    loop {
        let sent = clients
            .logs
            .describe_metric_filters()
            .log_group_name(group)
            .set_next_token(token.take())
            .send()
            .await;
        let page = match super::optional(
            sent,
            "CloudWatch Logs",
            "DescribeMetricFilters",
            &format!("log group {group}"),
        )? {
            Some(page) => page,
            None => return Ok(None),
        };
        for f in page.metric_filters() {
            filters.push(ObservedMetricFilter {
                name: f.filter_name().unwrap_or_default().to_string(),
                pattern: f.filter_pattern().unwrap_or_default().to_string(),
                metrics: f
                    .metric_transformations()
                    .iter()
                    .map(|m| {
                        (
                            m.metric_namespace().to_string(),
                            m.metric_name().to_string(),
                            m.metric_value().to_string(),
                        )
                    })
                    .collect(),
            });
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(Some(filters))
}

/// Creates or replaces the filter (PutMetricFilter overwrites a filter of that name: idempotent).
pub async fn put_metric_filter(
    clients: &AccountClients,
    group: &str,
    filter: &crate::desired::monitoring::DesiredMetricFilter,
) -> Result<(), AwsError> {
    let transformation = aws_sdk_cloudwatchlogs::types::MetricTransformation::builder()
        .metric_namespace(&filter.metric_namespace)
        .metric_name(&filter.metric_name)
        .metric_value(&filter.metric_value)
        .build()
        .map_err(|e| AwsError::invalid("logs:PutMetricFilter", &filter.name, e))?;
    let sent = clients
        .logs
        .put_metric_filter()
        .log_group_name(group)
        .filter_name(&filter.name)
        .filter_pattern(&filter.pattern)
        .metric_transformations(transformation)
        .send()
        .await;
    check(
        sent,
        "CloudWatch Logs",
        "PutMetricFilter",
        &format!("metric filter {} of log group {group}", filter.name),
    )
    .map(|_| ())
}

//! CloudWatch Logs: the log groups trailkeeper keeps, and their retention.

use std::collections::BTreeMap;

use super::{AccountClients, AwsError, check};

/// Log group name -> retention in days (None: never expire), for every group of the region.
pub async fn list_log_groups(clients: &AccountClients) -> Result<BTreeMap<String, Option<i32>>, AwsError> {
    let mut groups = BTreeMap::new();
    let mut token = None;
    loop {
        let sent = clients
            .logs
            .describe_log_groups()
            .set_next_token(token.take())
            .limit(50)
            .send()
            .await;
        let page = check(
            sent,
            "CloudWatch Logs",
            "DescribeLogGroups",
            &format!("the log groups of {}", clients.region),
        )?;
        for g in page.log_groups() {
            if let Some(name) = g.log_group_name() {
                groups.insert(name.to_string(), g.retention_in_days());
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(groups),
        }
    }
}

pub async fn create_log_group(
    clients: &AccountClients,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let sent = clients
        .logs
        .create_log_group()
        .log_group_name(name)
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await;
    match check(sent, "CloudWatch Logs", "CreateLogGroup", &format!("log group {name}")) {
        Err(e) if e.code == "ResourceAlreadyExistsException" => Ok(()),
        other => other.map(|_| ()),
    }
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

//! EventBridge: the rule in each account and region that forwards tampering with the baseline to
//! the operator's central event bus, and that bus with its rule into the operator's queue.

use std::collections::BTreeMap;

use aws_sdk_eventbridge::types::{RuleState, Tag, Target};

use super::{AccountClients, AwsError, check, optional};

/// A rule as EventBridge reports it, with its targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRule {
    pub arn: String,
    /// The pattern as stored (JSON text).
    pub pattern: Option<String>,
    pub enabled: bool,
    pub targets: Vec<ObservedTarget>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTarget {
    pub id: String,
    pub arn: String,
    pub role_arn: Option<String>,
}

/// The rule `name` of `bus` (None: the default bus) and its targets; None when absent.
pub async fn observe_rule(
    clients: &AccountClients,
    bus: Option<&str>,
    name: &str,
) -> Result<Option<ObservedRule>, AwsError> {
    let resource = format!("EventBridge rule {name} in {}", clients.region);
    let Some(found) = optional(
        clients
            .events
            .describe_rule()
            .name(name)
            .set_event_bus_name(bus.map(str::to_string))
            .send()
            .await,
        "EventBridge",
        "DescribeRule",
        &resource,
    )?
    else {
        return Ok(None);
    };
    let listed = check(
        clients
            .events
            .list_targets_by_rule()
            .rule(name)
            .set_event_bus_name(bus.map(str::to_string))
            .send()
            .await,
        "EventBridge",
        "ListTargetsByRule",
        &resource,
    )?;
    Ok(Some(ObservedRule {
        arn: found.arn().unwrap_or_default().to_string(),
        pattern: found.event_pattern().map(str::to_string),
        enabled: found.state() == Some(&RuleState::Enabled),
        targets: listed
            .targets()
            .iter()
            .map(|t| ObservedTarget {
                id: t.id().to_string(),
                arn: t.arn().to_string(),
                role_arn: t.role_arn().map(str::to_string),
            })
            .collect(),
    }))
}

/// Creates or updates the rule (PutRule is an upsert), enabled. Returns its ARN.
pub async fn put_rule(
    clients: &AccountClients,
    bus: Option<&str>,
    name: &str,
    pattern: &str,
    description: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    let tags = tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let sent = clients
        .events
        .put_rule()
        .name(name)
        .set_event_bus_name(bus.map(str::to_string))
        .event_pattern(pattern)
        .state(RuleState::Enabled)
        .description(description)
        .set_tags(Some(tags))
        .send()
        .await;
    check(
        sent,
        "EventBridge",
        "PutRule",
        &format!("EventBridge rule {name} in {}", clients.region),
    )
    .map(|out| out.rule_arn().unwrap_or_default().to_string())
}

/// Sets one target of the rule (an upsert by target id). PutTargets reports refused targets in
/// its answer, not as an error: those become one.
pub async fn put_target(
    clients: &AccountClients,
    bus: Option<&str>,
    rule: &str,
    target: &ObservedTarget,
) -> Result<(), AwsError> {
    let resource = format!("the target of EventBridge rule {rule} in {}", clients.region);
    let built = Target::builder()
        .id(&target.id)
        .arn(&target.arn)
        .set_role_arn(target.role_arn.clone())
        .build()
        .map_err(|e| AwsError::invalid("events:PutTargets", &resource, e))?;
    let sent = clients
        .events
        .put_targets()
        .rule(rule)
        .set_event_bus_name(bus.map(str::to_string))
        .targets(built)
        .send()
        .await;
    let out = check(sent, "EventBridge", "PutTargets", &resource)?;
    match out.failed_entries().first() {
        Some(failed) => Err(AwsError::refused(
            "events:PutTargets",
            &resource,
            failed.error_code().unwrap_or("FailedEntry"),
            failed.error_message().unwrap_or_default(),
        )),
        None => Ok(()),
    }
}

/// Removes the rule and its targets (a rule with targets cannot be deleted). Absent: done.
pub async fn delete_rule(
    clients: &AccountClients,
    bus: Option<&str>,
    rule: &ObservedRuleRef<'_>,
) -> Result<(), AwsError> {
    let resource = format!("EventBridge rule {} in {}", rule.name, clients.region);
    if !rule.target_ids.is_empty() {
        let sent = clients
            .events
            .remove_targets()
            .rule(rule.name)
            .set_event_bus_name(bus.map(str::to_string))
            .set_ids(Some(rule.target_ids.to_vec()))
            .send()
            .await;
        optional(sent, "EventBridge", "RemoveTargets", &resource)?;
    }
    let sent = clients
        .events
        .delete_rule()
        .name(rule.name)
        .set_event_bus_name(bus.map(str::to_string))
        .send()
        .await;
    optional(sent, "EventBridge", "DeleteRule", &resource).map(|_| ())
}

/// What `delete_rule` needs of a rule.
pub struct ObservedRuleRef<'a> {
    pub name: &'a str,
    pub target_ids: &'a [String],
}

/// A custom event bus: its ARN and resource policy; None when absent.
pub async fn observe_bus(clients: &AccountClients, name: &str) -> Result<Option<(String, Option<String>)>, AwsError> {
    let found = optional(
        clients.events.describe_event_bus().name(name).send().await,
        "EventBridge",
        "DescribeEventBus",
        &format!("event bus {name} in {}", clients.region),
    )?;
    Ok(found.map(|b| (b.arn().unwrap_or_default().to_string(), b.policy().map(str::to_string))))
}

pub async fn create_bus(clients: &AccountClients, name: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
    let tags = tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let sent = clients
        .events
        .create_event_bus()
        .name(name)
        .set_tags(Some(tags))
        .send()
        .await;
    match check(
        sent,
        "EventBridge",
        "CreateEventBus",
        &format!("event bus {name} in {}", clients.region),
    ) {
        Err(e) if e.code == "ResourceAlreadyExistsException" => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Replaces the bus's resource policy.
pub async fn put_bus_policy(clients: &AccountClients, name: &str, policy: &serde_json::Value) -> Result<(), AwsError> {
    let sent = clients
        .events
        .put_permission()
        .event_bus_name(name)
        .policy(policy.to_string())
        .send()
        .await;
    check(
        sent,
        "EventBridge",
        "PutPermission",
        &format!("event bus {name} in {}", clients.region),
    )
    .map(|_| ())
}

/// Removes one statement (by its Sid) from an event bus's policy.
pub async fn remove_bus_statement(clients: &AccountClients, name: &str, sid: &str) -> Result<(), AwsError> {
    let sent = clients
        .events
        .remove_permission()
        .event_bus_name(name)
        .statement_id(sid)
        .send()
        .await;
    check(
        sent,
        "EventBridge",
        "RemovePermission",
        &format!("statement {sid} of event bus {name} in {}", clients.region),
    )
    .map(|_| ())
}

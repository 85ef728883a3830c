//! Event-driven drift detection: per account, the forwarding role (IAM, once) and the forwarding
//! rule in each region; for the operator, the central bus, its rule and the queue's policy.

use futures::StreamExt;

use super::account::{AccountReconcile, REGION_CONCURRENCY};
use super::regional::{Part, RegionOutcome, ServiceRole, reconcile_service_role};
use super::report::{Component, ComponentState};
use crate::aws::events::{self, ObservedTarget};
use crate::aws::{AccountClients, AwsError, sqs};
use crate::desired::events::{
    self as desired, Admitted, CENTRAL_RULE, CENTRAL_TARGET_ID, FORWARD_ROLE, FORWARD_ROLE_POLICY, FORWARD_RULE,
    FORWARD_TARGET_ID, Forwarding,
};

/// The role EventBridge forwards as (IAM is global: once per account, before the regions).
pub async fn reconcile_forwarding_role(
    clients: &AccountClients,
    account: &str,
    forwarding: &Forwarding,
    tags: &std::collections::BTreeMap<String, String>,
    write: bool,
    outcome: &mut RegionOutcome,
) -> Result<(), AwsError> {
    let role = ServiceRole {
        name: FORWARD_ROLE,
        policy_name: FORWARD_ROLE_POLICY,
        arn: forwarding.role_arn(account),
        description: "trailkeeper: lets EventBridge forward calls that tamper with the logging baseline to the operator",
        trust: desired::forward_role_trust(account),
        permissions: desired::forward_role_policy(forwarding),
        boundary: Some(desired::forward_role_boundary(crate::desired::partition(
            &clients.region,
        ))),
        tags: tags.clone(),
    };
    reconcile_service_role(clients, &role, Component::DriftEvents, write, outcome).await
}

/// The forwarding rule of one region and its one target, the central bus: with `pattern`, the
/// full one (`desired::forward_pattern`) in a region the baseline keeps, the sweep's elsewhere.
pub async fn reconcile_forwarding_rule(
    clients: &AccountClients,
    account: &str,
    forwarding: &Forwarding,
    pattern: &serde_json::Value,
    tags: &std::collections::BTreeMap<String, String>,
    write: bool,
    outcome: &mut RegionOutcome,
) {
    let mut part = Part {
        outcome,
        write,
        component: Component::DriftEvents,
        changed: false,
    };
    let result = forwarding_rule(clients, account, forwarding, pattern, tags, &mut part).await;
    part.finish(result);
}

async fn forwarding_rule(
    clients: &AccountClients,
    account: &str,
    forwarding: &Forwarding,
    pattern: &serde_json::Value,
    tags: &std::collections::BTreeMap<String, String>,
    part: &mut Part<'_>,
) -> Result<String, AwsError> {
    let pattern_text = pattern.to_string();
    let target = ObservedTarget {
        id: FORWARD_TARGET_ID.into(),
        arn: forwarding.bus_arn.clone(),
        role_arn: Some(forwarding.role_arn(account)),
    };
    let resource = format!("events:{}:rule/{FORWARD_RULE}", clients.region);
    let observed = events::observe_rule(clients, None, FORWARD_RULE).await?;
    let rule_ok = observed
        .as_ref()
        .is_some_and(|r| r.enabled && desired::same_pattern(r.pattern.as_deref(), pattern));
    if !rule_ok {
        match &observed {
            None => part.differs(&resource, "exists", true, false),
            Some(r) if !r.enabled => part.differs(&resource, "state", "ENABLED", "DISABLED"),
            Some(r) => part.differs(
                &resource,
                "eventPattern",
                pattern,
                r.pattern.as_deref().unwrap_or("(none)"),
            ),
        }
        part.act(
            &resource,
            "put the rule that forwards tampering to the operator",
            || async {
                events::put_rule(
                    clients,
                    None,
                    FORWARD_RULE,
                    &pattern_text,
                    "trailkeeper: forwards calls that tamper with the logging baseline to the operator",
                    tags,
                )
                .await
                .map(|_| ())
            },
        )
        .await?;
    }
    let target_ok = observed
        .as_ref()
        .is_some_and(|r| r.targets.iter().any(|t| t == &target));
    if !target_ok {
        let actual = observed
            .as_ref()
            .and_then(|r| r.targets.iter().find(|t| t.id == FORWARD_TARGET_ID))
            .map_or("(none)".to_string(), |t| t.arn.clone());
        part.differs(&resource, "target", &target.arn, actual);
        part.act(&resource, "target the operator's central bus", || {
            events::put_target(clients, None, FORWARD_RULE, &target)
        })
        .await?;
    }
    Ok(format!("tampering forwarded to {}", forwarding.bus_arn))
}

/// Removes one region's forwarding rule (deletionPolicy Delete). Returns whether it existed.
pub async fn delete_forwarding_rule(clients: &AccountClients) -> Result<bool, AwsError> {
    let Some(rule) = events::observe_rule(clients, None, FORWARD_RULE).await? else {
        return Ok(false);
    };
    let ids: Vec<String> = rule.targets.iter().map(|t| t.id.clone()).collect();
    events::delete_rule(
        clients,
        None,
        &events::ObservedRuleRef {
            name: FORWARD_RULE,
            target_ids: &ids,
        },
    )
    .await?;
    Ok(true)
}

/// The operator's side, in the queue's account and region, with the operator's own identity:
/// the central bus (admitting the forwarding roles of `admitted`), its rule into the queue, and
/// the queue's policy statement for that rule. Observed first; only differences are written; the
/// statements of others in the bus and queue policies are kept. Returns where the accounts
/// forward to, and the writes made.
pub async fn ensure_central(
    clients: &AccountClients,
    sqs_client: &sqs::SqsClient,
    queue_url: &str,
    bus_name: &str,
    admitted: &Admitted,
) -> Result<(Forwarding, Vec<String>), AwsError> {
    let mut writes = Vec::new();
    let (queue_arn, queue_policy) = sqs::queue_arn_and_policy(sqs_client, queue_url).await?;
    let queue_arn = queue_arn.as_str();
    let forwarding = Forwarding::for_queue(queue_arn, bus_name).ok_or_else(|| {
        AwsError::invalid(
            "sqs:GetQueueAttributes",
            queue_url,
            format!("the queue's ARN {queue_arn:?} is not an SQS queue ARN"),
        )
    })?;
    let tags = std::collections::BTreeMap::from([(
        crate::desired::MANAGED_BY_TAG.to_string(),
        crate::desired::MANAGED_BY_VALUE.to_string(),
    )]);
    let (bus_arn, bus_policy) = match events::observe_bus(clients, bus_name).await? {
        Some(found) => found,
        None => {
            events::create_bus(clients, bus_name, &tags).await?;
            writes.push(format!("CreateEventBus {bus_name}"));
            (forwarding.bus_arn.clone(), None)
        }
    };
    let policy = desired::bus_policy(bus_policy.as_deref(), &bus_arn, admitted)
        .map_err(|why| AwsError::invalid("events:PutPermission", &bus_arn, why))?;
    match policy {
        // An empty policy is not a policy: the statement is removed by its id.
        Some(policy) if policy["Statement"].as_array().is_some_and(|s| s.is_empty()) => {
            events::remove_bus_statement(clients, bus_name, desired::BUS_STATEMENT).await?;
            writes.push(format!("RemovePermission {bus_name}"));
        }
        Some(policy) => {
            events::put_bus_policy(clients, bus_name, &policy).await?;
            writes.push(format!("PutPermission {bus_name}"));
        }
        None => {}
    }
    let pattern = desired::central_pattern();
    let target = ObservedTarget {
        id: CENTRAL_TARGET_ID.into(),
        arn: queue_arn.to_string(),
        role_arn: None,
    };
    let observed = events::observe_rule(clients, Some(bus_name), CENTRAL_RULE).await?;
    let mut rule_arn = observed.as_ref().map(|r| r.arn.clone()).unwrap_or_default();
    if !observed
        .as_ref()
        .is_some_and(|r| r.enabled && desired::same_pattern(r.pattern.as_deref(), &pattern))
    {
        rule_arn = events::put_rule(
            clients,
            Some(bus_name),
            CENTRAL_RULE,
            &pattern.to_string(),
            "trailkeeper: forwarded tampering events into the operator's queue",
            &tags,
        )
        .await?;
        writes.push(format!("PutRule {CENTRAL_RULE}"));
    }
    if !observed.as_ref().is_some_and(|r| r.targets.contains(&target)) {
        events::put_target(clients, Some(bus_name), CENTRAL_RULE, &target).await?;
        writes.push(format!("PutTargets {CENTRAL_RULE}"));
    }
    if let Some(policy) =
        desired::with_statement(queue_policy.as_deref(), &desired::queue_statement(queue_arn, &rule_arn))
    {
        sqs::set_queue_policy(sqs_client, queue_url, &policy).await?;
        writes.push("SetQueueAttributes Policy".to_string());
    }
    Ok((forwarding, writes))
}
impl AccountReconcile<'_> {
    /// The forwarding of tampering events: the role (IAM, global), then the rule of each region
    /// trailkeeper enforces, of the primary region, and of the Region where global services'
    /// events arrive when the trail records them (IAM changes to trailkeeper's roles).
    pub(super) async fn reconcile_forwarding(
        &self,
        forwarding: &Forwarding,
        regions: Vec<String>,
    ) -> Vec<RegionOutcome> {
        let account = self.desired.account_id.as_str();
        let tags = crate::desired::resource_tags(self.specs.baseline);
        let mut role = RegionOutcome {
            region: "global".into(),
            ..Default::default()
        };
        if let Err(e) =
            reconcile_forwarding_role(&self.clients, account, forwarding, &tags, self.write, &mut role).await
        {
            role.parts.push((
                Component::DriftEvents,
                ComponentState::Failed(e.clone()),
                format!("IAM: {e}"),
            ));
            return vec![role];
        }
        let settings = match &self.desired.trail {
            crate::desired::DesiredTrail::Managed(settings) => settings,
            crate::desired::DesiredTrail::Existing { expected, .. } => expected,
        };
        let regions = desired::forwarding_regions(&regions, &self.clients.region, settings.global_service_events);
        let pattern = desired::forward_pattern();
        let (clients, tags, write, pattern) = (&self.clients, &tags, self.write, &pattern);
        let runs: Vec<futures::future::BoxFuture<'_, _>> = regions
            .into_iter()
            .map(|region| {
                Box::pin(async move {
                    let mut outcome = RegionOutcome {
                        region: region.clone(),
                        ..Default::default()
                    };
                    let clients = clients.for_region(&region);
                    reconcile_forwarding_rule(&clients, account, forwarding, pattern, tags, write, &mut outcome).await;
                    outcome
                }) as futures::future::BoxFuture<'_, _>
            })
            .collect();
        let mut outcomes = vec![role];
        outcomes.extend(
            futures::stream::iter(runs)
                .buffered(REGION_CONCURRENCY)
                .collect::<Vec<_>>()
                .await,
        );
        outcomes
    }
}

//! The regional parts of an account's baseline, reconciled in each region of `spec.regions`
//! (concurrently): the log groups (with their retention), VPC flow logs, the CloudWatch agent
//! configuration of EC2 instance logs, and the AWS Config rules.

use std::collections::BTreeMap;

use crate::api::Drift;
use crate::aws::{AccountClients, AwsError, ec2, iam, kms, logs};
use crate::desired::regional::{self, DesiredFlowLogs, FLOW_LOG_ROLE, FLOW_LOG_ROLE_POLICY, FlowLogTarget};
use crate::desired::{AccountSpecs, policy};
use crate::engine::report::{Change, Component, ComponentState};
use crate::judge::diff::{self, days, shortens};

mod agents;
mod config_rules;

/// What one region's reconcile saw and did.
#[derive(Clone, Debug, Default)]
pub struct RegionOutcome {
    pub region: String,
    pub drift: Vec<Drift>,
    pub pending: Vec<Change>,
    pub applied: Vec<Change>,
    /// Per component: its state in this region and a line of detail for the status.
    pub parts: Vec<(Component, ComponentState, String)>,
    /// Whether this region's flow logs deliver.
    pub delivery: Vec<crate::judge::delivery::DeliveryFinding>,
    /// Components whose resources this region's reconcile created.
    pub created: std::collections::BTreeSet<Component>,
    /// A write AWS applies lazily (a key policy) is not in effect yet for a part that waits on it:
    /// reconcile again soon.
    pub retry_soon: bool,
    /// What the parts read that the account-wide controls judge too.
    pub known: super::cis_evidence::Known,
}

/// A key trailkeeper created, as CIS 3.6 judges it (customer-managed, symmetric, of KMS's own
/// material), when it is enabled: its rotation as read. None for a key named by the baseline
/// (`kmsKeyArn`: not known to be such a key) or not enabled.
pub(crate) fn known_key(
    desired: &crate::desired::DesiredKey,
    observed: Option<&kms::ObservedKey>,
) -> Option<crate::judge::evidence::KeyEvidence> {
    let observed = observed?;
    let created = matches!(desired.source, crate::desired::KeySource::Create { .. });
    (created && observed.state == "Enabled").then(|| crate::judge::evidence::KeyEvidence {
        arn: observed.arn.clone(),
        rotation: observed.rotation,
    })
}

/// Why a part stopped short: an AWS call failed, or trailkeeper held a write back itself.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PartError {
    Aws(AwsError),
    /// Writes held back until spec.approval carries a new reference in the RetentionPolicy: the
    /// resources, and what to do.
    ApprovalRequired {
        resources: String,
        message: String,
    },
    /// A write refused right after the key policy it needs was written (AWS applies a policy
    /// change lazily): the part waits for its key and is reconciled again soon. What happened.
    KeyPolicyNotYetInEffect(String),
}

impl From<AwsError> for PartError {
    fn from(e: AwsError) -> Self {
        PartError::Aws(e)
    }
}

/// The writes of one part, recorded as drift and applied (or left pending) in order.
pub(crate) struct Part<'a> {
    pub(crate) outcome: &'a mut RegionOutcome,
    pub(crate) write: bool,
    pub(crate) component: Component,
    pub(crate) changed: bool,
}

impl Part<'_> {
    pub(crate) fn differs(&mut self, resource: &str, field: &str, expected: impl ToString, actual: impl ToString) {
        if field == "exists" && self.write {
            self.outcome.created.insert(self.component);
        }
        self.outcome.drift.push(Drift {
            resource: resource.to_string(),
            field: field.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }

    /// Runs `write` when writing is allowed; records it as applied or pending.
    pub(crate) async fn act<F, Fut, E>(&mut self, resource: &str, action: &str, write: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
    {
        self.changed = true;
        let change = Change {
            resource: resource.to_string(),
            action: action.to_string(),
        };
        if !self.write {
            self.outcome.pending.push(change);
            return Ok(());
        }
        write().await?;
        self.outcome.applied.push(change);
        Ok(())
    }

    pub(crate) fn finish(self, result: Result<String, impl Into<PartError>>) {
        let (state, detail) = match result.map_err(Into::into) {
            Ok(detail) if !self.changed => (ComponentState::InSync, detail),
            Ok(detail) if self.write => (ComponentState::Repaired, detail),
            Ok(detail) => (ComponentState::Drifted, detail),
            Err(PartError::ApprovalRequired { resources, message }) => (
                ComponentState::ApprovalRequired(format!("{resources}: {message}")),
                message,
            ),
            Err(PartError::KeyPolicyNotYetInEffect(message)) => {
                self.outcome.retry_soon = true;
                (ComponentState::Waiting(Component::Key), message)
            }
            Err(PartError::Aws(e)) => {
                let detail = format!("{e}");
                (ComponentState::Failed(e), detail)
            }
        };
        let region = self.outcome.region.clone();
        self.outcome
            .parts
            .push((self.component, state, format!("{region}: {detail}")));
    }
}

/// The flow log delivery role (IAM is global: once per account, before the regions).
pub async fn reconcile_flow_log_role(
    clients: &AccountClients,
    specs: &AccountSpecs<'_>,
    write: bool,
    outcome: &mut RegionOutcome,
) -> Result<(), AwsError> {
    let role = ServiceRole {
        name: FLOW_LOG_ROLE,
        policy_name: FLOW_LOG_ROLE_POLICY,
        arn: regional::flow_log_role_arn(specs),
        description: "trailkeeper: lets VPC Flow Logs deliver into trailkeeper's log groups",
        trust: regional::flow_log_role_trust(specs),
        permissions: regional::flow_log_role_policy(specs),
        boundary: Some(crate::desired::iam::flow_log_role_boundary(crate::desired::partition(
            &clients.region,
        ))),
        tags: crate::desired::resource_tags(specs.baseline),
    };
    reconcile_service_role(clients, &role, Component::FlowLogs, write, outcome).await
}

/// A role trailkeeper keeps for an AWS service to assume: its trust, its one inline policy and
/// its permissions boundary.
pub(crate) struct ServiceRole {
    pub(crate) name: &'static str,
    pub(crate) policy_name: &'static str,
    pub(crate) arn: String,
    pub(crate) description: &'static str,
    pub(crate) trust: serde_json::Value,
    pub(crate) permissions: serde_json::Value,
    /// The AWS managed policy that caps the role; None where none caps it and still lets the
    /// service work (S3 replication of SSE-KMS objects needs KMS, which no S3 managed policy grants).
    pub(crate) boundary: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
}

pub(crate) async fn reconcile_service_role(
    clients: &AccountClients,
    role: &ServiceRole,
    component: Component,
    write: bool,
    outcome: &mut RegionOutcome,
) -> Result<(), AwsError> {
    let (trust, permissions, boundary, resource) = (&role.trust, &role.permissions, &role.boundary, &role.arn);
    let observed = iam::observe_role(clients, role.name, role.policy_name).await?;
    let mut part = Part {
        outcome,
        write,
        component,
        changed: false,
    };
    let observed = match observed {
        None => {
            part.differs(resource, "exists", true, false);
            part.act(resource, &format!("create the role {}", role.name), || {
                iam::create_role(
                    clients,
                    role.name,
                    trust,
                    boundary.as_deref(),
                    role.description,
                    &role.tags,
                )
            })
            .await?;
            iam::ObservedRole {
                trust: Some(trust.clone()),
                inline: None,
                boundary: boundary.clone(),
            }
        }
        Some(found) => found,
    };
    let (trust_now, policy_now) = (observed.trust, observed.inline);
    if let Some(boundary) = boundary
        && observed.boundary.as_deref() != Some(boundary.as_str())
    {
        // The boundary caps the role whatever its inline policy says.
        part.differs(
            resource,
            "permissionsBoundary",
            boundary,
            observed.boundary.as_deref().unwrap_or("(none)"),
        );
        part.act(resource, "bound the role by its permissions boundary", || {
            iam::put_boundary(clients, role.name, boundary)
        })
        .await?;
    }
    if !trust_now.as_ref().is_some_and(|t| policy::equivalent(t, trust)) {
        part.differs(
            resource,
            "trustPolicy",
            trust.to_string(),
            trust_now.map_or("(none)".into(), |t| t.to_string()),
        );
        part.act(resource, "put the role's trust policy", || {
            iam::update_trust(clients, role.name, trust)
        })
        .await?;
    }
    if !policy_now.as_ref().is_some_and(|p| policy::equivalent(p, permissions)) {
        part.differs(
            resource,
            "policy",
            permissions.to_string(),
            policy_now.map_or("(none)".into(), |p| p.to_string()),
        );
        part.act(resource, "put the role's policy", || {
            iam::put_role_policy(clients, role.name, role.policy_name, permissions)
        })
        .await?;
    }
    Ok(())
}

/// The service-linked role of AWS Config, for the recorders trailkeeper creates (global, once).
pub async fn reconcile_config_role(
    clients: &AccountClients,
    write: bool,
    outcome: &mut RegionOutcome,
) -> Result<(), AwsError> {
    let role = regional::CONFIG_SERVICE_ROLE;
    if write && iam::ensure_service_linked_role(clients, role, "config.amazonaws.com").await? {
        let action = "create the service-linked role of AWS Config".to_string();
        outcome.applied.push(Change {
            resource: format!("iam:{role}"),
            action,
        });
    }
    Ok(())
}

/// Whether an existing flow log meets the baseline: the traffic type, every desired field, and an
/// aggregation interval no longer than the desired one.
pub fn compliant(flow: &ec2::ObservedFlowLog, desired: &DesiredFlowLogs) -> bool {
    let fields: Vec<&str> = flow.log_format.split_whitespace().collect();
    flow.traffic_type == desired.traffic_type
        && desired
            .fields
            .iter()
            .all(|f| fields.contains(&format!("${{{f}}}").as_str()))
        && flow.max_aggregation_interval <= desired.max_aggregation_interval
}

/// Reconciles one region. `approved`: the RetentionPolicy carries a new approval, so retentions
/// may be shortened.
pub async fn reconcile_region(
    clients: &AccountClients,
    specs: &AccountSpecs<'_>,
    key_arn: Option<&str>,
    write: bool,
    approved: bool,
) -> RegionOutcome {
    let mut outcome = RegionOutcome {
        region: clients.region.clone(),
        ..Default::default()
    };
    let groups = regional::log_groups(specs);
    let flow = regional::flow_logs(specs);
    let agents = regional::agent_configs(specs);
    let rules = regional::config_rules(specs, key_arn);

    // The log groups' key, then the groups: flow logs and the agent deliver into them.
    let mut groups_ok = true;
    let mut log_key = None;
    let mut key_written = false;
    if let Some(key) = regional::log_group_key(specs, &clients.region, &groups) {
        let mut part = Part {
            outcome: &mut outcome,
            write,
            component: Component::Key,
            changed: false,
        };
        let writes_before = part.outcome.applied.len();
        let result = reconcile_region_key(clients, &key, &mut part).await;
        key_written = part.outcome.applied.len() > writes_before;
        match &result {
            Ok(arn) => log_key = arn.clone(),
            Err(_) => groups_ok = false,
        }
        part.finish(result.map(|_| format!("log groups encrypted with {}", regional::LOG_KEY_ALIAS)));
    }
    if !groups.is_empty() && groups_ok {
        let mut part = Part {
            outcome: &mut outcome,
            write,
            component: Component::Retention,
            changed: false,
        };
        let key = LogKey {
            arn: log_key.as_deref(),
            written: key_written,
        };
        let result = reconcile_log_groups(clients, &groups, key, approved, &mut part).await;
        groups_ok = result.is_ok();
        part.finish(result);
    }
    if let Some(flow) = &flow {
        let mut part = Part {
            outcome: &mut outcome,
            write,
            component: Component::FlowLogs,
            changed: false,
        };
        let result = if groups_ok {
            reconcile_flow_logs(clients, flow, &mut part).await
        } else {
            Ok("waiting for the log groups".into())
        };
        part.finish(result);
    }
    if !agents.is_empty() {
        let mut part = Part {
            outcome: &mut outcome,
            write,
            component: Component::InstanceLogs,
            changed: false,
        };
        let tags = crate::desired::resource_tags(specs.baseline);
        let result = agents::reconcile_agents(clients, &agents, &tags, &mut part).await;
        part.finish(result);
    }
    let recorder = regional::recorder(specs, &clients.region);
    if !rules.is_empty() || recorder.is_some() {
        let mut part = Part {
            outcome: &mut outcome,
            write,
            component: Component::ConfigRules,
            changed: false,
        };
        let result = match config_rules::reconcile_recorder(clients, recorder.as_ref(), &mut part).await {
            Ok((recorders, exists)) => {
                if !(part.write && part.changed) {
                    part.outcome.known.recorders = Some(
                        recorders
                            .iter()
                            .cloned()
                            .map(super::cis_evidence::recorder_evidence)
                            .collect(),
                    );
                }
                if rules.is_empty() {
                    Ok(recorder_detail(&recorders, part.changed))
                } else {
                    config_rules::reconcile_rules(clients, &rules, exists, &recorders, &mut part).await
                }
            }
            Err(e) => Err(e),
        };
        part.finish(result);
    }
    outcome
}

/// The line of a region's recorder kept without rules.
fn recorder_detail(recorders: &[crate::aws::config::ObservedRecorder], changed: bool) -> String {
    match recorders {
        [] => "configuration recorder created and started".into(),
        _ if changed => "configuration recorder started".into(),
        found => format!(
            "configuration recorder {} recording",
            found.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A key trailkeeper keeps in one region (the log groups', the monitoring topic's): found by its
/// alias, created or repaired like the trail key. Returns its ARN (None while a plan has yet to
/// create it).
pub(super) async fn reconcile_region_key(
    clients: &AccountClients,
    desired: &crate::desired::DesiredKey,
    part: &mut Part<'_>,
) -> Result<Option<String>, AwsError> {
    let observed = kms::observe_key(clients, &desired.source, None).await?;
    let delta = diff::diff_key(desired, observed.as_ref());
    if let (Some(known), true) = (known_key(desired, observed.as_ref()), delta.actions.is_empty()) {
        part.outcome.known.keys.push(known);
    }
    let alias = match &desired.source {
        crate::desired::KeySource::Create { alias, .. } => alias.as_str(),
        _ => "",
    };
    let resource = format!("kms:{}:{alias}", clients.region);
    for d in &delta.drift {
        part.differs(&resource, &d.field, &d.expected, &d.actual);
    }
    let mut key = observed.map(|k| (k.key_id, k.arn));
    for action in &delta.actions {
        part.act(&resource, &action.to_string(), || {
            crate::engine::writes::apply_key(clients, desired, &mut key, action)
        })
        .await?;
    }
    Ok(key.map(|(_, arn)| arn))
}

/// The log groups' key: its ARN, and whether this reconcile wrote it (created it or put its policy).
struct LogKey<'a> {
    arn: Option<&'a str>,
    written: bool,
}

impl LogKey<'_> {
    /// A refusal to use the key right after its policy was written: KMS applies a policy change
    /// lazily, and CloudWatch Logs says an association "can take up to five minutes to take
    /// effect" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html):
    /// the group waits for its key and is retried soon, rather than failing.
    fn settling(&self, e: AwsError) -> PartError {
        if !self.written || e.kind != crate::aws::ErrorKind::AccessDenied {
            return PartError::Aws(e);
        }
        PartError::KeyPolicyNotYetInEffect(format!(
            "{} was refused right after the log key's policy was written ({}): CloudWatch Logs can take up to five minutes to see a key policy change; retried shortly",
            e.action, e.message
        ))
    }
}

async fn reconcile_log_groups(
    clients: &AccountClients,
    groups: &[regional::DesiredLogGroup],
    log_key: LogKey<'_>,
    approved: bool,
    part: &mut Part<'_>,
) -> Result<String, PartError> {
    let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let observed = logs::observe_log_groups(clients, &names).await?;
    let mut held = Vec::new();
    for group in groups {
        let resource = format!("logs:{}:{}", clients.region, group.name);
        let key = log_key.arn.filter(|_| group.encrypted);
        if let (Some(key), Some(current)) = (key, observed.get(&group.name))
            && !current.kms_key.as_deref().is_some_and(|k| diff::key_matches(k, key))
        {
            // Never the other way: a group is not decrypted when encryption is turned off.
            part.differs(
                &resource,
                "kmsKeyId",
                key,
                current.kms_key.as_deref().unwrap_or("(not encrypted)"),
            );
            part.act(&resource, "encrypt the log group", || async {
                logs::associate_key(clients, &group.name, key)
                    .await
                    .map_err(|e| log_key.settling(e))
            })
            .await?;
        }
        match observed.get(&group.name).map(|g| g.retention_days) {
            None => {
                part.differs(&resource, "exists", true, false);
                part.act(&resource, "create the log group", || async {
                    logs::create_log_group(clients, &group.name, key, &group.tags)
                        .await
                        .map_err(|e| log_key.settling(e))
                })
                .await?;
                if group.retention_days.is_some() {
                    let action = format!("set retention to {}", days(group.retention_days));
                    part.act(&resource, &action, || {
                        logs::set_retention(clients, &group.name, group.retention_days)
                    })
                    .await?;
                }
            }
            Some(current) if current != group.retention_days => {
                part.differs(&resource, "retention", days(group.retention_days), days(current));
                if shortens(current, group.retention_days) && !approved {
                    held.push(group.name.clone());
                    continue;
                }
                let action = format!("set retention to {}", days(group.retention_days));
                part.act(&resource, &action, || {
                    logs::set_retention(clients, &group.name, group.retention_days)
                })
                .await?;
            }
            Some(_) => {}
        }
    }
    if !held.is_empty() {
        return Err(PartError::ApprovalRequired {
            resources: held.join(", "),
            message: "shortening the retention of these log groups needs spec.approval with a new reference in the RetentionPolicy".into(),
        });
    }
    let retention = groups.first().map(|g| days(g.retention_days)).unwrap_or_default();
    Ok(format!("{} log groups ({retention})", groups.len()))
}

async fn reconcile_flow_logs(
    clients: &AccountClients,
    desired: &DesiredFlowLogs,
    part: &mut Part<'_>,
) -> Result<String, AwsError> {
    let (vpcs, flows) = tokio::join!(
        Box::pin(ec2::list_vpcs(clients)),
        Box::pin(ec2::list_flow_logs(clients))
    );
    let (vpcs, flows) = (vpcs?, flows?);
    // As read; the writes below make it unknown again (read after them).
    let read = super::cis_evidence::vpc_evidence(&vpcs, &flows);
    let mut by_vpc: BTreeMap<&str, Vec<&ec2::ObservedFlowLog>> = BTreeMap::new();
    for f in &flows {
        by_vpc.entry(f.resource_id.as_str()).or_default().push(f);
    }
    let covering: Vec<&ec2::ObservedFlowLog> = vpcs
        .iter()
        .flat_map(|v| by_vpc.get(v.as_str()).cloned().unwrap_or_default())
        .collect();
    part.outcome
        .delivery
        .push(crate::judge::delivery::flow_logs(&clients.region, &covering));
    let mut uncovered = Vec::new();
    let mut replace = Vec::new();
    let mut not_compliant = Vec::new();
    for vpc in &vpcs {
        let existing = by_vpc.get(vpc.as_str()).cloned().unwrap_or_default();
        if existing.iter().any(|f| compliant(f, desired)) {
            continue;
        }
        let resource = format!("ec2:{}:{vpc}", clients.region);
        if existing.is_empty() {
            part.differs(&resource, "flowLog", "a flow log with the custom fields", "none");
            uncovered.push(vpc.clone());
        } else {
            part.differs(
                &resource,
                "flowLog",
                "traffic, fields and interval of the baseline",
                "a non-compliant flow log",
            );
            if desired.replace_non_compliant {
                replace.extend(existing.iter().map(|f| f.id.clone()));
                uncovered.push(vpc.clone());
            } else {
                not_compliant.push(vpc.clone());
            }
        }
    }
    if !replace.is_empty() {
        let resource = format!("ec2:{}", clients.region);
        part.act(
            &resource,
            &format!("delete non-compliant flow logs {}", replace.join(", ")),
            || ec2::delete_flow_logs(clients, &replace),
        )
        .await?;
    }
    if !uncovered.is_empty() {
        let resource = format!("ec2:{}", clients.region);
        let action = format!("create flow logs for {}", uncovered.join(", "));
        part.act(&resource, &action, || {
            ec2::create_flow_logs(clients, &uncovered, desired, &desired.tags)
        })
        .await?;
    }
    if !(part.write && part.changed) {
        part.outcome.known.vpcs = Some(read);
    }
    let destination = match &desired.target {
        FlowLogTarget::CloudWatchLogs { log_group, .. } => log_group.clone(),
        FlowLogTarget::S3 { bucket_arn } => bucket_arn.clone(),
    };
    let covered = vpcs.len() - not_compliant.len();
    let mut detail = format!("{covered}/{} VPCs covered, into {destination}", vpcs.len());
    if !not_compliant.is_empty() {
        detail.push_str(&format!(
            "; not compliant (set replaceNonCompliant to replace): {}",
            not_compliant.join(", ")
        ));
        return Err(AwsError {
            kind: crate::aws::ErrorKind::Conflict,
            action: "ec2:CreateFlowLogs".into(),
            resource: not_compliant.join(", "),
            code: "NonCompliantFlowLog".into(),
            message: detail,
        });
    }
    Ok(detail)
}

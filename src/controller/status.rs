//! The status of a LoggingBaseline computed from a reconcile's report: conditions (with
//! `lastTransitionTime` kept unless a condition's status really changed), ARNs, drift and the
//! cost of the reconcile. Pure functions.

use crate::api::{AppliedRetention, Condition, LastReconcile, LoggingBaselineStatus, RetentionPolicySpec};
use crate::engine::account::{AccountReport, Component, ComponentState, EngineError};

/// Condition types.
/// The Ready condition among `conditions`, when there is one.
pub fn ready_condition(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == types::READY)
}

pub mod types {
    pub const READY: &str = "Ready";
    pub const KEY_READY: &str = "KeyReady";
    pub const STORAGE_READY: &str = "StorageReady";
    pub const TRAIL_READY: &str = "TrailReady";
    pub const RETENTION_APPLIED: &str = "RetentionApplied";
    pub const FLOW_LOGS_READY: &str = "FlowLogsReady";
    pub const INSTANCE_LOGS_READY: &str = "InstanceLogsReady";
    pub const CONFIG_RULES_READY: &str = "ConfigRulesReady";
    pub const AUDIT_QUERIES_READY: &str = "AuditQueriesReady";
    pub const DRIFT_EVENTS_READY: &str = "DriftEventsReady";
    pub const MONITORING_READY: &str = "MonitoringReady";
    /// A LogArchive's replica.
    pub const REPLICATION_READY: &str = "ReplicationReady";
    /// Logs arrive: not part of Ready (which is about settings), an alarm of its own.
    pub const DELIVERY_HEALTHY: &str = "DeliveryHealthy";
    /// The account's findings are in Security Hub (spec.securityHub): beside Ready, like delivery.
    pub const FINDINGS_EXPORTED: &str = "FindingsExported";
    /// kstatus' abnormal-true conditions (read by Flux, `kubectl wait`, Helm's `--wait`): True
    /// while the baseline is not Ready and another reconcile can get it there...
    pub const RECONCILING: &str = "Reconciling";
    /// ...or True when no retry will (a person must act: grant, fix the spec, resolve a conflict).
    pub const STALLED: &str = "Stalled";
}

/// Condition reasons.
pub mod reasons {
    pub const IN_SYNC: &str = "InSync";
    pub const REPAIRED: &str = "DriftRepaired";
    /// What this reconcile brought in line it created (a first convergence), not repaired.
    pub const CREATED: &str = "Created";
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const NOT_COMPLIANT: &str = "ExistingTrailNotCompliant";
    pub const NOT_MANAGED: &str = "NotManaged";
    pub const APPROVAL_REQUIRED: &str = "ApprovalRequired";
    pub const WAITING: &str = "WaitingForDependency";
    /// A member's trail waits until its LogArchive's policies admit it.
    pub const WAITING_FOR_ARCHIVE: &str = "WaitingForLogArchive";
    pub const INVALID_REFERENCE: &str = "InvalidReference";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const RECONCILED: &str = "Reconciled";
    /// A policy that passes its kind's rules: the baselines that use it apply it.
    pub const ACCEPTED: &str = "Accepted";
    pub const COMPONENTS_NOT_READY: &str = "ComponentsNotReady";
    /// The reconcile did not finish within its bound (AWS did not answer in time).
    pub const TIMEOUT: &str = "Timeout";
    /// Another LoggingBaseline (older) keeps the same account.
    pub const CONFLICT: &str = "Conflict";
    pub const DELIVERING: &str = "Delivering";
    /// DeliveryHealthy Unknown: the deliveries were not read yet (the trail was just created).
    pub const AWAITING_FIRST_DELIVERY: &str = "AwaitingFirstDelivery";
    pub const DELIVERY_FAILING: &str = "DeliveryFailing";
    /// The findings were imported (or were in line) in Security Hub.
    pub const EXPORTED: &str = "Exported";
}

/// DeliveryHealthy, when the trail's deliveries could be read: the first failing part named.
pub fn delivery_condition(report: &AccountReport) -> Option<Condition> {
    if !report.delivery_observed {
        return None;
    }
    Some(match crate::judge::delivery::first_problem(&report.delivery) {
        Some(failing) => condition(
            types::DELIVERY_HEALTHY,
            false,
            reasons::DELIVERY_FAILING,
            failing.problem.clone().unwrap_or_default(),
        ),
        None => {
            let seen: Vec<String> = report
                .delivery
                .iter()
                .map(|f| match f.age_seconds {
                    Some(age) => format!("{} {} min ago", f.component, age / 60),
                    None => format!("{} (awaiting its first delivery)", f.component),
                })
                .collect();
            condition(
                types::DELIVERY_HEALTHY,
                true,
                reasons::DELIVERING,
                format!("logs delivered: {}", seen.join(", ")),
            )
        }
    })
}

pub(crate) fn condition(type_: &str, ok: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: None,
        observed_generation: None,
    }
}

fn component_type(c: Component) -> &'static str {
    match c {
        Component::Key => types::KEY_READY,
        Component::Storage => types::STORAGE_READY,
        Component::Trail => types::TRAIL_READY,
        Component::Retention => types::RETENTION_APPLIED,
        Component::FlowLogs => types::FLOW_LOGS_READY,
        Component::InstanceLogs => types::INSTANCE_LOGS_READY,
        Component::ConfigRules => types::CONFIG_RULES_READY,
        Component::AuditQueries => types::AUDIT_QUERIES_READY,
        Component::DriftEvents => types::DRIFT_EVENTS_READY,
        Component::Monitoring => types::MONITORING_READY,
        Component::Replication => types::REPLICATION_READY,
    }
}

fn component_condition(c: Component, state: &ComponentState, report: &AccountReport) -> Condition {
    let mut condition = component_condition_alone(c, state, report);
    // The per-region detail (VPCs covered, log groups, rules) follows the condition's own message.
    if let Some(details) = report.details.get(&c)
        && !matches!(state, ComponentState::Failed(_))
    {
        condition.message = format!("{} ({})", condition.message, details.join("; "));
    }
    condition
}

fn component_condition_alone(c: Component, state: &ComponentState, report: &AccountReport) -> Condition {
    let t = component_type(c);
    match state {
        ComponentState::InSync => condition(t, true, reasons::IN_SYNC, "in line with the baseline".into()),
        ComponentState::Repaired if report.created.contains(&c) => {
            let n = report.applied.len();
            condition(
                t,
                true,
                reasons::CREATED,
                format!("created with the baseline's settings ({n} changes to the account this reconcile)"),
            )
        }
        ComponentState::Repaired => {
            let n = report.applied.len();
            condition(
                t,
                true,
                reasons::REPAIRED,
                format!("brought in line with the baseline ({n} changes to the account this reconcile)"),
            )
        }
        ComponentState::NotManaged => condition(
            t,
            true,
            reasons::NOT_MANAGED,
            "not managed for an Existing trail".into(),
        ),
        ComponentState::Drifted => {
            let fields: Vec<String> = report
                .drift
                .iter()
                .map(|d| format!("{} {}", d.resource, d.field))
                .collect();
            condition(
                t,
                false,
                reasons::DRIFT_DETECTED,
                format!("drift, not repaired in Observe mode: {}", fields.join(", ")),
            )
        }
        ComponentState::NotCompliant => {
            let fields: Vec<String> = report
                .not_compliant
                .iter()
                .map(|d| format!("{} ({} expected)", d.field, d.expected))
                .collect();
            condition(
                t,
                false,
                reasons::NOT_COMPLIANT,
                format!(
                    "the existing trail differs where trailkeeper may not change it: {}; fix it, or list the setting in the TrailPolicy's manageExisting",
                    fields.join(", ")
                ),
            )
        }
        ComponentState::ApprovalRequired(message) => condition(t, false, reasons::APPROVAL_REQUIRED, message.clone()),
        ComponentState::Failed(e) => condition(t, false, e.reason(), failure_message(e)),
        ComponentState::Waiting(on) => condition(
            t,
            false,
            reasons::WAITING,
            format!("waiting for {} to be ready", component_type(*on)),
        ),
        ComponentState::WaitingForArchive(message) => {
            condition(t, false, reasons::WAITING_FOR_ARCHIVE, message.clone())
        }
        ComponentState::Refused { reason, message } => condition(t, false, reason, message.clone()),
        ComponentState::NotEffective { reason, message } => condition(t, false, reason, message.clone()),
    }
}

/// The conditions of a reconcile, Ready last.
pub fn conditions(report: &AccountReport) -> Vec<Condition> {
    if let Some(error) = &report.error {
        let message = match error {
            EngineError::Aws(e) => failure_message(e),
            other => other.to_string(),
        };
        let ready = condition(types::READY, false, error.reason(), message);
        return kstatus_condition(&ready).into_iter().chain([ready]).collect();
    }
    let mut out: Vec<Condition> = Component::ALL
        .iter()
        .filter_map(|c| report.components.get(c).map(|s| component_condition(*c, s, report)))
        .collect();
    let not_ready: Vec<&Condition> = out.iter().filter(|c| c.status != "True").collect();
    let ready = if not_ready.is_empty() {
        condition(
            types::READY,
            true,
            reasons::RECONCILED,
            "the account is at the baseline".into(),
        )
    } else {
        // The cause first: a component waiting for another says less than the one it waits for.
        let first = not_ready
            .iter()
            .find(|c| c.reason != reasons::WAITING)
            .copied()
            .unwrap_or(not_ready[0]);
        let names: Vec<&str> = not_ready.iter().map(|c| c.type_.as_str()).collect();
        condition(
            types::READY,
            false,
            &first.reason,
            format!("{} not ready: {}", names.join(", "), first.message),
        )
    };
    out.extend(delivery_condition(report));
    out.extend(kstatus_condition(&ready));
    out.push(ready);
    out
}

/// The reasons of a Ready False that no retry fixes: a person must act (grant the IAM action, fix
/// the spec or the reference, approve, resolve the conflict, point at the right account, repair
/// what an Observe-mode baseline only reports).
const STALLED_REASONS: &[&str] = &[
    "AccessDenied",
    "WrongAccount",
    "PreconditionFailed",
    "Conflict",
    "InvalidRequest",
    reasons::INVALID_SPEC,
    reasons::INVALID_REFERENCE,
    reasons::APPROVAL_REQUIRED,
    reasons::NOT_COMPLIANT,
    // Observe mode: trailkeeper will not repair it.
    reasons::DRIFT_DETECTED,
    // A second trail beside AWS Control Tower's: a person chooses how to proceed.
    crate::judge::control_tower::REASON,
    // The job that was to bring the replica's missing objects over failed: never run twice.
    crate::engine::archive::BATCH_REPLICATION_FAILED,
];

/// kstatus' reading of Ready: Stalled (with Ready's reason) for what no retry fixes, Reconciling
/// while another reconcile can bring the baseline in line, nothing once Ready (kstatus: Current).
/// https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md
pub fn kstatus_condition(ready: &Condition) -> Option<Condition> {
    if ready.status == "True" {
        return None;
    }
    let type_ = if STALLED_REASONS.contains(&ready.reason.as_str()) {
        types::STALLED
    } else {
        types::RECONCILING
    };
    Some(Condition {
        type_: type_.to_string(),
        status: "True".to_string(),
        ..ready.clone()
    })
}

/// `ready` and, before it, its kstatus reading (`kstatus_condition`).
pub fn with_kstatus(ready: Condition) -> Vec<Condition> {
    let mut next: Vec<Condition> = kstatus_condition(&ready).into_iter().collect();
    next.push(ready);
    next
}

/// DeliveryHealthy when this reconcile did not read the deliveries: the last verdict stands, and
/// a baseline that never had one awaits its first delivery (Unknown, not blank).
fn delivery_not_read(previous: &[Condition]) -> Condition {
    previous
        .iter()
        .find(|c| c.type_ == types::DELIVERY_HEALTHY)
        .cloned()
        .unwrap_or_else(|| Condition {
            type_: types::DELIVERY_HEALTHY.to_string(),
            status: "Unknown".to_string(),
            reason: reasons::AWAITING_FIRST_DELIVERY.to_string(),
            message: "the trail's deliveries are read from the next reconcile on (it was just created, or is not readable yet)".to_string(),
            last_transition_time: None,
            observed_generation: None,
        })
}

/// Carries `lastTransitionTime` over from the previous conditions where the status did not change;
/// stamps `now` where it did (or the condition is new).
pub fn merge_conditions(
    previous: &[Condition],
    mut next: Vec<Condition>,
    now: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    for c in &mut next {
        let before = previous.iter().find(|p| p.type_ == c.type_);
        c.last_transition_time = match before {
            Some(p) if p.status == c.status => p.last_transition_time.clone().or_else(|| Some(now.to_string())),
            _ => Some(now.to_string()),
        };
        c.observed_generation = generation;
    }
    next
}

/// The retention in force after a reconcile that applied `retention` (kept from the previous status
/// when retention was not applied).
pub fn applied_retention(
    report: &AccountReport,
    retention: &RetentionPolicySpec,
    policy_name: &str,
    previous: Option<&AppliedRetention>,
) -> Option<AppliedRetention> {
    let applied = matches!(
        report.components.get(&Component::Retention),
        Some(ComponentState::InSync) | Some(ComponentState::Repaired)
    );
    if !applied {
        return previous.cloned();
    }
    let lock = &retention.trail_logs.object_lock;
    Some(AppliedRetention {
        policy: policy_name.to_string(),
        lock_mode: format!("{:?}", lock.mode),
        lock_days: lock.default_retention_days,
        trail_logs_expire_after_days: retention.trail_logs.expire_after_days,
        trail_logs_noncurrent_expire_after_days: retention.trail_logs.noncurrent_versions_expire_after_days,
        access_logs_expire_after_days: retention.access_logs.expire_after_days,
        instance_logs_retention_days: retention.instance_logs.retention_days,
        flow_logs_retention_days: retention.flow_logs.retention_days,
        approval: retention.approval.as_ref().map(|a| a.reference.clone()),
    })
}

/// The whole status of a reconcile.
pub fn from_report(
    report: &AccountReport,
    previous: Option<&LoggingBaselineStatus>,
    generation: Option<i64>,
    now: &str,
    retention: &RetentionPolicySpec,
    policy_name: &str,
) -> LoggingBaselineStatus {
    let previous_conditions = previous.map(|p| p.conditions.as_slice()).unwrap_or_default();
    let mut next = conditions(report);
    if !report.delivery_observed && report.error.is_none() {
        // Before Ready, which stays last.
        next.insert(next.len() - 1, delivery_not_read(previous_conditions));
    }
    LoggingBaselineStatus {
        observed_generation: generation,
        conditions: merge_conditions(previous_conditions, next, now, generation),
        trail_arn: report.trail_arn.clone(),
        bucket_name: report.bucket_name.clone(),
        access_log_bucket_name: report.access_log_bucket_name.clone(),
        kms_key_arn: report.key_arn.clone(),
        drift: report.drift.iter().chain(&report.not_compliant).cloned().collect(),
        last_reconcile: Some(LastReconcile {
            time: now.to_string(),
            reads: report.calls.reads,
            writes: report.calls.writes,
            duration_ms: report.duration.as_millis() as u64,
        }),
        applied_retention: applied_retention(
            report,
            retention,
            policy_name,
            previous.and_then(|p| p.applied_retention.as_ref()),
        ),
        audit_queries: report.audit_queries.clone(),
        // Judged only when the account could be read (not after a wrong-account error).
        compliance: report
            .error
            .is_none()
            .then(|| crate::judge::compliance::status(&report.evidence)),
        // Verified on its own schedule (the controller): the last result stands until the next.
        integrity: previous.and_then(|p| p.integrity.clone()),
        // Swept on its own schedule too (the controller sets the new one).
        compliance_sweep: previous.and_then(|p| p.compliance_sweep.clone()),
        duplicate_trails: report.duplicate_trails.clone(),
        control_tower: report.control_tower.as_ref().map(|t| crate::api::ControlTowerStatus {
            trail_arn: t.arn.clone(),
            log_archive_bucket: t.bucket.clone(),
            message: t.covered(),
        }),
        // Exported after the status is judged (the controller): the last export stands until then.
        security_hub: previous.and_then(|p| p.security_hub.clone()),
        // With sharding, stamped when written (`baselines::patch_status`).
        reconciled_by: None,
    }
}

/// A status for a baseline that could not be reconciled at all (an invalid reference): a single
/// False Ready condition, the rest of the previous status kept.
/// Ready False for a reason that kept the reconcile from running (an invalid spec, a timeout);
/// the other conditions stay as they were.
pub fn not_ready(
    previous: Option<&LoggingBaselineStatus>,
    generation: Option<i64>,
    now: &str,
    reason: &str,
    message: &str,
) -> LoggingBaselineStatus {
    let mut status = previous.cloned().unwrap_or_default();
    let ready = condition(types::READY, false, reason, message.to_string());
    let others: Vec<Condition> = status
        .conditions
        .iter()
        .filter(|c| ![types::READY, types::RECONCILING, types::STALLED].contains(&c.type_.as_str()))
        .cloned()
        .collect();
    let mut next = others;
    next.extend(with_kstatus(ready));
    status.conditions = merge_conditions(&status.conditions, next, now, generation);
    status.observed_generation = generation;
    status
}

/// A failure as the controller reports it: what may pass on its own says it is tried again
/// (the controller's backoff), what needs a person says what to do (the error's own words).
fn failure_message(e: &crate::aws::AwsError) -> String {
    match e.kind {
        crate::aws::ErrorKind::Transient | crate::aws::ErrorKind::Throttled => {
            format!("{e}; trailkeeper tries again with backoff")
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(type_: &str, status: &str, time: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            last_transition_time: Some(time.into()),
            observed_generation: None,
        }
    }

    #[test]
    fn transition_time_is_kept_unless_the_status_changes() {
        let previous = vec![c("Ready", "True", "t0"), c("KeyReady", "True", "t0")];
        let mut next = vec![c("Ready", "True", ""), c("KeyReady", "False", "")];
        next[1].reason = "AccessDenied".into();
        let merged = merge_conditions(&previous, next, "t1", Some(3));
        assert_eq!(merged[0].last_transition_time.as_deref(), Some("t0"));
        assert_eq!(merged[1].last_transition_time.as_deref(), Some("t1"));
        assert_eq!(merged[1].observed_generation, Some(3));
    }

    fn report_with(component: Component, state: ComponentState, created: bool) -> AccountReport {
        let mut report = AccountReport::new("111122223333", "us-east-1", crate::api::Mode::Enforce);
        report.components.insert(component, state);
        if created {
            report.created.insert(component);
        }
        report
    }

    fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
        conditions.iter().find(|c| c.type_ == type_)
    }

    #[test]
    fn what_a_reconcile_created_says_created_and_what_it_repaired_says_drift_repaired() {
        let created = conditions(&report_with(Component::Trail, ComponentState::Repaired, true));
        assert_eq!(find(&created, types::TRAIL_READY).unwrap().reason, reasons::CREATED);
        let repaired = conditions(&report_with(Component::Trail, ComponentState::Repaired, false));
        assert_eq!(find(&repaired, types::TRAIL_READY).unwrap().reason, reasons::REPAIRED);
    }

    #[test]
    fn kstatus_reads_stalled_for_what_a_person_must_fix_and_reconciling_otherwise() {
        let denied = crate::aws::AwsError {
            kind: crate::aws::ErrorKind::AccessDenied,
            code: "AccessDenied".into(),
            message: "no".into(),
            action: "kms:CreateKey".into(),
            resource: "key".into(),
        };
        let stalled = conditions(&report_with(Component::Key, ComponentState::Failed(denied), false));
        let stalled_condition = find(&stalled, types::STALLED).expect("Stalled");
        assert_eq!(
            (stalled_condition.status.as_str(), stalled_condition.reason.as_str()),
            ("True", "AccessDenied")
        );
        assert!(find(&stalled, types::RECONCILING).is_none());
        let waiting = conditions(&report_with(
            Component::Storage,
            ComponentState::Waiting(Component::Key),
            false,
        ));
        assert_eq!(
            find(&waiting, types::RECONCILING).map(|c| c.status.as_str()),
            Some("True")
        );
        assert!(find(&waiting, types::STALLED).is_none());
        let ready = conditions(&report_with(Component::Key, ComponentState::InSync, false));
        assert!(find(&ready, types::STALLED).is_none() && find(&ready, types::RECONCILING).is_none());
        // Ready stays last.
        assert_eq!(stalled.last().unwrap().type_, types::READY);
        // A reconcile that could not run: Stalled for an invalid spec, Reconciling for a timeout.
        let invalid = not_ready(None, Some(1), "t", reasons::INVALID_SPEC, "bad");
        assert!(find(&invalid.conditions, types::STALLED).is_some());
        let timeout = not_ready(Some(&invalid), Some(1), "t", reasons::TIMEOUT, "slow");
        assert!(find(&timeout.conditions, types::RECONCILING).is_some());
        assert!(
            find(&timeout.conditions, types::STALLED).is_none(),
            "the old Stalled is gone"
        );
    }

    #[test]
    fn delivery_health_awaits_the_first_delivery_and_then_keeps_the_last_verdict() {
        let report = report_with(Component::Trail, ComponentState::Repaired, true);
        let retention = RetentionPolicySpec::default();
        let first = from_report(&report, None, Some(1), "t0", &retention, "built-in");
        let delivery =
            find(&first.conditions, types::DELIVERY_HEALTHY).expect("DeliveryHealthy from the first reconcile");
        assert_eq!(
            (delivery.status.as_str(), delivery.reason.as_str()),
            ("Unknown", reasons::AWAITING_FIRST_DELIVERY)
        );
        assert_eq!(first.conditions.last().unwrap().type_, types::READY);
        let mut healthy = first.clone();
        healthy.conditions.retain(|c| c.type_ != types::DELIVERY_HEALTHY);
        healthy.conditions.insert(0, c(types::DELIVERY_HEALTHY, "True", "t1"));
        let next = from_report(&report, Some(&healthy), Some(1), "t2", &retention, "built-in");
        assert_eq!(find(&next.conditions, types::DELIVERY_HEALTHY).unwrap().status, "True");
    }

    #[test]
    fn a_new_condition_gets_the_current_time() {
        let merged = merge_conditions(&[], vec![c("Ready", "False", "")], "t1", None);
        assert_eq!(merged[0].last_transition_time.as_deref(), Some("t1"));
    }
}

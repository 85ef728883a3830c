//! The status of a LoggingBaseline computed from a reconcile's report: conditions (with
//! `lastTransitionTime` kept unless a condition's status really changed), ARNs, drift and the
//! cost of the reconcile. Pure functions.

use crate::api::{AppliedRetention, Condition, LastReconcile, LoggingBaselineStatus, RetentionPolicySpec};
use crate::engine::account::{AccountReport, Component, ComponentState};

/// Condition types.
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
    /// Logs arrive: not part of Ready (which is about settings), an alarm of its own.
    pub const DELIVERY_HEALTHY: &str = "DeliveryHealthy";
}

/// Condition reasons.
pub mod reasons {
    pub const IN_SYNC: &str = "InSync";
    pub const REPAIRED: &str = "DriftRepaired";
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const NOT_COMPLIANT: &str = "ExistingTrailNotCompliant";
    pub const NOT_MANAGED: &str = "NotManaged";
    pub const APPROVAL_REQUIRED: &str = "ApprovalRequired";
    pub const WAITING: &str = "WaitingForDependency";
    pub const INVALID_REFERENCE: &str = "InvalidReference";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const RECONCILED: &str = "Reconciled";
    pub const COMPONENTS_NOT_READY: &str = "ComponentsNotReady";
    /// The reconcile did not finish within its bound (AWS did not answer in time).
    pub const TIMEOUT: &str = "Timeout";
    pub const DELIVERING: &str = "Delivering";
    pub const DELIVERY_FAILING: &str = "DeliveryFailing";
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

fn condition(type_: &str, ok: bool, reason: &str, message: String) -> Condition {
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
        ComponentState::Repaired => {
            let n = report.applied.len();
            condition(
                t,
                true,
                reasons::REPAIRED,
                format!("brought in line with the baseline ({n} changes this reconcile)"),
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
        ComponentState::Failed(e) => condition(t, false, e.reason(), e.to_string()),
        ComponentState::Waiting(on) => condition(
            t,
            false,
            reasons::WAITING,
            format!("waiting for {} to be ready", component_type(*on)),
        ),
    }
}

/// The conditions of a reconcile, Ready last.
pub fn conditions(report: &AccountReport) -> Vec<Condition> {
    if let Some(error) = &report.error {
        return vec![condition(types::READY, false, error.reason(), error.to_string())];
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
        let first = not_ready[0];
        let names: Vec<&str> = not_ready.iter().map(|c| c.type_.as_str()).collect();
        condition(
            types::READY,
            false,
            &first.reason,
            format!("{} not ready: {}", names.join(", "), first.message),
        )
    };
    out.extend(delivery_condition(report));
    out.push(ready);
    out
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
    LoggingBaselineStatus {
        observed_generation: generation,
        conditions: merge_conditions(previous_conditions, conditions(report), now, generation),
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
        .filter(|c| c.type_ != types::READY)
        .cloned()
        .collect();
    let mut next = others;
    next.push(ready);
    status.conditions = merge_conditions(&status.conditions, next, now, generation);
    status.observed_generation = generation;
    status
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

    #[test]
    fn a_new_condition_gets_the_current_time() {
        let merged = merge_conditions(&[], vec![c("Ready", "False", "")], "t1", None);
        assert_eq!(merged[0].last_transition_time.as_deref(), Some("t1"));
    }
}

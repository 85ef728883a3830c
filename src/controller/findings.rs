//! The account's findings in AWS Security Hub (spec.securityHub): exported once the status is
//! judged (compliance with an Organization trail's owner's section 4, integrity, duplicate trails),
//! archived when the baseline goes. Condition FindingsExported, beside Ready (Ready is about the
//! account's logging; the findings report on it), with an Event when it fails and when it recovers.

use kube::runtime::events::EventType;

use super::context::Context;
use super::status::{condition, reasons, types};
use super::writer;
use crate::api::{LoggingBaseline, LoggingBaselineStatus, TrailPolicySpec};
use crate::desired::findings::{FindingsInput, FindingsTarget, findings};
use crate::engine::findings::{archive_all, export};

/// Exports the findings of `next` (the status this reconcile judged) and records the outcome in it.
/// Nothing when the baseline exports none, or when the account could not be judged (no compliance:
/// exporting then would archive every control's finding).
pub(super) async fn export_findings(
    ctx: &Context,
    baseline: &LoggingBaseline,
    trail_policy: &TrailPolicySpec,
    key: &str,
    deadline: tokio::time::Instant,
    next: &mut LoggingBaselineStatus,
) {
    let Some(target) = FindingsTarget::of(&baseline.spec) else {
        withdraw(ctx, baseline, key, next).await;
        return;
    };
    if next.compliance.is_none() {
        return;
    }
    let desired = findings(&FindingsInput {
        spec: &baseline.spec,
        trail_policy,
        baseline: key,
        status: next,
    });
    let clients = ctx.aws.for_baseline(key, &baseline.spec);
    let outcome = tokio::time::timeout_at(deadline, Box::pin(export(&clients, &target, &desired))).await;
    let exported = match outcome {
        Ok(Ok(status)) => {
            let message = format!(
                "{} findings in Security Hub of account {} in {} ({} failed); this reconcile imported {}, archived {}, resolved {}",
                status.findings, target.account, target.region, status.failed, status.imported, status.archived, status.resolved
            );
            next.security_hub = Some(status);
            condition(types::FINDINGS_EXPORTED, true, reasons::EXPORTED, message)
        }
        Ok(Err(e)) => condition(types::FINDINGS_EXPORTED, false, e.reason(), e.to_string()),
        Err(_) => condition(
            types::FINDINGS_EXPORTED,
            false,
            reasons::TIMEOUT,
            "the findings were not exported before the reconcile's bound: trailkeeper tries again at the next reconcile".into(),
        ),
    };
    let before = baseline
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == types::FINDINGS_EXPORTED))
        .map(|c| c.status.clone());
    match (before.as_deref(), exported.status.as_str()) {
        (b, "False") if b != Some("False") => {
            writer::publish_event(
                ctx.writers.recorder(ctx.shards.of(&baseline.spec.account_id)),
                baseline,
                EventType::Warning,
                &exported.reason,
                "ExportFindings",
                exported.message.clone(),
            )
            .await;
        }
        (Some("False"), "True") => {
            writer::publish_event(
                ctx.writers.recorder(ctx.shards.of(&baseline.spec.account_id)),
                baseline,
                EventType::Normal,
                "FindingsExported",
                "ExportFindings",
                exported.message.clone(),
            )
            .await;
        }
        _ => {}
    }
    put_condition(baseline, next, exported);
}

/// FindingsExported in `next`, its transition time kept from the previous status, before Ready
/// (which stays last).
fn put_condition(baseline: &LoggingBaseline, next: &mut LoggingBaselineStatus, c: crate::api::Condition) {
    let previous = baseline
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let merged =
        super::status::merge_conditions(previous, vec![c], &super::context::now(), baseline.metadata.generation);
    next.conditions.retain(|c| c.type_ != types::FINDINGS_EXPORTED);
    let at = next.conditions.len().saturating_sub(1);
    for (i, c) in merged.into_iter().enumerate() {
        next.conditions.insert(at + i, c);
    }
}

/// securityHub turned off (or its Region changed away) after findings were exported: the ones the
/// last export left in Security Hub are archived, and status forgets them once they are.
async fn withdraw(ctx: &Context, baseline: &LoggingBaseline, key: &str, next: &mut LoggingBaselineStatus) {
    let Some(last) = next.security_hub.clone() else {
        return;
    };
    let target = FindingsTarget {
        account: baseline.spec.account_id.clone(),
        partition: crate::desired::partition(&last.region),
        region: last.region.clone(),
    };
    let clients = ctx.aws.for_baseline(key, &baseline.spec);
    match tokio::time::timeout(ctx.settings.reconcile_timeout, Box::pin(archive_all(&clients, &target))).await {
        Ok(Ok(n)) => {
            next.security_hub = None;
            next.conditions.retain(|c| c.type_ != types::FINDINGS_EXPORTED);
            let note = format!(
                "spec.securityHub is off: {n} findings archived in Security Hub of account {} in {}",
                target.account, target.region
            );
            writer::publish_event(
                ctx.writers.recorder(ctx.shards.of(&baseline.spec.account_id)),
                baseline,
                EventType::Normal,
                "FindingsArchived",
                "ExportFindings",
                note,
            )
            .await;
        }
        Ok(Err(e)) => {
            let message =
                format!("spec.securityHub is off, but the findings exported before are not archived yet: {e}");
            put_condition(
                baseline,
                next,
                condition(types::FINDINGS_EXPORTED, false, e.reason(), message),
            );
        }
        Err(_) => {
            let message = "spec.securityHub is off, but archiving the findings exported before did not finish in time: trailkeeper tries again at the next reconcile".to_string();
            put_condition(
                baseline,
                next,
                condition(types::FINDINGS_EXPORTED, false, reasons::TIMEOUT, message),
            );
        }
    }
}

/// The deleted baseline's findings archived: nothing judges them any more. A failure is an Event
/// and does not hold the deletion (the findings expire 90 days after their last update).
pub(super) async fn archive_findings(ctx: &Context, baseline: &LoggingBaseline, key: &str) {
    let Some(target) = FindingsTarget::of(&baseline.spec) else {
        return;
    };
    let clients = ctx.aws.for_baseline(key, &baseline.spec);
    let bounded = tokio::time::timeout(ctx.settings.reconcile_timeout, Box::pin(archive_all(&clients, &target))).await;
    let (type_, reason, note) = match bounded {
        Ok(Ok(n)) => (
            EventType::Normal,
            "FindingsArchived",
            format!("{n} findings archived in Security Hub of account {} in {}", target.account, target.region),
        ),
        Ok(Err(e)) => (
            EventType::Warning,
            "FindingsNotArchived",
            format!("{e}; the findings stay active until Security Hub expires them, 90 days after their last update"),
        ),
        Err(_) => (
            EventType::Warning,
            "FindingsNotArchived",
            "Security Hub did not answer in time; the findings stay active until Security Hub expires them, 90 days after their last update".to_string(),
        ),
    };
    writer::publish_event(
        ctx.writers.recorder(ctx.shards.of(&baseline.spec.account_id)),
        baseline,
        type_,
        reason,
        "Delete",
        note,
    )
    .await;
}

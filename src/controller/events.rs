//! The Events of a LoggingBaseline, through its account's shard's recorder: what a reconcile
//! applied, a change of delivery health, a Ready that turned false.

use kube::runtime::events::EventType;

use super::context::Context;
use super::{status, writer};
use crate::api::{LoggingBaseline, LoggingBaselineStatus};
use crate::engine::account::AccountReport;

pub(super) async fn publish(
    ctx: &Context,
    baseline: &LoggingBaseline,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let recorder = ctx.writers.recorder(ctx.shards.of(&baseline.spec.account_id));
    writer::publish_event(recorder, baseline, type_, reason, action, note).await;
}

/// The Events of a reconcile: the changes applied, a change of delivery health, and a Ready that
/// turned false.
pub(super) async fn publish_outcome(
    ctx: &Context,
    baseline: &LoggingBaseline,
    report: &AccountReport,
    next: &LoggingBaselineStatus,
) {
    let previous = baseline.status.as_ref();
    if !report.applied.is_empty() {
        let changes: Vec<String> = report
            .applied
            .iter()
            .map(|c| format!("{}: {}", c.resource, c.action))
            .collect();
        let reason = if report.drift.iter().any(|d| d.field == "exists") {
            "Provisioned"
        } else {
            "DriftRepaired"
        };
        publish(ctx, baseline, EventType::Normal, reason, "Apply", changes.join("; ")).await;
    }
    let delivery_of = |s: &LoggingBaselineStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == status::types::DELIVERY_HEALTHY)
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    let delivery_before = previous.and_then(delivery_of).map(|(s, _)| s);
    if let Some((now_status, message)) = delivery_of(next)
        && delivery_before.as_deref() != Some(now_status.as_str())
    {
        // Failing is news; healthy is news only after failing (the first healthy observation of a
        // new baseline, after AwaitingFirstDelivery, is not); Unknown never is.
        match now_status.as_str() {
            "False" => {
                let reason = status::reasons::DELIVERY_FAILING;
                publish(ctx, baseline, EventType::Warning, reason, "Deliver", message).await;
            }
            "True" if delivery_before.as_deref() == Some("False") => {
                publish(
                    ctx,
                    baseline,
                    EventType::Normal,
                    "DeliveryRecovered",
                    "Deliver",
                    message,
                )
                .await;
            }
            _ => {}
        }
    }
    if previous.and_then(ready_of) != ready_of(next)
        && let Some(c) = next
            .conditions
            .iter()
            .find(|c| c.type_ == status::types::READY && c.status != "True")
    {
        publish(
            ctx,
            baseline,
            EventType::Warning,
            &c.reason,
            "Reconcile",
            c.message.clone(),
        )
        .await;
    }
}

/// Ready's status and reason, to tell when it changed.
pub(super) fn ready_of(status: &LoggingBaselineStatus) -> Option<(String, String)> {
    status::ready_condition(&status.conditions).map(|c| (c.status.clone(), c.reason.clone()))
}

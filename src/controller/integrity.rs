//! The scheduled integrity verification of a LoggingBaseline's delivered logs
//! (spec.verifyIntegrity): when its interval has passed, into the status, with an Event when they
//! are not intact.

use kube::runtime::events::EventType;

use super::context::{Context, key_of, now};
use super::events::publish;
use crate::api::{LoggingBaseline, LoggingBaselineStatus, TrailPolicySpec};

/// The integrity of the delivered logs, when a verification is due: into `next`, with an Event
/// when they are not intact.
pub(super) async fn verify_integrity(
    ctx: &Context,
    baseline: &LoggingBaseline,
    trail_policy: &TrailPolicySpec,
    archive: Option<&crate::api::LogArchive>,
    deadline: tokio::time::Instant,
    next: &mut LoggingBaselineStatus,
) {
    // A member's logs are in the archive, read with the archive account's credentials.
    let (clients, location) = match archive {
        Some(a) => (
            ctx.aws.for_baseline(
                &super::archives::key_of(a),
                &crate::desired::archive::as_baseline(&a.spec),
            ),
            Some(crate::engine::verify::archive_location(
                &a.spec,
                &baseline.spec,
                trail_policy,
            )),
        ),
        None => (ctx.aws.for_baseline(&key_of(baseline), &baseline.spec), None),
    };
    let previous = baseline.status.as_ref();
    let due = verify_if_due(baseline, trail_policy, &clients, location, previous, deadline);
    let Some(verified) = due.await else {
        return;
    };
    if !verified.valid {
        let message = format!(
            "the delivered logs of {} to {} are not intact: {}",
            verified.from,
            verified.to,
            verified.problems.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        );
        publish(
            ctx,
            baseline,
            EventType::Warning,
            "IntegrityViolated",
            "Verify",
            message,
        )
        .await;
    }
    crate::runtime::metrics::set_integrity(&baseline.spec.account_id, verified.valid);
    next.integrity = Some(verified);
}

/// The scheduled integrity verification (spec.verifyIntegrity), when its interval has passed since
/// the last: the digests of the period before, ending an hour ago (digests are hourly).
async fn verify_if_due(
    baseline: &LoggingBaseline,
    trail_policy: &TrailPolicySpec,
    clients: &crate::aws::AccountClients,
    location: Option<crate::engine::verify::LogLocation>,
    previous: Option<&crate::api::LoggingBaselineStatus>,
    deadline: tokio::time::Instant,
) -> Option<crate::api::IntegrityStatus> {
    use aws_smithy_types::DateTime;
    use aws_smithy_types::date_time::Format;
    let now_text = now();
    let now_secs = DateTime::from_str(&now_text, Format::DateTime).ok()?.secs();
    let interval = i64::from(baseline.spec.verify_integrity.interval_hours.max(1)) * 3600;
    let last = previous
        .and_then(|p| p.integrity.as_ref())
        .and_then(|i| DateTime::from_str(&i.verified_at, Format::DateTime).ok())
        .map(|t| t.secs());
    if last.is_some_and(|t| now_secs - t < interval) {
        return None;
    }
    let to = now_secs - 3600;
    let from = to - interval;
    let text = |t: i64| DateTime::from_secs(t).fmt(Format::DateTime).unwrap_or_default();
    let run = async {
        let location = match location {
            Some(l) => l,
            None => crate::engine::verify::location_of(clients, &baseline.spec, trail_policy).await?,
        };
        crate::engine::verify::verify(clients, &location, from, to).await
    };
    let outcome = tokio::time::timeout_at(deadline, run).await;
    let (valid, digests, log_files, problems) = match outcome {
        Ok(Ok(report)) => (
            report.valid(),
            report.digests as u32,
            report.log_files as u32,
            if report.digests == 0 {
                vec!["no digest file in the period: is log file validation on, and does the trail deliver?".to_string()]
            } else {
                report
                    .problems
                    .iter()
                    .take(20)
                    .map(|p| format!("{:?} {}: {}", p.verdict, p.key, p.detail))
                    .collect()
            },
        ),
        Ok(Err(e)) => (false, 0, 0, vec![format!("not verified: {e}")]),
        Err(_) => (
            false,
            0,
            0,
            vec!["not verified: the verification did not finish in time".to_string()],
        ),
    };
    Some(crate::api::IntegrityStatus {
        verified_at: now_text,
        from: text(from),
        to: text(to),
        valid,
        digests,
        log_files,
        problems,
    })
}

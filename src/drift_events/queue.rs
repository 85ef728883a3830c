//! Event-driven reconciles: the operator long-polls its SQS queue for the tampering events the
//! accounts forward (src/desired/events.rs), and asks the controller to reconcile the baselines
//! of each event's account at once. Duplicates, the operator's own writes and unknown accounts
//! are dropped (counted in `trailkeeper_drift_events_total`); a malformed message is deleted and
//! counted, never retried; a failing queue backs off. Messages are deleted once routed: an event
//! lost after that (the process killed before the reconcile ran) is caught by the resync.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{ObjectRef, Store};

use super::router::{Routed, Router, parse, targets};
use crate::api::LoggingBaseline;
use crate::aws::{AccountClients, CallRecorder, WriteFence, sqs};
use crate::desired::events::Forwarding;
use crate::fence::WriteGate;

/// The operator's events settings (`--events-queue-url` and friends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSettings {
    pub queue_url: String,
    /// The central bus, created in the queue's account and region.
    pub bus_name: String,
    /// Admit forwarding roles of this Organization only.
    pub organization_id: Option<String>,
}

/// How long one ReceiveMessage waits for a message (SQS's maximum).
pub const WAIT_SECONDS: i32 = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Seconds since an RFC 3339 time (None when unreadable).
fn age_seconds(time: &str) -> Option<f64> {
    let at: jiff::Timestamp = time.parse().ok()?;
    Some((jiff::Timestamp::now() - at).total(jiff::Unit::Second).ok()?.max(0.0))
}

/// The SQS client of the operator's own identity, its attempt timeout above the long poll's wait;
/// its writes (DeleteMessageBatch, SetQueueAttributes) go out only while `gate` is open.
pub fn queue_client(base: &aws_types::SdkConfig, gate: &WriteGate) -> aws_sdk_sqs::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(3100))
        .operation_attempt_timeout(Duration::from_secs(WAIT_SECONDS as u64 + 10))
        .operation_timeout(Duration::from_secs(90))
        .build();
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(base)
            .timeout_config(timeouts)
            .interceptor(CallRecorder::new())
            .interceptor(WriteFence::new(gate.clone()))
            .build(),
    )
}

/// Sets up the central bus, rule and queue policy (retrying with backoff until it works), hands
/// the forwarding to `forwarding_ready` (which returns the baselines reconciled without it
/// meanwhile: they are reconciled again, to get their rules), then long-polls the queue while this
/// replica leads, and sends the baselines to reconcile into `reconcile`. Runs until `reconcile`
/// is closed.
pub async fn run(
    settings: EventSettings,
    base: aws_types::SdkConfig,
    store: Store<LoggingBaseline>,
    gate: WriteGate,
    forwarding_ready: impl FnOnce(Forwarding) -> Vec<ObjectRef<LoggingBaseline>> + Send,
    mut reconcile: futures::channel::mpsc::Sender<ObjectRef<LoggingBaseline>>,
) {
    let sqs_client = queue_client(&base, &gate);
    let region = base
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let central = AccountClients::new_fenced(&base, &region, None, CallRecorder::new(), WriteFence::new(gate.clone()));
    let mut backoff = Duration::from_secs(1);
    let forwarding = loop {
        if !gate.is_open() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let result = crate::engine::forwarding::ensure_central(
            &central,
            &sqs_client,
            &settings.queue_url,
            &settings.bus_name,
            settings.organization_id.as_deref(),
        )
        .await;
        match result {
            Ok((forwarding, writes)) => {
                tracing::info!(bus = %forwarding.bus_arn, ?writes, "tampering events: central bus and queue ready");
                break forwarding;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "tampering events: the central bus or queue cannot be set up");
                crate::runtime::metrics::record_drift_event("setup_error");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    for baseline in forwarding_ready(forwarding) {
        let _ = reconcile.try_send(baseline);
    }

    let mut router = Router::default();
    let mut backoff = Duration::from_secs(1);
    loop {
        if reconcile.is_closed() {
            return;
        }
        // A replica that does not lead leaves the messages to the one that does.
        if !gate.is_open() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let messages = match sqs::receive(&sqs_client, &settings.queue_url, WAIT_SECONDS).await {
            Ok(m) => {
                backoff = Duration::from_secs(1);
                m
            }
            Err(e) => {
                crate::runtime::metrics::record_drift_event("receive_error");
                tracing::warn!(error = %e, retry_in = ?backoff, "tampering events: ReceiveMessage failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        // The long poll may return after the lease was lost: the messages are left to the
        // replica that leads (redelivered after their visibility timeout).
        if messages.is_empty() || !gate.is_open() {
            continue;
        }
        let known = targets(&store);
        let mut receipts = Vec::with_capacity(messages.len());
        for message in messages {
            receipts.push(message.receipt.clone());
            let event = match parse(&message.body) {
                Ok(e) => e,
                Err(why) => {
                    crate::runtime::metrics::record_drift_event("malformed");
                    tracing::warn!(%why, "tampering events: a malformed message, deleted");
                    continue;
                }
            };
            let routed = router.route(&event, &known);
            crate::runtime::metrics::record_drift_event(routed.metric());
            if let Routed::Reconcile(baselines) = routed {
                if let Some(age) = event.time.as_deref().and_then(age_seconds) {
                    crate::runtime::metrics::record_event_lag(age);
                }
                tracing::info!(account = %event.account, event = %event.name, caller = ?event.caller, "tampering event: reconciling");
                for baseline in baselines {
                    // Never blocks the loop: a full channel means a reconcile is queued anyway.
                    let _ = reconcile.try_send(baseline);
                }
            }
        }
        if let Err(e) = sqs::delete(&sqs_client, &settings.queue_url, &receipts).await {
            // Redelivered after the visibility timeout, then dropped as duplicates.
            tracing::warn!(error = %e, "tampering events: DeleteMessageBatch failed");
        }
    }
}

/// The handle through which reconciles read the forwarding once it is known.
pub type SharedForwarding = Arc<std::sync::OnceLock<Forwarding>>;

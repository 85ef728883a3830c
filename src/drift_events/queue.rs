//! Event-driven reconciles: the operator long-polls its SQS queue for the tampering events the
//! accounts forward (src/desired/events.rs), and asks the controller to reconcile the baselines
//! of each event's account at once. Duplicates, the operator's own writes and unknown accounts
//! are dropped (counted in `trailkeeper_drift_events_total`); a malformed message is deleted and
//! counted, never retried; a failing queue backs off. Messages are deleted once routed (their
//! baselines handed to the controller's queue); one that could not be (the controller stopping)
//! stays in the queue for the replica that leads next. An event lost after its hand-over (the
//! process killed before the reconcile ran) is caught by the resync.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{ObjectRef, Store};

use futures::SinkExt;
use futures::channel::mpsc::Sender;

use super::router::{Routed, Router, Target, parse, targets};
use crate::api::LoggingBaseline;
use crate::aws::{AccountClients, CallRecorder, WriteFence, sqs};
use crate::desired::events::{Admitted, Forwarding};
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
/// The first wait after a failure of the queue or the central wiring.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The wait after another failure in a row: doubled, at most a minute (README, "Drift repaired on
/// its event": a failing queue backs off to a minute).
fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(MAX_BACKOFF)
}

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

/// Sets up the central bus (admitting the managed accounts' forwarding roles), rule and queue
/// policy (retrying with backoff until it works), hands the forwarding to `forwarding_ready`
/// (which returns the baselines reconciled without it meanwhile: they are reconciled again, to
/// get their rules), then long-polls the queue while this replica leads, and sends the baselines
/// to reconcile into `reconcile`. The bus's policy follows the accounts as baselines come and go.
/// Runs until `reconcile` is closed. An event of the account-wide controls from a region a
/// baseline does not keep goes to `sweep` (that region read again) instead.
pub async fn run(
    settings: EventSettings,
    base: aws_types::SdkConfig,
    store: Store<LoggingBaseline>,
    gate: WriteGate,
    forwarding_ready: impl FnOnce(Forwarding) -> Vec<ObjectRef<LoggingBaseline>> + Send,
    mut reconcile: Sender<ObjectRef<LoggingBaseline>>,
    mut sweep: Sender<SweepRequest>,
) {
    let sqs_client = queue_client(&base, &gate);
    let region = base
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let central = AccountClients::new_fenced(&base, &region, None, CallRecorder::new(), WriteFence::new(gate.clone()));
    // The accounts the bus admits are those of the baselines: wait for their first list.
    if store.wait_until_ready().await.is_err() {
        return;
    }
    let mut admitted = admitted(&settings, &store);
    let mut backoff = FIRST_BACKOFF;
    let forwarding = loop {
        if !gate.is_open() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        match ensure_central(&central, &sqs_client, &settings, &admitted).await {
            Ok(forwarding) => break forwarding,
            Err(()) => {
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
                admitted = self::admitted(&settings, &store);
            }
        }
    };
    for baseline in forwarding_ready(forwarding) {
        if reconcile.send(baseline).await.is_err() {
            return;
        }
    }

    // The bus's policy follows the accounts beside the long poll (which waits up to 20 s).
    let admission = follow_accounts(&central, &sqs_client, &settings, &store, &gate, admitted);
    let polling = poll(&sqs_client, &settings, &store, &gate, &mut reconcile, &mut sweep);
    tokio::select! {
        _ = admission => {}
        _ = polling => {}
    }
}

/// How often the accounts of the baselines are compared with those the bus admits.
const ADMISSION_CHECK: Duration = Duration::from_secs(2);

/// Rewrites the bus's admitting statement whenever the baselines' accounts change (observed
/// first: only a difference is written). Never returns.
async fn follow_accounts(
    central: &AccountClients,
    sqs_client: &aws_sdk_sqs::Client,
    settings: &EventSettings,
    store: &Store<LoggingBaseline>,
    gate: &WriteGate,
    mut admitted: Admitted,
) {
    let mut retry_at = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(ADMISSION_CHECK).await;
        let now_admitted = self::admitted(settings, store);
        if now_admitted == admitted || !gate.is_open() || tokio::time::Instant::now() < retry_at {
            continue;
        }
        if ensure_central(central, sqs_client, settings, &now_admitted)
            .await
            .is_ok()
        {
            admitted = now_admitted;
        } else {
            retry_at = tokio::time::Instant::now() + MAX_BACKOFF;
        }
    }
}

/// Long-polls the queue while this replica leads and routes what arrives; returns once the
/// controller's queue is closed.
async fn poll(
    sqs_client: &aws_sdk_sqs::Client,
    settings: &EventSettings,
    store: &Store<LoggingBaseline>,
    gate: &WriteGate,
    reconcile: &mut Sender<ObjectRef<LoggingBaseline>>,
    sweep: &mut Sender<SweepRequest>,
) {
    let mut router = Router::default();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if reconcile.is_closed() {
            return;
        }
        // A replica that does not lead leaves the messages to the one that does.
        if !gate.is_open() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let messages = match sqs::receive(sqs_client, &settings.queue_url, WAIT_SECONDS).await {
            Ok(m) => {
                backoff = FIRST_BACKOFF;
                m
            }
            Err(e) => {
                crate::runtime::metrics::record_drift_event("receive_error");
                tracing::warn!(error = %e, retry_in = ?backoff, "tampering events: ReceiveMessage failed");
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
                continue;
            }
        };
        // The long poll may return after the lease was lost: the messages are left to the
        // replica that leads (redelivered after their visibility timeout).
        if messages.is_empty() || !gate.is_open() {
            continue;
        }
        let done = route_messages(messages, &mut router, &targets(store), reconcile, sweep).await;
        if done.is_empty() {
            continue;
        }
        if let Err(e) = sqs::delete(sqs_client, &settings.queue_url, &done).await {
            // Redelivered after the visibility timeout, then dropped as duplicates.
            tracing::warn!(error = %e, "tampering events: DeleteMessageBatch failed");
        }
    }
}

/// Whom the central bus admits now: the Organization given, or the baselines' accounts.
fn admitted(settings: &EventSettings, store: &Store<LoggingBaseline>) -> Admitted {
    match &settings.organization_id {
        Some(org) => Admitted::Organization(org.clone()),
        None => Admitted::Accounts(store.state().iter().map(|b| b.spec.account_id.clone()).collect()),
    }
}

/// The central side set up for `admitted`; a failure is logged and counted (the caller retries).
async fn ensure_central(
    central: &AccountClients,
    sqs_client: &aws_sdk_sqs::Client,
    settings: &EventSettings,
    admitted: &Admitted,
) -> Result<Forwarding, ()> {
    let result = crate::engine::forwarding::ensure_central(
        central,
        sqs_client,
        &settings.queue_url,
        &settings.bus_name,
        admitted,
    )
    .await;
    match result {
        Ok((forwarding, writes)) => {
            tracing::info!(bus = %forwarding.bus_arn, ?writes, "tampering events: central bus and queue ready");
            Ok(forwarding)
        }
        Err(e) => {
            tracing::warn!(error = %e, "tampering events: the central bus or queue cannot be set up");
            crate::runtime::metrics::record_drift_event("setup_error");
            Err(())
        }
    }
}

/// Routes a batch of messages and returns the receipts of those done with: routed (their
/// baselines handed to the controller), dropped (duplicates, unknown accounts, own writes, other
/// calls) or malformed (never retried). A message whose baselines could not be handed over (the
/// controller stopped) is not done: it stays in the queue and becomes visible again after its
/// visibility timeout, for whichever replica leads then.
pub async fn route_messages(
    messages: Vec<sqs::Message>,
    router: &mut Router,
    known: &[Target],
    reconcile: &mut Sender<ObjectRef<LoggingBaseline>>,
    sweep: &mut Sender<SweepRequest>,
) -> Vec<String> {
    let mut done = Vec::with_capacity(messages.len());
    for message in messages {
        let event = match parse(&message.body) {
            Ok(e) => e,
            Err(why) => {
                crate::runtime::metrics::record_drift_event("malformed");
                tracing::warn!(%why, "tampering events: a malformed message, deleted");
                done.push(message.receipt);
                continue;
            }
        };
        let routed = router.route(&event, known);
        if matches!(routed, Routed::Reconcile(_) | Routed::Sweep(_)) {
            // Waits while the controller's queue is full; fails only once the controller stopped.
            let mut handed = true;
            match &routed {
                Routed::Reconcile(baselines) => {
                    for baseline in baselines {
                        if reconcile.send(baseline.clone()).await.is_err() {
                            handed = false;
                            break;
                        }
                    }
                }
                Routed::Sweep(regions) => {
                    for (baseline, region) in regions {
                        let request = SweepRequest {
                            baseline: baseline.clone(),
                            region: region.clone(),
                        };
                        if sweep.send(request).await.is_err() {
                            handed = false;
                            break;
                        }
                    }
                }
                _ => {}
            }
            if !handed {
                router.forget(&event.id);
                crate::runtime::metrics::record_drift_event("not_routed");
                tracing::info!(account = %event.account, event = %event.name, "tampering event: left in the queue (the controller stopped)");
                continue;
            }
            if let Some(age) = event.time.as_deref().and_then(age_seconds) {
                crate::runtime::metrics::record_event_lag(age);
            }
            tracing::info!(account = %event.account, event = %event.name, caller = ?event.caller, "tampering event: reconciling");
        }
        crate::runtime::metrics::record_drift_event(routed.metric());
        done.push(message.receipt);
    }
    done
}

/// The handle through which reconciles read the forwarding once it is known.
pub type SharedForwarding = Arc<std::sync::OnceLock<Forwarding>>;

/// A region of a baseline to sweep again (an account-wide control's event came from it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepRequest {
    pub baseline: ObjectRef<LoggingBaseline>,
    pub region: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue is long-polled (README: "20 s waits"): each ReceiveMessage asks SQS to wait 20 s
    /// for up to 10 messages. Only a request that says so is answered.
    #[tokio::test]
    async fn the_queue_is_long_polled_twenty_seconds_at_a_time() {
        use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client, mock};
        let receive = mock!(aws_sdk_sqs::Client::receive_message)
            .match_requests(|r| r.wait_time_seconds() == Some(20) && r.max_number_of_messages() == Some(10))
            .then_output(|| aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput::builder().build());
        let client = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new("a", "b", None, None, "test"))
                .http_client(create_mock_http_client())
                .interceptor(
                    MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(&receive),
                )
                .build(),
        );
        let settings = EventSettings {
            queue_url: "https://sqs.us-east-1.amazonaws.com/111122223333/tamper".into(),
            bus_name: "trailkeeper-events".into(),
            organization_id: None,
        };
        let (store, _writer) = kube::runtime::reflector::store::<LoggingBaseline>();
        let (mut reconcile, _receiver) = futures::channel::mpsc::channel(1);
        let (mut sweep, _swept) = futures::channel::mpsc::channel(1);
        let gate = WriteGate::open();
        let polling = poll(&client, &settings, &store, &gate, &mut reconcile, &mut sweep);
        let _ = tokio::time::timeout(Duration::from_millis(300), polling).await;
        assert!(
            receive.num_calls() >= 1,
            "no ReceiveMessage with a 20 s wait for 10 messages"
        );
    }

    #[test]
    fn a_failing_queue_backs_off_doubling_to_a_minute() {
        let waits: Vec<u64> = std::iter::successors(Some(FIRST_BACKOFF), |b| Some(next_backoff(*b)))
            .take(9)
            .map(|b| b.as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    fn message(receipt: &str, name: &str, account: &str) -> sqs::Message {
        let body = serde_json::json!({
            "id": format!("id-{receipt}"), "detail-type": crate::desired::events::API_CALL,
            "source": "aws.cloudtrail", "account": account, "detail": {"eventName": name}
        });
        sqs::Message {
            receipt: receipt.into(),
            body: body.to_string(),
        }
    }

    fn known() -> Vec<Target> {
        vec![Target {
            baseline: ObjectRef::new("a").within("ns"),
            account: "111122223333".into(),
            role_arn: None,
            kept: Some(vec!["us-east-1".into()]),
            forwarded: vec!["us-east-1".into()],
        }]
    }

    #[tokio::test]
    async fn only_what_was_routed_or_dropped_is_deleted() {
        let batch = || {
            vec![
                message("routed", "StopLogging", "111122223333"),
                message("unknown", "StopLogging", "999988887777"),
                sqs::Message {
                    receipt: "malformed".into(),
                    body: "not json".into(),
                },
            ]
        };
        // The controller stopped: the event to route stays in the queue, the rest goes.
        let (mut closed, receiver) = futures::channel::mpsc::channel(4);
        let (mut sweep, _swept) = futures::channel::mpsc::channel(4);
        drop(receiver);
        let mut router = Router::default();
        let done = route_messages(batch(), &mut router, &known(), &mut closed, &mut sweep).await;
        assert_eq!(done, ["unknown", "malformed"]);
        // Redelivered to a controller that runs: routed (not a duplicate) and deleted.
        let (mut open, mut receiver) = futures::channel::mpsc::channel(4);
        let done = route_messages(batch(), &mut router, &known(), &mut open, &mut sweep).await;
        assert_eq!(done, ["routed", "unknown", "malformed"]);
        assert_eq!(receiver.try_recv().ok(), Some(ObjectRef::new("a").within("ns")));
    }
}

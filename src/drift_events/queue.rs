//! Event-driven reconciles: the operator long-polls its SQS queue for the tampering events the
//! accounts forward (src/desired/events.rs), and asks the controller to reconcile the baselines
//! of each event's account at once. Duplicates, the operator's own writes and unknown accounts
//! are dropped (counted in `trailkeeper_drift_events_total`); a malformed message is deleted and
//! counted, never retried; a failing queue backs off. Messages are deleted once routed (their
//! baselines handed to the controller's queue); one that could not be (the controller stopping)
//! stays in the queue for the replica that leads next. An event lost after its hand-over (the
//! process killed before the reconcile ran) is caught by the resync.
//!
//! With sharding every replica polls the one queue; an event of an account another replica holds
//! is not repaired here: it is made visible again (`Handled::elsewhere`), at once the first
//! times, then later and later (a second more each receive, at most `MAX_BOUNCE_DELAY`), until
//! the account's holder receives it; the replica that handed it back steps aside meanwhile
//! (`hand_back_pause`), so that it is not the first to see it again. Nothing is lost: a shard's new holder reconciles all of its
//! accounts anyway when its term begins.

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
use crate::runtime::leader::shards::Shards;

/// Which writes of the events loop this replica may make, and which accounts it repairs.
#[derive(Clone)]
pub struct EventGates {
    /// The central bus, its rule and the queue's policy: the gate of the shard of the queue's
    /// account (`queue_account`).
    pub central: WriteGate,
    /// The queue's messages (delete, make visible again): this replica's while it takes part.
    pub messages: WriteGate,
    /// With sharding: the accounts this replica repairs are those of the shards it holds.
    pub shards: Option<Arc<Shards>>,
}

impl From<WriteGate> for EventGates {
    /// One Lease: everything behind its gate, every account this replica's.
    fn from(gate: WriteGate) -> Self {
        Self {
            central: gate.clone(),
            messages: gate,
            shards: None,
        }
    }
}

impl EventGates {
    /// The gates of `shards` (in one-shard mode, the single Lease's).
    pub fn of(shards: &Arc<Shards>, queue_url: &str) -> Self {
        if !shards.is_sharded() {
            return shards.gate(0).clone().into();
        }
        Self {
            central: shards.gate(shards.of(&queue_account(queue_url))).clone(),
            messages: shards.member_gate().clone(),
            shards: Some(shards.clone()),
        }
    }

    /// Whether this replica polls now: it takes part and holds a shard.
    fn polls(&self) -> bool {
        self.messages.is_open() && self.shards.as_ref().is_none_or(|s| !s.held().is_empty())
    }

    /// Whether this replica repairs `account` now.
    pub fn owns(&self, account: &str) -> bool {
        self.shards.as_ref().is_none_or(|s| s.holds(s.of(account)))
    }
}

/// The account of an SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`), whose
/// shard's holder keeps the central wiring; the URL itself when it names none.
pub fn queue_account(url: &str) -> String {
    let path: Vec<&str> = url.trim_end_matches('/').rsplit('/').take(2).collect();
    match path.as_slice() {
        [_, account] if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) => account.to_string(),
        _ => url.to_string(),
    }
}

/// The longest an event of another replica's shard waits before it is visible again.
pub const MAX_BOUNCE_DELAY: i32 = 20;

/// How long an event received `receive_count` times, of an account another replica holds, stays
/// invisible: at once the first time, then a second more each time, at most `MAX_BOUNCE_DELAY`
/// (the holder polls too, and receives it soon; a shard without a holder must not make the
/// replicas spin on its events).
pub fn bounce_delay(receive_count: u32) -> i32 {
    (receive_count.saturating_sub(1) as i32).min(MAX_BOUNCE_DELAY)
}

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
pub fn queue_client(base: &aws_types::SdkConfig, gate: &WriteGate) -> sqs::SqsClient {
    sqs::SqsClient::new(base, gate, Duration::from_secs(WAIT_SECONDS as u64 + 10))
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
    gates: impl Into<EventGates>,
    forwarding_ready: impl FnOnce(Forwarding) -> Vec<ObjectRef<LoggingBaseline>> + Send,
    mut reconcile: Sender<ObjectRef<LoggingBaseline>>,
    mut sweep: Sender<SweepRequest>,
) {
    let gates: EventGates = gates.into();
    let gate = gates.central.clone();
    let sqs_client = queue_client(&base, &gate);
    let messages_client = queue_client(&base, &gates.messages);
    let region = base
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let central = AccountClients::new_fenced(&base, &region, None, CallRecorder::new(), WriteFence::new(gate.clone()));
    // The accounts the bus admits are those of the baselines: wait for their first list.
    if !crate::runtime::cache::cache_synced(&store).await {
        return;
    }
    let mut admitted = admitted(&settings, &store);
    let mut backoff = FIRST_BACKOFF;
    let forwarding = loop {
        // With sharding, a replica that does not hold the central wiring's shard observes it
        // until its holder has set it up (its writes are refused here).
        let observer = gates.shards.is_some() && !gate.is_open();
        if !gate.is_open() && !observer {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        match ensure_central(&central, &sqs_client, &settings, &admitted, observer).await {
            Ok(forwarding) => break forwarding,
            Err(()) if observer => {
                tokio::time::sleep(2 * FIRST_BACKOFF).await;
                admitted = self::admitted(&settings, &store);
            }
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
    let polling = poll(&messages_client, &settings, &store, &gates, &mut reconcile, &mut sweep);
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
    sqs_client: &sqs::SqsClient,
    settings: &EventSettings,
    store: &Store<LoggingBaseline>,
    gate: &WriteGate,
    mut admitted: Admitted,
) {
    let mut retry_at = tokio::time::Instant::now();
    let mut was_open = gate.is_open();
    loop {
        tokio::time::sleep(ADMISSION_CHECK).await;
        let now_admitted = self::admitted(settings, store);
        // A replica that comes to hold the central wiring's shard checks it once at least: its
        // last holder may have died before following the accounts.
        let open = gate.is_open();
        let opened = open && !was_open;
        was_open = open;
        if (now_admitted == admitted && !opened) || !open || tokio::time::Instant::now() < retry_at {
            continue;
        }
        if ensure_central(central, sqs_client, settings, &now_admitted, false)
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
    sqs_client: &sqs::SqsClient,
    settings: &EventSettings,
    store: &Store<LoggingBaseline>,
    gates: &EventGates,
    reconcile: &mut Sender<ObjectRef<LoggingBaseline>>,
    sweep: &mut Sender<SweepRequest>,
) {
    let gate = &gates.messages;
    let mut router = Router::default();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if reconcile.is_closed() {
            return;
        }
        // A replica that does not lead (or holds no shard) leaves the messages to the others.
        if !gates.polls() {
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
        let owns = |account: &str| gates.owns(account);
        let handled = route_messages(messages, &mut router, &targets(store), &owns, reconcile, sweep).await;
        if !handled.elsewhere.is_empty()
            && let Err(e) = sqs::release(sqs_client, &settings.queue_url, &handled.elsewhere).await
        {
            // Visible again after the queue's visibility timeout.
            tracing::warn!(error = %e, "tampering events: ChangeMessageVisibilityBatch failed");
        }
        if !handled.done.is_empty()
            && let Err(e) = sqs::delete(sqs_client, &settings.queue_url, &handled.done).await
        {
            // Redelivered after the visibility timeout, then dropped as duplicates.
            tracing::warn!(error = %e, "tampering events: DeleteMessageBatch failed");
        }
        if let Some(pause) = hand_back_pause(&handled.elsewhere) {
            tokio::time::sleep(pause).await;
        }
    }
}

/// The longest a replica that handed events back stays out of the queue.
const MAX_HAND_BACK_PAUSE: Duration = Duration::from_secs(5);

/// How long a replica that handed events back (`elsewhere`, with their delays) waits before it
/// receives again: until a second after they are visible again, at most `MAX_HAND_BACK_PAUSE`.
/// Receiving again at once, it would be the first poller to see them again and take them back
/// from their holder time after time; out of the queue meanwhile, it leaves them to the others,
/// the holder among them, and each replica that hands one back steps aside in turn. Its own
/// events wait that long at most (the holder's events are never handed back).
fn hand_back_pause(elsewhere: &[(String, i32)]) -> Option<Duration> {
    let latest = elsewhere.iter().map(|(_, delay)| *delay).max()?;
    Some((Duration::from_secs(latest.max(0) as u64) + Duration::from_secs(1)).min(MAX_HAND_BACK_PAUSE))
}

/// Whom the central bus admits now: the Organization given, or the baselines' accounts.
fn admitted(settings: &EventSettings, store: &Store<LoggingBaseline>) -> Admitted {
    match &settings.organization_id {
        Some(org) => Admitted::Organization(org.clone()),
        None => Admitted::Accounts(store.state().iter().map(|b| b.spec.account_id.clone()).collect()),
    }
}

/// The central side set up for `admitted`; a failure is logged and counted (the caller retries),
/// unless this replica only `observes` it (another replica's to set up): then it waits quietly.
async fn ensure_central(
    central: &AccountClients,
    sqs_client: &sqs::SqsClient,
    settings: &EventSettings,
    admitted: &Admitted,
    observes: bool,
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
        Err(e) if observes => {
            tracing::debug!(error = %e, "tampering events: waiting for the replica that holds the central bus's shard to set it up");
            Err(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "tampering events: the central bus or queue cannot be set up");
            crate::runtime::metrics::record_drift_event("setup_error");
            Err(())
        }
    }
}

/// What became of a batch of messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    /// Receipts of the messages done with (deleted).
    pub done: Vec<String>,
    /// Receipts of the events of accounts another replica holds, with how long each stays
    /// invisible (`bounce_delay`): made visible again for their holder.
    pub elsewhere: Vec<(String, i32)>,
}

/// Routes a batch of messages: done with are those routed (their baselines handed to the
/// controller), dropped (duplicates, unknown accounts, own writes, other calls) or malformed
/// (never retried). A message whose baselines could not be handed over (the controller stopped)
/// is not done: it stays in the queue and becomes visible again after its visibility timeout,
/// for whichever replica leads then. The event of an account this replica does not hold
/// (`owns`: with sharding) is never repaired here: it goes back to the queue for its holder.
pub async fn route_messages(
    messages: Vec<sqs::Message>,
    router: &mut Router,
    known: &[Target],
    owns: &(dyn Fn(&str) -> bool + Sync),
    reconcile: &mut Sender<ObjectRef<LoggingBaseline>>,
    sweep: &mut Sender<SweepRequest>,
) -> Handled {
    let mut done = Vec::with_capacity(messages.len());
    let mut elsewhere = Vec::new();
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
        if matches!(routed, Routed::Reconcile(_) | Routed::Sweep(_)) && !owns(&event.account) {
            // Its holder's to repair: routed again when it comes back (here, if this replica
            // holds the account by then).
            router.forget(&event.id);
            crate::runtime::metrics::record_drift_event("other_shard");
            tracing::debug!(account = %event.account, event = %event.name, receive_count = message.receive_count, "tampering event of another replica's shard: back to the queue");
            elsewhere.push((message.receipt, bounce_delay(message.receive_count)));
            continue;
        }
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
    Handled { done, elsewhere }
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
        let client = sqs::SqsClient::from(aws_sdk_sqs::Client::from_conf(
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
        ));
        let settings = EventSettings {
            queue_url: "https://sqs.us-east-1.amazonaws.com/111122223333/tamper".into(),
            bus_name: "trailkeeper-events".into(),
            organization_id: None,
        };
        let (store, _writer) = kube::runtime::reflector::store::<LoggingBaseline>();
        let (mut reconcile, _receiver) = futures::channel::mpsc::channel(1);
        let (mut sweep, _swept) = futures::channel::mpsc::channel(1);
        let gates = EventGates::from(WriteGate::open());
        let polling = poll(&client, &settings, &store, &gates, &mut reconcile, &mut sweep);
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
            receive_count: 1,
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
                    receive_count: 1,
                },
            ]
        };
        // The controller stopped: the event to route stays in the queue, the rest goes.
        let (mut closed, receiver) = futures::channel::mpsc::channel(4);
        let (mut sweep, _swept) = futures::channel::mpsc::channel(4);
        drop(receiver);
        let mut router = Router::default();
        let done = route_messages(batch(), &mut router, &known(), &|_| true, &mut closed, &mut sweep).await;
        assert_eq!(done.done, ["unknown", "malformed"]);
        // Redelivered to a controller that runs: routed (not a duplicate) and deleted.
        let (mut open, mut receiver) = futures::channel::mpsc::channel(4);
        let done = route_messages(batch(), &mut router, &known(), &|_| true, &mut open, &mut sweep).await;
        assert_eq!(done.done, ["routed", "unknown", "malformed"]);
        assert_eq!(receiver.try_recv().ok(), Some(ObjectRef::new("a").within("ns")));
    }

    #[tokio::test]
    async fn an_event_of_another_replicas_shard_goes_back_to_the_queue_and_is_routed_when_held() {
        let batch = |count: u32| {
            let mut m = message("theirs", "StopLogging", "111122223333");
            m.receive_count = count;
            vec![m, message("unknown", "StopLogging", "999988887777")]
        };
        let (mut open, mut receiver) = futures::channel::mpsc::channel(4);
        let (mut sweep, _swept) = futures::channel::mpsc::channel(4);
        let mut router = Router::default();
        let handled = route_messages(batch(1), &mut router, &known(), &|_| false, &mut open, &mut sweep).await;
        assert_eq!(handled.done, ["unknown"], "an unknown account is nobody's: deleted");
        assert_eq!(handled.elsewhere, [("theirs".to_string(), 0)], "visible again at once");
        assert!(receiver.try_recv().is_err(), "not repaired here");
        let handled = route_messages(batch(5), &mut router, &known(), &|_| false, &mut open, &mut sweep).await;
        assert_eq!(
            handled.elsewhere,
            [("theirs".to_string(), 4)],
            "later when it keeps coming back"
        );
        // Received by this replica once it holds the account: routed, not a duplicate.
        let handled = route_messages(batch(6), &mut router, &known(), &|_| true, &mut open, &mut sweep).await;
        assert_eq!(handled.done, ["theirs", "unknown"]);
        assert_eq!(receiver.try_recv().ok(), Some(ObjectRef::new("a").within("ns")));
    }

    #[test]
    fn a_bounced_event_waits_a_second_more_each_receive_up_to_twenty() {
        let delays: Vec<i32> = [1, 2, 3, 10, 21, 22, 1000].map(bounce_delay).to_vec();
        assert_eq!(delays, [0, 1, 2, 9, 20, 20, 20]);
    }

    #[test]
    fn a_replica_that_hands_events_back_steps_aside_until_a_second_after_they_return() {
        assert_eq!(hand_back_pause(&[]), None, "nothing handed back: receives at once");
        let pause = |delays: &[i32]| {
            let handed: Vec<(String, i32)> = delays.iter().map(|d| ("r".to_string(), *d)).collect();
            hand_back_pause(&handed).unwrap().as_secs()
        };
        assert_eq!(pause(&[0]), 1);
        assert_eq!(pause(&[0, 2]), 3, "the latest of the batch");
        assert_eq!(pause(&[20]), 5, "at most five seconds: its own events wait meanwhile");
    }

    #[test]
    fn the_central_wiring_belongs_to_the_queues_account() {
        assert_eq!(
            queue_account("https://sqs.us-east-1.amazonaws.com/111122223333/trailkeeper-events"),
            "111122223333"
        );
        assert_eq!(queue_account("http://127.0.0.1:5000/123456789012/q/"), "123456789012");
        assert_eq!(queue_account("not a url"), "not a url");
    }
}

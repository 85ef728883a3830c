//! Event-driven reconciles: the operator long-polls its SQS queue for the tampering events the
//! accounts forward (src/desired/events.rs), and asks the controller to reconcile the baselines
//! of each event's account at once. Duplicates, the operator's own writes and unknown accounts
//! are dropped (counted in `trailkeeper_drift_events_total`); a malformed message is deleted and
//! counted, never retried; a failing queue backs off. Messages are deleted once routed: an event
//! lost after that (the process killed before the reconcile ran) is caught by the resync.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::Value;

use crate::api::LoggingBaseline;
use crate::aws::{AccountClients, CallRecorder, WriteFence, sqs};
use crate::desired::events::{API_CALL, Forwarding, is_tamper_event};
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
/// Event ids remembered to drop duplicates (EventBridge and SQS deliver at least once).
const REMEMBERED_IDS: usize = 10_000;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What a queue message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TamperEvent {
    pub id: String,
    /// The account the call was made in.
    pub account: String,
    pub name: String,
    /// The caller's ARN (`userIdentity.arn`).
    pub caller: Option<String>,
    /// When the call was made (RFC 3339), as EventBridge stamps it.
    pub time: Option<String>,
}

/// Reads an EventBridge event as SQS delivers it. Err: why it is not one.
pub fn parse(body: &str) -> Result<TamperEvent, String> {
    let event: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if event["detail-type"] != API_CALL {
        return Err(format!("detail-type {} is not {API_CALL:?}", event["detail-type"]));
    }
    let detail = &event["detail"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    // The account that received the call; `account` too (EventBridge keeps the source account's
    // events' `account` when it forwards them between buses).
    let account = text(&detail["recipientAccountId"])
        .or_else(|| text(&event["account"]))
        .ok_or("no account")?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account {account:?} is not an account id"));
    }
    Ok(TamperEvent {
        id: text(&event["id"])
            .or_else(|| text(&detail["eventID"]))
            .ok_or("no event id")?,
        account,
        name: text(&detail["eventName"]).ok_or("no eventName")?,
        caller: text(&detail["userIdentity"]["arn"]),
        time: text(&event["time"]),
    })
}

/// A baseline as the router needs it: its reference, account and the role trailkeeper assumes.
#[derive(Clone, Debug)]
pub struct Target {
    pub baseline: ObjectRef<LoggingBaseline>,
    pub account: String,
    pub role_arn: Option<String>,
}

/// What became of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    Reconcile(Vec<ObjectRef<LoggingBaseline>>),
    Duplicate,
    UnknownAccount,
    /// A call trailkeeper made itself (its repairs): nothing to repair.
    OwnWrite,
    /// An event of a call that tampers with nothing trailkeeper keeps.
    Ignored,
}

impl Routed {
    pub fn metric(&self) -> &'static str {
        match self {
            Routed::Reconcile(_) => "reconcile",
            Routed::Duplicate => "duplicate",
            Routed::UnknownAccount => "unknown_account",
            Routed::OwnWrite => "own_write",
            Routed::Ignored => "ignored",
        }
    }
}

/// Drops repeated event ids (the last `REMEMBERED_IDS`) and routes the rest to baselines.
#[derive(Default)]
pub struct Router {
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl Router {
    pub fn route(&mut self, event: &TamperEvent, targets: &[Target]) -> Routed {
        if !self.remember(&event.id) {
            return Routed::Duplicate;
        }
        if !is_tamper_event(&event.name) {
            return Routed::Ignored;
        }
        let of_account: Vec<&Target> = targets.iter().filter(|t| t.account == event.account).collect();
        if of_account.is_empty() {
            return Routed::UnknownAccount;
        }
        if of_account
            .iter()
            .all(|t| is_own(event.caller.as_deref(), t.role_arn.as_deref()))
        {
            return Routed::OwnWrite;
        }
        Routed::Reconcile(of_account.into_iter().map(|t| t.baseline.clone()).collect())
    }

    /// False when the id was seen already.
    fn remember(&mut self, id: &str) -> bool {
        if !self.seen.insert(id.to_string()) {
            return false;
        }
        self.order.push_back(id.to_string());
        if self.order.len() > REMEMBERED_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

/// Whether `caller` is trailkeeper's own session of `role_arn`
/// (`arn:aws:sts::111122223333:assumed-role/trailkeeper/trailkeeper` for
/// `arn:aws:iam::111122223333:role/trailkeeper`).
fn is_own(caller: Option<&str>, role_arn: Option<&str>) -> bool {
    let (Some(caller), Some(role)) = (caller, role_arn) else {
        return false;
    };
    let Some((prefix, name)) = role.split_once(":role/") else {
        return false;
    };
    let role_name = name.rsplit('/').next().unwrap_or(name);
    let sts_prefix = prefix.replacen(":iam:", ":sts:", 1);
    caller
        == format!(
            "{sts_prefix}:assumed-role/{role_name}/{}",
            crate::aws::sts::SESSION_NAME
        )
}

/// The baselines the controller knows, as the router needs them.
pub fn targets(store: &Store<LoggingBaseline>) -> Vec<Target> {
    store
        .state()
        .iter()
        .map(|b| Target {
            baseline: ObjectRef::from_obj(b.as_ref()),
            account: b.spec.account_id.clone(),
            role_arn: b.spec.credentials.as_ref().map(|c| c.assume_role_arn.clone()),
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, account: &str, caller: Option<&str>) -> String {
        serde_json::json!({
            "version": "0", "id": format!("id-{name}-{account}"), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.cloudtrail", "account": account, "time": "2026-11-27T07:00:00Z", "region": "us-east-1",
            "detail": {"eventName": name, "recipientAccountId": account, "userIdentity": {"arn": caller}}
        })
        .to_string()
    }

    fn target(name: &str, account: &str) -> Target {
        Target {
            baseline: ObjectRef::new(name).within("ns"),
            account: account.into(),
            role_arn: Some(format!("arn:aws:iam::{account}:role/trailkeeper")),
        }
    }

    #[test]
    fn an_event_reconciles_the_baselines_of_its_account_once() {
        let targets = [target("a", "111122223333"), target("b", "444455556666")];
        let mut router = Router::default();
        let e = parse(&event(
            "StopLogging",
            "111122223333",
            Some("arn:aws:iam::111122223333:user/mallory"),
        ))
        .unwrap();
        assert_eq!(
            router.route(&e, &targets),
            Routed::Reconcile(vec![ObjectRef::new("a").within("ns")])
        );
        assert_eq!(router.route(&e, &targets), Routed::Duplicate);
    }

    #[test]
    fn unknown_accounts_own_writes_and_other_calls_are_dropped() {
        let targets = [target("a", "111122223333")];
        let mut router = Router::default();
        let unknown = parse(&event("StopLogging", "999988887777", None)).unwrap();
        assert_eq!(router.route(&unknown, &targets), Routed::UnknownAccount);
        let own = parse(&event(
            "PutBucketPolicy",
            "111122223333",
            Some("arn:aws:sts::111122223333:assumed-role/trailkeeper/trailkeeper"),
        ))
        .unwrap();
        assert_eq!(router.route(&own, &targets), Routed::OwnWrite);
        let other = parse(&event("RunInstances", "111122223333", None)).unwrap();
        assert_eq!(router.route(&other, &targets), Routed::Ignored);
    }

    #[test]
    fn malformed_messages_say_why() {
        assert!(parse("not json").unwrap_err().contains("not JSON"));
        assert!(parse(r#"{"detail-type":"Scheduled Event"}"#).is_err());
        assert!(
            parse(&event("StopLogging", "12", None))
                .unwrap_err()
                .contains("not an account id")
        );
        let mut no_name: Value = serde_json::from_str(&event("StopLogging", "111122223333", None)).unwrap();
        no_name["detail"].as_object_mut().unwrap().remove("eventName");
        assert!(parse(&no_name.to_string()).is_err());
    }
}

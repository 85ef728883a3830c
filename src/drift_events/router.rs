//! The router of drift events: reads a queue message as the tampering event it carries, drops
//! duplicates, the operator's own writes and events of unknown accounts, and names the baselines
//! to reconcile.

use std::collections::{HashSet, VecDeque};

use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::Value;

use crate::api::LoggingBaseline;
use crate::desired::events::{API_CALL, is_tamper_event};

/// Event ids remembered to drop duplicates (EventBridge and SQS deliver at least once).
const REMEMBERED_IDS: usize = 10_000;

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
    // The envelope's `account` decides: EventBridge sets it to the account the event came from
    // and keeps it when it forwards between buses, while anything in `detail` is whatever the
    // sender wrote.
    let account = text(&event["account"]).ok_or("no account")?;
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

    /// Forgets an id, so that its redelivery is routed again (its routing did not finish).
    pub fn forget(&mut self, id: &str) {
        if self.seen.remove(id) {
            self.order.retain(|seen| seen != id);
        }
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
    fn the_envelopes_account_decides_not_what_the_sender_wrote_in_detail() {
        // A foreign account's event whose detail names a managed account: EventBridge sets the
        // envelope's account to the sender's, so it reaches no baseline.
        let targets = [target("a", "111122223333")];
        let mut forged: Value = serde_json::from_str(&event("StopLogging", "999988887777", None)).unwrap();
        forged["detail"]["recipientAccountId"] = "111122223333".into();
        let forged = parse(&forged.to_string()).unwrap();
        assert_eq!(forged.account, "999988887777");
        assert_eq!(Router::default().route(&forged, &targets), Routed::UnknownAccount);
        let mut no_envelope: Value = serde_json::from_str(&event("StopLogging", "111122223333", None)).unwrap();
        no_envelope.as_object_mut().unwrap().remove("account");
        assert_eq!(parse(&no_envelope.to_string()).unwrap_err(), "no account");
    }

    #[test]
    fn a_forgotten_id_is_routed_again() {
        let targets = [target("a", "111122223333")];
        let mut router = Router::default();
        let e = parse(&event("StopLogging", "111122223333", None)).unwrap();
        assert!(matches!(router.route(&e, &targets), Routed::Reconcile(_)));
        router.forget(&e.id);
        assert!(matches!(router.route(&e, &targets), Routed::Reconcile(_)));
        assert_eq!(router.route(&e, &targets), Routed::Duplicate);
        assert_eq!(router.order.len(), 1);
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

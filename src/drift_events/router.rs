//! The router of drift events: reads a queue message as the tampering event it carries, drops
//! duplicates, the operator's own writes and events of unknown accounts, and names the baselines
//! to reconcile.

use std::collections::{HashSet, VecDeque};

use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::Value;

use crate::api::LoggingBaseline;
use crate::desired::events::{API_CALL, is_account_wide_event, is_rule_event, is_tamper_event};

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
    /// The Region the call was made in (the envelope's `region`, which EventBridge keeps when it
    /// forwards the event to a bus in another Region).
    pub region: Option<String>,
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
        region: text(&event["region"]),
    })
}

/// A baseline as the router needs it: its reference, account, the role trailkeeper assumes, and
/// where a reconcile reads (the rest is the sweep's).
#[derive(Clone, Debug)]
pub struct Target {
    pub baseline: ObjectRef<LoggingBaseline>,
    pub account: String,
    pub role_arn: Option<String>,
    /// The regions it keeps (None: every region).
    pub kept: Option<Vec<String>>,
    /// The regions whose forwarding rule its reconcile keeps (`desired::events::forwarding_regions`).
    pub forwarded: Vec<String>,
}

impl Target {
    /// Whether a reconcile of this baseline reads `region` (None: unknown, so it does).
    fn keeps(&self, region: Option<&str>) -> bool {
        match (region, &self.kept) {
            (None, _) | (_, None) => true,
            (Some(r), Some(kept)) => kept.iter().any(|k| k == r),
        }
    }

    /// What an event concerning this baseline wakes: a reconcile, or a sweep of the event's
    /// region (which reconciles after it).
    fn wake(&self, event: &TamperEvent) -> Option<String> {
        let region = event.region.as_deref();
        let reconciled = if is_account_wide_event(&event.name) {
            self.keeps(region)
        } else if is_rule_event(&event.name) {
            self.keeps(region) || region.is_some_and(|r| self.forwarded.iter().any(|f| f == r))
        } else {
            true
        };
        if reconciled { None } else { region.map(str::to_string) }
    }
}

/// What became of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    Reconcile(Vec<ObjectRef<LoggingBaseline>>),
    /// An account-wide control's event (or one on a sweep's forwarding rule) from a region these
    /// baselines do not keep: the sweep reads that region again, then reconciles them.
    Sweep(Vec<(ObjectRef<LoggingBaseline>, String)>),
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
            Routed::Sweep(_) => "sweep",
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
        if !(is_tamper_event(&event.name) || is_account_wide_event(&event.name) || is_rule_event(&event.name)) {
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
        let woken: Vec<(&Target, Option<String>)> = of_account.into_iter().map(|t| (t, t.wake(event))).collect();
        if woken.iter().all(|(_, region)| region.is_some()) {
            Routed::Sweep(
                woken
                    .into_iter()
                    .filter_map(|(t, region)| Some((t.baseline.clone(), region?)))
                    .collect(),
            )
        } else {
            // A reconcile of each (several baselines claim one account: only its keeper acts).
            Routed::Reconcile(woken.into_iter().map(|(t, _)| t.baseline.clone()).collect())
        }
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
    store.state().iter().map(|b| target(b)).collect()
}

/// A baseline as the router needs it. Its forwarded regions assume the trail records global
/// services' events (the TrailPolicy's default): their Region's rule is then a reconcile's.
pub fn target(b: &LoggingBaseline) -> Target {
    use crate::desired::regional;
    let spec = &b.spec;
    let kept = (!regional::keeps_every_region(spec)).then(|| {
        let mut kept = if spec.regions.is_empty() {
            vec![spec.primary_region.clone()]
        } else {
            spec.regions.clone()
        };
        kept.sort();
        kept
    });
    let forwarded =
        crate::desired::events::forwarding_regions(kept.as_deref().unwrap_or_default(), &spec.primary_region, true);
    Target {
        baseline: ObjectRef::from_obj(b),
        account: spec.account_id.clone(),
        role_arn: spec.credentials.as_ref().map(|c| c.assume_role_arn.clone()),
        kept,
        forwarded,
    }
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
            kept: Some(vec!["us-east-1".into()]),
            forwarded: vec!["us-east-1".into()],
        }
    }

    fn in_region(name: &str, account: &str, region: &str) -> TamperEvent {
        let mut body: Value = serde_json::from_str(&event(name, account, Some("arn:aws:iam::1:user/mallory"))).unwrap();
        body["region"] = region.into();
        body["id"] = format!("id-{name}-{region}").into();
        parse(&body.to_string()).unwrap()
    }

    #[test]
    fn an_account_wide_event_from_a_region_not_kept_sweeps_that_region() {
        let targets = [target("a", "111122223333")];
        let mut router = Router::default();
        let a = ObjectRef::new("a").within("ns");
        // A recorder stopped where the baseline keeps nothing: the sweep reads that region.
        let stopped = in_region("StopConfigurationRecorder", "111122223333", "eu-north-1");
        assert_eq!(stopped.region.as_deref(), Some("eu-north-1"));
        assert_eq!(
            router.route(&stopped, &targets),
            Routed::Sweep(vec![(a.clone(), "eu-north-1".into())])
        );
        // In a region it keeps, the reconcile reads it.
        let kept = in_region("DisableKeyRotation", "111122223333", "us-east-1");
        assert_eq!(router.route(&kept, &targets), Routed::Reconcile(vec![a.clone()]));
        // A new VPC, a deleted flow log: the same.
        let vpc = in_region("CreateVpc", "111122223333", "ap-south-1");
        assert_eq!(
            router.route(&vpc, &targets),
            Routed::Sweep(vec![(a.clone(), "ap-south-1".into())])
        );
        // The sweep's own forwarding rule touched: repaired by the sweep; the reconcile's, by it.
        let rule = in_region("RemoveTargets", "111122223333", "ap-south-1");
        assert_eq!(
            router.route(&rule, &targets),
            Routed::Sweep(vec![(a.clone(), "ap-south-1".into())])
        );
        let own_rule = in_region("DisableRule", "111122223333", "us-east-1");
        assert_eq!(router.route(&own_rule, &targets), Routed::Reconcile(vec![a.clone()]));
        // Tampering with what a kept region holds reconciles, wherever it is reported from.
        let stop = in_region("StopLogging", "111122223333", "ap-south-1");
        assert_eq!(router.route(&stop, &targets), Routed::Reconcile(vec![a]));
    }

    #[test]
    fn a_baseline_that_keeps_every_region_is_reconciled_on_any_of_its_events() {
        let mut every = target("a", "111122223333");
        every.kept = None;
        let e = in_region("StopConfigurationRecorder", "111122223333", "eu-north-1");
        assert_eq!(
            Router::default().route(&e, &[every]),
            Routed::Reconcile(vec![ObjectRef::new("a").within("ns")])
        );
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

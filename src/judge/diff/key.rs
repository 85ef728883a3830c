//! The KMS key: its alias, state, policy (merged with the owner's for a key the baseline names),
//! rotation and tags.

use serde_json::Value;

use super::{Action, Delta, keys, missing_tags, on_off};
use crate::aws::kms::ObservedKey;
use crate::desired::{DesiredKey, KeySource, policy};

/// True when `observed` (a key id, ARN or alias as an API echoes it) designates the key `arn`.
pub fn key_matches(observed: &str, arn: &str) -> bool {
    observed == arn || arn.rsplit_once('/').is_some_and(|(_, id)| id == observed)
}

/// Statements trailkeeper once added to keys and no longer does: CloudWatch alarms published to a
/// topic encrypted with the trail key, before the topic had a key of its own
/// (`desired::monitoring::topic_key`).
const RETIRED_SIDS: [&str; 1] = ["CloudWatchAlarmsPublishToTopic"];

/// For a key the baseline names (not one trailkeeper created), its policy keeps the owner's
/// statements and gains trailkeeper's (replacing statements with the same Sid, and dropping the
/// ones trailkeeper no longer adds).
pub fn merged_key_policy(ours: &Value, theirs: Option<&Value>) -> Value {
    let Some(theirs) = theirs else { return ours.clone() };
    let our_statements = ours["Statement"].as_array().cloned().unwrap_or_default();
    let our_sids: Vec<&Value> = our_statements.iter().map(|s| &s["Sid"]).collect();
    let normalized = policy::normalize(theirs);
    let mut statements: Vec<Value> = normalized["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !our_sids.contains(&&s["Sid"]) && !RETIRED_SIDS.iter().any(|sid| s["Sid"] == *sid))
        .collect();
    statements.extend(our_statements);
    let mut merged = theirs.clone();
    merged["Statement"] = Value::Array(statements);
    merged
}

pub fn diff_key(desired: &DesiredKey, observed: Option<&ObservedKey>) -> Delta {
    let mut delta = Delta::default();
    let resource = match (&desired.source, observed) {
        (KeySource::None, _) => return delta,
        (_, Some(k)) => format!("kms:{}", k.arn),
        (KeySource::Create { alias, .. }, None) => format!("kms:{alias}"),
        (KeySource::Existing { arn }, None) => format!("kms:{arn}"),
    };
    let Some(key) = observed else {
        delta.differs(&resource, "exists", true, false);
        delta.act(Action::CreateKey);
        // Tagged once it exists, under its own policy: tagging on creation would need
        // kms:TagResource on every key in the IAM policy.
        if !desired.tags.is_empty() {
            delta.act(Action::TagKey(desired.tags.clone()));
        }
        delta.act(Action::CreateAlias);
        delta.act(Action::EnableKeyRotation);
        return delta;
    };
    let created_by_us = matches!(desired.source, KeySource::Create { .. });
    if let (KeySource::Create { alias, .. }, false) = (&desired.source, key.alias_exists) {
        delta.differs(&resource, "alias", alias, "(none)");
        delta.act(Action::CreateAlias);
    }
    if key.state != "Enabled" {
        delta.differs(&resource, "state", "Enabled", &key.state);
        delta.act(Action::RestoreKey {
            state: key.state.clone(),
        });
    }
    let wanted = if created_by_us {
        desired.policy.clone()
    } else {
        merged_key_policy(&desired.policy, key.policy.as_ref())
    };
    if !key.policy.as_ref().is_some_and(|p| policy::equivalent(p, &wanted)) {
        let actual = key
            .policy
            .as_ref()
            .map_or_else(|| "(none)".to_string(), |p| p.to_string());
        delta.differs(&resource, "policy", wanted.to_string(), actual);
        delta.act(Action::PutKeyPolicy(wanted));
    }
    if desired.rotation && !key.rotation {
        delta.differs(&resource, "rotation", on_off(true), on_off(false));
        delta.act(Action::EnableKeyRotation);
    }
    if created_by_us {
        let missing = missing_tags(&desired.tags, &key.tags);
        if !missing.is_empty() {
            delta.differs(&resource, "tags", keys(&missing), "missing");
            delta.act(Action::TagKey(missing));
        }
    }
    delta
}

//! Desired against observed, per resource: what differs (drift, reported) and the writes that
//! repair it (actions, applied only in Enforce mode). Pure functions.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::api::{Drift, LockMode};
use crate::aws::cloudtrail::TrailUpdate;
use crate::desired::{EventSelectors, Lifecycle, LockRetention};

mod bucket;
mod key;
mod trail;

pub use bucket::diff_bucket;
pub use key::{diff_key, key_matches, merged_key_policy};
pub use trail::diff_trail;

/// One write that brings a resource to its desired state.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    CreateKey,
    CreateAlias,
    RestoreKey {
        state: String,
    },
    PutKeyPolicy(Value),
    EnableKeyRotation,
    TagKey(BTreeMap<String, String>),
    CreateBucket {
        object_lock: bool,
    },
    EnableVersioning,
    PutObjectLock(Option<LockRetention>),
    /// Object Lock turned on for a bucket that exists without it: irreversible, and the objects
    /// already there keep no lock (held back unless `storage.lockExistingBucket` allows it).
    EnableObjectLockInPlace(Option<LockRetention>),
    PutEncryption,
    BlockPublicAccess,
    EnforceBucketOwner,
    PutBucketPolicy(Value),
    PutAccessLogging {
        target_bucket: String,
        target_prefix: String,
    },
    PutLifecycle(Lifecycle),
    PutBucketTags(BTreeMap<String, String>),
    CreateTrail,
    UpdateTrail(TrailUpdate),
    PutEventSelectors(EventSelectors),
    PutInsightSelectors(Vec<String>),
    AddTrailTags(BTreeMap<String, String>),
    StartLogging,
    /// Organization trails: CloudTrail's trusted access in AWS Organizations.
    EnableCloudTrailTrustedAccess,
    /// Organization trails: the service-linked role AWSServiceRoleForCloudTrail.
    CreateCloudTrailServiceRole,
    /// A LogArchive: the replication rule into its replica.
    PutReplication,
    /// A LogArchive: an S3 Batch Replication job for what live replication did not replicate.
    CreateBatchReplication,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Action::CreateKey => "create the KMS key".to_string(),
            Action::CreateAlias => "create the key alias".to_string(),
            Action::RestoreKey { state } => format!("re-enable the key (it is {state})"),
            Action::PutKeyPolicy(_) => "put the key policy".to_string(),
            Action::EnableKeyRotation => "enable key rotation".to_string(),
            Action::TagKey(t) => format!("tag the key ({})", keys(t)),
            Action::CreateBucket { object_lock: true } => "create the bucket with Object Lock".to_string(),
            Action::CreateBucket { object_lock: false } => "create the bucket".to_string(),
            Action::EnableVersioning => "enable versioning".to_string(),
            Action::PutObjectLock(Some(r)) => {
                format!("set the Object Lock default retention to {:?} {} days", r.mode, r.days)
            }
            Action::PutObjectLock(None) => "enable Object Lock without a default retention".to_string(),
            Action::EnableObjectLockInPlace(retention) => format!(
                "turn Object Lock on in place, irreversibly ({}; the objects already there keep no lock)",
                describe_lock(retention)
            ),
            Action::PutEncryption => "set default encryption".to_string(),
            Action::BlockPublicAccess => "block public access".to_string(),
            Action::EnforceBucketOwner => "turn ACLs off (Object Ownership BucketOwnerEnforced)".to_string(),
            Action::PutBucketPolicy(_) => "put the bucket policy".to_string(),
            Action::PutAccessLogging { target_bucket, .. } => format!("log access to {target_bucket}"),
            Action::PutLifecycle(l) => format!("put the lifecycle ({})", describe_lifecycle(l)),
            Action::PutBucketTags(t) => format!("tag the bucket ({})", keys(t)),
            Action::CreateTrail => "create the trail".to_string(),
            Action::UpdateTrail(_) => "update the trail's settings".to_string(),
            Action::PutEventSelectors(_) => "put the event selectors".to_string(),
            Action::PutInsightSelectors(_) => "put the insight selectors".to_string(),
            Action::AddTrailTags(t) => format!("tag the trail ({})", keys(t)),
            Action::StartLogging => "start logging".to_string(),
            Action::EnableCloudTrailTrustedAccess => {
                "enable trusted access for CloudTrail in AWS Organizations".to_string()
            }
            Action::CreateCloudTrailServiceRole => {
                format!("create the service-linked role {CLOUDTRAIL_SERVICE_ROLE}")
            }
            Action::PutReplication => "put the replication rule into the replica".to_string(),
            Action::CreateBatchReplication => {
                "replicate what live replication did not (an S3 Batch Replication job)".to_string()
            }
        };
        f.write_str(&text)
    }
}

fn keys(tags: &BTreeMap<String, String>) -> String {
    tags.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The service-linked role an Organization trail needs in the management account.
pub const CLOUDTRAIL_SERVICE_ROLE: &str = "AWSServiceRoleForCloudTrail";

/// What an Organization trail needs besides itself, as observed: CloudTrail's trusted access in
/// AWS Organizations and its service-linked role (CloudTrail user guide, "Prepare for creating a
/// trail for your organization"). Prepended to the trail's delta.
pub fn diff_organization_trail_prerequisites(trusted_access: bool, service_role: bool) -> Delta {
    let mut delta = Delta::default();
    if !trusted_access {
        delta.differs(
            "organizations:cloudtrail.amazonaws.com",
            "trustedAccess",
            "enabled",
            "disabled",
        );
        delta.act(Action::EnableCloudTrailTrustedAccess);
    }
    if !service_role {
        delta.differs(&format!("iam:role/{CLOUDTRAIL_SERVICE_ROLE}"), "exists", true, false);
        delta.act(Action::CreateCloudTrailServiceRole);
    }
    delta
}

/// What differs on one resource and the writes that repair it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delta {
    pub drift: Vec<Drift>,
    pub actions: Vec<Action>,
    /// Drift trailkeeper reports but may not repair (an existing trail's unmanaged settings).
    pub unrepairable: Vec<Drift>,
}

impl Delta {
    pub(crate) fn differs(
        &mut self,
        resource: &str,
        field: &str,
        expected: impl fmt::Display,
        actual: impl fmt::Display,
    ) {
        self.drift.push(Drift {
            resource: resource.to_string(),
            field: field.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }

    pub(crate) fn act(&mut self, action: Action) {
        if !self.actions.contains(&action) {
            self.actions.push(action);
        }
    }

    /// Puts `first`'s drift and writes before this delta's own.
    pub fn prepend(&mut self, first: Delta) {
        let mut drift = first.drift;
        drift.append(&mut self.drift);
        self.drift = drift;
        let mut actions = first.actions;
        actions.retain(|a| !self.actions.contains(a));
        actions.append(&mut self.actions);
        self.actions = actions;
    }

    pub fn in_sync(&self) -> bool {
        self.drift.is_empty() && self.actions.is_empty() && self.unrepairable.is_empty()
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "enabled" } else { "disabled" }
}

/// A retention in days in words: `90 days`, or `kept forever` for none.
pub fn days(d: Option<i32>) -> String {
    match d {
        None => "kept forever".to_string(),
        Some(1) => "1 day".to_string(),
        Some(d) => format!("{d} days"),
    }
}

pub fn describe_lifecycle(l: &Lifecycle) -> String {
    format!(
        "current versions {}, noncurrent versions {}, incomplete uploads aborted after {} days",
        days(l.expire_current_after_days),
        days(l.expire_noncurrent_after_days),
        l.abort_incomplete_uploads_after_days
    )
}

/// Event selectors in words: `management events All; data events AWS::S3::Object (2 values)`.
pub fn describe_selectors(selectors: &EventSelectors) -> String {
    let parts: Vec<String> = match selectors {
        EventSelectors::Basic(basic) => basic
            .iter()
            .map(|s| {
                let mut text = if s.include_management_events {
                    format!("management events {}", s.read_write_type)
                } else {
                    format!("no management events ({})", s.read_write_type)
                };
                if !s.exclude_management_event_sources.is_empty() {
                    text.push_str(&format!(" excluding {}", s.exclude_management_event_sources.join(", ")));
                }
                for (kind, values) in &s.data_resources {
                    text.push_str(&format!("; data events {kind} ({} values)", values.len()));
                }
                text
            })
            .collect(),
        EventSelectors::Advanced(advanced) => advanced
            .iter()
            .map(|s| format!("advanced selector {:?} ({} fields)", s.name, s.field_selectors.len()))
            .collect(),
    };
    if parts.is_empty() {
        "no event selectors".to_string()
    } else {
        parts.join(" | ")
    }
}

pub fn describe_lock(l: &Option<LockRetention>) -> String {
    l.as_ref().map_or_else(
        || "no default retention".to_string(),
        |r| format!("{:?} {} days", r.mode, r.days),
    )
}

/// The tags of `desired` missing from `observed` or with another value there.
fn missing_tags(desired: &BTreeMap<String, String>, observed: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// True when applying `desired` over `observed` would weaken the Object Lock: a lower mode, or
/// fewer default retention days.
pub fn weakens_lock(observed: &Option<LockRetention>, desired: &Option<LockRetention>) -> bool {
    let rank = |l: &Option<LockRetention>| match l.as_ref().map(|l| l.mode) {
        None | Some(LockMode::Disabled) => 0,
        Some(LockMode::Governance) => 1,
        Some(LockMode::Compliance) => 2,
    };
    let (old, new) = (rank(observed), rank(desired));
    new < old || (new > 0 && old > 0 && desired.as_ref().map(|d| d.days) < observed.as_ref().map(|o| o.days))
}

/// True when a retention in days (None = forever) would become shorter.
pub fn shortens(observed: Option<i32>, desired: Option<i32>) -> bool {
    match (observed, desired) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(old), Some(new)) => new < old,
    }
}

#[cfg(test)]
mod tests;

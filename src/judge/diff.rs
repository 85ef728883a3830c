//! Desired against observed, per resource: what differs (drift, reported) and the writes that
//! repair it (actions, applied only in Enforce mode). Pure functions.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::api::{Drift, ExistingTrailSetting, LockMode};
use crate::aws::cloudtrail::{ObservedTrail, TrailUpdate};
use crate::aws::kms::ObservedKey;
use crate::aws::s3::ObservedBucket;
use crate::desired::{
    BucketEncryption, DesiredBucket, DesiredKey, EventSelectors, KeySource, Lifecycle, LockRetention, TrailSettings,
    policy,
};

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
    fn differs(&mut self, resource: &str, field: &str, expected: impl fmt::Display, actual: impl fmt::Display) {
        self.drift.push(Drift {
            resource: resource.to_string(),
            field: field.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }

    fn act(&mut self, action: Action) {
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

/// True when `observed` (a key id, ARN or alias as an API echoes it) designates the key `arn`.
pub fn key_matches(observed: &str, arn: &str) -> bool {
    observed == arn || arn.rsplit_once('/').is_some_and(|(_, id)| id == observed)
}

/// For a key the baseline names (not one trailkeeper created), its policy keeps the owner's
/// statements and gains trailkeeper's (replacing statements with the same Sid).
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
        .filter(|s| !our_sids.contains(&&s["Sid"]))
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
    if created_by_us && !key.alias_exists {
        delta.differs(&resource, "alias", crate::desired::KEY_ALIAS, "(none)");
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

/// `key_arn` is the trail key's ARN when known (None while the key is still to be created).
pub fn diff_bucket(desired: &DesiredBucket, observed: Option<&ObservedBucket>, key_arn: Option<&str>) -> Delta {
    let mut delta = Delta::default();
    let resource = format!("s3://{}", desired.name);
    let absent;
    let bucket = match observed {
        Some(b) => b,
        None => {
            delta.differs(&resource, "exists", true, false);
            delta.act(Action::CreateBucket {
                object_lock: desired.object_lock,
            });
            // What a bucket is right after CreateBucket: Object Lock implies versioning.
            absent = ObservedBucket {
                name: desired.name.clone(),
                object_lock_enabled: desired.object_lock,
                lock_retention: None,
                versioning: if desired.object_lock {
                    "Enabled".into()
                } else {
                    String::new()
                },
                encryption: None,
                public_access_blocked: false,
                // CreateBucket sets it.
                owner_enforced: true,
                policy: None,
                access_logging: None,
                lifecycle: Lifecycle {
                    expire_current_after_days: None,
                    expire_noncurrent_after_days: None,
                    abort_incomplete_uploads_after_days: 0,
                },
                foreign_lifecycle_rules: Vec::new(),
                tags: BTreeMap::new(),
            };
            &absent
        }
    };
    if bucket.versioning != "Enabled" {
        let actual = if bucket.versioning.is_empty() {
            "never enabled"
        } else {
            bucket.versioning.as_str()
        };
        if observed.is_some() {
            delta.differs(&resource, "versioning", "Enabled", actual);
        }
        delta.act(Action::EnableVersioning);
    }
    if desired.object_lock && (!bucket.object_lock_enabled || bucket.lock_retention != desired.lock_retention) {
        let actual = if bucket.object_lock_enabled {
            describe_lock(&bucket.lock_retention)
        } else {
            "disabled".into()
        };
        if observed.is_some() {
            delta.differs(&resource, "objectLock", describe_lock(&desired.lock_retention), actual);
        }
        delta.act(Action::PutObjectLock(desired.lock_retention.clone()));
    }
    let encryption_ok = match (&desired.encryption, &bucket.encryption) {
        (BucketEncryption::S3Managed, Some(e)) => e.algorithm == "AES256",
        (BucketEncryption::KmsTrailKey, Some(e)) => {
            e.algorithm == "aws:kms"
                && e.bucket_key
                && matches!((e.kms_key.as_deref(), key_arn), (Some(k), Some(arn)) if key_matches(k, arn))
        }
        (_, None) => false,
    };
    if !encryption_ok {
        let expected = match &desired.encryption {
            BucketEncryption::S3Managed => "SSE-S3 (AES256)".to_string(),
            BucketEncryption::KmsTrailKey => {
                format!(
                    "SSE-KMS with {} and a bucket key",
                    key_arn.unwrap_or("the trail key (to be created)")
                )
            }
        };
        let actual = bucket.encryption.as_ref().map_or_else(
            || "none".to_string(),
            |e| {
                format!("{} {}", e.algorithm, e.kms_key.as_deref().unwrap_or(""))
                    .trim()
                    .to_string()
            },
        );
        if observed.is_some() {
            delta.differs(&resource, "encryption", expected, actual);
        }
        delta.act(Action::PutEncryption);
    }
    if !bucket.public_access_blocked {
        if observed.is_some() {
            delta.differs(&resource, "publicAccessBlock", "all four settings on", "off or partial");
        }
        delta.act(Action::BlockPublicAccess);
    }
    if !bucket.owner_enforced {
        if observed.is_some() {
            delta.differs(&resource, "objectOwnership", "BucketOwnerEnforced", "ACLs enabled");
        }
        delta.act(Action::EnforceBucketOwner);
    }
    if !bucket
        .policy
        .as_ref()
        .is_some_and(|p| policy::equivalent(p, &desired.policy))
    {
        if observed.is_some() {
            let actual = bucket
                .policy
                .as_ref()
                .map_or_else(|| "(none)".to_string(), |p| p.to_string());
            delta.differs(&resource, "policy", desired.policy.to_string(), actual);
        }
        delta.act(Action::PutBucketPolicy(desired.policy.clone()));
    }
    if let Some((target, prefix)) = &desired.access_logging
        && bucket.access_logging.as_ref() != Some(&(target.clone(), prefix.clone()))
    {
        if observed.is_some() {
            let actual = bucket
                .access_logging
                .as_ref()
                .map_or_else(|| "off".to_string(), |(t, p)| format!("s3://{t}/{p}"));
            delta.differs(&resource, "accessLogging", format!("s3://{target}/{prefix}"), actual);
        }
        delta.act(Action::PutAccessLogging {
            target_bucket: target.clone(),
            target_prefix: prefix.clone(),
        });
    }
    if bucket.lifecycle != desired.lifecycle || !bucket.foreign_lifecycle_rules.is_empty() {
        if observed.is_some() {
            let mut actual = describe_lifecycle(&bucket.lifecycle);
            if !bucket.foreign_lifecycle_rules.is_empty() {
                actual.push_str(&format!(
                    " (other rules: {})",
                    bucket.foreign_lifecycle_rules.join(", ")
                ));
            }
            delta.differs(&resource, "lifecycle", describe_lifecycle(&desired.lifecycle), actual);
        }
        delta.act(Action::PutLifecycle(desired.lifecycle.clone()));
    }
    let missing = missing_tags(&desired.tags, &bucket.tags);
    if !missing.is_empty() {
        if observed.is_some() {
            delta.differs(&resource, "tags", keys(&missing), "missing");
        }
        let mut merged = bucket.tags.clone();
        merged.extend(missing);
        delta.act(Action::PutBucketTags(merged));
    }
    delta
}

/// A trail setting that differs: the drift, and the existing-trail setting that governs whether
/// trailkeeper may repair it on a trail it does not own (None: never).
struct TrailField {
    drift: Drift,
    setting: Option<ExistingTrailSetting>,
}

/// `manage`: for an existing trail, the settings trailkeeper may change (None for its own trail:
/// all of them). `key_arn`: the key a managed trail must use.
pub fn diff_trail(
    desired: &TrailSettings,
    observed: Option<&ObservedTrail>,
    key_arn: Option<&str>,
    manage: Option<&[ExistingTrailSetting]>,
) -> Delta {
    let mut delta = Delta::default();
    let resource = desired.arn.clone();
    let Some(trail) = observed else {
        delta.differs(&resource, "exists", true, false);
        if manage.is_none() {
            delta.act(Action::CreateTrail);
            delta.act(Action::PutEventSelectors(desired.event_selectors.clone()));
            if !desired.insight_selectors.is_empty() {
                delta.act(Action::PutInsightSelectors(desired.insight_selectors.clone()));
            }
            delta.act(Action::StartLogging);
        } else {
            delta.unrepairable = delta.drift.clone();
        }
        return delta;
    };
    let mut fields = Vec::new();
    let mut update = TrailUpdate::default();
    let mut field = |name: &str, expected: String, actual: String, setting: Option<ExistingTrailSetting>| {
        fields.push(TrailField {
            drift: Drift {
                resource: resource.clone(),
                field: name.to_string(),
                expected,
                actual,
            },
            setting,
        });
    };
    let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "(none)".to_string());
    if desired.bucket.is_some() && trail.bucket != desired.bucket {
        field("s3BucketName", show(&desired.bucket), show(&trail.bucket), None);
        update.bucket = desired.bucket.clone();
    }
    if desired.key_prefix.is_some() && trail.key_prefix != desired.key_prefix {
        field("s3KeyPrefix", show(&desired.key_prefix), show(&trail.key_prefix), None);
        update.key_prefix = desired.key_prefix.clone();
    }
    match (manage, key_arn) {
        // A managed trail uses the trail key.
        (None, Some(arn)) if !trail.kms_key.as_deref().is_some_and(|k| key_matches(k, arn)) => {
            field("kmsKeyId", arn.to_string(), show(&trail.kms_key), None);
            update.kms_key = Some(arn.to_string());
        }
        (None, None) => {
            field(
                "kmsKeyId",
                "the trail key (to be created)".into(),
                show(&trail.kms_key),
                None,
            );
        }
        (Some(_), _) if desired.encrypted && trail.kms_key.is_none() => {
            field(
                "kmsKeyId",
                "encrypted with a KMS key".into(),
                "not encrypted (SSE-S3 only)".into(),
                None,
            );
        }
        _ => {}
    }
    if trail.multi_region != desired.multi_region {
        field(
            "isMultiRegionTrail",
            desired.multi_region.to_string(),
            trail.multi_region.to_string(),
            Some(ExistingTrailSetting::MultiRegion),
        );
        update.multi_region = Some(desired.multi_region);
    }
    if trail.global_service_events != desired.global_service_events {
        field(
            "includeGlobalServiceEvents",
            desired.global_service_events.to_string(),
            trail.global_service_events.to_string(),
            Some(ExistingTrailSetting::GlobalServiceEvents),
        );
        update.global_service_events = Some(desired.global_service_events);
    }
    if trail.log_file_validation != desired.log_file_validation {
        field(
            "logFileValidation",
            on_off(desired.log_file_validation).into(),
            on_off(trail.log_file_validation).into(),
            Some(ExistingTrailSetting::LogFileValidation),
        );
        update.log_file_validation = Some(desired.log_file_validation);
    }
    if manage.is_none() && trail.organization != desired.organization {
        field(
            "isOrganizationTrail",
            desired.organization.to_string(),
            trail.organization.to_string(),
            None,
        );
        update.organization = Some(desired.organization);
    }
    if manage.is_none() && trail.cloud_watch_logs != desired.cloud_watch_logs {
        let show_cw =
            |c: &Option<(String, String)>| c.as_ref().map_or_else(|| "(none)".to_string(), |(g, _)| g.clone());
        field(
            "cloudWatchLogs",
            show_cw(&desired.cloud_watch_logs),
            show_cw(&trail.cloud_watch_logs),
            None,
        );
        update.cloud_watch_logs = desired.cloud_watch_logs.clone();
    }
    if trail.details_observable && trail.logging != desired.logging {
        field(
            "logging",
            on_off(desired.logging).into(),
            on_off(trail.logging).into(),
            Some(ExistingTrailSetting::Logging),
        );
    }
    if trail.details_observable && trail.event_selectors != desired.event_selectors {
        field(
            "eventSelectors",
            describe_selectors(&desired.event_selectors),
            describe_selectors(&trail.event_selectors),
            Some(ExistingTrailSetting::EventSelectors),
        );
    }
    let insights_differ = trail.details_observable && trail.insight_selectors != desired.insight_selectors;
    if insights_differ && manage.is_none() {
        field(
            "insightSelectors",
            desired.insight_selectors.join(", "),
            trail.insight_selectors.join(", "),
            None,
        );
    }
    let missing = if manage.is_none() {
        missing_tags(&desired.tags, &trail.tags)
    } else {
        BTreeMap::new()
    };
    if !missing.is_empty() {
        field("tags", keys(&missing), "missing".into(), None);
    }

    let allowed = |f: &TrailField| match (manage, f.setting) {
        (None, _) => true,
        (Some(m), Some(s)) => m.contains(&s),
        (Some(_), None) => false,
    };
    let repairable = |name: &str| fields.iter().any(|f| f.drift.field == name && allowed(f));
    let mut allowed_update = TrailUpdate::default();
    if repairable("s3BucketName") {
        allowed_update.bucket = update.bucket.clone();
    }
    if repairable("s3KeyPrefix") {
        allowed_update.key_prefix = update.key_prefix.clone();
    }
    if repairable("kmsKeyId") {
        allowed_update.kms_key = update.kms_key.clone();
    }
    if repairable("isMultiRegionTrail") {
        allowed_update.multi_region = update.multi_region;
    }
    if repairable("includeGlobalServiceEvents") {
        allowed_update.global_service_events = update.global_service_events;
    }
    if repairable("logFileValidation") {
        allowed_update.log_file_validation = update.log_file_validation;
    }
    if repairable("isOrganizationTrail") {
        allowed_update.organization = update.organization;
    }
    if repairable("cloudWatchLogs") {
        allowed_update.cloud_watch_logs = update.cloud_watch_logs.clone();
    }
    if !allowed_update.is_empty() {
        delta.act(Action::UpdateTrail(allowed_update));
    }
    if repairable("eventSelectors") {
        delta.act(Action::PutEventSelectors(desired.event_selectors.clone()));
    }
    if repairable("insightSelectors") {
        delta.act(Action::PutInsightSelectors(desired.insight_selectors.clone()));
    }
    if repairable("tags") {
        delta.act(Action::AddTrailTags(missing));
    }
    if repairable("logging") {
        delta.act(Action::StartLogging);
    }
    for f in fields {
        // A managed trail whose key is still to be created is repaired once the key exists.
        let pending_key = manage.is_none() && f.drift.field == "kmsKeyId";
        if allowed(&f) || pending_key {
            delta.drift.push(f.drift);
        } else {
            delta.unrepairable.push(f.drift);
        }
    }
    delta
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
mod tests {
    use super::*;

    fn lock(mode: LockMode, days: i32) -> Option<LockRetention> {
        Some(LockRetention { mode, days })
    }

    #[test]
    fn the_lock_is_weakened_by_a_lower_mode_or_fewer_days_only() {
        use LockMode::*;
        assert!(weakens_lock(&lock(Governance, 365), &lock(Governance, 30)));
        assert!(weakens_lock(&lock(Compliance, 365), &lock(Governance, 365)));
        assert!(weakens_lock(&lock(Governance, 365), &None));
        assert!(!weakens_lock(&lock(Governance, 365), &lock(Governance, 730)));
        assert!(!weakens_lock(&lock(Governance, 365), &lock(Compliance, 365)));
        assert!(!weakens_lock(&None, &lock(Governance, 1)));
    }

    #[test]
    fn forever_to_days_and_fewer_days_are_shortening() {
        assert!(shortens(None, Some(3650)));
        assert!(shortens(Some(90), Some(30)));
        assert!(!shortens(Some(30), Some(90)));
        assert!(!shortens(Some(30), None));
        assert!(!shortens(None, None));
    }

    #[test]
    fn key_ids_and_arns_designate_the_same_key() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234-abcd";
        assert!(key_matches(arn, arn));
        assert!(key_matches("1234-abcd", arn));
        assert!(!key_matches("9999", arn));
    }

    #[test]
    fn an_owned_key_policy_keeps_its_statements_and_gains_ours() {
        let ours = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Action": "x"}, {"Sid": "B", "Action": "y"}]});
        let theirs = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Action": "old"}, {"Sid": "Theirs", "Action": "z"}]});
        let merged = merged_key_policy(&ours, Some(&theirs));
        let sids: Vec<&str> = merged["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids, ["Theirs", "A", "B"]);
        assert_eq!(merged["Statement"][1]["Action"], "x");
    }
}

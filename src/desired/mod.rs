//! The desired state of an account's AWS resources, as pure functions of the specs. No SDK types,
//! and Kubernetes types only where the desired thing is a Kubernetes object (`set`: the
//! LoggingBaselines a set renders): every value here is data that tests can compare.

pub mod archive;
pub mod athena;
pub mod events;
pub mod findings;
pub mod iam;
pub mod monitoring;
pub mod network_activity;
pub mod policy;
pub mod regional;
mod resource_policies;
pub mod set;

pub use resource_policies::{
    access_log_bucket_policy, key_policy, key_policy_base, key_policy_for, trail_bucket_policy, trail_bucket_policy_for,
};
pub(crate) use resource_policies::{audit_results_statement, cloudtrail_key_statements, deny_insecure_transport};

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{
    ExistingTrailSetting, FlowLogDestination, LockMode, LoggingBaselineSpec, ReadWriteType, RetentionPolicySpec,
    TrailPolicySpec, TrailSource,
};

/// Tag put on every resource trailkeeper creates, so people and trailkeeper can recognise them.
pub const MANAGED_BY_TAG: &str = "trailkeeper.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "trailkeeper";
/// Alias of the key trailkeeper creates when the baseline names none.
pub const KEY_ALIAS: &str = "alias/trailkeeper/cloudtrail";
/// Incomplete multipart uploads are aborted after this many days in both buckets.
pub const ABORT_INCOMPLETE_UPLOADS_DAYS: i32 = 7;
/// Lifecycle rule ids owned by trailkeeper.
pub const LIFECYCLE_RULE_EXPIRE: &str = "trailkeeper-expire";
pub const LIFECYCLE_RULE_ABORT: &str = "trailkeeper-abort-incomplete-uploads";

/// The specs one account is reconciled from: the baseline and the policies it resolves to.
#[derive(Clone, Debug)]
pub struct AccountSpecs<'a> {
    pub baseline: &'a LoggingBaselineSpec,
    pub trail_policy: &'a TrailPolicySpec,
    pub retention: &'a RetentionPolicySpec,
}

/// Everything trailkeeper wants to exist in one account's primary region.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredAccount {
    pub account_id: String,
    pub region: String,
    pub key: DesiredKey,
    /// Absent when the account's trail is an existing one: trailkeeper then deploys no storage.
    pub storage: Option<DesiredStorage>,
    pub trail: DesiredTrail,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredStorage {
    pub access_log_bucket: DesiredBucket,
    pub trail_bucket: DesiredBucket,
}

#[derive(Clone, Debug, PartialEq)]
pub enum KeySource {
    /// trailkeeper creates the key and finds it again by this alias.
    Create { alias: String, description: String },
    /// The baseline names an existing key: trailkeeper keeps its policy and rotation.
    Existing { arn: String },
    /// The trail is an existing one: its key is the trail owner's business.
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredKey {
    pub source: KeySource,
    pub policy: Value,
    pub rotation: bool,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum BucketEncryption {
    /// SSE-KMS with the trail's key (its ARN is known once the key is) and an S3 bucket key.
    KmsTrailKey,
    /// SSE-S3 (AES256).
    S3Managed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRetention {
    pub mode: LockMode,
    pub days: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    pub expire_current_after_days: Option<i32>,
    pub expire_noncurrent_after_days: Option<i32>,
    pub abort_incomplete_uploads_after_days: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredBucket {
    pub name: String,
    /// Object Lock must be enabled when the bucket is created.
    pub object_lock: bool,
    /// The lock's default retention; None = no default retention.
    pub lock_retention: Option<LockRetention>,
    pub encryption: BucketEncryption,
    pub policy: Value,
    /// Server access logging: (target bucket, target prefix).
    pub access_logging: Option<(String, String)>,
    pub lifecycle: Lifecycle,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DesiredTrail {
    Managed(TrailSettings),
    /// An existing trail, verified against the settings; only `manage` may be changed.
    Existing {
        arn: String,
        expected: TrailSettings,
        manage: Vec<ExistingTrailSetting>,
    },
}

/// The settings of a trail that trailkeeper compares and, where allowed, sets.
#[derive(Clone, Debug, PartialEq)]
pub struct TrailSettings {
    pub name: String,
    pub arn: String,
    pub bucket: Option<String>,
    pub key_prefix: Option<String>,
    pub multi_region: bool,
    pub global_service_events: bool,
    pub log_file_validation: bool,
    pub organization: bool,
    pub logging: bool,
    /// The trail must be encrypted with a KMS key (for a managed trail: the trail's own key).
    pub encrypted: bool,
    pub cloud_watch_logs: Option<(String, String)>,
    pub event_selectors: EventSelectors,
    pub insight_selectors: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventSelectors {
    Basic(Vec<BasicSelector>),
    Advanced(Vec<AdvancedSelector>),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BasicSelector {
    pub read_write_type: String,
    pub include_management_events: bool,
    pub exclude_management_event_sources: Vec<String>,
    /// (resource type, values)
    pub data_resources: Vec<(String, Vec<String>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AdvancedSelector {
    pub name: String,
    pub field_selectors: Vec<AdvancedField>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AdvancedField {
    pub field: String,
    pub equals: Vec<String>,
    pub starts_with: Vec<String>,
    pub ends_with: Vec<String>,
    pub not_equals: Vec<String>,
    pub not_starts_with: Vec<String>,
    pub not_ends_with: Vec<String>,
}

/// The ARN partition of a region.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `{prefix}-{accountId}-cloudtrail-{primaryRegion}` unless the baseline names the bucket.
pub fn trail_bucket_name(spec: &LoggingBaselineSpec) -> String {
    spec.storage.bucket_name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-cloudtrail-{}",
            spec.storage.name_prefix, spec.account_id, spec.primary_region
        )
    })
}

/// `{prefix}-{accountId}-cloudtrail-access-{primaryRegion}` unless the baseline names the bucket.
pub fn access_log_bucket_name(spec: &LoggingBaselineSpec) -> String {
    spec.storage.access_log_bucket_name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-cloudtrail-access-{}",
            spec.storage.name_prefix, spec.account_id, spec.primary_region
        )
    })
}

pub fn trail_arn(spec: &LoggingBaselineSpec) -> String {
    let region = &spec.primary_region;
    format!(
        "arn:{}:cloudtrail:{region}:{}:trail/{}",
        partition(region),
        spec.account_id,
        spec.trail.name
    )
}

/// `arn` with its account (the fifth field) replaced by `account`.
pub fn with_account(arn: &str, account: &str) -> String {
    let mut parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let Some(field) = parts.get_mut(4) {
        *field = account;
    }
    parts.join(":")
}

/// The tags of every resource trailkeeper creates: the baseline's own plus the managed-by tag.
pub fn resource_tags(spec: &LoggingBaselineSpec) -> BTreeMap<String, String> {
    let mut tags = spec.tags.clone();
    tags.insert(MANAGED_BY_TAG.to_string(), MANAGED_BY_VALUE.to_string());
    tags
}

pub fn account(specs: &AccountSpecs) -> DesiredAccount {
    let spec = specs.baseline;
    let managed = spec.trail.source == TrailSource::Managed;
    // A LogArchive's member keeps no bucket or key: the archive does (see archive::with_archive).
    let archived = spec.storage.archive_ref.is_some();
    let key_source = match (&spec.encryption.kms_key_arn, managed) {
        _ if archived => KeySource::None,
        (_, false) => KeySource::None,
        (Some(arn), true) => KeySource::Existing { arn: arn.clone() },
        (None, true) => KeySource::Create {
            alias: KEY_ALIAS.to_string(),
            description: format!(
                "trailkeeper: encrypts the CloudTrail logs of account {}",
                spec.account_id
            ),
        },
    };
    let trail = if managed {
        DesiredTrail::Managed(trail_settings(specs))
    } else {
        let arn = spec.trail.existing_trail_arn.clone().unwrap_or_default();
        let mut expected = trail_settings(specs);
        expected.name = arn.rsplit('/').next().unwrap_or_default().to_string();
        expected.arn = arn.clone();
        // The owner of an existing trail chooses where it delivers; trailkeeper checks its guarantees.
        expected.bucket = None;
        expected.key_prefix = None;
        DesiredTrail::Existing {
            arn,
            expected,
            manage: specs.trail_policy.manage_existing.clone(),
        }
    };
    DesiredAccount {
        account_id: spec.account_id.clone(),
        region: spec.primary_region.clone(),
        key: DesiredKey {
            source: key_source,
            policy: key_policy(spec),
            rotation: true,
            tags: resource_tags(spec),
        },
        storage: (managed && !archived).then(|| DesiredStorage {
            access_log_bucket: access_log_bucket(specs),
            trail_bucket: trail_bucket(specs),
        }),
        trail,
    }
}

/// An Organization trail belongs to the Organization's management account, whoever creates it
/// (a delegated administrator of CloudTrail: "The organization's management account remains the
/// owner of any CloudTrail organization resources the delegated administrator creates"): its ARN,
/// and the statements of the trail bucket and key for CloudTrail, name that account; the bucket
/// admits the Organization's path too.
/// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-delegated-administrator.html
pub fn with_organization_trail(
    account: &mut DesiredAccount,
    specs: &AccountSpecs,
    organization_id: &str,
    management_account: &str,
) {
    let spec = specs.baseline;
    let trail = with_account(&trail_arn(spec), management_account);
    if let DesiredTrail::Managed(settings) = &mut account.trail {
        settings.arn = trail.clone();
    }
    if let Some(storage) = account.storage.as_mut() {
        storage.trail_bucket.policy = trail_bucket_policy_for(spec, &trail, Some(organization_id));
    }
    account.key.policy = key_policy_for(spec, &trail);
}

/// Flow logs go to S3: into the trail bucket, written by the log delivery service.
pub fn flow_logs_to_trail_bucket(spec: &LoggingBaselineSpec) -> bool {
    spec.flow_logs.enabled && spec.flow_logs.destination == FlowLogDestination::S3
}

/// The lock's default retention of a RetentionPolicy; None for a Disabled lock.
pub fn lock_retention(retention: &RetentionPolicySpec) -> Option<LockRetention> {
    let lock = &retention.trail_logs.object_lock;
    (lock.mode != LockMode::Disabled).then_some(LockRetention {
        mode: lock.mode,
        days: lock.default_retention_days,
    })
}

pub fn trail_bucket(specs: &AccountSpecs) -> DesiredBucket {
    let spec = specs.baseline;
    let name = trail_bucket_name(spec);
    DesiredBucket {
        access_logging: Some((access_log_bucket_name(spec), format!("{name}/"))),
        name,
        object_lock: true,
        lock_retention: lock_retention(specs.retention),
        encryption: BucketEncryption::KmsTrailKey,
        policy: trail_bucket_policy(spec, None),
        lifecycle: Lifecycle {
            expire_current_after_days: specs.retention.trail_logs.expire_after_days,
            expire_noncurrent_after_days: specs.retention.trail_logs.noncurrent_versions_expire_after_days,
            abort_incomplete_uploads_after_days: ABORT_INCOMPLETE_UPLOADS_DAYS,
        },
        tags: resource_tags(spec),
    }
}

pub fn access_log_bucket(specs: &AccountSpecs) -> DesiredBucket {
    let spec = specs.baseline;
    DesiredBucket {
        name: access_log_bucket_name(spec),
        // S3 server access logging cannot deliver into a bucket with a default lock retention.
        object_lock: false,
        lock_retention: None,
        // Nor into an SSE-KMS bucket.
        encryption: BucketEncryption::S3Managed,
        policy: access_log_bucket_policy(spec),
        access_logging: None,
        lifecycle: Lifecycle {
            expire_current_after_days: specs.retention.access_logs.expire_after_days,
            expire_noncurrent_after_days: specs.retention.access_logs.expire_after_days,
            abort_incomplete_uploads_after_days: ABORT_INCOMPLETE_UPLOADS_DAYS,
        },
        tags: resource_tags(spec),
    }
}

pub fn trail_settings(specs: &AccountSpecs) -> TrailSettings {
    let spec = specs.baseline;
    let policy = specs.trail_policy;
    let mut tags = policy.tags.clone();
    tags.extend(resource_tags(spec));
    TrailSettings {
        name: spec.trail.name.clone(),
        arn: trail_arn(spec),
        bucket: Some(trail_bucket_name(spec)),
        key_prefix: Some(spec.storage.key_prefix.trim_end_matches('/').to_string()),
        multi_region: policy.multi_region,
        global_service_events: policy.include_global_service_events,
        log_file_validation: policy.log_file_validation,
        organization: policy.organization_trail,
        logging: true,
        encrypted: true,
        cloud_watch_logs: policy
            .cloud_watch_logs
            .as_ref()
            .map(|c| (c.log_group_arn.clone(), c.role_arn.clone())),
        event_selectors: event_selectors(policy),
        insight_selectors: policy
            .insight_selectors
            .iter()
            .map(|i| {
                serde_json::to_value(i)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect(),
        tags,
    }
}

pub fn event_selectors(policy: &TrailPolicySpec) -> EventSelectors {
    if let Some(network) = &policy.network_activity_events {
        return network_activity::selectors(policy, network);
    }
    if !policy.advanced_event_selectors.is_empty() {
        return advanced_selectors(policy);
    }
    basic_selectors(policy)
}

/// The policy's `advancedEventSelectors`, sorted.
fn advanced_selectors(policy: &TrailPolicySpec) -> EventSelectors {
    let mut selectors: Vec<AdvancedSelector> = policy
        .advanced_event_selectors
        .iter()
        .map(|s| {
            let mut fields: Vec<AdvancedField> = s
                .field_selectors
                .iter()
                .map(|f| AdvancedField {
                    field: f.field.clone(),
                    equals: sorted(&f.equals),
                    starts_with: sorted(&f.starts_with),
                    ends_with: sorted(&f.ends_with),
                    not_equals: sorted(&f.not_equals),
                    not_starts_with: sorted(&f.not_starts_with),
                    not_ends_with: sorted(&f.not_ends_with),
                })
                .collect();
            fields.sort();
            AdvancedSelector {
                name: s.name.clone(),
                field_selectors: fields,
            }
        })
        .collect();
    selectors.sort();
    EventSelectors::Advanced(selectors)
}

/// The policy's `managementEvents` and `dataEvents` as one basic selector.
fn basic_selectors(policy: &TrailPolicySpec) -> EventSelectors {
    let events = &policy.management_events;
    let read_write_type = match events.read_write_type {
        ReadWriteType::All => "All",
        ReadWriteType::ReadOnly => "ReadOnly",
        ReadWriteType::WriteOnly => "WriteOnly",
    };
    let mut data_resources: Vec<(String, Vec<String>)> = policy
        .data_events
        .iter()
        .map(|d| (d.resource_type.clone(), sorted(&d.values)))
        .collect();
    data_resources.sort();
    EventSelectors::Basic(vec![BasicSelector {
        read_write_type: read_write_type.to_string(),
        include_management_events: events.enabled,
        exclude_management_event_sources: sorted(&events.exclude_event_sources),
        data_resources,
    }])
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items.dedup();
    items
}

#[cfg(test)]
mod tests;

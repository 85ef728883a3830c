//! The desired state of an account's AWS resources, as pure functions of the specs. No SDK and no
//! Kubernetes types: every value here is data that tests can compare.

pub mod athena;
pub mod events;
pub mod iam;
pub mod policy;
pub mod regional;
pub mod set;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::{
    DeletionPolicy, ExistingTrailSetting, FlowLogDestination, LockMode, LoggingBaselineSpec, ReadWriteType,
    RetentionPolicySpec, TrailPolicySpec, TrailSource,
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

/// The tags of every resource trailkeeper creates: the baseline's own plus the managed-by tag.
pub fn resource_tags(spec: &LoggingBaselineSpec) -> BTreeMap<String, String> {
    let mut tags = spec.tags.clone();
    tags.insert(MANAGED_BY_TAG.to_string(), MANAGED_BY_VALUE.to_string());
    tags
}

pub fn account(specs: &AccountSpecs) -> DesiredAccount {
    let spec = specs.baseline;
    let managed = spec.trail.source == TrailSource::Managed;
    let key_source = match (&spec.encryption.kms_key_arn, managed) {
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
        storage: managed.then(|| DesiredStorage {
            access_log_bucket: access_log_bucket(specs),
            trail_bucket: trail_bucket(specs),
        }),
        trail,
    }
}

/// Flow logs go to S3: into the trail bucket, written by the log delivery service.
pub fn flow_logs_to_trail_bucket(spec: &LoggingBaselineSpec) -> bool {
    spec.flow_logs.enabled && spec.flow_logs.destination == FlowLogDestination::S3
}

/// The source ARN of log deliveries (flow logs to S3) of this account, from any region.
fn log_delivery_source(spec: &LoggingBaselineSpec) -> String {
    format!("arn:{}:logs:*:{}:*", partition(&spec.primary_region), spec.account_id)
}

/// The key policy: the account root (so IAM policies apply), the administrators, CloudTrail
/// (GenerateDataKey only for this trail's encryption context and source ARN), the log delivery
/// service when flow logs go to the trail bucket, and the operators (Decrypt of this account's
/// CloudTrail logs, and the audit queries' results through S3).
pub fn key_policy(spec: &LoggingBaselineSpec) -> Value {
    let account = &spec.account_id;
    let part = partition(&spec.primary_region);
    let trail = trail_arn(spec);
    let mut statements = key_policy_base(spec)["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    statements.push(json!({
        "Sid": "CloudTrailEncryptLogs",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "kms:GenerateDataKey*",
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:SourceArn": trail},
            "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail}
        }
    }));
    statements.push(json!({
        "Sid": "CloudTrailDescribeKey",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "kms:DescribeKey",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceArn": trail}}
    }));
    if flow_logs_to_trail_bucket(spec) {
        // SSE-KMS buckets: the delivery service encrypts with the bucket's key (VPC user guide,
        // "Amazon S3 bucket permissions for flow logs", SSE-KMS), for this account's deliveries only.
        statements.push(json!({
            "Sid": "LogDeliveryEncryptFlowLogs",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": log_delivery_source(spec)}
            }
        }));
    }
    if !spec.encryption.operators.is_empty() {
        statements.push(json!({
            "Sid": "OperatorsDecryptLogs",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(&spec.encryption.operators)},
            "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": account},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": format!("arn:{part}:cloudtrail:*:{account}:trail/*")}
            }
        }));
        if spec.audit_queries.enabled {
            // Athena writes and reads query results through S3, encrypted with this key.
            let results = format!("arn:{part}:s3:::{}", athena::results_bucket_name(spec));
            statements.push(json!({
                "Sid": "OperatorsUseAuditQueryResults",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(&spec.encryption.operators)},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": account,
                        "kms:ViaService": format!("s3.{}.amazonaws.com", spec.primary_region)
                    },
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [results.clone(), format!("{results}/*")]}
                }
            }));
        }
    }
    json!({"Version": "2012-10-17", "Id": "trailkeeper-cloudtrail-key", "Statement": statements})
}

/// What every key trailkeeper creates admits: the account root (so IAM policies apply) and the
/// administrators.
pub fn key_policy_base(spec: &LoggingBaselineSpec) -> Value {
    let part = partition(&spec.primary_region);
    let mut statements = vec![json!({
        "Sid": "EnableIAMPolicies",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:{part}:iam::{}:root", spec.account_id)},
        "Action": "kms:*",
        "Resource": "*"
    })];
    if !spec.encryption.administrators.is_empty() {
        statements.push(json!({
            "Sid": "KeyAdministrators",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(&spec.encryption.administrators)},
            "Action": [
                "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"
            ],
            "Resource": "*"
        }));
    }
    if let Some(credentials) = &spec.credentials {
        // trailkeeper's own maintenance of the key, granted here rather than by an IAM policy on
        // every key (or on tagged keys, which anyone who may tag could claim).
        let delete = spec.deletion_policy == DeletionPolicy::Delete;
        statements.push(json!({
            "Sid": "TrailkeeperMaintainsKey",
            "Effect": "Allow",
            "Principal": {"AWS": credentials.assume_role_arn},
            "Action": iam::key_maintenance_actions(delete),
            "Resource": "*"
        }));
    }
    json!({"Version": "2012-10-17", "Id": "trailkeeper-cloudtrail-key", "Statement": statements})
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items.dedup();
    items
}

pub(crate) fn deny_insecure_transport(bucket_arn: &str) -> Value {
    json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, format!("{bucket_arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    })
}

/// The trail bucket's policy: CloudTrail may check the ACL and write under the prefix only on
/// behalf of this trail (confused-deputy guard), also under the Organization's path for an
/// Organization trail (`organization_id`); the log delivery service may write flow logs of this
/// account when they go to S3; nobody may use plain HTTP.
///
/// The flow-log statements are ours so that CreateFlowLogs, which attaches its own policy to a
/// bucket lacking them (VPC user guide, "Amazon S3 bucket permissions for flow logs"), never
/// replaces CloudTrail's.
pub fn trail_bucket_policy(spec: &LoggingBaselineSpec, organization_id: Option<&str>) -> Value {
    let part = partition(&spec.primary_region);
    let bucket_arn = format!("arn:{part}:s3:::{}", trail_bucket_name(spec));
    let trail = trail_arn(spec);
    let prefix = spec.storage.key_prefix.trim_end_matches('/');
    let mut statements = vec![
        json!({
            "Sid": "CloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": {"aws:SourceArn": trail}}
        }),
        json!({
            "Sid": "CloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/{prefix}/AWSLogs/{}/*", spec.account_id),
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}}
        }),
    ];
    if let Some(organization) = organization_id {
        // An Organization trail writes every member's logs under AWSLogs/{o-id}/{account}/.
        statements.push(json!({
            "Sid": "CloudTrailWriteOrganization",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/{prefix}/AWSLogs/{organization}/*"),
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}}
        }));
    }
    if flow_logs_to_trail_bucket(spec) {
        let account = &spec.account_id;
        let source = log_delivery_source(spec);
        statements.push(json!({
            "Sid": "AWSLogDeliveryWrite",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/AWSLogs/{account}/*"),
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account, "s3:x-amz-acl": "bucket-owner-full-control"},
                "ArnLike": {"aws:SourceArn": source}
            }
        }));
        statements.push(json!({
            "Sid": "AWSLogDeliveryAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": source}}
        }));
    }
    statements.push(deny_insecure_transport(&bucket_arn));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The access-log bucket's policy: only the S3 logging service, for the trail bucket of this
/// account; nobody may use plain HTTP.
pub fn access_log_bucket_policy(spec: &LoggingBaselineSpec) -> Value {
    let part = partition(&spec.primary_region);
    let bucket_arn = format!("arn:{part}:s3:::{}", access_log_bucket_name(spec));
    let mut statements = vec![json!({
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": format!("{bucket_arn}/*"),
        "Condition": {
            "ArnLike": {"aws:SourceArn": format!("arn:{part}:s3:::{}", trail_bucket_name(spec))},
            "StringEquals": {"aws:SourceAccount": spec.account_id}
        }
    })];
    if spec.config_rules.enabled && spec.config_rules.create_recorder {
        // The recorders trailkeeper creates deliver here, for this account only.
        let account = &spec.account_id;
        statements.push(json!({
            "Sid": "AWSConfigBucketCheck",
            "Effect": "Allow",
            "Principal": {"Service": "config.amazonaws.com"},
            "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
            "Resource": bucket_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }));
        statements.push(json!({
            "Sid": "AWSConfigBucketDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "config.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/{}/AWSLogs/{account}/Config/*", regional::CONFIG_DELIVERY_PREFIX),
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": account}}
        }));
    }
    statements.push(deny_insecure_transport(&bucket_arn));
    json!({"Version": "2012-10-17", "Statement": statements})
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
    if !policy.advanced_event_selectors.is_empty() {
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
        return EventSelectors::Advanced(selectors);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec};

    fn spec() -> LoggingBaselineSpec {
        serde_json::from_value(json!({
            "accountId": "111122223333",
            "primaryRegion": "eu-west-1",
            "encryption": {"administrators": ["arn:aws:iam::111122223333:role/admin"], "operators": []}
        }))
        .unwrap()
    }

    #[test]
    fn names_follow_the_templates() {
        let s = spec();
        assert_eq!(trail_bucket_name(&s), "trailkeeper-111122223333-cloudtrail-eu-west-1");
        assert_eq!(
            access_log_bucket_name(&s),
            "trailkeeper-111122223333-cloudtrail-access-eu-west-1"
        );
        assert_eq!(
            trail_arn(&s),
            "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper"
        );
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn the_key_policy_admits_root_administrators_and_cloudtrail_for_this_trail_only() {
        let policy = key_policy(&spec());
        let statements = policy["Statement"].as_array().unwrap();
        let sids: Vec<&str> = statements.iter().map(|s| s["Sid"].as_str().unwrap()).collect();
        // No operators: no decrypt statement.
        assert_eq!(
            sids,
            [
                "EnableIAMPolicies",
                "KeyAdministrators",
                "CloudTrailEncryptLogs",
                "CloudTrailDescribeKey"
            ]
        );
        let encrypt = &statements[2];
        let trail = "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper";
        assert_eq!(encrypt["Condition"]["StringEquals"]["aws:SourceArn"], trail);
        assert_eq!(
            encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
            trail
        );
        assert_eq!(statements[0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
    }

    #[test]
    fn the_trail_bucket_policy_guards_against_confused_deputies_and_plain_http() {
        let policy = trail_bucket_policy(&spec(), None);
        let statements = policy["Statement"].as_array().unwrap();
        for s in &statements[..2] {
            assert_eq!(s["Principal"]["Service"], "cloudtrail.amazonaws.com");
            assert_eq!(
                s["Condition"]["StringEquals"]["aws:SourceArn"],
                "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper"
            );
        }
        assert_eq!(
            statements[1]["Resource"],
            "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1/AWS/CloudTrail/AWSLogs/111122223333/*"
        );
        assert_eq!(statements[2]["Effect"], "Deny");
        assert_eq!(statements[2]["Condition"]["Bool"]["aws:SecureTransport"], "false");
    }

    #[test]
    fn the_access_log_bucket_admits_only_s3_logging_for_the_trail_bucket() {
        let policy = access_log_bucket_policy(&spec());
        let allow = &policy["Statement"][0];
        assert_eq!(allow["Principal"]["Service"], "logging.s3.amazonaws.com");
        assert_eq!(
            allow["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1"
        );
    }

    #[test]
    fn the_default_retention_keeps_logs_forever_under_a_governance_lock() {
        let (s, t, r) = (spec(), TrailPolicySpec::default(), RetentionPolicySpec::default());
        let d = account(&AccountSpecs {
            baseline: &s,
            trail_policy: &t,
            retention: &r,
        });
        let storage = d.storage.unwrap();
        let trail_bucket = storage.trail_bucket;
        assert!(trail_bucket.object_lock);
        assert_eq!(
            trail_bucket.lock_retention,
            Some(LockRetention {
                mode: LockMode::Governance,
                days: 365
            })
        );
        assert_eq!(trail_bucket.lifecycle.expire_current_after_days, None);
        assert_eq!(trail_bucket.lifecycle.expire_noncurrent_after_days, None);
        assert_eq!(trail_bucket.encryption, BucketEncryption::KmsTrailKey);
        let access = storage.access_log_bucket;
        assert!(!access.object_lock);
        assert_eq!(access.encryption, BucketEncryption::S3Managed);
        assert!(matches!(d.key.source, KeySource::Create { .. }));
        let DesiredTrail::Managed(trail) = d.trail else {
            panic!("a managed trail")
        };
        assert!(trail.multi_region && trail.global_service_events && trail.log_file_validation && trail.logging);
    }

    #[test]
    fn an_existing_trail_gets_no_storage_and_no_key() {
        let mut s = spec();
        s.trail.source = TrailSource::Existing;
        s.trail.existing_trail_arn = Some("arn:aws:cloudtrail:us-east-1:999988887777:trail/org".into());
        let (t, r) = (TrailPolicySpec::default(), RetentionPolicySpec::default());
        let d = account(&AccountSpecs {
            baseline: &s,
            trail_policy: &t,
            retention: &r,
        });
        assert!(d.storage.is_none());
        assert_eq!(d.key.source, KeySource::None);
        let DesiredTrail::Existing { arn, expected, manage } = d.trail else {
            panic!("an existing trail")
        };
        assert_eq!(arn, "arn:aws:cloudtrail:us-east-1:999988887777:trail/org");
        assert_eq!(expected.name, "org");
        assert!(expected.bucket.is_none() && manage.is_empty());
    }

    fn statement<'a>(policy: &'a Value, sid: &str) -> Option<&'a Value> {
        policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid)
    }

    #[test]
    fn an_organization_trail_may_write_under_the_organization_path_for_this_trail_only() {
        let s = spec();
        assert!(statement(&trail_bucket_policy(&s, None), "CloudTrailWriteOrganization").is_none());
        let policy = trail_bucket_policy(&s, Some("o-abc123defg"));
        let write = statement(&policy, "CloudTrailWriteOrganization").unwrap();
        assert_eq!(
            write["Resource"],
            "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1/AWS/CloudTrail/AWSLogs/o-abc123defg/*"
        );
        assert_eq!(write["Condition"]["StringEquals"]["aws:SourceArn"], trail_arn(&s));
        assert_eq!(
            write["Condition"]["StringEquals"]["s3:x-amz-acl"],
            "bucket-owner-full-control"
        );
    }

    #[test]
    fn flow_logs_to_s3_own_the_log_delivery_statements_of_the_bucket_and_the_key() {
        let mut s = spec();
        assert!(statement(&trail_bucket_policy(&s, None), "AWSLogDeliveryWrite").is_none());
        assert!(statement(&key_policy(&s), "LogDeliveryEncryptFlowLogs").is_none());
        s.flow_logs.destination = FlowLogDestination::S3;
        let policy = trail_bucket_policy(&s, None);
        let write = statement(&policy, "AWSLogDeliveryWrite").unwrap();
        assert_eq!(write["Principal"]["Service"], "delivery.logs.amazonaws.com");
        assert_eq!(
            write["Resource"],
            "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1/AWSLogs/111122223333/*"
        );
        assert_eq!(write["Condition"]["StringEquals"]["aws:SourceAccount"], "111122223333");
        assert_eq!(
            write["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:logs:*:111122223333:*"
        );
        assert!(statement(&policy, "AWSLogDeliveryAclCheck").is_some());
        // CloudTrail's statements stay, and the deny comes last.
        assert!(statement(&policy, "CloudTrailWrite").is_some());
        assert_eq!(
            policy["Statement"].as_array().unwrap().last().unwrap()["Effect"],
            "Deny"
        );
        let key = key_policy(&s);
        let encrypt = statement(&key, "LogDeliveryEncryptFlowLogs").unwrap();
        assert_eq!(
            encrypt["Condition"]["StringEquals"]["aws:SourceAccount"],
            "111122223333"
        );
    }

    #[test]
    fn operators_may_use_the_audit_query_results_through_s3_only() {
        let mut s = spec();
        s.encryption.operators = vec!["arn:aws:iam::111122223333:role/auditor".into()];
        let key = key_policy(&s);
        let results = statement(&key, "OperatorsUseAuditQueryResults").unwrap();
        assert_eq!(results["Principal"]["AWS"][0], "arn:aws:iam::111122223333:role/auditor");
        assert_eq!(
            results["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            results["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"][0],
            "arn:aws:s3:::trailkeeper-111122223333-athena-results-eu-west-1"
        );
        s.audit_queries.enabled = false;
        assert!(statement(&key_policy(&s), "OperatorsUseAuditQueryResults").is_none());
    }

    #[test]
    fn the_account_role_maintains_the_key_through_its_policy_and_deletes_it_only_under_delete() {
        let mut s = spec();
        assert!(statement(&key_policy(&s), "TrailkeeperMaintainsKey").is_none());
        s.credentials = Some(crate::api::Credentials {
            assume_role_arn: "arn:aws:iam::111122223333:role/trailkeeper".into(),
            external_id: None,
        });
        let key = key_policy(&s);
        let maintains = statement(&key, "TrailkeeperMaintainsKey").unwrap();
        assert_eq!(
            maintains["Principal"]["AWS"],
            "arn:aws:iam::111122223333:role/trailkeeper"
        );
        let actions = maintains["Action"].to_string();
        assert!(actions.contains("kms:PutKeyPolicy") && actions.contains("kms:Decrypt"));
        assert!(!actions.contains("kms:ScheduleKeyDeletion"));
        s.deletion_policy = DeletionPolicy::Delete;
        let key = key_policy(&s);
        assert!(
            statement(&key, "TrailkeeperMaintainsKey").unwrap()["Action"]
                .to_string()
                .contains("kms:ScheduleKeyDeletion")
        );
    }
}

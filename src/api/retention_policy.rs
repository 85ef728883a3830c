use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;

/// How long each kind of audit log is kept, and the Object Lock of the trail bucket. An absent
/// number of days means kept forever (the baseline's default).
// Several printer columns share `type_ = ...`, which clippy mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "trailkeeper.io",
    version = "v1alpha1",
    kind = "RetentionPolicy",
    namespaced,
    shortname = "rp",
    category = "trailkeeper",
    cel,
    status = "super::PolicyStatus",
    printcolumn(name = "Lock", type_ = "string", json_path = ".spec.trailLogs.objectLock.mode"),
    printcolumn(
        name = "LockDays",
        type_ = "integer",
        json_path = ".spec.trailLogs.objectLock.defaultRetentionDays"
    ),
    printcolumn(name = "Approval", type_ = "string", json_path = ".spec.approval.reference"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Baselines", type_ = "integer", json_path = ".status.baselines"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = rules::lock_not_weakened_without_approval(),
    validation = rules::not_shortened_without_approval("trailLogs.expireAfterDays"),
    validation = rules::not_shortened_without_approval("trailLogs.noncurrentVersionsExpireAfterDays"),
    validation = rules::not_shortened_without_approval("accessLogs.expireAfterDays"),
    validation = rules::not_shortened_without_approval("instanceLogs.retentionDays"),
    validation = rules::not_shortened_without_approval("flowLogs.retentionDays")
)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicySpec {
    /// The CloudTrail log files in the trail bucket, and its Object Lock.
    #[serde(default)]
    pub trail_logs: TrailLogRetention,
    /// The server access logs of the trail bucket.
    #[serde(default)]
    pub access_logs: AccessLogRetention,
    /// The CloudWatch Logs groups of EC2 instance log files.
    #[serde(default)]
    pub instance_logs: LogGroupRetention,
    /// The CloudWatch Logs group of VPC flow logs.
    #[serde(default)]
    pub flow_logs: LogGroupRetention,
    /// Required for any change that shortens a retention or weakens the lock; its reference must
    /// be new in that change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// Retention of the CloudTrail log files in the trail bucket.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = rules::expiry_not_before_lock_ends())]
pub struct TrailLogRetention {
    #[serde(default)]
    pub object_lock: ObjectLock,
    /// Days after which current log files expire; absent keeps them forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub expire_after_days: Option<i32>,
    /// Days after which noncurrent versions expire; absent keeps them forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub noncurrent_versions_expire_after_days: Option<i32>,
}

/// The Object Lock default retention of the trail bucket.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.mode != 'Compliance' || self.acknowledgeIrreversible").message("a Compliance lock cannot be shortened or removed by anyone, root included, until it expires: set acknowledgeIrreversible: true to confirm"))]
pub struct ObjectLock {
    /// Governance (the baseline: users with s3:BypassGovernanceRetention may still delete), Compliance (nobody may, until the retention ends) or Disabled (no default retention on new log files).
    #[serde(default)]
    pub mode: LockMode,
    /// Days each new log file version is locked for.
    #[serde(default = "default_lock_days")]
    #[schemars(range(min = 1, max = 36500))]
    pub default_retention_days: i32,
    /// Must be true for a Compliance lock.
    #[serde(default)]
    pub acknowledge_irreversible: bool,
}

impl Default for ObjectLock {
    fn default() -> Self {
        Self {
            mode: LockMode::default(),
            default_retention_days: default_lock_days(),
            acknowledge_irreversible: false,
        }
    }
}

/// The baseline's lock: Governance mode, one year of default retention on every new log file.
fn default_lock_days() -> i32 {
    365
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum LockMode {
    /// No default retention on new objects (Object Lock itself stays enabled: S3 cannot disable it).
    Disabled,
    #[default]
    Governance,
    Compliance,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogRetention {
    /// Days after which server access log files expire; absent keeps them forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub expire_after_days: Option<i32>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupRetention {
    /// CloudWatch Logs retention in days; absent means never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::cloudwatch_retention_days())]
    pub retention_days: Option<i32>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The change ticket that approves this change (a shorter retention, a weaker lock, a wider
    /// admission), e.g. CHG-1234 (no surrounding whitespace, no control characters).
    #[schemars(pattern(super::patterns::APPROVAL_REFERENCE), length(min = 1, max = 128))]
    pub reference: String,
    /// Why the change is made, for the reviewers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
}

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Credentials, LastReconcile, Mode, PolicyRef, patterns, rules};

/// The log-archive account: one locked bucket and one key that receive the trails of every member
/// account (a LoggingBaseline with `storage.archiveRef` naming this LogArchive). Deleting a
/// LogArchive leaves everything in AWS: its buckets hold every member's logs.
// Several printer columns share `type_ = ...`, which clippy mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trailkeeper.io",
    version = "v1alpha1",
    kind = "LogArchive",
    namespaced,
    shortname = "la",
    category = "trailkeeper",
    status = "LogArchiveStatus",
    cel,
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.accountId"),
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Members", type_ = "integer", json_path = ".status.admittedMembers"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!has(self.replication) || self.replication.region != self.region").message("replication.region must be another region than the archive's"),
    validation = rules::organization_admission_names_the_organization(),
    validation = rules::organization_admission_has_an_approval(),
    validation = rules::organization_admission_approved_in_its_change()
)]
pub struct LogArchiveSpec {
    /// The log-archive account; trailkeeper refuses to act when its credentials resolve to another one.
    #[schemars(pattern(patterns::ACCOUNT_ID), length(max = 12))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("accountId is immutable: create a new LogArchive for another account"))]
    pub account_id: String,
    /// The region of the archive's buckets and key (members' trails deliver there from any region).
    #[schemars(pattern(patterns::REGION), length(max = 32))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("region is immutable: the archive's bucket and key stay where they are"))]
    pub region: String,
    /// Role to assume in the archive account; absent uses the operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Enforce: bring the archive to its spec. Observe: report drift in status and write nothing.
    #[serde(default)]
    pub mode: Mode,
    /// The `{prefix}` of generated bucket names.
    #[serde(default = "default_name_prefix")]
    #[schemars(pattern(patterns::NAME_PREFIX), length(max = 16))]
    pub name_prefix: String,
    /// Default `{prefix}-{accountId}-log-archive-{region}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::BUCKET_NAME), length(max = 63))]
    pub bucket_name: Option<String>,
    /// Default `{prefix}-{accountId}-log-archive-access-{region}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::BUCKET_NAME), length(max = 63))]
    pub access_log_bucket_name: Option<String>,
    /// Key prefix of every member's log files: `{keyPrefix}/AWSLogs/{accountId}/` (an Organization
    /// trail's: `{keyPrefix}/AWSLogs/{organizationId}/{accountId}/`). It may not contain `AWSLogs`:
    /// CloudTrail refuses a trail of another account whose prefix includes `AWSLogs/`.
    #[serde(default = "default_key_prefix")]
    #[schemars(pattern(patterns::KEY_PREFIX))]
    #[x_kube(validation = kube::core::Rule::new("!self.contains('AWSLogs')").message("keyPrefix may not contain AWSLogs: CloudTrail refuses a trail into another account's bucket whose S3KeyPrefix includes AWSLogs/, and adds AWSLogs/{accountId}/ itself"))]
    pub key_prefix: String,
    /// The members' Organization (`o-...`). Needed for an Organization trail among the members, and
    /// to admit the Organization (`admission: Organization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::ORGANIZATION_ID))]
    pub organization_id: Option<String>,
    /// Who may write into the archive. `Trails`: each member's trail, named by its ARN, under its
    /// own account's path only (43 members fit S3's 20 KB bucket policy, fewer with readers).
    /// `Organization`: any trail of `organizationId` that bears one of the members' trail names,
    /// each under its own account's path (for more members than the policies can name). It
    /// widens who may write into the locked archive: it needs `approval`, with a reference new
    /// in that change.
    #[serde(default)]
    pub admission: Admission,
    /// Required to admit the Organization; its reference must be new in the change that asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<super::Approval>,
    /// The RetentionPolicy in this namespace (the lock and the expiration of the archive); absent: the one named `default`, else the built-in baseline (kept forever, Governance lock of 365 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy_ref: Option<PolicyRef>,
    /// Principals of the archive account allowed to administer its key, besides the account root.
    #[serde(default)]
    #[schemars(inner(pattern(patterns::IAM_PRINCIPAL_ARN)), length(max = 50))]
    pub administrators: Vec<String>,
    /// Principals of the archive account allowed to read and decrypt every member's logs.
    #[serde(default)]
    #[schemars(inner(pattern(patterns::IAM_PRINCIPAL_ARN)), length(max = 50))]
    pub auditors: Vec<String>,
    /// Principals (of any account) allowed to read the logs of some member accounts only: their
    /// prefixes in the bucket and their trails' encryption context in the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub readers: Vec<ArchiveReader>,
    /// Minutes without a delivery under a member's path (digests get an hour more) after which the member is late (status.lateMembers, condition DeliveryHealthy).
    #[serde(default = "default_delivery_alarm")]
    #[schemars(range(min = 5, max = 10080))]
    pub delivery_alarm_after_minutes: i32,
    /// Athena over every member's logs in the archive account: one table with the account as a projected partition, a workgroup with encrypted results and the named audit queries.
    #[serde(default)]
    pub audit_queries: super::AuditQueriesSpec,
    /// A replica of the archive in another region: its own bucket (Object Lock with the same default retention), key and replication role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationSpec>,
    /// Tags put on every AWS resource of the archive (besides trailkeeper's own `trailkeeper.io/*` tags).
    #[serde(default)]
    #[schemars(extend("maxProperties" = 40, "additionalProperties" = {"type": "string", "maxLength": 256, "pattern": super::patterns::TAG_VALUE}))]
    #[x_kube(validation = super::rules::tag_keys_aws_accepts())]
    pub tags: BTreeMap<String, String>,
}

/// Someone who reads the logs of some member accounts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveReader {
    /// An IAM role or user ARN, or an account root.
    #[schemars(pattern(patterns::IAM_PRINCIPAL_ARN))]
    pub principal: String,
    /// The member accounts whose logs it reads.
    #[schemars(inner(pattern(patterns::ACCOUNT_ID)), length(min = 1, max = 50))]
    pub accounts: Vec<String>,
}

/// Where the archive is replicated.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationSpec {
    /// The replica's region.
    #[schemars(pattern(patterns::REGION), length(max = 32))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("replication.region is immutable: the replica's bucket and key stay where they are"))]
    pub region: String,
    /// Default `{prefix}-{accountId}-log-archive-replica-{region}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::BUCKET_NAME), length(max = 63))]
    pub bucket_name: Option<String>,
}

/// The `{prefix}` of generated bucket names when the spec names none.
fn default_name_prefix() -> String {
    super::DEFAULT_NAME_PREFIX.to_string()
}

fn default_delivery_alarm() -> i32 {
    60
}

fn default_key_prefix() -> String {
    "AWS/CloudTrail".to_string()
}

/// How the archive's bucket and key policies admit the members' trails.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Admission {
    /// Each member's trail by its ARN (aws:SourceArn, the encryption context), each under its own account's path.
    #[default]
    Trails,
    /// Any trail of the Organization (aws:SourceOrgID) bearing one of the members' trail names, under any account's path: asked for in the spec, with an approval.
    Organization,
}

/// A member of the archive: a LoggingBaseline that names it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveMember {
    /// The member account.
    pub account_id: String,
    /// The member's trail, which the archive's policies admit.
    pub trail_arn: String,
    /// The LoggingBaseline, `namespace/name`.
    pub baseline: String,
    /// The archive's bucket and key policies in force admit this trail: its CreateTrail may go ahead.
    pub admitted: bool,
    /// When the policies in force first admitted it (RFC 3339): CloudTrail may refuse its trail for
    /// a short while after (S3 and KMS policy changes propagate), which the member waits out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<String>,
    /// The newest log file under the member's path in its trail's home region (today's or yesterday's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_log_file: Option<DeliveredFile>,
    /// The newest digest file there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_digest: Option<DeliveredFile>,
    /// Why the member is late; absent when its logs arrive (or it has not delivered yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<String>,
    /// An Organization trail: the accounts whose folders it writes under `AWSLogs/{organizationId}/`, delivering or quiet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_accounts: Option<OrganizationDelivery>,
}

/// The account folders under an Organization trail's path, by whether a log file arrived there in
/// the trail's home region within `deliveryAlarmAfterMinutes`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationDelivery {
    /// Accounts with a log file within the alarm window.
    #[serde(default)]
    pub delivering: Vec<String>,
    /// Accounts with a folder (they delivered before) and no log file within the window: closed, suspended, or no longer logged.
    #[serde(default)]
    pub quiet: Vec<String>,
}

/// A file a member's trail delivered into the archive.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredFile {
    /// Its key in the archive bucket.
    pub key: String,
    /// When it was delivered (RFC 3339), from its name.
    pub delivered_at: String,
}

/// What trailkeeper observed and did at the archive's last reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogArchiveStatus {
    /// The generation of the spec the last reconcile acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready and one condition per part (KeyReady, StorageReady, RetentionReady).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The bucket that receives the members' log files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// The bucket that receives the archive bucket's server access logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log_bucket_name: Option<String>,
    /// The key members' trails encrypt with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// The key prefix members deliver under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// How the policies in force admit the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    /// Exactly what the policies in force admit: which trails may write where, and who may decrypt to create a trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admits: Option<String>,
    /// The approval reference that allowed admitting the Organization (a widening needs a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_approval: Option<String>,
    /// The bytes of the bucket policy (S3 holds 20,480) and of the key policy (KMS holds 32,768).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_bytes: Option<PolicyBytes>,
    /// How many members the policies in force admit.
    #[serde(default)]
    pub admitted_members: u32,
    /// The members, each with whether the policies in force admit it and the proof of its deliveries.
    #[serde(default)]
    pub members: Vec<ArchiveMember>,
    /// The members whose logs stopped arriving (account ids).
    #[serde(default)]
    pub late_members: Vec<String>,
    /// Where to run the audit queries over every member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_queries: Option<super::AuditQueriesStatus>,
    /// The replica, when spec.replication is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationStatus>,
    /// When the last reconcile ran, and the AWS calls it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile: Option<LastReconcile>,
}

/// The archive's replica as observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationStatus {
    /// The replica bucket.
    pub bucket_name: String,
    /// The replica's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// The role S3 replicates with.
    pub role_arn: String,
    /// The replication rule in force on the archive bucket is trailkeeper's (Enabled, SSE-KMS objects, no delete markers).
    pub rule_in_force: bool,
    /// S3's replication status (COMPLETED, PENDING, FAILED) of the newest log file delivered, with its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_object: Option<String>,
    /// S3 Batch Replication of what live replication does not bring over: the objects that predate the rule (S3 does not replicate retroactively) and those whose replication FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_replication: Option<BatchReplicationStatus>,
}

/// One need for S3 Batch Replication and the job that answers it (one job per need, never two).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchReplicationStatus {
    /// Why a job is needed: the rule was put on a bucket that already held objects, or an object's replication FAILED (named).
    pub need: String,
    /// When trailkeeper found the need (RFC 3339).
    pub needed_since: String,
    /// The S3 Batch Operations job, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// When the job was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The job's status as S3 reports it (New, Preparing, Active, Complete, Failed, Cancelled, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    /// When the job ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Objects the job replicated.
    #[serde(default)]
    pub objects_replicated: i64,
    /// Objects the job could not replicate.
    #[serde(default)]
    pub objects_failed: i64,
    /// Why the job failed, as S3 reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyBytes {
    /// The archive bucket's policy, compact JSON, in bytes (S3 holds 20,480).
    pub bucket_policy: u32,
    /// The archive key's policy, compact JSON, in bytes (KMS holds 32,768).
    pub key_policy: u32,
}

//! What a LoggingBaseline reports: its status, conditions, drift, compliance and the retention
//! last applied.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The last integrity verification of the delivered logs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrityStatus {
    /// When it ran (RFC 3339).
    pub verified_at: String,
    /// The digests verified end between these times (RFC 3339): from...
    pub from: String,
    /// ...to.
    pub to: String,
    /// Every digest and log file of the period is valid (and there was at least one digest).
    pub valid: bool,
    /// Digest files verified.
    pub digests: u32,
    /// Log files verified (every one the digests list).
    pub log_files: u32,
    /// The files that are not valid (at most 20): verdict, key and why.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// What trailkeeper observed and did at the last reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggingBaselineStatus {
    /// The generation of the spec the last reconcile acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready and one condition per part of the baseline (KeyReady, StorageReady, TrailReady, ...).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The ARN of the trail in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_arn: Option<String>,
    /// The bucket that receives the trail's log files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// The bucket that receives the trail bucket's server access logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log_bucket_name: Option<String>,
    /// The KMS key that encrypts the trail's log files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// What differed from the baseline at the last observation.
    #[serde(default)]
    pub drift: Vec<Drift>,
    /// When the last reconcile ran, and the AWS calls it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile: Option<LastReconcile>,
    /// The retention in force, with the approval that allowed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_retention: Option<AppliedRetention>,
    /// Where to run the audit queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_queries: Option<AuditQueriesStatus>,
    /// The logging controls of the CIS benchmark, judged at the last reconcile, with evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<ComplianceStatus>,
    /// The last integrity verification (spec.verifyIntegrity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<IntegrityStatus>,
    /// Trails that record the account's management events more than once in the primary Region
    /// (copies after the first are charged), with the estimated monthly cost. Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_trails: Option<DuplicateTrails>,
    /// With sharding (`--shards` above 1): the shard of the account and the replica that last
    /// reconciled it. Absent with one shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_by: Option<ReconciledBy>,
}

/// Who last reconciled a baseline, with sharding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciledBy {
    /// The replica (its pod's name).
    pub replica: String,
    /// The account's shard: FNV-1a 64 of the account id, modulo `shards`.
    pub shard: u32,
    /// How many shards the fleet is split into.
    pub shards: u32,
}

/// Audit evidence: each logging control of a benchmark, passed or failed, and what was read.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceStatus {
    /// The benchmark and version the controls are from.
    pub benchmark: String,
    /// Controls passed of those that apply, e.g. `8/9`.
    pub summary: String,
    /// Each control, judged, with its evidence.
    pub controls: Vec<Control>,
}

/// One control of the benchmark, judged, with its evidence.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    /// The control's number in the benchmark, e.g. `3.1`.
    pub id: String,
    /// The control's title in the benchmark.
    pub title: String,
    /// Pass, Fail or NotApplicable.
    pub result: ControlResult,
    /// The resource and the setting read.
    pub evidence: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub enum ControlResult {
    Pass,
    Fail,
    NotApplicable,
}

/// Where to run the audit queries.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditQueriesStatus {
    /// The Glue database.
    pub database: String,
    /// The CloudTrail table.
    pub table: String,
    /// The Athena workgroup that holds the named queries.
    pub work_group: String,
    /// The `s3://` location the workgroup writes (encrypted) results to.
    pub results_location: String,
    /// The named queries of trailkeeper in the workgroup.
    pub named_queries: u32,
}

/// A standard Kubernetes condition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The part of the baseline, e.g. TrailReady, or Ready for the whole.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// A CamelCase reason a person can act on, e.g. AccessDenied or ApprovalRequired.
    pub reason: String,
    /// What was found, and what to do about it.
    #[serde(default)]
    pub message: String,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation of the spec the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// The AWS resource, e.g. `s3://bucket` or a trail ARN.
    pub resource: String,
    /// The setting that differed.
    pub field: String,
    /// The value the baseline requires.
    pub expected: String,
    /// The value found in AWS.
    pub actual: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastReconcile {
    /// When it ended (RFC 3339).
    pub time: String,
    /// AWS read calls made.
    pub reads: u32,
    /// AWS write calls made (0 for an account in line).
    pub writes: u32,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// The retention in force in AWS, as trailkeeper last applied it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedRetention {
    /// The RetentionPolicy it came from (`built-in` when none exists).
    pub policy: String,
    /// The Object Lock mode of the trail bucket's default retention.
    pub lock_mode: String,
    /// The Object Lock default retention in days.
    pub lock_days: i32,
    /// Days after which trail log files expire; absent: kept forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_logs_expire_after_days: Option<i32>,
    /// Days after which noncurrent versions of trail log files expire; absent: kept forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_logs_noncurrent_expire_after_days: Option<i32>,
    /// Days after which server access logs expire; absent: kept forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_logs_expire_after_days: Option<i32>,
    /// Retention of the instance log groups in days; absent: never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_logs_retention_days: Option<i32>,
    /// Retention of the flow log group in days; absent: never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_logs_retention_days: Option<i32>,
    /// The approval reference that allowed the last shortening, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

/// Management events recorded more than once in a Region, with the estimated monthly cost.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateTrails {
    /// The Region judged (the baseline's primary Region).
    pub region: String,
    /// The trails that record the account's management events there.
    pub trails: Vec<String>,
    /// Copies after the first: each is charged.
    pub paid_copies: u32,
    /// Management events a month, estimated from the last hour's log files (absent: not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_month: Option<u64>,
    /// paidCopies x eventsPerMonth x the price per 100,000, in US dollars (absent: not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_cost_usd: Option<f64>,
    /// How the estimate was made, and what it leaves out.
    pub note: String,
}

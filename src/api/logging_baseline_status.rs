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
    /// The account-wide sweep: CIS 3.3, 3.6 and 3.7 in the regions this baseline does not keep
    /// (the controller's `--compliance-sweep-hours`), folded into `compliance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance_sweep: Option<ComplianceSweep>,
    /// The last integrity verification (spec.verifyIntegrity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<IntegrityStatus>,
    /// Trails that record the account's management events more than once in the primary Region
    /// (copies after the first are charged), with the estimated monthly cost. Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_trails: Option<DuplicateTrails>,
    /// AWS Control Tower's trail, when it records the account's events (the baseline integrates
    /// it, or creates no second trail beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_tower: Option<ControlTowerStatus>,
    /// The account's findings in AWS Security Hub (spec.securityHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_hub: Option<super::SecurityHubStatus>,
    /// With sharding (`--shards` above 1): the shard of the account and the replica that last
    /// reconciled it. Absent with one shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_by: Option<ReconciledBy>,
}

/// A landing zone's trail that records the account's events.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlTowerStatus {
    /// The ARN of Control Tower's trail (aws-controltower-BaselineCloudTrail).
    pub trail_arn: String,
    /// Its log archive bucket (aws-controltower-logs-...), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_archive_bucket: Option<String>,
    /// `covered by Control Tower's trail ...`.
    pub message: String,
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

/// The last account-wide sweep: the regions a reconcile does not read (it reads the regions it
/// keeps), judged for the controls of the whole account (CIS 3.3 AWS Config, 3.6 key rotation,
/// 3.7 flow logs), once per interval and again for a region when a tampering event concerns it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceSweep {
    /// When every region was last read (RFC 3339).
    pub time: String,
    /// The generation of the spec the regions were chosen by (a new one sweeps again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When a region was last read again because an event concerned it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed: Option<String>,
    /// AWS read calls the last sweep made.
    #[serde(default)]
    pub reads: u32,
    /// AWS write calls the last sweep made (the forwarding rules it keeps; 0 in line).
    #[serde(default)]
    pub writes: u32,
    /// Why the regions could not be swept (ec2:DescribeRegions failed, another account's
    /// credentials), when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With tampering events on: the forwarding rules the sweep keeps in these regions, or why
    /// they are not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<String>,
    /// Each region swept, with what fails there.
    #[serde(default)]
    pub regions: Vec<RegionVerdict>,
}

/// What one region holds of the account-wide controls; a region without failures passes them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionVerdict {
    /// The region, e.g. `eu-north-1`.
    pub region: String,
    /// 3.3: why the region has no recorder of all supported resource types that records with
    /// lastStatus Success (absent: it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// 3.3: such a recorder here records the global resource types too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub global_types: bool,
    /// 3.6: the customer-managed symmetric keys judged here that rotate...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotating_keys: Vec<String>,
    /// ...and those that do not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_without_rotation: Vec<String>,
    /// 3.6: why the keys could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_error: Option<String>,
    /// 3.7: the VPCs here.
    #[serde(default)]
    pub vpcs: u32,
    /// 3.7: those without a flow log of REJECT or ALL traffic, with what they have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpcs_without_flow_logs: Vec<String>,
    /// 3.7: why the VPCs or flow logs could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_error: Option<String>,
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
    /// A LogArchive's second table, over the accounts an Organization trail delivers for (under
    /// `AWSLogs/{o-id}/`), when members with trails of their own are in `table`; the named queries
    /// read both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_table: Option<String>,
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

/// Management events recorded more than once in the baseline's primary Region, with the estimated
/// monthly cost there (other Regions of a multi-Region trail are copied the same way, not counted).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateTrails {
    /// The Region judged (the baseline's primary Region).
    pub region: String,
    /// The trails that record some of the account's management events twice there.
    pub trails: Vec<String>,
    /// The most copies of one event after the first: each is charged.
    pub paid_copies: u32,
    /// Management events a month in the primary Region, estimated from the last hour's log files
    /// (absent: not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_month: Option<u64>,
    /// Copies after the first a month in the primary Region: each event counted once per further
    /// trail that records it (absent: not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_events_per_month: Option<u64>,
    /// Network activity events a month recorded by the baseline's trail, estimated the same way
    /// (absent: none recorded, or not counted); in the estimate at their own price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_activity_events_per_month: Option<u64>,
    /// copiedEventsPerMonth x the price per 100,000, plus the network activity events at their
    /// price, in US dollars, for the primary Region only (absent: not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_cost_usd: Option<f64>,
    /// How the estimate was made, and what it leaves out.
    pub note: String,
}

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{LoggingBaselineStatus, PolicyRef, patterns};

/// One AWS account whose audit logging trailkeeper keeps at the baseline.
// Several printer columns share `type_ = ...`, which clippy mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trailkeeper.io",
    version = "v1alpha1",
    kind = "LoggingBaseline",
    namespaced,
    shortname = "lb",
    category = "trailkeeper",
    status = "LoggingBaselineStatus",
    cel,
    printcolumn(name = "Account", type_ = "string", json_path = ".spec.accountId"),
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.primaryRegion"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Delivery",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"DeliveryHealthy\")].status"
    ),
    printcolumn(name = "CIS", type_ = "string", json_path = ".status.compliance.summary"),
    printcolumn(name = "Swept", type_ = "date", json_path = ".status.complianceSweep.time"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = super::rules::results_bucket_is_its_own(),
    validation = super::rules::generated_bucket_names_fit(),
    validation = super::rules::archive_member_keeps_nothing_of_its_own(),
    validation = super::lock_in_place::lock_existing_bucket_of_a_managed_trail(),
    validation = super::rules::recorder_has_a_bucket()
)]
pub struct LoggingBaselineSpec {
    /// The AWS account; trailkeeper refuses to act when its credentials resolve to another one.
    #[schemars(pattern(patterns::ACCOUNT_ID), length(max = 12))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("accountId is immutable: create a new LoggingBaseline for another account"))]
    pub account_id: String,
    /// The region of the trail and its buckets.
    #[schemars(pattern(patterns::REGION), length(max = 32))]
    pub primary_region: String,
    /// Regions where flow logs, instance logs, Config rules and recorders are enforced; empty
    /// means the primary region only; `["*"]` every region enabled for the account
    /// (ec2:DescribeRegions, read at each reconcile: a region enabled later is kept from then on).
    #[serde(default)]
    #[schemars(inner(pattern(patterns::REGION_OR_EVERY)), length(max = 40))]
    #[x_kube(validation = kube::core::Rule::new("!self.exists(r, r == '*') || size(self) == 1").message("regions: [\"*\"] keeps every region enabled for the account and names no other region"))]
    pub regions: Vec<String>,
    /// Regions judged, besides the enforced ones, by the CIS controls that read the whole account
    /// (3.3 AWS Config, 3.6 KMS key rotation, 3.7 VPC flow logs) for status.compliance and `report`;
    /// empty means every region enabled for the account (ec2:DescribeRegions). Name the regions the
    /// account may use when others are denied to it (a service control policy). The regions not
    /// enforced are read by the controller's account-wide sweep (`--compliance-sweep-hours`), not
    /// by every reconcile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(patterns::REGION)), length(max = 40))]
    pub compliance_regions: Vec<String>,
    /// Role to assume in the account; absent uses the operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Enforce: bring AWS to the baseline. Observe: report drift in status and write nothing.
    #[serde(default)]
    pub mode: Mode,
    /// What deleting this LoggingBaseline does in AWS. Retain (default): nothing. Delete: stops and deletes the trail, schedules the key's deletion and deletes the buckets that hold no objects.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The CloudTrail trail: deployed by trailkeeper (Managed) or the account's or Organization's own (Existing).
    #[serde(default)]
    pub trail: TrailSpec,
    /// The S3 buckets that receive the trail's log files and the server access logs.
    #[serde(default)]
    pub storage: StorageSpec,
    /// The KMS key that encrypts the trail's log files, and who may use it.
    #[serde(default)]
    pub encryption: EncryptionSpec,
    /// The RetentionPolicy in this namespace; absent: the one named `default`, else the built-in baseline (kept forever, Governance lock of 365 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy_ref: Option<PolicyRef>,
    /// VPC Flow Logs for every VPC of the enforced regions.
    #[serde(default)]
    pub flow_logs: FlowLogsSpec,
    /// The CloudWatch agent configuration that ships EC2 instance log files to CloudWatch Logs.
    #[serde(default)]
    pub instance_logs: InstanceLogsSpec,
    /// AWS Config managed rules that check the trail, the bucket, the key and the flow logs.
    #[serde(default)]
    pub config_rules: ConfigRulesSpec,
    /// Athena over the trail's logs: a Glue table, a workgroup with encrypted results and named audit queries.
    #[serde(default)]
    pub audit_queries: AuditQueriesSpec,
    /// Import this account's verdicts into AWS Security Hub as findings (off by default).
    #[serde(default, skip_serializing_if = "is_off")]
    pub security_hub: super::SecurityHubSpec,
    /// Validate the integrity of the delivered logs on a schedule (digest signatures, the chain, every log file's hash), as `trailkeeper verify` does; the result goes to status.integrity.
    #[serde(default)]
    pub verify_integrity: VerifyIntegritySpec,
    /// Tags put on every AWS resource trailkeeper creates (besides its own `trailkeeper.io/*` tags).
    /// AWS allows 50 tags a resource, values of at most 256 characters.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 40, "additionalProperties" = {"type": "string", "maxLength": 256, "pattern": super::patterns::TAG_VALUE}))]
    #[x_kube(validation = super::rules::tag_keys_aws_accepts())]
    pub tags: BTreeMap<String, String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The IAM role in the account that trailkeeper assumes (its trust policy must admit the operator's identity).
    #[schemars(pattern(patterns::IAM_ROLE_ARN))]
    pub assume_role_arn: String,
    /// The external id the role's trust policy requires, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::EXTERNAL_ID), length(min = 2, max = 1224))]
    pub external_id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Mode {
    /// Bring AWS to the baseline.
    #[default]
    Enforce,
    /// Report drift in status and write nothing.
    Observe,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Deleting the LoggingBaseline leaves every AWS resource in place.
    #[default]
    Retain,
    /// Deleting the LoggingBaseline stops and deletes the trail, schedules the key's deletion and
    /// deletes the buckets that hold no objects.
    Delete,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.source != 'Existing' || has(self.existingTrailArn)").message("source: Existing needs existingTrailArn, the ARN of the account's or Organization's trail"))]
pub struct TrailSpec {
    /// Managed: trailkeeper deploys and keeps its own multi-region trail. Existing: trailkeeper verifies the trail named by existingTrailArn.
    #[serde(default)]
    pub source: TrailSource,
    /// The name of the trail trailkeeper deploys (source Managed); a trail of that name is adopted.
    #[serde(default = "default_trail_name")]
    #[schemars(pattern(patterns::TRAIL_NAME))]
    pub name: String,
    /// With source Existing: the ARN of the account's or Organization's trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::TRAIL_ARN))]
    pub existing_trail_arn: Option<String>,
    /// The TrailPolicy in this namespace; absent: the one named `default`, else the built-in baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_ref: Option<PolicyRef>,
    /// With source Managed in an account AWS Control Tower's trail already records: create the
    /// trail anyway, and pay for the second copy of management events ($2.00 per 100,000). Off by
    /// default: trailkeeper then refuses (reason ControlTowerTrail) and says how to integrate it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_beside_control_tower: bool,
}

impl Default for TrailSpec {
    fn default() -> Self {
        Self {
            source: TrailSource::default(),
            name: default_trail_name(),
            existing_trail_arn: None,
            policy_ref: None,
            allow_beside_control_tower: false,
        }
    }
}

pub const DEFAULT_TRAIL_NAME: &str = "trailkeeper";

fn default_trail_name() -> String {
    DEFAULT_TRAIL_NAME.to_string()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TrailSource {
    /// trailkeeper deploys and keeps its own multi-region trail.
    #[default]
    Managed,
    /// trailkeeper verifies the account's or Organization's trail named by existingTrailArn.
    Existing,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// The `{prefix}` of generated bucket names.
    #[serde(default = "default_name_prefix")]
    #[schemars(pattern(patterns::NAME_PREFIX), length(max = 16))]
    pub name_prefix: String,
    /// Default `{prefix}-{accountId}-cloudtrail-{primaryRegion}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::BUCKET_NAME), length(max = 63))]
    pub bucket_name: Option<String>,
    /// Key prefix of the trail's log files in the bucket.
    #[serde(default = "default_key_prefix")]
    #[schemars(pattern(patterns::KEY_PREFIX))]
    pub key_prefix: String,
    /// Default `{prefix}-{accountId}-cloudtrail-access-{primaryRegion}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::BUCKET_NAME), length(max = 63))]
    pub access_log_bucket_name: Option<String>,
    /// A LogArchive in this namespace: the trail delivers into the archive account's bucket, under
    /// the archive's key prefix and encrypted with its key, and this account gets no trail bucket
    /// or key of its own. The trail is created only once the archive admits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_ref: Option<PolicyRef>,
    /// Turn Object Lock on in place for the trail bucket when it exists without it (a bucket named
    /// by bucketName that trailkeeper did not create): irreversible, so only with the
    /// acknowledgement and an approval; the log files written before keep no lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_existing_bucket: Option<super::LockExistingBucket>,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            name_prefix: default_name_prefix(),
            bucket_name: None,
            key_prefix: default_key_prefix(),
            access_log_bucket_name: None,
            archive_ref: None,
            lock_existing_bucket: None,
        }
    }
}

/// The `{prefix}` of generated bucket names when the spec names none.
pub const DEFAULT_NAME_PREFIX: &str = "trailkeeper";

fn default_name_prefix() -> String {
    DEFAULT_NAME_PREFIX.to_string()
}

fn default_key_prefix() -> String {
    "AWS/CloudTrail".to_string()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionSpec {
    /// An existing key to use; absent: trailkeeper creates one (alias alias/trailkeeper/cloudtrail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::KMS_KEY_ARN))]
    pub kms_key_arn: Option<String>,
    /// Principals allowed to administer the key, besides the account root.
    #[serde(default)]
    #[schemars(inner(pattern(patterns::IAM_PRINCIPAL_ARN)), length(max = 50))]
    pub administrators: Vec<String>,
    /// Principals allowed to decrypt the trail's log files.
    #[serde(default)]
    #[schemars(inner(pattern(patterns::IAM_PRINCIPAL_ARN)), length(max = 50))]
    pub operators: Vec<String>,
    /// Encrypt the log groups trailkeeper keeps (flow logs, instance logs) with a KMS key per region that trailkeeper creates (alias alias/trailkeeper/logs), whose policy admits CloudWatch Logs for those groups only (default true: a key costs about $1 a month per region). Turning it off later leaves the groups encrypted.
    #[serde(default = "yes")]
    pub log_groups: bool,
}

impl Default for EncryptionSpec {
    fn default() -> Self {
        Self {
            kms_key_arn: None,
            administrators: Vec::new(),
            operators: Vec::new(),
            log_groups: true,
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlowLogsSpec {
    /// Whether trailkeeper enforces flow logs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where flow log records go: CloudWatchLogs (the log group /trailkeeper/vpc-flow-logs) or S3 (the trail bucket).
    #[serde(default)]
    pub destination: FlowLogDestination,
    /// The traffic captured: ALL, ACCEPT or REJECT.
    #[serde(default)]
    pub traffic_type: TrafficType,
    /// The custom record format, as flow log field names (without `${}`).
    #[serde(default = "default_flow_log_fields")]
    #[schemars(inner(pattern(patterns::FLOW_LOG_FIELD)), length(min = 1, max = 64))]
    pub fields: Vec<String>,
    /// Seconds: 60 or 600.
    #[serde(default = "default_aggregation_interval")]
    #[x_kube(validation = kube::core::Rule::new("self == 60 || self == 600").message("maxAggregationInterval must be 60 or 600 seconds"))]
    pub max_aggregation_interval: i32,
    /// Replace a non-compliant flow log made by someone else (Enforce mode only).
    #[serde(default)]
    pub replace_non_compliant: bool,
}

impl Default for FlowLogsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            destination: FlowLogDestination::default(),
            traffic_type: TrafficType::default(),
            fields: default_flow_log_fields(),
            max_aggregation_interval: default_aggregation_interval(),
            replace_non_compliant: false,
        }
    }
}

fn yes() -> bool {
    true
}

fn is_off(s: &super::SecurityHubSpec) -> bool {
    s == &super::SecurityHubSpec::default()
}

fn default_aggregation_interval() -> i32 {
    600
}

/// The flow log record fields of versions 2 to 5.
pub const DEFAULT_FLOW_LOG_FIELDS: [&str; 29] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
];

fn default_flow_log_fields() -> Vec<String> {
    DEFAULT_FLOW_LOG_FIELDS.iter().map(|f| f.to_string()).collect()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum FlowLogDestination {
    #[default]
    CloudWatchLogs,
    S3,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrafficType {
    #[default]
    All,
    Accept,
    Reject,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceLogsSpec {
    /// Whether trailkeeper configures the CloudWatch agent on tagged instances.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The instances the CloudWatch agent configuration goes to.
    #[serde(default)]
    pub targets: InstanceTargets,
    /// The Linux log files shipped, each to a log group of the same name (default: the baseline's list).
    #[serde(default = "default_linux_files")]
    #[schemars(inner(pattern(r"^/[^\s]{1,511}$")), length(max = 100))]
    pub linux_files: Vec<String>,
    /// The Windows log files shipped, each to a log group named after it (default: the baseline's list).
    #[serde(default = "default_windows_files")]
    #[schemars(inner(pattern(r"^[A-Za-z]:\\[^\t\n]{1,510}$")), length(max = 100))]
    pub windows_files: Vec<String>,
}

impl Default for InstanceLogsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            targets: InstanceTargets::default(),
            linux_files: default_linux_files(),
            windows_files: default_windows_files(),
        }
    }
}

/// The Linux log files of the reference baseline.
pub const DEFAULT_LINUX_FILES: [&str; 12] = [
    "/var/log/amazon/ssm/amazon-ssm-agent.log",
    "/var/log/amazon/ssm/errors.log",
    "/var/log/audit/audit.log",
    "/var/log/cloud-init-output.log",
    "/var/log/cloud-init.log",
    "/var/log/cron",
    "/var/log/maillog",
    "/var/log/messages",
    "/var/log/secure",
    "/var/log/spooler",
    "/var/log/yum.log",
    "/var/log/zypper.log",
];

/// The Windows log files of the reference baseline.
pub const DEFAULT_WINDOWS_FILES: [&str; 4] = [
    r"C:\ProgramData\Amazon\SSM\Logs\amazon-ssm-agent.log",
    r"C:\ProgramData\Amazon\SSM\Logs\amazon-cloudwatch-agent.log",
    r"C:\ProgramData\Amazon\SSM\Logs\errors.log",
    r"C:\cfn\log\cfn-init.log",
];

fn default_linux_files() -> Vec<String> {
    DEFAULT_LINUX_FILES.iter().map(|f| f.to_string()).collect()
}

fn default_windows_files() -> Vec<String> {
    DEFAULT_WINDOWS_FILES.iter().map(|f| f.to_string()).collect()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceTargets {
    /// The tag key that marks the instances to configure.
    #[schemars(length(min = 1, max = 128))]
    pub tag_key: String,
    /// The value of that tag.
    #[schemars(length(max = 256))]
    pub tag_value: String,
}

impl Default for InstanceTargets {
    fn default() -> Self {
        Self {
            tag_key: "trailkeeper.io/managed".to_string(),
            tag_value: "true".to_string(),
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigRulesSpec {
    /// Whether trailkeeper deploys the Config rules (in regions with a configuration recorder).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Keep a configuration recorder in every region the baseline keeps, with or without the
    /// rules: created (with its delivery channel, into the access-log bucket) where a region has
    /// none, started when stopped (opt-in: AWS Config charges per configuration item recorded).
    #[serde(default)]
    pub create_recorder: bool,
}

impl Default for ConfigRulesSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            create_recorder: false,
        }
    }
}

/// Athena over the trail's logs: a Glue database and CloudTrail table (partition projection, so no
/// partition maintenance), a workgroup that enforces encrypted results, and named audit queries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditQueriesSpec {
    /// Whether trailkeeper deploys the audit queries.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The Glue database (Athena names: lowercase letters, digits and underscores).
    #[serde(default = "default_audit_database")]
    #[schemars(pattern(patterns::GLUE_NAME), length(max = 255))]
    pub database: String,
    /// The CloudTrail table in that database.
    #[serde(default = "default_audit_table")]
    #[schemars(pattern(patterns::GLUE_NAME), length(max = 255))]
    pub table: String,
    /// The Athena workgroup that holds the named queries and enforces where results go.
    #[serde(default = "default_audit_work_group")]
    #[schemars(pattern(patterns::WORK_GROUP_NAME), length(max = 128))]
    pub work_group: String,
    /// Default `{prefix}-{accountId}-athena-results-{primaryRegion}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::BUCKET_NAME), length(max = 63))]
    pub results_bucket_name: Option<String>,
    /// Query results (not logs) are deleted this many days after they are written.
    #[serde(default = "default_results_expire_after_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub results_expire_after_days: i32,
}

impl Default for AuditQueriesSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            database: default_audit_database(),
            table: default_audit_table(),
            work_group: default_audit_work_group(),
            results_bucket_name: None,
            results_expire_after_days: default_results_expire_after_days(),
        }
    }
}

fn default_audit_database() -> String {
    "trailkeeper_audit".to_string()
}

fn default_audit_table() -> String {
    "cloudtrail_logs".to_string()
}

fn default_audit_work_group() -> String {
    "trailkeeper-audit".to_string()
}

fn default_results_expire_after_days() -> i32 {
    30
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyIntegritySpec {
    /// Off by default: each verification reads every log file of the period.
    #[serde(default)]
    pub enabled: bool,
    /// Hours between verifications, each over the digests of the period before (1 to 168).
    #[serde(default = "default_verify_interval")]
    #[schemars(range(min = 1, max = 168))]
    pub interval_hours: i32,
}

impl Default for VerifyIntegritySpec {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_hours: default_verify_interval(),
        }
    }
}

fn default_verify_interval() -> i32 {
    24
}

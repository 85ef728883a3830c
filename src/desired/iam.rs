//! The IAM documents trailkeeper needs, scoped to what it owns: the policy of the role it assumes
//! in each account, the policy of the operator's own identity (which only assumes that role), and
//! that role's trust policy. `trailkeeper iam-policy` prints them; `deploy/` holds the defaults.
//!
//! What scopes each write: the names trailkeeper generates (buckets `{prefix}-{account}-...`, the
//! trail, the flow-log role, `alias/trailkeeper/*`, `AmazonCloudWatch-trailkeeper-*` parameters,
//! the Athena workgroup and Glue database, the log groups of the baseline's files). KMS keys are
//! not scoped by tag: a tag anyone with TagResource can add would let trailkeeper take over a key.
//! Instead the key policy of each key trailkeeper creates admits the account role for exactly the
//! maintenance trailkeeper does (`key_maintenance_statement`), and the IAM policy grants nothing on
//! existing keys except those the user names. Where a user-named resource makes scoping
//! impossible (the CloudWatch Logs role of a TrailPolicy, Config rules whose ARNs carry a random
//! id, actions without resource-level permissions), the statement says so in its Sid.

use serde_json::{Value, json};

use super::KEY_ALIAS;
use super::events::{FORWARD_ROLE, FORWARD_RULE};
use super::regional::{AGENT_DOCUMENT, FLOW_LOG_GROUP, FLOW_LOG_ROLE, INSTALL_DOCUMENT, log_group_name};
use crate::api::InstanceLogsSpec;

/// The AWS managed policy that bounds the flow-log delivery role: writing to and reading
/// CloudWatch Logs, nothing else (no IAM, no deletion). Even a rewritten inline policy cannot
/// widen the role past it.
pub const FLOW_LOG_ROLE_BOUNDARY: &str = "policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs";

/// The boundary's ARN in a partition.
pub fn flow_log_role_boundary(partition: &str) -> String {
    format!("arn:{partition}:iam::aws:{FLOW_LOG_ROLE_BOUNDARY}")
}

/// The CloudTrail console's name for a trail's log group (`aws-cloudtrail-logs-ACCOUNT-ID`).
pub const DEFAULT_MONITORED_LOG_GROUPS: &str = "aws-cloudtrail-logs-*";

/// What the documents are generated for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamSettings {
    /// aws, aws-cn or aws-us-gov.
    pub partition: String,
    /// The role trailkeeper assumes in each account (`credentials.assumeRoleArn`'s name).
    pub account_role: String,
    /// `storage.namePrefix` of the baselines (bucket names).
    pub name_prefix: String,
    /// `trail.name` of the baselines (Managed trails).
    pub trail_names: Vec<String>,
    /// Buckets the baselines name themselves (`bucketName`, `accessLogBucketName`, `resultsBucketName`).
    pub buckets: Vec<String>,
    /// Keys the baselines name (`encryption.kmsKeyArn`): trailkeeper adds its statements to their policies.
    pub kms_keys: Vec<String>,
    /// Existing trails whose settings a TrailPolicy lets trailkeeper repair (`manageExisting`).
    pub existing_trails: Vec<String>,
    /// Extra log groups (instance log files besides the defaults).
    pub log_groups: Vec<String>,
    /// The trails' CloudWatch Logs groups that carry the monitoring controls' metric filters
    /// (TrailPolicy `cloudWatchLogs` with `monitoring`); names or `*` patterns. The default is the
    /// name the CloudTrail console gives a trail's group.
    pub monitored_log_groups: Vec<String>,
    /// `auditQueries.database` and `auditQueries.workGroup`.
    pub audit_database: String,
    pub audit_work_group: String,
    /// The operator's own identity (IRSA / Pod Identity role), trusted by the account role.
    pub operator_role_arn: Option<String>,
    pub external_id: Option<String>,
    /// The operator's events queue (`--events-queue-url`'s last part) and central bus.
    pub events_queue_name: String,
    pub events_bus_name: String,
    /// Baselines without credentials (trailkeeper acts as its own identity, one account): their
    /// keys' policies name no trailkeeper role, so key maintenance must come from IAM, on every
    /// key of the account. Weaker; off by default.
    pub own_identity: bool,
    /// The keys of the LogArchives the baselines deliver into (`arn:...:kms:REGION:ACCOUNT:key/*`):
    /// CloudTrail requires kms:Decrypt of whoever creates a trail whose bucket has a Bucket Key.
    pub archive_keys: Vec<String>,
    /// Some baseline keeps its own trail bucket (false when every one delivers into a LogArchive:
    /// the policy then grants nothing on trail buckets).
    pub own_storage: bool,
    /// Some baseline exports its findings to Security Hub (spec.securityHub).
    pub security_hub: bool,
}

impl Default for IamSettings {
    fn default() -> Self {
        Self {
            partition: "aws".into(),
            account_role: "trailkeeper".into(),
            name_prefix: "trailkeeper".into(),
            trail_names: vec!["trailkeeper".into()],
            buckets: Vec::new(),
            kms_keys: Vec::new(),
            existing_trails: Vec::new(),
            log_groups: Vec::new(),
            monitored_log_groups: vec![DEFAULT_MONITORED_LOG_GROUPS.into()],
            audit_database: "trailkeeper_audit".into(),
            audit_work_group: "trailkeeper-audit".into(),
            operator_role_arn: None,
            external_id: None,
            events_queue_name: "trailkeeper-events".into(),
            events_bus_name: super::events::DEFAULT_BUS.into(),
            own_identity: false,
            archive_keys: Vec::new(),
            own_storage: true,
            security_hub: true,
        }
    }
}

/// One baseline as its IAM documents see it: its id, specs, and the LogArchive it delivers into.
pub struct Covered<'a> {
    pub id: &'a str,
    pub specs: super::AccountSpecs<'a>,
    pub archive: Option<&'a crate::api::LogArchiveSpec>,
}

impl IamSettings {
    /// Widened to what `baselines` name (trails, buckets, keys, existing trails, log groups, the
    /// archives' keys), with storage and Security Hub granted only when some baseline needs them.
    /// Returns the ids of the baselines whose `storage.namePrefix` is not `name_prefix`, with
    /// theirs: their buckets are not covered.
    pub fn cover(&mut self, baselines: &[Covered<'_>]) -> Vec<(String, String)> {
        self.own_storage = baselines.is_empty() || baselines.iter().any(|b| b.archive.is_none());
        self.security_hub = baselines.is_empty() || baselines.iter().any(|b| b.specs.baseline.security_hub.enabled);
        let mut other_prefixes = Vec::new();
        for b in baselines {
            if let Some(archive) = b.archive {
                self.archive_keys.push(format!(
                    "arn:{}:kms:{}:{}:key/*",
                    self.partition, archive.region, archive.account_id
                ));
            }
            let (spec, trail_policy) = (b.specs.baseline, b.specs.trail_policy);
            self.trail_names.push(spec.trail.name.clone());
            self.buckets.extend(
                [
                    &spec.storage.bucket_name,
                    &spec.storage.access_log_bucket_name,
                    &spec.audit_queries.results_bucket_name,
                ]
                .into_iter()
                .flatten()
                .cloned(),
            );
            self.kms_keys.extend(spec.encryption.kms_key_arn.clone());
            if let Some(arn) = &spec.trail.existing_trail_arn
                && !trail_policy.manage_existing.is_empty()
            {
                self.existing_trails.push(arn.clone());
            }
            if trail_policy.monitoring.is_some()
                && let Some(logs) = &trail_policy.cloud_watch_logs
                && let Some((_, _, group)) = super::monitoring::parse_log_group_arn(&logs.log_group_arn)
            {
                self.monitored_log_groups.push(group);
            }
            let instance = &spec.instance_logs;
            self.log_groups.extend(
                instance
                    .linux_files
                    .iter()
                    .chain(&instance.windows_files)
                    .map(|f| log_group_name(f)),
            );
            if spec.storage.name_prefix != self.name_prefix {
                other_prefixes.push((b.id.to_string(), spec.storage.name_prefix.clone()));
            }
        }
        other_prefixes
    }

    /// Each list sorted, without repeats, and one trail name at least (`trailkeeper`).
    pub fn settle(&mut self) {
        if self.trail_names.is_empty() {
            self.trail_names.push("trailkeeper".into());
        }
        for list in [
            &mut self.trail_names,
            &mut self.archive_keys,
            &mut self.buckets,
            &mut self.kms_keys,
            &mut self.existing_trails,
            &mut self.log_groups,
            &mut self.monitored_log_groups,
        ] {
            list.sort();
            list.dedup();
        }
    }
}

/// What trailkeeper does to a key it created (or one the baseline names), granted by the key's
/// own policy to the account role: read it, restore it, keep its policy, rotation and tags, give
/// it its alias, and `kms:Decrypt`, which CloudTrail requires of whoever creates or updates a
/// trail whose bucket has an S3 Bucket Key. `ScheduleKeyDeletion` only for `deletionPolicy: Delete`.
pub fn key_maintenance_actions(delete: bool) -> Vec<&'static str> {
    let mut actions = vec![
        "kms:CancelKeyDeletion",
        "kms:CreateAlias",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:EnableKey",
        "kms:EnableKeyRotation",
        "kms:GetKeyPolicy",
        "kms:GetKeyRotationStatus",
        "kms:ListResourceTags",
        "kms:PutKeyPolicy",
        "kms:TagResource",
    ];
    if delete {
        actions.push("kms:ScheduleKeyDeletion");
    }
    actions
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    let mut actions: Vec<&str> = actions.to_vec();
    actions.sort_unstable();
    actions.dedup();
    let resource = if resources.len() == 1 {
        json!(resources[0])
    } else {
        json!(resources)
    };
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource})
}

fn with_condition(mut statement: Value, condition: Value) -> Value {
    statement["Condition"] = condition;
    statement
}

/// CreateKey, which names no resource: only a symmetric encryption key of KMS's own material,
/// never bypassing the lockout check (its policy must let the account role maintain it).
fn create_key_statement(sid: &str) -> Value {
    with_condition(
        statement(sid, &["kms:CreateKey"], any()),
        json!({
            "StringEquals": {
                "kms:KeySpec": "SYMMETRIC_DEFAULT",
                "kms:KeyUsage": "ENCRYPT_DECRYPT",
                "kms:KeyOrigin": "AWS_KMS"
            },
            "Bool": {"kms:BypassPolicyLockoutSafetyCheck": "false"}
        }),
    )
}

fn any() -> Vec<String> {
    vec!["*".to_string()]
}

/// The log groups trailkeeper keeps with the default files, plus `extra`.
fn log_groups(extra: &[String]) -> Vec<String> {
    let instance = InstanceLogsSpec::default();
    let mut groups: Vec<String> = std::iter::once(FLOW_LOG_GROUP.to_string())
        .chain(
            instance
                .linux_files
                .iter()
                .chain(&instance.windows_files)
                .map(|f| log_group_name(f)),
        )
        .chain(extra.iter().cloned())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// The policy of the operator's own identity: it only assumes the account role, by its exact
/// name (never a role trailkeeper manages, such as the flow-log delivery role).
pub fn operator_policy(s: &IamSettings) -> Value {
    let p = &s.partition;
    let bus = &s.events_bus_name;
    json!({
        "Version": "2012-10-17",
        "Statement": [
            statement(
                "AssumeAccountRole",
                &["sts:AssumeRole"],
                vec![format!("arn:{p}:iam::*:role/{}", s.account_role)],
            ),
            // --events-queue-url: the queue the operator long-polls (yours; trailkeeper adds one
            // statement to its policy), the central bus and its rule into the queue.
            statement(
                "TamperEventsQueue",
                &[
                    // With sharding: an event of another replica's shard is made visible again.
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                    "sqs:SetQueueAttributes",
                ],
                vec![format!("arn:{p}:sqs:*:*:{}", s.events_queue_name)],
            ),
            statement(
                "TamperEventsCentralBus",
                &[
                    "events:CreateEventBus",
                    "events:DescribeEventBus",
                    "events:DescribeRule",
                    "events:ListTargetsByRule",
                    "events:PutRule",
                    "events:PutTargets",
                    "events:TagResource",
                ],
                vec![
                    format!("arn:{p}:events:*:*:event-bus/{bus}"),
                    format!("arn:{p}:events:*:*:rule/{bus}/{}", super::events::CENTRAL_RULE),
                ],
            ),
            // PutPermission and RemovePermission authorize on no resource: the bus is named in
            // the request.
            statement(
                "TamperEventsCentralBusPolicyWithoutResourceScope",
                &["events:PutPermission", "events:RemovePermission"],
                vec!["*".to_string()],
            ),
        ]
    })
}

/// The account role's trust policy: the operator's identity only, with the external id when set.
pub fn trust_policy(s: &IamSettings) -> Value {
    let principal = s
        .operator_role_arn
        .clone()
        .unwrap_or_else(|| format!("arn:{}:iam::OPERATOR_ACCOUNT_ID:role/OPERATOR_ROLE", s.partition));
    let mut statement = json!({
        "Sid": "TrailkeeperOperator",
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole"
    });
    if let Some(id) = &s.external_id {
        statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

mod account_policy;
mod archive_policy;

pub use account_policy::account_policy;
pub use archive_policy::archive_policy;

#[cfg(test)]
mod tests;

//! The desired state of the regional parts of the baseline, in every region of `spec.regions`:
//! VPC flow logs, the CloudWatch agent configuration of EC2 instance logs and the log groups it
//! writes to, and the AWS Config rules that check the baseline. Pure functions.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{AccountSpecs, DesiredKey, KeySource, partition, resource_tags, trail_bucket_name};
use crate::api::{FlowLogDestination, TrafficType};

/// The log group of the flow logs trailkeeper creates, in each region.
pub const FLOW_LOG_GROUP: &str = "/trailkeeper/vpc-flow-logs";
/// The role VPC Flow Logs assumes to deliver into that group (IAM is global: one per account).
pub const FLOW_LOG_ROLE: &str = "trailkeeper-vpc-flow-logs";
pub const FLOW_LOG_ROLE_POLICY: &str = "deliver-to-cloudwatch-logs";
/// SSM parameters holding the CloudWatch agent configurations (the agent's managed policy reads
/// `AmazonCloudWatch-*` parameters).
pub const AGENT_PARAMETER_LINUX: &str = "AmazonCloudWatch-trailkeeper-linux";
pub const AGENT_PARAMETER_WINDOWS: &str = "AmazonCloudWatch-trailkeeper-windows";
/// The SSM document that installs and configures the CloudWatch agent.
pub const AGENT_DOCUMENT: &str = "AmazonCloudWatch-ManageAgent";
/// Config rules trailkeeper deploys are named with this prefix.
pub const CONFIG_RULE_PREFIX: &str = "trailkeeper-";

/// `spec.regions: ["*"]`: keep every region enabled for the account.
pub const EVERY_REGION: &str = "*";

/// Whether the baseline keeps every region enabled for the account (`regions: ["*"]`).
pub fn keeps_every_region(spec: &crate::api::LoggingBaselineSpec) -> bool {
    spec.regions.iter().any(|r| r == EVERY_REGION)
}

/// The regions a baseline keeps (its flow logs, log groups, Config rules and recorders, the
/// forwarding of tampering): `spec.regions`, or the primary region alone; with `["*"]`, the
/// regions `enabled` for the account and the primary region (`enabled` None: not known, the
/// primary region alone).
pub fn regions(specs: &AccountSpecs, enabled: Option<&[String]>) -> Vec<String> {
    let spec = specs.baseline;
    let mut regions = if keeps_every_region(spec) {
        let mut every = enabled.unwrap_or_default().to_vec();
        every.push(spec.primary_region.clone());
        every
    } else if spec.regions.is_empty() {
        vec![spec.primary_region.clone()]
    } else {
        spec.regions.clone()
    };
    regions.sort();
    regions.dedup();
    regions
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowLogTarget {
    /// The region's flow log group, delivered by the flow log role.
    CloudWatchLogs { log_group: String, role_arn: String },
    /// The trail bucket (a bare bucket ARN: flow logs add their own AWSLogs/ prefix).
    S3 { bucket_arn: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredFlowLogs {
    /// ALL, ACCEPT or REJECT.
    pub traffic_type: String,
    pub fields: Vec<String>,
    pub max_aggregation_interval: i32,
    pub target: FlowLogTarget,
    pub replace_non_compliant: bool,
    pub tags: BTreeMap<String, String>,
}

impl DesiredFlowLogs {
    /// The custom record format: `${version} ${account-id} ...`.
    pub fn format(&self) -> String {
        self.fields
            .iter()
            .map(|f| format!("${{{f}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn flow_log_role_arn(specs: &AccountSpecs) -> String {
    let spec = specs.baseline;
    format!(
        "arn:{}:iam::{}:role/{FLOW_LOG_ROLE}",
        partition(&spec.primary_region),
        spec.account_id
    )
}

pub fn flow_logs(specs: &AccountSpecs) -> Option<DesiredFlowLogs> {
    let f = &specs.baseline.flow_logs;
    if !f.enabled {
        return None;
    }
    let traffic_type = match f.traffic_type {
        TrafficType::All => "ALL",
        TrafficType::Accept => "ACCEPT",
        TrafficType::Reject => "REJECT",
    };
    let target = match f.destination {
        FlowLogDestination::CloudWatchLogs => FlowLogTarget::CloudWatchLogs {
            log_group: FLOW_LOG_GROUP.into(),
            role_arn: flow_log_role_arn(specs),
        },
        FlowLogDestination::S3 => FlowLogTarget::S3 {
            bucket_arn: format!(
                "arn:{}:s3:::{}",
                partition(&specs.baseline.primary_region),
                trail_bucket_name(specs.baseline)
            ),
        },
    };
    Some(DesiredFlowLogs {
        traffic_type: traffic_type.into(),
        fields: f.fields.clone(),
        max_aggregation_interval: f.max_aggregation_interval,
        target,
        replace_non_compliant: f.replace_non_compliant,
        tags: resource_tags(specs.baseline),
    })
}

/// Trust policy of the flow log role: only VPC Flow Logs, only for this account's flow logs (the
/// confused-deputy guard of the VPC user guide, "IAM role for publishing flow logs to CloudWatch
/// Logs": `aws:SourceAccount` and `aws:SourceArn` of `vpc-flow-log/*`).
pub fn flow_log_role_trust(specs: &AccountSpecs) -> Value {
    let spec = specs.baseline;
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": spec.account_id},
                "ArnLike": {"aws:SourceArn": format!(
                    "arn:{}:ec2:*:{}:vpc-flow-log/*",
                    partition(&spec.primary_region),
                    spec.account_id
                )}
            }
        }]
    })
}

/// Permissions of the flow log role: write into the flow log group of this account, nothing else.
/// `logs:DescribeLogGroups` authorizes only on `*` (it lists, it names no group: CloudWatch Logs
/// user guide, "Enabling logging from AWS services"), so it has a statement of its own.
pub fn flow_log_role_policy(specs: &AccountSpecs) -> Value {
    let spec = specs.baseline;
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": format!(
                    "arn:{}:logs:*:{}:log-group:{FLOW_LOG_GROUP}:*",
                    partition(&spec.primary_region),
                    spec.account_id
                )
            },
            {
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": "*"
            }
        ]
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredLogGroup {
    pub name: String,
    /// None: never expire.
    pub retention_days: Option<i32>,
    /// Encrypted with the region's log key (`log_group_key`).
    pub encrypted: bool,
    pub tags: BTreeMap<String, String>,
}

/// Alias of the key that encrypts trailkeeper's log groups, one key per region.
pub const LOG_KEY_ALIAS: &str = "alias/trailkeeper/logs";

/// CloudWatch Logs' service principal in `region`: regional, and in the China partition with the
/// partition's domain (`logs.cn-north-1.amazonaws.com.cn`), as AWS CDK's region facts
/// (aws-cdk-lib/region-info: "Services with a regional AND partitional principal: codedeploy,
/// logs") and Terraform's aws_service_principal give it; the key policy example of "Encrypt log
/// data in CloudWatch Logs using AWS KMS" shows `logs.Region.amazonaws.com` only.
pub fn logs_principal(region: &str) -> String {
    let domain = if partition(region) == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("logs.{region}.{domain}")
}

/// The key that encrypts the log groups of `region` (`encryption.logGroups`): the account root and
/// the administrators, and CloudWatch Logs of that region for exactly these groups (CloudWatch
/// Logs user guide, "Encrypt log data in CloudWatch Logs using AWS Key Management Service").
pub fn log_group_key(specs: &AccountSpecs, region: &str, groups: &[DesiredLogGroup]) -> Option<DesiredKey> {
    let spec = specs.baseline;
    if !spec.encryption.log_groups || groups.is_empty() {
        return None;
    }
    let part = partition(region);
    let account = &spec.account_id;
    let mut arns: Vec<String> = groups
        .iter()
        .map(|g| format!("arn:{part}:logs:{region}:{account}:log-group:{}", g.name))
        .collect();
    arns.sort();
    let mut policy = crate::desired::key_policy_base(spec);
    policy["Id"] = json!("trailkeeper-logs-key");
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.push(json!({
            "Sid": "CloudWatchLogsEncryptTrailkeeperGroups",
            "Effect": "Allow",
            "Principal": {"Service": logs_principal(region)},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arns}}
        }));
    }
    Some(DesiredKey {
        source: KeySource::Create {
            alias: LOG_KEY_ALIAS.to_string(),
            description: format!("trailkeeper: encrypts the log groups of account {account} in {region}"),
        },
        policy,
        rotation: true,
        tags: resource_tags(spec),
    })
}

/// The log group of a log file: the file's own name, made valid for CloudWatch Logs (which allows
/// `[.-_/#A-Za-z0-9]`): Windows `C:\a\b.log` becomes `C/a/b.log`.
pub fn log_group_name(file: &str) -> String {
    file.chars()
        .filter_map(|c| match c {
            '\\' => Some('/'),
            c if c.is_ascii_alphanumeric() || "._-/#".contains(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Every log group trailkeeper keeps in a region: the flow log group and one per instance log file.
pub fn log_groups(specs: &AccountSpecs) -> Vec<DesiredLogGroup> {
    let tags = resource_tags(specs.baseline);
    let mut groups = Vec::new();
    if let Some(FlowLogTarget::CloudWatchLogs { log_group, .. }) = flow_logs(specs).map(|f| f.target) {
        groups.push(DesiredLogGroup {
            name: log_group,
            retention_days: specs.retention.flow_logs.retention_days,
            encrypted: specs.baseline.encryption.log_groups,
            tags: tags.clone(),
        });
    }
    let instance = &specs.baseline.instance_logs;
    if instance.enabled {
        for file in instance.linux_files.iter().chain(&instance.windows_files) {
            groups.push(DesiredLogGroup {
                name: log_group_name(file),
                retention_days: specs.retention.instance_logs.retention_days,
                encrypted: specs.baseline.encryption.log_groups,
                tags: tags.clone(),
            });
        }
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    groups.dedup_by(|a, b| a.name == b.name);
    groups
}

/// The CloudWatch agent configuration that ships `files`: each to a log group named after the
/// file, one stream per instance id.
pub fn agent_config(files: &[String]) -> Value {
    let collect: Vec<Value> = files
        .iter()
        .map(|f| json!({"file_path": f, "log_group_name": log_group_name(f), "log_stream_name": "{instance_id}"}))
        .collect();
    json!({"logs": {"logs_collected": {"files": {"collect_list": collect}}}})
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredAgentConfig {
    /// linux or windows.
    pub platform: &'static str,
    pub parameter: &'static str,
    /// The agent configuration JSON, as stored in the parameter.
    pub value: String,
    /// The associations applied to the targeted instances, in order: the agent's install, then
    /// its configuration.
    pub associations: Vec<DesiredAssociation>,
    /// The instances they target (tag key, value), with the platform tag.
    pub target: (String, String),
}

/// An SSM association: a document run with these parameters on the targeted instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredAssociation {
    pub name: String,
    pub document: &'static str,
    pub parameters: BTreeMap<String, String>,
}

/// Installs (and keeps installed) the CloudWatch agent: `AmazonCloudWatch-ManageAgent` only
/// configures an agent that is already there (CloudWatch user guide, "Installing the CloudWatch
/// agent using Systems Manager").
pub const INSTALL_DOCUMENT: &str = "AWS-ConfigureAWSPackage";
pub const AGENT_PACKAGE: &str = "AmazonCloudWatchAgent";

fn association(name: String, document: &'static str, parameters: &[(&str, &str)]) -> DesiredAssociation {
    DesiredAssociation {
        name,
        document,
        parameters: parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// One agent configuration per platform, and the association that applies it to the targeted
/// instances of that platform (the instances carry the target tag and `trailkeeper.io/platform`).
pub fn agent_configs(specs: &AccountSpecs) -> Vec<DesiredAgentConfig> {
    let instance = &specs.baseline.instance_logs;
    if !instance.enabled {
        return Vec::new();
    }
    let target = (instance.targets.tag_key.clone(), instance.targets.tag_value.clone());
    [
        ("linux", AGENT_PARAMETER_LINUX, &instance.linux_files),
        ("windows", AGENT_PARAMETER_WINDOWS, &instance.windows_files),
    ]
    .into_iter()
    .filter(|(_, _, files)| !files.is_empty())
    .map(|(platform, parameter, files)| DesiredAgentConfig {
        platform,
        parameter,
        value: agent_config(files).to_string(),
        associations: vec![
            association(
                format!("trailkeeper-cloudwatch-agent-install-{platform}"),
                INSTALL_DOCUMENT,
                &[("action", "Install"), ("name", AGENT_PACKAGE)],
            ),
            association(
                format!("trailkeeper-cloudwatch-agent-{platform}"),
                AGENT_DOCUMENT,
                &[
                    ("action", "configure"),
                    ("mode", "ec2"),
                    ("optionalConfigurationSource", "ssm"),
                    ("optionalConfigurationLocation", parameter),
                    ("optionalRestart", "yes"),
                ],
            ),
        ],
        target: target.clone(),
    })
    .collect()
}

/// The tag that tells an instance's platform to the associations.
pub const PLATFORM_TAG: &str = "trailkeeper.io/platform";

/// The AWS Config service-linked role a recorder trailkeeper creates uses.
pub const CONFIG_SERVICE_ROLE: &str = "AWSServiceRoleForConfig";
/// Where those recorders deliver: the access-log bucket (SSE-S3, so Config needs no key grant).
pub const CONFIG_DELIVERY_PREFIX: &str = "AWS/Config";

/// A configuration recorder trailkeeper keeps (`configRules.createRecorder`, with or without the
/// rules) in each region it keeps: recording all supported resources (global ones in the primary
/// region only), delivering to the access-log bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredRecorder {
    pub role_arn: String,
    pub bucket: String,
    pub prefix: String,
    pub include_global: bool,
}

pub fn recorder(specs: &AccountSpecs, region: &str) -> Option<DesiredRecorder> {
    let spec = specs.baseline;
    spec.config_rules.create_recorder.then(|| DesiredRecorder {
        role_arn: format!(
            "arn:{}:iam::{}:role/aws-service-role/config.amazonaws.com/{CONFIG_SERVICE_ROLE}",
            partition(&spec.primary_region),
            spec.account_id
        ),
        bucket: super::access_log_bucket_name(spec),
        prefix: CONFIG_DELIVERY_PREFIX.into(),
        include_global: region == spec.primary_region,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredConfigRule {
    pub name: String,
    /// The AWS managed rule identifier, e.g. MULTI_REGION_CLOUD_TRAIL_ENABLED.
    pub source: String,
    pub input: Option<Value>,
    /// The one resource the rule evaluates, for rules that would otherwise judge every resource
    /// of their type in the account.
    pub scope: Option<RuleScope>,
}

/// A Config rule's scope: one resource of one type (`ComplianceResourceTypes` and
/// `ComplianceResourceId`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleScope {
    pub resource_type: String,
    pub resource_id: String,
}

/// The managed Config rules that check the trail, its bucket, the key and the flow logs.
/// `key_arn` is the trail's key, once it exists.
pub fn config_rules(specs: &AccountSpecs, key_arn: Option<&str>) -> Vec<DesiredConfigRule> {
    if !specs.baseline.config_rules.enabled {
        return Vec::new();
    }
    let rule = |name: &str, source: &str, input: Option<Value>| DesiredConfigRule {
        name: format!("{CONFIG_RULE_PREFIX}{name}"),
        source: source.into(),
        input,
        scope: None,
    };
    let mut rules = vec![
        rule("cloudtrail-enabled", "CLOUD_TRAIL_ENABLED", None),
        rule(
            "multi-region-cloudtrail-enabled",
            "MULTI_REGION_CLOUD_TRAIL_ENABLED",
            None,
        ),
        rule("cloud-trail-encryption-enabled", "CLOUD_TRAIL_ENCRYPTION_ENABLED", None),
        rule(
            "cloud-trail-log-file-validation-enabled",
            "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
            None,
        ),
        rule(
            "cloudtrail-s3-bucket-access-logging",
            "CLOUDTRAIL_S3_BUCKET_ACCESS_LOGGING",
            None,
        ),
        rule(
            "s3-bucket-default-lock-enabled",
            "S3_BUCKET_DEFAULT_LOCK_ENABLED",
            Some(json!({"mode": "GOVERNANCE"})),
        ),
        rule(
            "cmk-backing-key-rotation-enabled",
            "CMK_BACKING_KEY_ROTATION_ENABLED",
            None,
        ),
        rule(
            "vpc-flow-logs-enabled",
            "VPC_FLOW_LOGS_ENABLED",
            Some(json!({"trafficType": "ALL"})),
        ),
        rule(
            "cw-loggroup-retention-period-check",
            "CW_LOGGROUP_RETENTION_PERIOD_CHECK",
            None,
        ),
    ];
    // The lock rule checks the mode the RetentionPolicy asks for.
    if specs.retention.trail_logs.object_lock.mode == crate::api::LockMode::Compliance
        && let Some(r) = rules.iter_mut().find(|r| r.source == "S3_BUCKET_DEFAULT_LOCK_ENABLED")
    {
        r.input = Some(json!({"mode": "COMPLIANCE"}));
    }
    // The lock and rotation rules judge every bucket and key of the account: the access-log and
    // results buckets have no lock by design, and keys of others are not the baseline's business.
    // Scoped to the trail bucket and the trail key (the key rule waits until the key exists).
    for r in &mut rules {
        r.scope = match r.source.as_str() {
            "S3_BUCKET_DEFAULT_LOCK_ENABLED" => Some(RuleScope {
                resource_type: "AWS::S3::Bucket".into(),
                resource_id: trail_bucket_name(specs.baseline),
            }),
            "CMK_BACKING_KEY_ROTATION_ENABLED" => {
                key_arn
                    .and_then(|arn| arn.rsplit_once("key/"))
                    .map(|(_, id)| RuleScope {
                        resource_type: "AWS::KMS::Key".into(),
                        resource_id: id.to_string(),
                    })
            }
            _ => None,
        };
    }
    rules.retain(|r| r.source != "CMK_BACKING_KEY_ROTATION_ENABLED" || r.scope.is_some());
    rules
}

#[cfg(test)]
mod tests;

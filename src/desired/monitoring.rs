//! The monitoring controls: alarms on what the trail records (CIS AWS Foundations Benchmark
//! v3.0.0, section 4 "Monitoring"; AWS Security Hub CloudWatch.1-14). Each control is one metric
//! filter on the trail's CloudWatch Logs group and one alarm on its metric, into an SNS topic.
//! Pure functions.
//!
//! The pattern written is, where Security Hub has a control, exactly the one its remediation
//! prescribes: "This control fails if the exact metric filters prescribed by CIS are not used.
//! Additional fields or terms cannot be added to the metric filters." (Security Hub user guide,
//! "Security Hub controls for CloudWatch",
//! https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html). Those
//! controls map CIS v1.2.0 and v1.4.0 ("Related requirements"), not v3.0.0, whose own spellings of
//! 4.1, 4.2 and 4.13 differ: they are accepted too (`also_accepted`, each with where it is
//! prescribed). 4.15 has no Security Hub control: its pattern is CIS v3.0.0's, verbatim.
//! Prowler's `cloudwatch_log_metric_filter_*` and `cloudwatch_changes_*` checks pass on thirteen;
//! on 4.13 and 4.15 Prowler (5.46) asks more than Security Hub and the benchmark (the event source,
//! three more Organizations calls) and fails them (`scripts/prowler-check.sh` runs them against the
//! emulator and expects exactly that).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{DesiredKey, KeySource, partition, resource_tags};
use crate::api::{LoggingBaselineSpec, TrailPolicySpec};

/// The namespace of every control's metric (Security Hub's remediation groups them in one).
pub const METRIC_NAMESPACE: &str = "trailkeeper/CIS";
/// Filters and alarms trailkeeper keeps are named with this prefix (and only those are rewritten).
pub const NAME_PREFIX: &str = "trailkeeper-cis-";
/// The topic trailkeeper keeps when the policy names none.
pub const TOPIC_NAME: &str = "trailkeeper-monitoring";
/// Alias of the key that encrypts trailkeeper's topic, one per region (like the log groups' key).
pub const KEY_ALIAS: &str = "alias/trailkeeper/monitoring";

/// One monitoring control of the benchmark's section 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitoringControl {
    /// The benchmark's id, `4.1`.
    pub cis: &'static str,
    /// Security Hub's control, when it has one.
    pub security_hub: Option<SecurityHubControl>,
    pub title: &'static str,
    /// Names the filter, the alarm and the metric (`unauthorized-api-calls`).
    pub slug: &'static str,
    pub metric: &'static str,
    /// The pattern trailkeeper writes: Security Hub's where it has a control, else CIS v3.0.0's.
    pub pattern: &'static str,
    /// Other prescribed spellings judged as passing, with where each is prescribed.
    pub also_accepted: &'static [Spelling],
}

/// A Security Hub control and the CIS requirements it lists as related (the versions whose audit
/// it performs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecurityHubControl {
    pub id: &'static str,
    /// "CIS v1.2.0 3.1", "CIS v1.2.0 3.4, v1.4.0 4.4".
    pub maps: &'static str,
}

/// A prescribed spelling of a control's pattern and who prescribes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spelling {
    pub source: &'static str,
    pub pattern: &'static str,
}

impl MonitoringControl {
    /// The filter's and the alarm's name.
    pub fn name(&self) -> String {
        format!("{NAME_PREFIX}{}-{}", self.cis, self.slug)
    }

    /// Who prescribes the pattern trailkeeper writes.
    pub fn source(&self) -> String {
        match self.security_hub {
            Some(hub) => format!("Security Hub {}", hub.id),
            None => "CIS v3.0.0".to_string(),
        }
    }
}

const fn hub(id: &'static str, maps: &'static str) -> Option<SecurityHubControl> {
    Some(SecurityHubControl { id, maps })
}

/// The fifteen controls, in the benchmark's order.
pub const CONTROLS: [MonitoringControl; 15] = [
    MonitoringControl {
        cis: "4.1",
        security_hub: hub("CloudWatch.2", "CIS v1.2.0 3.1"),
        title: "Ensure unauthorized API calls are monitored",
        slug: "unauthorized-api-calls",
        metric: "UnauthorizedAPICalls",
        pattern: r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#,
        also_accepted: &[Spelling {
            // With `&&` binding tighter than `||`, the exclusions apply to AccessDenied* only.
            source: "CIS v3.0.0",
            pattern: r#"{ ($.errorCode ="*UnauthorizedOperation") || ($.errorCode ="AccessDenied*") && ($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket") }"#,
        }],
    },
    MonitoringControl {
        cis: "4.2",
        security_hub: hub("CloudWatch.3", "CIS v1.2.0 3.2"),
        title: "Ensure management console sign-in without MFA is monitored",
        slug: "console-sign-in-without-mfa",
        metric: "ConsoleSignInWithoutMFA",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
        also_accepted: &[Spelling {
            // The benchmark's base pattern; the one above is its variant for accounts with SSO.
            source: "CIS v3.0.0",
            pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }"#,
        }],
    },
    MonitoringControl {
        cis: "4.3",
        security_hub: hub("CloudWatch.1", "CIS v1.2.0 3.3, v1.4.0 4.3"),
        title: "Ensure usage of the 'root' account is monitored",
        slug: "root-usage",
        metric: "RootAccountUsage",
        pattern: r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.4",
        security_hub: hub("CloudWatch.4", "CIS v1.2.0 3.4, v1.4.0 4.4"),
        title: "Ensure IAM policy changes are monitored",
        slug: "iam-policy-changes",
        metric: "IAMPolicyChanges",
        pattern: "{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || ($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || ($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || ($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || ($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || ($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || ($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || ($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.5",
        security_hub: hub("CloudWatch.5", "CIS v1.2.0 3.5, v1.4.0 4.5"),
        title: "Ensure CloudTrail configuration changes are monitored",
        slug: "cloudtrail-changes",
        metric: "CloudTrailChanges",
        pattern: "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.6",
        security_hub: hub("CloudWatch.6", "CIS v1.2.0 3.6, v1.4.0 4.6"),
        title: "Ensure AWS Management Console authentication failures are monitored",
        slug: "console-authentication-failures",
        metric: "ConsoleAuthenticationFailures",
        pattern: r#"{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}"#,
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.7",
        security_hub: hub("CloudWatch.7", "CIS v1.2.0 3.7, v1.4.0 4.7"),
        title: "Ensure disabling or scheduled deletion of customer created CMKs is monitored",
        slug: "disable-or-delete-cmk",
        metric: "DisableOrDeleteCMK",
        pattern: "{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.8",
        security_hub: hub("CloudWatch.8", "CIS v1.2.0 3.8, v1.4.0 4.8"),
        title: "Ensure S3 bucket policy changes are monitored",
        slug: "s3-bucket-policy-changes",
        metric: "S3BucketPolicyChanges",
        pattern: "{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || ($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || ($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || ($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.9",
        security_hub: hub("CloudWatch.9", "CIS v1.2.0 3.9, v1.4.0 4.9"),
        title: "Ensure AWS Config configuration changes are monitored",
        slug: "config-changes",
        metric: "AWSConfigChanges",
        pattern: "{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || ($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || ($.eventName=PutConfigurationRecorder))}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.10",
        security_hub: hub("CloudWatch.10", "CIS v1.2.0 3.10, v1.4.0 4.10"),
        title: "Ensure security group changes are monitored",
        slug: "security-group-changes",
        metric: "SecurityGroupChanges",
        pattern: "{($.eventName=AuthorizeSecurityGroupIngress) || ($.eventName=AuthorizeSecurityGroupEgress) || ($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) || ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.11",
        security_hub: hub("CloudWatch.11", "CIS v1.2.0 3.11, v1.4.0 4.11"),
        title: "Ensure Network Access Control Lists (NACL) changes are monitored",
        slug: "nacl-changes",
        metric: "NACLChanges",
        pattern: "{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || ($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || ($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.12",
        security_hub: hub("CloudWatch.12", "CIS v1.2.0 3.12, v1.4.0 4.12"),
        title: "Ensure changes to network gateways are monitored",
        slug: "network-gateway-changes",
        metric: "NetworkGatewayChanges",
        pattern: "{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || ($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || ($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.13",
        security_hub: hub("CloudWatch.13", "CIS v1.2.0 3.13, v1.4.0 4.13"),
        title: "Ensure route table changes are monitored",
        slug: "route-table-changes",
        metric: "RouteTableChanges",
        pattern: "{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || ($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || ($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || ($.eventName=DisassociateRouteTable)}",
        also_accepted: &[
            Spelling {
                // The benchmark's audit (v1.5.0 and later) names the event source; with `&&`
                // binding tighter than `||` it constrains CreateRoute only.
                source: "CIS v3.0.0 (audit)",
                pattern: "{($.eventSource = ec2.amazonaws.com) && ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }",
            },
            Spelling {
                source: "Prowler's remediation",
                pattern: "{($.eventSource = ec2.amazonaws.com) && (($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable))}",
            },
        ],
    },
    MonitoringControl {
        cis: "4.14",
        security_hub: hub("CloudWatch.14", "CIS v1.2.0 3.14, v1.4.0 4.14"),
        title: "Ensure VPC changes are monitored",
        slug: "vpc-changes",
        metric: "VPCChanges",
        pattern: "{($.eventName=CreateVpc) || ($.eventName=DeleteVpc) || ($.eventName=ModifyVpcAttribute) || ($.eventName=AcceptVpcPeeringConnection) || ($.eventName=CreateVpcPeeringConnection) || ($.eventName=DeleteVpcPeeringConnection) || ($.eventName=RejectVpcPeeringConnection) || ($.eventName=AttachClassicLinkVpc) || ($.eventName=DetachClassicLinkVpc) || ($.eventName=DisableVpcClassicLink) || ($.eventName=EnableVpcClassicLink)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.15",
        security_hub: None,
        title: "Ensure AWS Organizations changes are monitored",
        slug: "organizations-changes",
        metric: "OrganizationsChanges",
        pattern: r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
        also_accepted: &[],
    },
];

/// A pattern as trailkeeper compares it: without spaces or quotes (`$.a = "b"` is `$.a=b`).
/// Security Hub compares the exact text, so a pattern equal only once normalized may pass here
/// and fail there (the evidence says which).
pub fn normalized_pattern(pattern: &str) -> String {
    pattern.chars().filter(|c| !c.is_whitespace() && *c != '"').collect()
}

/// How a filter's pattern matched a control's prescribed spellings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognized {
    pub control: &'static MonitoringControl,
    /// Who prescribes the spelling matched ("Security Hub CloudWatch.2", "CIS v3.0.0").
    pub source: String,
    /// The text is the prescribed one exactly (else only once spaces and quotes are ignored).
    pub exact: bool,
}

/// The control a filter pattern implements, if it is one of the prescribed spellings.
pub fn recognize(pattern: &str) -> Option<Recognized> {
    let normalized = normalized_pattern(pattern);
    CONTROLS.iter().find_map(|c| {
        let written = (c.source(), c.pattern);
        std::iter::once(written)
            .chain(c.also_accepted.iter().map(|s| (s.source.to_string(), s.pattern)))
            .find(|(_, p)| normalized_pattern(p) == normalized)
            .map(|(source, p)| Recognized {
                control: c,
                source,
                exact: p == pattern,
            })
    })
}

/// The control a filter pattern implements, if it is one of the prescribed spellings.
pub fn control_of_pattern(pattern: &str) -> Option<&'static MonitoringControl> {
    recognize(pattern).map(|r| r.control)
}

/// A metric filter as trailkeeper wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredMetricFilter {
    pub name: String,
    pub pattern: String,
    pub metric_namespace: String,
    pub metric_name: String,
    /// Each matching event counts 1.
    pub metric_value: String,
}

/// An alarm as trailkeeper wants it: one matching event in five minutes alarms (Security Hub's
/// remediation: Greater/Equal 1), and no data is not a breach (no matching event).
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredAlarm {
    pub name: String,
    pub description: String,
    pub metric_namespace: String,
    pub metric_name: String,
    pub statistic: String,
    pub period_seconds: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub alarm_actions: Vec<String>,
}

/// Everything the monitoring controls need in the log group's region.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredMonitoring {
    pub region: String,
    pub log_group: String,
    /// Filter name -> filter.
    pub filters: BTreeMap<String, DesiredMetricFilter>,
    /// Alarm name -> alarm.
    pub alarms: BTreeMap<String, DesiredAlarm>,
    pub topic: DesiredTopic,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DesiredTopic {
    /// The user's topic: used, never changed.
    Named { arn: String },
    /// trailkeeper's topic: created when missing, encrypted with the account's monitoring key of
    /// its region (`key`), the spec's subscriptions added.
    Kept {
        arn: String,
        name: String,
        /// (protocol, endpoint), sorted.
        subscriptions: Vec<(String, String)>,
        key: DesiredKey,
    },
}

impl DesiredTopic {
    pub fn arn(&self) -> &str {
        match self {
            DesiredTopic::Named { arn } | DesiredTopic::Kept { arn, .. } => arn,
        }
    }
}

/// `(region, account, name)` of `arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*`.
pub fn parse_log_group_arn(arn: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if parts.len() < 7 || parts[2] != "logs" || parts[5] != "log-group" {
        return None;
    }
    let name = parts[6].strip_suffix(":*").unwrap_or(parts[6]);
    Some((parts[3].to_string(), parts[4].to_string(), name.to_string()))
}

/// The monitoring controls of a trail policy for the baseline's account (None: not asked, or no
/// log group).
pub fn monitoring(policy: &TrailPolicySpec, baseline: &LoggingBaselineSpec) -> Option<DesiredMonitoring> {
    let settings = policy.monitoring.as_ref()?;
    let (region, _, log_group) = parse_log_group_arn(&policy.cloud_watch_logs.as_ref()?.log_group_arn)?;
    let account = &baseline.account_id;
    let topic = match &settings.topic_arn {
        Some(arn) => DesiredTopic::Named { arn: arn.clone() },
        None => {
            let mut subscriptions: Vec<(String, String)> = settings
                .subscriptions
                .iter()
                .map(|s| (s.protocol.as_str().to_string(), s.endpoint.clone()))
                .collect();
            subscriptions.sort();
            subscriptions.dedup();
            let arn = format!("arn:{}:sns:{region}:{account}:{TOPIC_NAME}", partition(&region));
            DesiredTopic::Kept {
                key: topic_key(baseline, &region, &arn),
                arn,
                name: TOPIC_NAME.to_string(),
                subscriptions,
            }
        }
    };
    let filters = CONTROLS
        .iter()
        .map(|c| {
            let filter = DesiredMetricFilter {
                name: c.name(),
                pattern: c.pattern.to_string(),
                metric_namespace: METRIC_NAMESPACE.to_string(),
                metric_name: c.metric.to_string(),
                metric_value: "1".to_string(),
            };
            (filter.name.clone(), filter)
        })
        .collect();
    let alarms = CONTROLS
        .iter()
        .map(|c| {
            let alarm = DesiredAlarm {
                name: c.name(),
                description: format!("trailkeeper: CIS {} {}", c.cis, c.title),
                metric_namespace: METRIC_NAMESPACE.to_string(),
                metric_name: c.metric.to_string(),
                statistic: "Sum".to_string(),
                period_seconds: 300,
                evaluation_periods: 1,
                threshold: 1.0,
                comparison: "GreaterThanOrEqualToThreshold".to_string(),
                treat_missing_data: "notBreaching".to_string(),
                alarm_actions: vec![topic.arn().to_string()],
            };
            (alarm.name.clone(), alarm)
        })
        .collect();
    Some(DesiredMonitoring {
        region,
        log_group,
        filters,
        alarms,
        topic,
    })
}

/// The key of trailkeeper's topic in `region`: the account's own (never the trail's, nor a
/// LogArchive's, which is another account's), found by its alias like the log groups' key. Its
/// policy admits the account root, the administrators, trailkeeper's maintenance, and CloudWatch
/// alarms publishing to the topic ("Amazon SNS: Enable compatibility between event sources from
/// AWS services and encrypted topics": a customer managed key whose policy allows the service
/// kms:GenerateDataKey* and kms:Decrypt, with aws:SourceAccount and aws:SourceArn against the
/// confused deputy, https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html); the SNS
/// encryption context is the topic's ARN (`kms:EncryptionContext:aws:sns:topicArn`, "Enabling
/// server-side encryption for a topic",
/// https://docs.aws.amazon.com/sns/latest/dg/sns-enable-encryption-for-topic.html).
pub fn topic_key(baseline: &LoggingBaselineSpec, region: &str, topic_arn: &str) -> DesiredKey {
    let account = &baseline.account_id;
    let mut policy = super::key_policy_base(baseline);
    policy["Id"] = json!("trailkeeper-monitoring-key");
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.push(alarms_publish_statement(account, region, topic_arn));
    }
    DesiredKey {
        source: KeySource::Create {
            alias: KEY_ALIAS.to_string(),
            description: format!("trailkeeper: encrypts the monitoring topic of account {account} in {region}"),
        },
        policy,
        rotation: true,
        tags: resource_tags(baseline),
    }
}

/// The ARN pattern of trailkeeper's alarms of `account` in `region`.
pub fn alarms_arn(account: &str, region: &str) -> String {
    format!(
        "arn:{}:cloudwatch:{region}:{account}:alarm:{NAME_PREFIX}*",
        partition(region)
    )
}

/// CloudWatch alarms of the account's trailkeeper alarms in the region may publish to the topic
/// encrypted with the key, and nothing else may use it through this statement.
fn alarms_publish_statement(account: &str, region: &str, topic_arn: &str) -> Value {
    json!({
        "Sid": "CloudWatchAlarmsPublishToTopic",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "aws:SourceAccount": account,
                "kms:EncryptionContext:aws:sns:topicArn": topic_arn
            },
            "ArnLike": {"aws:SourceArn": alarms_arn(account, region)}
        }
    })
}

/// What CloudWatch sends to KMS when an alarm publishes to a topic encrypted with a customer key:
/// the alarm as source (aws:SourceArn, aws:SourceAccount) and SNS's encryption context, the
/// topic's ARN. The emulator judges an alarm's publish with the same request
/// (scripts/emulator/trailkeeper_monitoring.py).
pub fn alarm_publish_context(alarm_arn: &str, topic_arn: &str) -> BTreeMap<String, String> {
    let account = alarm_arn.split(':').nth(4).unwrap_or_default();
    BTreeMap::from([
        ("aws:SourceAccount".to_string(), account.to_string()),
        ("aws:SourceArn".to_string(), alarm_arn.to_string()),
        (
            "kms:EncryptionContext:aws:sns:topicArn".to_string(),
            topic_arn.to_string(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MonitoringControls, SubscriptionProtocol, TopicSubscription, TrailCloudWatchLogs};
    use crate::policy_eval;

    const ACCOUNT: &str = "111122223333";

    fn baseline() -> LoggingBaselineSpec {
        serde_json::from_value(json!({
            "accountId": ACCOUNT,
            "primaryRegion": "us-east-1",
            "credentials": {"assumeRoleArn": "arn:aws:iam::111122223333:role/trailkeeper"},
            "encryption": {"administrators": ["arn:aws:iam::111122223333:role/admin"], "operators": []}
        }))
        .expect("a baseline")
    }

    fn policy(topic_arn: Option<&str>) -> TrailPolicySpec {
        TrailPolicySpec {
            cloud_watch_logs: Some(TrailCloudWatchLogs {
                log_group_arn: "arn:aws:logs:eu-west-1:111122223333:log-group:org/trail:*".into(),
                role_arn: "arn:aws:iam::111122223333:role/ct".into(),
            }),
            monitoring: Some(MonitoringControls {
                topic_arn: topic_arn.map(str::to_string),
                subscriptions: if topic_arn.is_some() {
                    vec![]
                } else {
                    vec![
                        TopicSubscription {
                            protocol: SubscriptionProtocol::Email,
                            endpoint: "sec@example.com".into(),
                        },
                        TopicSubscription {
                            protocol: SubscriptionProtocol::Email,
                            endpoint: "sec@example.com".into(),
                        },
                    ]
                },
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_control_gets_a_filter_and_an_alarm_on_its_metric_into_the_topic() {
        let m = monitoring(&policy(None), &baseline()).expect("monitoring");
        assert_eq!(m.region, "eu-west-1");
        assert_eq!(m.log_group, "org/trail");
        assert_eq!(m.filters.len(), 15);
        assert_eq!(m.alarms.len(), 15);
        let topic = "arn:aws:sns:eu-west-1:111122223333:trailkeeper-monitoring";
        assert_eq!(m.topic.arn(), topic);
        for c in &CONTROLS {
            let f = &m.filters[&c.name()];
            let a = &m.alarms[&c.name()];
            assert_eq!((f.metric_name.as_str(), a.metric_name.as_str()), (c.metric, c.metric));
            assert_eq!(f.metric_namespace, a.metric_namespace);
            assert_eq!(a.alarm_actions, vec![topic.to_string()]);
            assert_eq!(control_of_pattern(&f.pattern).map(|k| k.cis), Some(c.cis));
        }
        let DesiredTopic::Kept { subscriptions, .. } = &m.topic else {
            panic!("a kept topic")
        };
        assert_eq!(
            subscriptions,
            &vec![("email".to_string(), "sec@example.com".to_string())]
        );
    }

    #[test]
    fn a_named_topic_is_used_as_given() {
        let arn = "arn:aws:sns:eu-west-1:111122223333:secops";
        let m = monitoring(&policy(Some(arn)), &baseline()).expect("monitoring");
        assert_eq!(m.topic, DesiredTopic::Named { arn: arn.into() });
        assert!(m.alarms.values().all(|a| a.alarm_actions == vec![arn.to_string()]));
    }

    #[test]
    fn nothing_without_monitoring_or_a_log_group() {
        assert_eq!(monitoring(&TrailPolicySpec::default(), &baseline()), None);
        let mut p = policy(None);
        p.cloud_watch_logs = None;
        assert_eq!(monitoring(&p, &baseline()), None);
    }

    /// The kept topic's key is the account's own monitoring key in the topic's region, whatever the
    /// trail's key is: a LogArchive's member (whose trail encrypts with the archive's key, another
    /// account's) and an Existing-trail baseline (no trail key) get it alike.
    #[test]
    fn the_kept_topics_key_is_the_accounts_own_in_the_topics_region() {
        let mut member = baseline();
        member.storage.archive_ref = Some(crate::api::PolicyRef { name: "archive".into() });
        let mut existing = baseline();
        existing.trail.source = crate::api::TrailSource::Existing;
        for spec in [baseline(), member, existing] {
            let m = monitoring(&policy(None), &spec).expect("monitoring");
            let DesiredTopic::Kept { key, arn, .. } = &m.topic else {
                panic!("a kept topic")
            };
            assert_eq!(
                key.source,
                KeySource::Create {
                    alias: KEY_ALIAS.into(),
                    description: "trailkeeper: encrypts the monitoring topic of account 111122223333 in eu-west-1"
                        .into()
                }
            );
            let statement = &key.policy["Statement"]
                .as_array()
                .expect("statements")
                .iter()
                .find(|s| s["Sid"] == "CloudWatchAlarmsPublishToTopic")
                .expect("the CloudWatch statement")
                .clone();
            assert_eq!(statement["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);
            assert_eq!(
                statement["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"],
                json!(arn)
            );
            assert_eq!(
                statement["Condition"]["ArnLike"]["aws:SourceArn"],
                "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:trailkeeper-cis-*"
            );
            let sids: Vec<&str> = key.policy["Statement"]
                .as_array()
                .expect("statements")
                .iter()
                .filter_map(|s| s["Sid"].as_str())
                .collect();
            assert_eq!(
                sids,
                [
                    "EnableIAMPolicies",
                    "KeyAdministrators",
                    "TrailkeeperMaintainsKey",
                    "CloudWatchAlarmsPublishToTopic"
                ]
            );
        }
    }

    /// Judged as KMS would (the emulator's IAM evaluator): trailkeeper's alarms publishing to the
    /// topic may use the key; another topic, another account, another alarm, or a request without
    /// the source may not.
    #[test]
    fn the_topic_key_admits_cloudwatch_for_trailkeepers_alarms_into_this_topic_only() {
        let m = monitoring(&policy(None), &baseline()).expect("monitoring");
        let DesiredTopic::Kept { key, arn, .. } = &m.topic else {
            panic!("a kept topic")
        };
        let alarm = format!("arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{}", CONTROLS[0].name());
        let cloudwatch = json!({"Service": "cloudwatch.amazonaws.com"});
        let decide = |action: &str, context: BTreeMap<String, String>| {
            policy_eval::decide(&key.policy, cloudwatch.clone(), action, Some("*"), json!(context))
        };
        for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
            assert_eq!(decide(action, alarm_publish_context(&alarm, arn)), "Allow", "{action}");
        }
        let other_topic = "arn:aws:sns:eu-west-1:111122223333:other";
        let other_account = alarm.replace(ACCOUNT, "444455556666");
        let other_alarm = format!("arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:someone-elses");
        for context in [
            alarm_publish_context(&alarm, other_topic),
            alarm_publish_context(&other_account, arn),
            alarm_publish_context(&other_alarm, arn),
            BTreeMap::from([("kms:EncryptionContext:aws:sns:topicArn".to_string(), arn.to_string())]),
        ] {
            assert_eq!(
                decide("kms:GenerateDataKey", context.clone()),
                "ImplicitDeny",
                "{context:?}"
            );
        }
        // Only what publishing needs: nothing to re-encrypt or describe.
        assert_eq!(
            decide("kms:ReEncryptFrom", alarm_publish_context(&alarm, arn)),
            "ImplicitDeny"
        );
    }

    #[test]
    fn patterns_are_compared_without_spaces_or_quotes_and_nothing_else_passes() {
        let spaced = r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#;
        let found = recognize(spaced).expect("4.3");
        assert_eq!((found.control.cis, found.exact), ("4.3", false));
        let exact = recognize(CONTROLS[2].pattern).expect("4.3");
        assert_eq!(
            (exact.source.as_str(), exact.exact),
            ("Security Hub CloudWatch.1", true)
        );
        // An added term is not the prescribed filter (Security Hub fails it too).
        let widened = r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent" && $.x = 1}"#;
        assert_eq!(control_of_pattern(widened), None);
        let ids: Vec<&str> = CONTROLS.iter().map(|c| c.cis).collect();
        assert_eq!(ids.len(), 15);
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(unique, ids);
    }

    /// Security Hub's CloudWatch.1-14, as its remediation gives each pattern ("Security Hub
    /// controls for CloudWatch", https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html),
    /// copied here character for character.
    const SECURITY_HUB: [(&str, &str); 14] = [
        (
            "CloudWatch.1",
            r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
        ),
        (
            "CloudWatch.2",
            r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#,
        ),
        (
            "CloudWatch.3",
            r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
        ),
        (
            "CloudWatch.4",
            "{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || ($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || ($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || ($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || ($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || ($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || ($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || ($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}",
        ),
        (
            "CloudWatch.5",
            "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}",
        ),
        (
            "CloudWatch.6",
            r#"{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}"#,
        ),
        (
            "CloudWatch.7",
            "{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}",
        ),
        (
            "CloudWatch.8",
            "{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || ($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || ($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || ($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}",
        ),
        (
            "CloudWatch.9",
            "{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || ($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || ($.eventName=PutConfigurationRecorder))}",
        ),
        (
            "CloudWatch.10",
            "{($.eventName=AuthorizeSecurityGroupIngress) || ($.eventName=AuthorizeSecurityGroupEgress) || ($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) || ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}",
        ),
        (
            "CloudWatch.11",
            "{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || ($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || ($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}",
        ),
        (
            "CloudWatch.12",
            "{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || ($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || ($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}",
        ),
        (
            "CloudWatch.13",
            "{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || ($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || ($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || ($.eventName=DisassociateRouteTable)}",
        ),
        (
            "CloudWatch.14",
            "{($.eventName=CreateVpc) || ($.eventName=DeleteVpc) || ($.eventName=ModifyVpcAttribute) || ($.eventName=AcceptVpcPeeringConnection) || ($.eventName=CreateVpcPeeringConnection) || ($.eventName=DeleteVpcPeeringConnection) || ($.eventName=RejectVpcPeeringConnection) || ($.eventName=AttachClassicLinkVpc) || ($.eventName=DetachClassicLinkVpc) || ($.eventName=DisableVpcClassicLink) || ($.eventName=EnableVpcClassicLink)}",
        ),
    ];

    /// E1: each control with a Security Hub control writes exactly Security Hub's pattern (4.13
    /// without the event source, which CloudWatch.13 fails as an added term).
    #[test]
    fn every_control_with_a_security_hub_control_writes_its_pattern() {
        let mut seen = 0;
        for c in CONTROLS.iter() {
            let Some(hub) = c.security_hub else { continue };
            let (_, prescribed) = SECURITY_HUB
                .iter()
                .find(|(id, _)| *id == hub.id)
                .unwrap_or_else(|| panic!("{} is not in Security Hub's table", hub.id));
            assert_eq!(
                normalized_pattern(c.pattern),
                normalized_pattern(prescribed),
                "{}",
                c.cis
            );
            assert_eq!(c.pattern, *prescribed, "{}: not character for character", c.cis);
            seen += 1;
        }
        assert_eq!(seen, 14);
        assert!(!CONTROLS[12].pattern.contains("eventSource"));
        // CloudWatch.2 and .3 relate to CIS v1.2.0 only; the others to v1.2.0 and v1.4.0: none to
        // v3.0.0.
        assert!(
            CONTROLS
                .iter()
                .filter_map(|c| c.security_hub)
                .all(|h| !h.maps.contains("v3"))
        );
        assert_eq!(CONTROLS[0].security_hub.map(|h| h.maps), Some("CIS v1.2.0 3.1"));
    }

    /// CIS v3.0.0's own 4.1 (with the delivery.logs and HeadBucket exclusions), its base 4.2 (no
    /// SSO terms), 4.13 with the event source (its audit's spelling) and 4.15 pass; 4.15 is written
    /// as the benchmark gives it, and a wider 4.15 is not the prescribed filter.
    #[test]
    fn cis_v3_spellings_of_4_1_4_2_4_13_and_4_15_pass() {
        let cis_4_1 = r#"{ ($.errorCode ="*UnauthorizedOperation") || ($.errorCode ="AccessDenied*") && ($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket") }"#;
        let cis_4_2 = r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }"#;
        let cis_4_13 = "{($.eventSource = ec2.amazonaws.com) && ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }";
        let cis_4_15 = r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#;
        for (pattern, cis, source) in [
            (cis_4_1, "4.1", "CIS v3.0.0"),
            (cis_4_2, "4.2", "CIS v3.0.0"),
            (cis_4_13, "4.13", "CIS v3.0.0 (audit)"),
            (cis_4_15, "4.15", "CIS v3.0.0"),
        ] {
            let found = recognize(pattern).unwrap_or_else(|| panic!("{cis} not recognized"));
            assert_eq!(
                (found.control.cis, found.source.as_str(), found.exact),
                (cis, source, true)
            );
        }
        assert_eq!(normalized_pattern(CONTROLS[14].pattern), normalized_pattern(cis_4_15));
        let superset = cis_4_15.replace(
            r#"($.eventName = "AttachPolicy") ||"#,
            r#"($.eventName = "AttachPolicy") || ($.eventName = "CancelHandshake") ||"#,
        );
        assert_eq!(control_of_pattern(&superset), None);
    }

    #[test]
    fn log_group_arns_parse_with_and_without_the_stream_wildcard() {
        assert_eq!(
            parse_log_group_arn("arn:aws:logs:us-east-1:111122223333:log-group:a/b:*"),
            Some(("us-east-1".into(), "111122223333".into(), "a/b".into()))
        );
        assert_eq!(
            parse_log_group_arn("arn:aws:logs:us-east-1:111122223333:log-group:a"),
            Some(("us-east-1".into(), "111122223333".into(), "a".into()))
        );
        assert_eq!(parse_log_group_arn("arn:aws:s3:::bucket"), None);
    }
}

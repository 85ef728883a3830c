//! The monitoring controls: alarms on what the trail records (CIS AWS Foundations Benchmark
//! v3.0.0, section 4 "Monitoring"; AWS Security Hub CloudWatch.1-14). Each control is one metric
//! filter on the trail's CloudWatch Logs group and one alarm on its metric, into an SNS topic.
//! Pure functions.
//!
//! The patterns are the ones Security Hub's remediation prescribes, verbatim: "This control fails
//! if the exact metric filters prescribed by CIS are not used. Additional fields or terms cannot be
//! added to the metric filters." (Security Hub user guide, "Security Hub controls for CloudWatch",
//! https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html). Two follow
//! the benchmark's v3.0.0 text instead, which Prowler checks: 4.13 with its event source, and 4.15
//! (no Security Hub control). Prowler's `cloudwatch_log_metric_filter_*` and `cloudwatch_changes_*`
//! checks pass on all fifteen (`scripts/prowler-check.sh` runs them against the emulator).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::TrailPolicySpec;

/// The namespace of every control's metric (Security Hub's remediation groups them in one).
pub const METRIC_NAMESPACE: &str = "trailkeeper/CIS";
/// Filters and alarms trailkeeper keeps are named with this prefix (and only those are rewritten).
pub const NAME_PREFIX: &str = "trailkeeper-cis-";
/// The topic trailkeeper keeps when the policy names none.
pub const TOPIC_NAME: &str = "trailkeeper-monitoring";

/// One monitoring control of the benchmark's section 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitoringControl {
    /// The benchmark's id, `4.1`.
    pub cis: &'static str,
    /// Security Hub's control, when it has one.
    pub security_hub: Option<&'static str>,
    pub title: &'static str,
    /// Names the filter, the alarm and the metric (`unauthorized-api-calls`).
    pub slug: &'static str,
    pub metric: &'static str,
    /// The pattern trailkeeper writes.
    pub pattern: &'static str,
    /// Other prescribed spellings of the control judged as passing (Security Hub's, where the
    /// benchmark's v3.0.0 pattern differs from it).
    pub also_accepted: &'static [&'static str],
}

impl MonitoringControl {
    /// The filter's and the alarm's name.
    pub fn name(&self) -> String {
        format!("{NAME_PREFIX}{}-{}", self.cis, self.slug)
    }
}

/// The fifteen controls, in the benchmark's order.
pub const CONTROLS: [MonitoringControl; 15] = [
    MonitoringControl {
        cis: "4.1",
        security_hub: Some("CloudWatch.2"),
        title: "Ensure unauthorized API calls are monitored",
        slug: "unauthorized-api-calls",
        metric: "UnauthorizedAPICalls",
        pattern: r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#,
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.2",
        security_hub: Some("CloudWatch.3"),
        title: "Ensure management console sign-in without MFA is monitored",
        slug: "console-sign-in-without-mfa",
        metric: "ConsoleSignInWithoutMFA",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.3",
        security_hub: Some("CloudWatch.1"),
        title: "Ensure usage of the 'root' account is monitored",
        slug: "root-usage",
        metric: "RootAccountUsage",
        pattern: r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.4",
        security_hub: Some("CloudWatch.4"),
        title: "Ensure IAM policy changes are monitored",
        slug: "iam-policy-changes",
        metric: "IAMPolicyChanges",
        pattern: "{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || ($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || ($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || ($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || ($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || ($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || ($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || ($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.5",
        security_hub: Some("CloudWatch.5"),
        title: "Ensure CloudTrail configuration changes are monitored",
        slug: "cloudtrail-changes",
        metric: "CloudTrailChanges",
        pattern: "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.6",
        security_hub: Some("CloudWatch.6"),
        title: "Ensure AWS Management Console authentication failures are monitored",
        slug: "console-authentication-failures",
        metric: "ConsoleAuthenticationFailures",
        pattern: r#"{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}"#,
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.7",
        security_hub: Some("CloudWatch.7"),
        title: "Ensure disabling or scheduled deletion of customer created CMKs is monitored",
        slug: "disable-or-delete-cmk",
        metric: "DisableOrDeleteCMK",
        pattern: "{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.8",
        security_hub: Some("CloudWatch.8"),
        title: "Ensure S3 bucket policy changes are monitored",
        slug: "s3-bucket-policy-changes",
        metric: "S3BucketPolicyChanges",
        pattern: "{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || ($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || ($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || ($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.9",
        security_hub: Some("CloudWatch.9"),
        title: "Ensure AWS Config configuration changes are monitored",
        slug: "config-changes",
        metric: "AWSConfigChanges",
        pattern: "{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || ($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || ($.eventName=PutConfigurationRecorder))}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.10",
        security_hub: Some("CloudWatch.10"),
        title: "Ensure security group changes are monitored",
        slug: "security-group-changes",
        metric: "SecurityGroupChanges",
        pattern: "{($.eventName=AuthorizeSecurityGroupIngress) || ($.eventName=AuthorizeSecurityGroupEgress) || ($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) || ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.11",
        security_hub: Some("CloudWatch.11"),
        title: "Ensure Network Access Control Lists (NACL) changes are monitored",
        slug: "nacl-changes",
        metric: "NACLChanges",
        pattern: "{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || ($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || ($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.12",
        security_hub: Some("CloudWatch.12"),
        title: "Ensure changes to network gateways are monitored",
        slug: "network-gateway-changes",
        metric: "NetworkGatewayChanges",
        pattern: "{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || ($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || ($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}",
        also_accepted: &[],
    },
    MonitoringControl {
        cis: "4.13",
        security_hub: Some("CloudWatch.13"),
        title: "Ensure route table changes are monitored",
        slug: "route-table-changes",
        metric: "RouteTableChanges",
        // v3.0.0 added the event source; Security Hub's remediation still gives the older one.
        pattern: "{($.eventSource = ec2.amazonaws.com) && (($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable))}",
        also_accepted: &[
            "{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || ($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || ($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || ($.eventName=DisassociateRouteTable)}",
        ],
    },
    MonitoringControl {
        cis: "4.14",
        security_hub: Some("CloudWatch.14"),
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
        // The benchmark's calls, and the three Prowler's check adds (CancelHandshake,
        // CreateOrganization, EnableAllFeatures): a filter that sees more alarms on more.
        pattern: r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CancelHandshake") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganization") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnableAllFeatures") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdateOrganizationalUnit") || ($.eventName = "UpdatePolicy")) }"#,
        also_accepted: &[
            r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
        ],
    },
];

/// A pattern as the checkers compare it: without spaces or quotes (`$.a = "b"` is `$.a=b`).
pub fn normalized_pattern(pattern: &str) -> String {
    pattern.chars().filter(|c| !c.is_whitespace() && *c != '"').collect()
}

/// The control a filter pattern implements, if it is one of the prescribed patterns.
pub fn control_of_pattern(pattern: &str) -> Option<&'static MonitoringControl> {
    let pattern = normalized_pattern(pattern);
    CONTROLS.iter().find(|c| {
        std::iter::once(&c.pattern)
            .chain(c.also_accepted)
            .any(|p| normalized_pattern(p) == pattern)
    })
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
    /// trailkeeper's topic: created when missing, encrypted with the baseline's key, the spec's
    /// subscriptions added.
    Kept {
        arn: String,
        name: String,
        /// (protocol, endpoint), sorted.
        subscriptions: Vec<(String, String)>,
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

/// The monitoring controls of a trail policy for `account` (None: not asked, or no log group).
pub fn monitoring(policy: &TrailPolicySpec, account: &str) -> Option<DesiredMonitoring> {
    let settings = policy.monitoring.as_ref()?;
    let (region, _, log_group) = parse_log_group_arn(&policy.cloud_watch_logs.as_ref()?.log_group_arn)?;
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
            DesiredTopic::Kept {
                arn: format!("arn:{}:sns:{region}:{account}:{TOPIC_NAME}", super::partition(&region)),
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

/// The key policy statement that lets CloudWatch alarms publish to a topic encrypted with the
/// key ("Amazon SNS: Configure AWS KMS permissions", compatibility of CloudWatch alarms with
/// encrypted topics: the key policy must allow cloudwatch.amazonaws.com kms:Decrypt and
/// kms:GenerateDataKey*; the AWS managed key of SNS cannot be used).
pub fn alarms_publish_statement() -> Value {
    json!({
        "Sid": "CloudWatchAlarmsPublishToTopic",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MonitoringControls, SubscriptionProtocol, TopicSubscription, TrailCloudWatchLogs};

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
        let m = monitoring(&policy(None), "111122223333").expect("monitoring");
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
        let m = monitoring(&policy(Some(arn)), "111122223333").expect("monitoring");
        assert_eq!(m.topic, DesiredTopic::Named { arn: arn.into() });
        assert!(m.alarms.values().all(|a| a.alarm_actions == vec![arn.to_string()]));
    }

    #[test]
    fn nothing_without_monitoring_or_a_log_group() {
        assert_eq!(monitoring(&TrailPolicySpec::default(), "111122223333"), None);
        let mut p = policy(None);
        p.cloud_watch_logs = None;
        assert_eq!(monitoring(&p, "111122223333"), None);
    }

    #[test]
    fn patterns_are_compared_without_spaces_or_quotes_and_nothing_else_passes() {
        let spaced = r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#;
        assert_eq!(control_of_pattern(spaced).map(|c| c.cis), Some("4.3"));
        // An added term is not the prescribed filter (Security Hub fails it too).
        let widened = r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent" && $.x = 1}"#;
        assert_eq!(control_of_pattern(widened), None);
        let ids: Vec<&str> = CONTROLS.iter().map(|c| c.cis).collect();
        assert_eq!(ids.len(), 15);
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(unique, ids);
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

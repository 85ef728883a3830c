//! Event-driven drift detection, as data: the rule each account forwards its tampering calls
//! with (in each region trailkeeper enforces, and the primary), the role EventBridge forwards
//! them as, and the operator's central bus, rule and queue policy.
//!
//! Tampering reaches the operator as CloudTrail's "AWS API Call via CloudTrail" events (which
//! need a logging trail: the baseline's own), from the account's default bus, through the central
//! bus (another account or region needs a bus-to-bus hop with a role), into the SQS queue the
//! operator long-polls.

use serde_json::{Value, json};

/// The forwarding rule on each account's default bus.
pub const FORWARD_RULE: &str = "trailkeeper-tamper";
pub const FORWARD_TARGET_ID: &str = "trailkeeper-central-bus";
/// The role EventBridge assumes to put the events on the central bus (required for another
/// region, recommended by AWS for another account).
pub const FORWARD_ROLE: &str = "trailkeeper-events";
pub const FORWARD_ROLE_POLICY: &str = "trailkeeper-forward-tamper-events";
/// The AWS managed policy that bounds the forwarding role: EventBridge only (no IAM beyond passing
/// roles to EventBridge, no data). Its inline policy narrows it to PutEvents on the central bus.
pub const FORWARD_ROLE_BOUNDARY: &str = "policy/AmazonEventBridgeFullAccess";
/// The central bus's rule into the queue, and its target id.
pub const CENTRAL_RULE: &str = "trailkeeper-tamper-to-queue";
pub const CENTRAL_TARGET_ID: &str = "trailkeeper-queue";
pub const DEFAULT_BUS: &str = "trailkeeper-events";
/// The `detail-type` of the events CloudTrail delivers for API calls.
pub const API_CALL: &str = "AWS API Call via CloudTrail";

/// The calls that undo part of a baseline, by event source, as CloudTrail names them (S3's
/// names are its CloudTrail event names, which differ from some API names; both are listed
/// where they do). Read-only calls never arrive: EventBridge receives only mutating ones.
pub const TAMPER_EVENTS: &[(&str, &[&str])] = &[
    (
        "aws.cloudtrail",
        &[
            "StopLogging",
            "DeleteTrail",
            "UpdateTrail",
            "PutEventSelectors",
            "PutInsightSelectors",
            "RemoveTags",
        ],
    ),
    (
        "aws.s3",
        &[
            "PutBucketPolicy",
            "DeleteBucketPolicy",
            "PutBucketLogging",
            "PutBucketEncryption",
            "DeleteBucketEncryption",
            "PutBucketLifecycle",
            "PutBucketLifecycleConfiguration",
            "DeleteBucketLifecycle",
            "PutObjectLockConfiguration",
            "PutBucketObjectLockConfiguration",
            "PutBucketPublicAccessBlock",
            "DeleteBucketPublicAccessBlock",
            "PutBucketVersioning",
            "PutBucketOwnershipControls",
            "DeleteBucketOwnershipControls",
            "PutBucketAcl",
            "PutBucketTagging",
            "DeleteBucketTagging",
            "DeleteBucket",
        ],
    ),
    (
        "aws.kms",
        &[
            "PutKeyPolicy",
            "DisableKeyRotation",
            "DisableKey",
            "ScheduleKeyDeletion",
            "DeleteAlias",
            "UpdateAlias",
        ],
    ),
    ("aws.ec2", &["DeleteFlowLogs"]),
    (
        "aws.logs",
        &[
            "DeleteLogGroup",
            "PutRetentionPolicy",
            "DeleteRetentionPolicy",
            "DisassociateKmsKey",
            // The monitoring controls' filters.
            "PutMetricFilter",
            "DeleteMetricFilter",
        ],
    ),
    // The monitoring controls' alarms ("source: aws.monitoring", EventBridge events reference,
    // events-ref-monitoring) and their topic.
    (
        "aws.monitoring",
        &["PutMetricAlarm", "DeleteAlarms", "DisableAlarmActions"],
    ),
    ("aws.sns", &["SetTopicAttributes", "DeleteTopic", "Unsubscribe"]),
    (
        "aws.config",
        &[
            "DeleteConfigRule",
            "PutConfigRule",
            "StopConfigurationRecorder",
            "DeleteConfigurationRecorder",
            // A recorder's recording group can be shrunk, its delivery channel pointed elsewhere.
            "PutConfigurationRecorder",
            "PutDeliveryChannel",
            "DeleteDeliveryChannel",
        ],
    ),
    (
        "aws.ssm",
        &[
            "DeleteAssociation",
            "UpdateAssociation",
            "DeleteParameter",
            "PutParameter",
        ],
    ),
    (
        "aws.iam",
        &[
            "DeleteRole",
            "DeleteRolePolicy",
            "PutRolePolicy",
            "UpdateAssumeRolePolicy",
            // A boundary removed or replaced, a managed policy attached or detached, changes what
            // trailkeeper's roles may do as much as their inline policy.
            "PutRolePermissionsBoundary",
            "DeleteRolePermissionsBoundary",
            "AttachRolePolicy",
            "DetachRolePolicy",
        ],
    ),
    ("aws.glue", &["DeleteDatabase", "DeleteTable", "UpdateTable"]),
    (
        "aws.athena",
        &["DeleteWorkGroup", "UpdateWorkGroup", "DeleteNamedQuery"],
    ),
    (
        "aws.events",
        &["DeleteRule", "DisableRule", "RemoveTargets", "PutRule", "PutTargets"],
    ),
];

/// The calls that change what the account-wide controls judge in a region, whoever's resources
/// they touch: CIS 3.3 (a recorder stopped, deleted, redefined, its channel gone), 3.6 (a key's
/// rotation disabled, a key created or disabled) and 3.7 (a VPC created, a flow log deleted), and
/// the calls that set them right again. In a region the baseline keeps they reconcile it; in the
/// others they make the controller's sweep read that region again (`engine::sweep`).
pub const ACCOUNT_WIDE_EVENTS: &[(&str, &[&str])] = &[
    (
        "aws.config",
        &[
            "StopConfigurationRecorder",
            "StartConfigurationRecorder",
            "DeleteConfigurationRecorder",
            "PutConfigurationRecorder",
            "PutDeliveryChannel",
            "DeleteDeliveryChannel",
        ],
    ),
    (
        "aws.kms",
        &[
            "CreateKey",
            "EnableKeyRotation",
            "DisableKeyRotation",
            "EnableKey",
            "DisableKey",
            "ScheduleKeyDeletion",
        ],
    ),
    (
        "aws.ec2",
        &["CreateVpc", "DeleteVpc", "CreateFlowLogs", "DeleteFlowLogs"],
    ),
];

/// The calls on a forwarding rule itself (its region's rule is repaired on them).
pub const RULE_EVENTS: (&str, &[&str]) = (
    "aws.events",
    &["DeleteRule", "DisableRule", "RemoveTargets", "PutRule", "PutTargets"],
);

/// Whether an event name is one the forwarding rule matches as tampering with the baseline.
pub fn is_tamper_event(name: &str) -> bool {
    TAMPER_EVENTS.iter().any(|(_, names)| names.contains(&name))
}

/// Whether an event name changes what the account-wide controls judge (`ACCOUNT_WIDE_EVENTS`).
pub fn is_account_wide_event(name: &str) -> bool {
    ACCOUNT_WIDE_EVENTS.iter().any(|(_, names)| names.contains(&name))
}

/// Whether an event name is a call on a forwarding rule.
pub fn is_rule_event(name: &str) -> bool {
    RULE_EVENTS.1.contains(&name)
}

/// An event pattern of API calls of these services and names, compact (EventBridge stores it as
/// sent, and a pattern is compared as JSON, not text).
fn pattern_of<'a>(events: impl Iterator<Item = &'a (&'a str, &'a [&'a str])>) -> Value {
    let mut sources: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (source, of_source) in events {
        if !sources.contains(source) {
            sources.push(source);
        }
        names.extend(of_source.iter().copied());
    }
    names.sort_unstable();
    names.dedup();
    json!({
        "source": sources,
        "detail-type": [API_CALL],
        "detail": {"eventName": names},
    })
}

/// The forwarding rule's event pattern in a region the baseline keeps: tampering with what it
/// keeps, and the account-wide controls' calls.
pub fn forward_pattern() -> Value {
    pattern_of(TAMPER_EVENTS.iter().chain(ACCOUNT_WIDE_EVENTS))
}

/// The forwarding rule's event pattern in a region the baseline does not keep, kept there by the
/// controller's sweep: the account-wide controls' calls and the calls on the rule itself, nothing
/// of what only a kept region holds.
pub fn sweep_pattern() -> Value {
    pattern_of(ACCOUNT_WIDE_EVENTS.iter().chain(std::iter::once(&RULE_EVENTS)))
}

/// The regions whose forwarding rule a reconcile keeps: the kept ones, the primary, and the Region
/// where global services' events arrive when the trail records them. The sweep keeps the rule of
/// every other region it judges.
pub fn forwarding_regions(kept: &[String], primary: &str, global_service_events: bool) -> Vec<String> {
    let mut regions = kept.to_vec();
    regions.push(primary.to_string());
    if global_service_events {
        regions.push(global_events_region(super::partition(primary)).to_string());
    }
    regions.sort();
    regions.dedup();
    regions
}

/// The central rule's pattern: every forwarded API call event whose source is an AWS service.
/// PutEvents cannot put a source with the `aws.` prefix ("The aws. value prefix is
/// service-reserved", PutEventsRequestEntry in the EventBridge API reference), so an event that
/// matches came from CloudTrail through a forwarding rule, never from a caller's PutEvents.
pub fn central_pattern() -> Value {
    json!({"source": [{"prefix": "aws."}], "detail-type": [API_CALL]})
}

/// The Region where CloudTrail delivers the events of global services (IAM, STS, Organizations)
/// to EventBridge: us-east-1 in the commercial partition ("Events from AWS global services are
/// delivered ... in the US East (N. Virginia) Region", EventBridge user guide,
/// eb-service-event-cloudtrail.html), each partition's first Region elsewhere.
pub fn global_events_region(partition: &str) -> &'static str {
    match partition {
        "aws-us-gov" => "us-gov-west-1",
        "aws-cn" => "cn-north-1",
        _ => "us-east-1",
    }
}

/// Where an account's rule forwards to: the operator's central bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarding {
    pub bus_arn: String,
}

impl Forwarding {
    /// The central bus of a queue: same account and region, named `bus_name`.
    pub fn for_queue(queue_arn: &str, bus_name: &str) -> Option<Forwarding> {
        let parts: Vec<&str> = queue_arn.split(':').collect();
        match parts.as_slice() {
            ["arn", partition, "sqs", region, account, _name] if !region.is_empty() && !account.is_empty() => {
                Some(Forwarding {
                    bus_arn: format!("arn:{partition}:events:{region}:{account}:event-bus/{bus_name}"),
                })
            }
            _ => None,
        }
    }

    fn partition(&self) -> &str {
        self.bus_arn.split(':').nth(1).unwrap_or("aws")
    }

    /// The forwarding role of `account`.
    pub fn role_arn(&self, account: &str) -> String {
        format!("arn:{}:iam::{account}:role/{FORWARD_ROLE}", self.partition())
    }
}

/// Who may assume the forwarding role: EventBridge, for rules of this account only.
pub fn forward_role_trust(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }],
    })
}

/// What the forwarding role may do: put events on the central bus, nothing else.
pub fn forward_role_policy(forwarding: &Forwarding) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PutTamperEventsOnTheCentralBus",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": forwarding.bus_arn,
        }],
    })
}

/// The forwarding role's permissions boundary in a partition.
pub fn forward_role_boundary(partition: &str) -> String {
    format!("arn:{partition}:iam::aws:{FORWARD_ROLE_BOUNDARY}")
}

/// Whom the central bus admits: the forwarding roles of the managed accounts, named one by one,
/// or of every account of the Organization (`--events-organization-id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admitted {
    Organization(String),
    Accounts(std::collections::BTreeSet<String>),
}

/// An event bus's resource policy holds at most 10,240 characters ("Event bus policy size",
/// EventBridge quotas, eb-quota.html). Twelve digits and their quotes and comma are 15
/// characters an account: about 650 accounts fit beside the rest of the policy; more need the
/// Organization's id.
pub const BUS_POLICY_LIMIT: usize = 10_240;

/// The statement of the central bus's policy that admits the accounts' forwarding roles: a role
/// named `trailkeeper-events` of a managed account (or of the Organization's accounts), never of
/// any account (a role of that name can be created by anyone). None: no account to admit.
pub const BUS_STATEMENT: &str = "TrailkeeperAccountsForwardTamperEvents";

pub fn bus_statement(bus_arn: &str, admitted: &Admitted) -> Option<Value> {
    let partition = bus_arn.split(':').nth(1).unwrap_or("aws");
    let mut condition = json!({"ArnLike": {"aws:PrincipalArn": format!("arn:{partition}:iam::*:role/{FORWARD_ROLE}")}});
    match admitted {
        Admitted::Organization(org) => condition["StringEquals"] = json!({"aws:PrincipalOrgID": org}),
        Admitted::Accounts(accounts) if accounts.is_empty() => return None,
        Admitted::Accounts(accounts) => condition["StringEquals"] = json!({"aws:PrincipalAccount": accounts}),
    }
    Some(json!({
        "Sid": BUS_STATEMENT,
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "events:PutEvents",
        "Resource": bus_arn,
        "Condition": condition,
    }))
}

/// The bus policy `policy` should become (None: as it is): the admitting statement replaced or
/// added, or removed when there is nobody to admit. Err when it would exceed the policy quota.
pub fn bus_policy(policy: Option<&str>, bus_arn: &str, admitted: &Admitted) -> Result<Option<Value>, String> {
    let desired = match bus_statement(bus_arn, admitted) {
        Some(statement) => with_statement(policy, &statement),
        None => without_statement(policy, BUS_STATEMENT),
    };
    match desired {
        Some(document) if document.to_string().len() > BUS_POLICY_LIMIT => Err(format!(
            "the central bus's policy would be {} characters, over EventBridge's {BUS_POLICY_LIMIT}: \
             give the Organization's id (--events-organization-id) to admit its accounts in one condition",
            document.to_string().len()
        )),
        other => Ok(other),
    }
}

/// The statement of the queue's policy that lets the central rule send to it.
pub const QUEUE_STATEMENT: &str = "TrailkeeperCentralRuleSendsTamperEvents";

pub fn queue_statement(queue_arn: &str, central_rule_arn: &str) -> Value {
    json!({
        "Sid": QUEUE_STATEMENT,
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": central_rule_arn}},
    })
}

/// `policy` (None: none yet) with the statement `statement` (by Sid) added or replaced, or None
/// when it is already there as it should be. Other statements are kept as they are.
pub fn with_statement(policy: Option<&str>, statement: &Value) -> Option<Value> {
    let sid = statement["Sid"].as_str().unwrap_or_default();
    let mut document: Value = policy
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
    if !document["Statement"].is_array() {
        let single = document["Statement"].take();
        document["Statement"] = if single.is_null() { json!([]) } else { json!([single]) };
    }
    let statements = document["Statement"].as_array_mut()?;
    match statements.iter_mut().find(|s| s["Sid"] == sid) {
        Some(existing) if same_statement(existing, statement) => None,
        Some(existing) => {
            *existing = statement.clone();
            Some(document)
        }
        None => {
            statements.push(statement.clone());
            Some(document)
        }
    }
}

/// `policy` without the statement `sid`, or None when it has none.
pub fn without_statement(policy: Option<&str>, sid: &str) -> Option<Value> {
    let mut document: Value = serde_json::from_str(policy?).ok()?;
    let statements = document["Statement"].as_array_mut()?;
    let before = statements.len();
    statements.retain(|s| s["Sid"] != sid);
    (statements.len() != before).then_some(document)
}

fn same_statement(a: &Value, b: &Value) -> bool {
    let document = |s: &Value| json!({"Statement": [s]});
    super::policy::equivalent(&document(a), &document(b))
}

/// Whether a stored pattern is the desired one (compared as JSON).
pub fn same_pattern(stored: Option<&str>, desired: &Value) -> bool {
    stored
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .is_some_and(|p| &p == desired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarding_pattern_matches_the_tampering_calls_and_fits_eventbridges_limit() {
        let pattern = forward_pattern();
        let names = pattern["detail"]["eventName"].as_array().unwrap();
        for name in [
            "StopLogging",
            "PutBucketPolicy",
            "DisableKey",
            "DeleteFlowLogs",
            "DeleteLogGroup",
            "DeleteConfigRule",
            "StopConfigurationRecorder",
            "PutConfigurationRecorder",
            "PutDeliveryChannel",
            "DeleteDeliveryChannel",
            "PutRolePermissionsBoundary",
            "DeleteRolePermissionsBoundary",
            "AttachRolePolicy",
            "DetachRolePolicy",
        ] {
            assert!(names.iter().any(|n| n == name), "{name}");
            assert!(is_tamper_event(name), "{name}");
        }
        // EventBridge refuses event patterns over 4096 characters.
        assert!(pattern.to_string().len() < 2048, "{}", pattern.to_string().len());
    }

    #[test]
    fn a_region_not_kept_forwards_only_what_the_account_wide_controls_judge() {
        let names = |p: &Value| -> Vec<String> {
            p["detail"]["eventName"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        };
        let (full, sweep) = (names(&forward_pattern()), names(&sweep_pattern()));
        for name in [
            "StopConfigurationRecorder",
            "DisableKeyRotation",
            "DeleteFlowLogs",
            "CreateVpc",
        ] {
            assert!(
                full.contains(&name.to_string()) && sweep.contains(&name.to_string()),
                "{name}"
            );
            assert!(is_account_wide_event(name), "{name}");
        }
        // What only a kept region holds (the trail, buckets, log groups) is not forwarded there.
        for name in ["StopLogging", "PutBucketPolicy", "DeleteLogGroup", "DeleteRolePolicy"] {
            assert!(
                full.contains(&name.to_string()) && !sweep.contains(&name.to_string()),
                "{name}"
            );
        }
        // The sweep's own rule is repaired when it is touched.
        assert!(sweep.contains(&"DeleteRule".to_string()) && sweep.contains(&"PutTargets".to_string()));
        assert_eq!(
            sweep_pattern()["source"],
            json!(["aws.config", "aws.kms", "aws.ec2", "aws.events"])
        );
    }

    #[test]
    fn a_reconcile_forwards_from_its_kept_regions_the_primary_and_the_global_events_region() {
        let kept = vec!["eu-west-1".to_string()];
        assert_eq!(forwarding_regions(&kept, "eu-west-1", true), ["eu-west-1", "us-east-1"]);
        assert_eq!(
            forwarding_regions(&kept, "eu-central-1", false),
            ["eu-central-1", "eu-west-1"]
        );
    }

    #[test]
    fn the_central_rule_matches_only_events_of_aws_services() {
        assert_eq!(central_pattern()["source"], json!([{"prefix": "aws."}]));
        assert_eq!(global_events_region("aws"), "us-east-1");
        assert_eq!(global_events_region("aws-us-gov"), "us-gov-west-1");
    }

    #[test]
    fn the_bus_admits_the_forwarding_roles_of_the_managed_accounts_only() {
        let bus = "arn:aws:events:eu-west-1:111122223333:event-bus/trailkeeper-events";
        let accounts = Admitted::Accounts(["444455556666".to_string(), "777788889999".to_string()].into());
        let statement = bus_statement(bus, &accounts).unwrap();
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:PrincipalAccount"],
            json!(["444455556666", "777788889999"])
        );
        assert_eq!(
            statement["Condition"]["ArnLike"]["aws:PrincipalArn"],
            "arn:aws:iam::*:role/trailkeeper-events"
        );
        let org = bus_statement(bus, &Admitted::Organization("o-abc".into())).unwrap();
        assert_eq!(org["Condition"]["StringEquals"], json!({"aws:PrincipalOrgID": "o-abc"}));
        // Nobody to admit: the statement goes, others stay.
        let theirs = json!({"Sid": "Theirs", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "events:PutEvents", "Resource": bus});
        let policy = json!({"Version": "2012-10-17", "Statement": [theirs, statement]}).to_string();
        let none = Admitted::Accounts(Default::default());
        let without = bus_policy(Some(&policy), bus, &none).unwrap().expect("removed");
        assert_eq!(without["Statement"], json!([theirs]));
        assert!(bus_policy(Some(&without.to_string()), bus, &none).unwrap().is_none());
        assert!(bus_policy(Some(&policy), bus, &accounts).unwrap().is_none());
    }

    #[test]
    fn accounts_past_the_bus_policy_quota_need_the_organization() {
        let bus = "arn:aws:events:eu-west-1:111122223333:event-bus/trailkeeper-events";
        let many = |n: u64| Admitted::Accounts((0..n).map(|i| format!("{:012}", 100_000_000_000 + i)).collect());
        assert!(bus_policy(None, bus, &many(600)).is_ok());
        let refused = bus_policy(None, bus, &many(1_000)).unwrap_err();
        assert!(refused.contains("--events-organization-id"), "{refused}");
        assert!(bus_policy(None, bus, &Admitted::Organization("o-abc".into())).is_ok());
    }

    #[test]
    fn the_central_bus_is_the_queues_account_and_region() {
        let f = Forwarding::for_queue("arn:aws:sqs:eu-west-1:111122223333:trailkeeper", "trailkeeper-events").unwrap();
        assert_eq!(
            f.bus_arn,
            "arn:aws:events:eu-west-1:111122223333:event-bus/trailkeeper-events"
        );
        assert_eq!(
            f.role_arn("444455556666"),
            "arn:aws:iam::444455556666:role/trailkeeper-events"
        );
        assert!(Forwarding::for_queue("not-an-arn", "b").is_none());
    }

    #[test]
    fn a_statement_is_added_once_and_others_are_kept() {
        let ours = queue_statement(
            "arn:aws:sqs:us-east-1:1:q",
            "arn:aws:events:us-east-1:1:rule/trailkeeper-events/r",
        );
        let theirs = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"sqs:*","Resource":"*"}]}"#;
        let merged = with_statement(Some(theirs), &ours).expect("added");
        assert_eq!(merged["Statement"].as_array().unwrap().len(), 2);
        assert!(with_statement(Some(&merged.to_string()), &ours).is_none());
        assert!(with_statement(None, &ours).is_some());
    }
}

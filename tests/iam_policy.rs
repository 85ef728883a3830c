//! The least-privilege IAM policy (deploy/iam-policy.json) grants exactly the AWS actions the
//! code calls. The test suite logs every call it makes (TRAILKEEPER_CALL_LOG, set by
//! scripts/test.sh); this test runs last, over that log.

use std::collections::BTreeSet;

/// Operations AWS authorises without any IAM permission.
const NEEDS_NO_PERMISSION: [&str; 1] = ["sts:GetCallerIdentity"];

/// Permissions AWS checks besides the operation's own action (tagging on creation, passing a role):
/// no API call of their own shows them, so they are listed with the call that needs them.
const IMPLIED: [(&str, &str); 17] = [
    // The trail bucket has an S3 Bucket Key: creating or updating an SSE-KMS trail then needs
    // kms:Decrypt for the caller (CloudTrail user guide, "Configure AWS KMS key policies for
    // CloudTrail", S3 Bucket Keys).
    ("cloudtrail:CreateTrail", "kms:Decrypt"),
    ("cloudtrail:UpdateTrail", "kms:Decrypt"),
    ("config:PutConfigurationRecorder", "iam:PassRole"),
    ("ec2:CreateFlowLogs", "ec2:CreateTags"),
    ("ec2:CreateFlowLogs", "iam:PassRole"),
    ("iam:CreateRole", "iam:TagRole"),
    ("logs:CreateLogGroup", "logs:TagResource"),
    ("ssm:PutParameter", "ssm:AddTagsToResource"),
    ("kms:CreateKey", "kms:TagResource"),
    ("glue:CreateDatabase", "glue:TagResource"),
    ("athena:CreateWorkGroup", "athena:TagResource"),
    ("events:PutRule", "events:TagResource"),
    ("events:CreateEventBus", "events:TagResource"),
    // Tags given at creation need the tagging action too (CloudWatch API reference,
    // PutMetricAlarm "Tags"; SNS API reference, CreateTopic "Tags").
    ("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"),
    ("sns:CreateTopic", "sns:TagResource"),
    // A target with a role (the forwarding rule's): EventBridge checks the caller may pass it.
    ("events:PutTargets", "iam:PassRole"),
    // The replication rule names the role S3 replicates with: S3 checks the caller may pass it
    // (S3 user guide, "Setting up permissions for live replication").
    ("s3:PutReplicationConfiguration", "iam:PassRole"),
];

fn deployed(file: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The actions of the account role's and the operator's policies, and those the key policy of
/// every key trailkeeper creates grants the account role (its maintenance of the key).
fn granted_actions() -> BTreeSet<String> {
    let mut actions: BTreeSet<String> = trailkeeper::desired::iam::key_maintenance_actions(true)
        .into_iter()
        .map(str::to_string)
        .collect();
    for file in ["iam-policy.json", "iam-operator-policy.json", "iam-archive-policy.json"] {
        for statement in deployed(file)["Statement"].as_array().unwrap() {
            if statement["Effect"] == "Deny" {
                continue;
            }
            assert_eq!(statement["Effect"], "Allow");
            for action in statement["Action"].as_array().unwrap() {
                let action = action.as_str().unwrap();
                assert!(
                    !action.contains('*'),
                    "wildcard action {action}: grant actions one by one"
                );
                actions.insert(action.to_string());
            }
        }
    }
    actions
}

/// deploy/ holds what `trailkeeper iam-policy` prints with its defaults.
#[test]
fn the_deployed_policies_are_the_generated_ones() {
    use trailkeeper::desired::iam::{IamSettings, account_policy, archive_policy, operator_policy, trust_policy};
    let settings = IamSettings::default();
    for (file, generated) in [
        ("iam-policy.json", account_policy(&settings)),
        ("iam-operator-policy.json", operator_policy(&settings)),
        ("iam-trust-policy.json", trust_policy(&settings)),
        ("iam-archive-policy.json", archive_policy(&settings)),
    ] {
        assert_eq!(
            deployed(file),
            generated,
            "deploy/{file} is stale: trailkeeper iam-policy --document ... > deploy/{file}"
        );
    }
}

#[test]
fn the_policy_is_well_formed_and_grants_no_wildcard_actions() {
    assert!(!granted_actions().is_empty());
}

/// CreateTrail and UpdateTrail pass `TrailPolicy.cloudWatchLogs.roleArn` (a role the user names,
/// so any role) to CloudTrail: iam:PassRole must allow that, and only to CloudTrail. No call of
/// the suite shows it (moto checks no PassRole), hence this test of the policy itself.
#[test]
fn the_trails_cloudwatch_logs_role_may_be_passed_to_cloudtrail_only() {
    let policy = deployed("iam-policy.json");
    let passes_to_cloudtrail = policy["Statement"].as_array().unwrap().iter().any(|s| {
        listed(&s["Action"]).iter().any(|a| a == "iam:PassRole")
            && s["Resource"] == "arn:aws:iam::*:role/*"
            && s["Condition"]["StringEquals"]["iam:PassedToService"] == "cloudtrail.amazonaws.com"
    });
    assert!(
        passes_to_cloudtrail,
        "no statement lets the operator pass the trail's CloudWatch Logs role to CloudTrail"
    );
}

/// Privilege escalation: the operator assumes only the account role (by its exact name), and the
/// account role can neither assume a role trailkeeper manages nor widen one past its boundary.
#[test]
fn no_policy_lets_trailkeeper_assume_or_widen_a_role_it_manages() {
    let operator = deployed("iam-operator-policy.json");
    let assumable: Vec<&serde_json::Value> = operator["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"].to_string().contains("sts:AssumeRole"))
        .map(|s| &s["Resource"])
        .collect();
    assert_eq!(assumable, [&serde_json::json!("arn:aws:iam::*:role/trailkeeper")]);
    let account = deployed("iam-policy.json");
    for statement in account["Statement"].as_array().unwrap() {
        let actions = statement["Action"].to_string();
        if statement["Effect"] == "Deny" {
            continue;
        }
        assert!(!actions.contains("sts:AssumeRole"), "{statement}");
        // Each role trailkeeper creates, by its boundary: flow-log delivery (CloudWatch Logs
        // writes only) and tamper-event forwarding (EventBridge only).
        for widening in ["iam:PutRolePolicy", "iam:CreateRole", "iam:PutRolePermissionsBoundary"] {
            if actions.contains(widening) {
                let boundary = if statement["Resource"] == "arn:aws:iam::*:role/trailkeeper-events" {
                    "arn:aws:iam::aws:policy/AmazonEventBridgeFullAccess"
                } else {
                    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                };
                assert_eq!(
                    statement["Condition"]["StringEquals"]["iam:PermissionsBoundary"], boundary,
                    "{widening} without the boundary: {statement}"
                );
            }
        }
        for never in [
            "iam:AttachRolePolicy",
            "iam:DeleteRolePermissionsBoundary",
            "iam:CreatePolicyVersion",
        ] {
            assert!(!actions.contains(never), "{never}: {statement}");
        }
    }
}

#[test]
#[ignore = "runs after the whole suite, over its call log: scripts/test.sh"]
fn the_policy_grants_exactly_the_actions_the_test_suite_called() {
    let log = std::env::var(trailkeeper::aws::calls::CALL_LOG_ENV).expect("scripts/test.sh sets TRAILKEEPER_CALL_LOG");
    let called: BTreeSet<String> = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("cannot read the call log {log}: {e}"))
        .lines()
        .map(str::to_string)
        .filter(|a| !NEEDS_NO_PERMISSION.contains(&a.as_str()))
        .collect();
    let implied: BTreeSet<String> = IMPLIED
        .iter()
        .filter(|(call, _)| called.contains(*call))
        .map(|(_, needed)| needed.to_string())
        .collect();
    let called: BTreeSet<String> = called.union(&implied).cloned().collect();
    let granted = granted_actions();
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "called but not granted by deploy/iam-policy.json: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "granted but never called by the test suite: {unused:?}"
    );
}

/// `*` and `?` wildcards, as IAM matches actions and resources (case-insensitive for actions).
fn wildcard(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

fn listed(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        serde_json::Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Whether `policy` may allow `action` on `resource`: an Allow matches (its conditions counted as
/// met: the worst case) and no Deny does.
fn may_allow(policy: &serde_json::Value, action: &str, resource: &str) -> bool {
    let matches = |s: &serde_json::Value| {
        listed(&s["Action"])
            .iter()
            .any(|a| wildcard(&a.to_lowercase(), &action.to_lowercase()))
            && listed(&s["Resource"]).iter().any(|r| wildcard(r, resource))
    };
    let statements = policy["Statement"].as_array().unwrap();
    statements.iter().any(|s| s["Effect"] == "Allow" && matches(s))
        && !statements.iter().any(|s| s["Effect"] == "Deny" && matches(s))
}

fn is_read(action: &str) -> bool {
    let verb = action.split(':').nth(1).unwrap_or_default();
    ["Get", "List", "Describe", "BatchGet"]
        .iter()
        .any(|r| verb.starts_with(r))
}

/// Nothing trailkeeper does not own can be written through its policies: someone else's bucket,
/// key, trail, parameter or log group, for every write action the policies grant in that service
/// (with all their conditions met); and the flow-log role it manages cannot be assumed.
#[test]
fn the_policies_grant_no_write_on_resources_trailkeeper_does_not_own() {
    let account = deployed("iam-policy.json");
    let operator = deployed("iam-operator-policy.json");
    let foreign = [
        ("s3", "arn:aws:s3:::payments-data"),
        ("s3", "arn:aws:s3:::trailkeeper-data-lake"),
        (
            "kms",
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
        ("kms", "arn:aws:kms:eu-west-1:111122223333:alias/payments"),
        (
            "cloudtrail",
            "arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail",
        ),
        ("ssm", "arn:aws:ssm:us-east-1:111122223333:parameter/prod/db-password"),
        (
            "logs",
            "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/payments",
        ),
        ("athena", "arn:aws:athena:us-east-1:111122223333:workgroup/primary"),
        ("glue", "arn:aws:glue:us-east-1:111122223333:database/sales"),
    ];
    // CreateKey acts on no existing key (its resource is `*`): it is scoped by its conditions.
    let writes: BTreeSet<String> = granted_actions()
        .into_iter()
        .filter(|a| !is_read(a) && a != "kms:CreateKey")
        .collect();
    let mut granted = Vec::new();
    for (service, resource) in foreign {
        for action in writes.iter().filter(|a| a.starts_with(&format!("{service}:"))) {
            if may_allow(&account, action, resource) || may_allow(&operator, action, resource) {
                granted.push(format!("{action} on {resource}"));
            }
        }
    }
    assert!(
        granted.is_empty(),
        "writes on resources trailkeeper does not own: {granted:#?}"
    );
    // What it owns stays writable (the patterns are not simply empty).
    for (action, resource) in [
        (
            "s3:PutBucketPolicy",
            "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1",
        ),
        (
            "cloudtrail:StartLogging",
            "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper",
        ),
        (
            "ssm:PutParameter",
            "arn:aws:ssm:eu-west-1:111122223333:parameter/AmazonCloudWatch-trailkeeper-linux",
        ),
        (
            "logs:PutRetentionPolicy",
            "arn:aws:logs:eu-west-1:111122223333:log-group:/trailkeeper/vpc-flow-logs",
        ),
    ] {
        assert!(may_allow(&account, action, resource), "{action} on {resource}");
    }
    let flow_log_role = "arn:aws:iam::111122223333:role/trailkeeper-vpc-flow-logs";
    assert!(!may_allow(&account, "sts:AssumeRole", flow_log_role));
    assert!(!may_allow(&operator, "sts:AssumeRole", flow_log_role));
    assert!(may_allow(
        &operator,
        "sts:AssumeRole",
        "arn:aws:iam::111122223333:role/trailkeeper"
    ));
}

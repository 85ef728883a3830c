//! The least-privilege IAM policy (deploy/iam-policy.json) grants exactly the AWS actions the
//! code calls. The test suite logs every call it makes (TRAILKEEPER_CALL_LOG, set by
//! scripts/test.sh); this test runs last, over that log.

use std::collections::BTreeSet;

/// Operations AWS authorises without any IAM permission.
const NEEDS_NO_PERMISSION: [&str; 1] = ["sts:GetCallerIdentity"];

/// Permissions AWS checks besides the operation's own action (tagging on creation, passing a role):
/// no API call of their own shows them, so they are listed with the call that needs them.
const IMPLIED: [(&str, &str); 11] = [
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
];

fn granted_actions() -> BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/iam-policy.json");
    let policy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
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
    actions
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
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/iam-policy.json");
    let policy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let passes_to_cloudtrail = policy["Statement"].as_array().unwrap().iter().any(|s| {
        s["Action"].as_array().unwrap().iter().any(|a| a == "iam:PassRole")
            && s["Resource"] == "arn:aws:iam::*:role/*"
            && s["Condition"]["StringEquals"]["iam:PassedToService"] == "cloudtrail.amazonaws.com"
    });
    assert!(
        passes_to_cloudtrail,
        "no statement lets the operator pass the trail's CloudWatch Logs role to CloudTrail"
    );
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

//! The emulator's IAM evaluator (scripts/emulator/iam_policy.py), which every strict rule and the
//! policy unit tests judge with: IAM's operators, elements and variables, each case both ways
//! (scripts/emulator/test_iam_policy.py), and the bridge the Rust tests use.

mod common;

use serde_json::json;

#[test]
fn the_evaluator_judges_every_condition_operator_and_element_as_iam_documents() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("python3")
        .args(["-m", "unittest", "-v", "scripts/emulator/test_iam_policy.py"])
        .current_dir(root)
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("Ran 13 tests"), "{report}");
}

#[test]
fn the_bridge_answers_each_request_of_a_policy() {
    let policy = json!({"Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::b/AWSLogs/111122223333/*",
         "Condition": {"StringEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/t"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    ]});
    let trail =
        json!({"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/t", "aws:SecureTransport": "true"});
    let service = json!({"Service": "cloudtrail.amazonaws.com"});
    let requests = [
        common::policy_eval::request(
            service.clone(),
            "s3:PutObject",
            Some("arn:aws:s3:::b/AWSLogs/111122223333/x"),
            trail.clone(),
        ),
        common::policy_eval::request(
            service.clone(),
            "s3:PutObject",
            Some("arn:aws:s3:::b/AWSLogs/444455556666/x"),
            trail,
        ),
        common::policy_eval::request(
            service,
            "s3:PutObject",
            Some("arn:aws:s3:::b/AWSLogs/111122223333/x"),
            json!({"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/t", "aws:SecureTransport": "false"}),
        ),
    ];
    assert_eq!(
        common::policy_eval::decisions(&policy, &requests),
        vec!["Allow", "ImplicitDeny", "Deny"]
    );
}

use super::*;

fn lock(mode: LockMode, days: i32) -> Option<LockRetention> {
    Some(LockRetention { mode, days })
}

#[test]
fn the_lock_is_weakened_by_a_lower_mode_or_fewer_days_only() {
    use LockMode::*;
    assert!(weakens_lock(&lock(Governance, 365), &lock(Governance, 30)));
    assert!(weakens_lock(&lock(Compliance, 365), &lock(Governance, 365)));
    assert!(weakens_lock(&lock(Governance, 365), &None));
    assert!(!weakens_lock(&lock(Governance, 365), &lock(Governance, 730)));
    assert!(!weakens_lock(&lock(Governance, 365), &lock(Compliance, 365)));
    assert!(!weakens_lock(&None, &lock(Governance, 1)));
}

#[test]
fn forever_to_days_and_fewer_days_are_shortening() {
    assert!(shortens(None, Some(3650)));
    assert!(shortens(Some(90), Some(30)));
    assert!(!shortens(Some(30), Some(90)));
    assert!(!shortens(Some(30), None));
    assert!(!shortens(None, None));
}

#[test]
fn key_ids_and_arns_designate_the_same_key() {
    let arn = "arn:aws:kms:us-east-1:111122223333:key/1234-abcd";
    assert!(key_matches(arn, arn));
    assert!(key_matches("1234-abcd", arn));
    assert!(!key_matches("9999", arn));
}

#[test]
fn an_owned_key_policy_keeps_its_statements_and_gains_ours() {
    let ours = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Action": "x"}, {"Sid": "B", "Action": "y"}]});
    let theirs = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Action": "old"}, {"Sid": "Theirs", "Action": "z"}]});
    let merged = merged_key_policy(&ours, Some(&theirs));
    let sids: Vec<&str> = merged["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, ["Theirs", "A", "B"]);
    assert_eq!(merged["Statement"][1]["Action"], "x");
}

/// S3: the CloudWatch statement trailkeeper once added to a key the baseline names (its topic was
/// encrypted with the trail key) is taken out again: CloudWatch no longer uses the log key.
#[test]
fn a_named_keys_policy_loses_the_cloudwatch_statement_trailkeeper_once_added() {
    let ours = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Action": "x"}]});
    let theirs = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Theirs", "Action": "z"},
        {"Sid": "CloudWatchAlarmsPublishToTopic", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "kms:Decrypt"}
    ]});
    let merged = merged_key_policy(&ours, Some(&theirs));
    let sids: Vec<&str> = merged["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, ["Theirs", "A"]);
}

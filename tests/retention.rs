//! Retention applied to AWS (moto) with approvals: shortening or weakening needs an approval that
//! is new; lengthening needs none; what is applied can be read back.

mod common;

use common::*;
use trailkeeper::api::{Approval, LoggingBaselineSpec, RetentionPolicySpec};
use trailkeeper::desired;
use trailkeeper::engine::account::{AccountReport, Component, ComponentState};

async fn apply(spec: &LoggingBaselineSpec, retention: &RetentionPolicySpec, previous: Option<&str>) -> AccountReport {
    let report = apply_with_retention(spec, retention, previous).await;
    assert!(!report.failed(), "{:?} {:?}", report.error, report.components);
    report
}

fn approved(reference: &str, f: impl FnOnce(&mut RetentionPolicySpec)) -> RetentionPolicySpec {
    let mut r = RetentionPolicySpec::default();
    f(&mut r);
    r.approval = Some(Approval {
        reference: reference.into(),
        reason: Some("test".into()),
    });
    r
}

fn unapproved(f: impl FnOnce(&mut RetentionPolicySpec)) -> RetentionPolicySpec {
    let mut r = RetentionPolicySpec::default();
    f(&mut r);
    r
}

fn retention_state(report: &AccountReport) -> &ComponentState {
    report.components.get(&Component::Retention).unwrap()
}

async fn expiration_days(account: &str, bucket: &str) -> Option<i32> {
    let aws = inspector(account).await;
    let lifecycle = aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    lifecycle
        .rules()
        .iter()
        .find_map(|r| r.expiration.as_ref().and_then(|e| e.days))
}

async fn lock_days(account: &str, bucket: &str) -> Option<i32> {
    let aws = inspector(account).await;
    let lock = aws
        .s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    lock.object_lock_configuration
        .and_then(|c| c.rule)
        .and_then(|r| r.default_retention)
        .and_then(|d| d.days)
}

#[tokio::test]
async fn forever_to_days_needs_a_new_approval_and_is_then_applied() {
    let account = new_account();
    let spec = spec(&account);
    let bucket = desired::trail_bucket_name(&spec);
    apply(&spec, &RetentionPolicySpec::default(), None).await;

    // Without approval: held back, reported, nothing written for it.
    let report = apply(
        &spec,
        &unapproved(|r| r.trail_logs.expire_after_days = Some(2555)),
        None,
    )
    .await;
    let ComponentState::ApprovalRequired(message) = retention_state(&report) else {
        panic!("expected ApprovalRequired, got {:?}", retention_state(&report))
    };
    assert!(
        message.contains("trail logs: expiration would be shortened"),
        "{message}"
    );
    assert_eq!(report.calls.writes, 0);
    assert_eq!(
        expiration_days(&account, &bucket).await,
        None,
        "logs are still kept forever"
    );

    // With an approval already used for the retention in force: still held back.
    let reused = approved("CHG-1", |r| r.trail_logs.expire_after_days = Some(2555));
    let report = apply(&spec, &reused, Some("CHG-1")).await;
    assert!(matches!(retention_state(&report), ComponentState::ApprovalRequired(_)));

    // With a new approval: applied, and readable back.
    let report = apply(
        &spec,
        &approved("CHG-2", |r| r.trail_logs.expire_after_days = Some(2555)),
        Some("CHG-1"),
    )
    .await;
    assert_eq!(retention_state(&report), &ComponentState::Repaired);
    assert_eq!(expiration_days(&account, &bucket).await, Some(2555));

    // Longer needs no approval.
    let report = apply(
        &spec,
        &unapproved(|r| r.trail_logs.expire_after_days = Some(3650)),
        Some("CHG-2"),
    )
    .await;
    assert_eq!(retention_state(&report), &ComponentState::Repaired);
    assert_eq!(expiration_days(&account, &bucket).await, Some(3650));

    // Fewer days than those in force needs a new approval too (the approval of 2555 is spent).
    let report = apply(
        &spec,
        &approved("CHG-2", |r| r.trail_logs.expire_after_days = Some(1000)),
        Some("CHG-2"),
    )
    .await;
    assert!(
        matches!(retention_state(&report), ComponentState::ApprovalRequired(m) if m.contains("expiration would be shortened")),
        "{:?}",
        retention_state(&report)
    );
    assert_eq!(report.calls.writes, 0);
    assert_eq!(expiration_days(&account, &bucket).await, Some(3650));

    // Back to forever needs none either, and leaves no expiring rule.
    apply(&spec, &RetentionPolicySpec::default(), Some("CHG-2")).await;
    assert_eq!(expiration_days(&account, &bucket).await, None);
}

#[tokio::test]
async fn fewer_lock_days_need_an_approval_and_more_do_not() {
    let account = new_account();
    let spec = spec(&account);
    let bucket = desired::trail_bucket_name(&spec);
    apply(&spec, &RetentionPolicySpec::default(), None).await;
    assert_eq!(lock_days(&account, &bucket).await, Some(365));

    let report = apply(
        &spec,
        &unapproved(|r| r.trail_logs.object_lock.default_retention_days = 30),
        None,
    )
    .await;
    assert!(
        matches!(retention_state(&report), ComponentState::ApprovalRequired(m) if m.contains("Object Lock would be weakened"))
    );
    assert_eq!(lock_days(&account, &bucket).await, Some(365));

    let report = apply(
        &spec,
        &unapproved(|r| r.trail_logs.object_lock.default_retention_days = 730),
        None,
    )
    .await;
    assert_eq!(retention_state(&report), &ComponentState::Repaired);
    assert_eq!(lock_days(&account, &bucket).await, Some(730));

    apply(
        &spec,
        &approved("CHG-7", |r| r.trail_logs.object_lock.default_retention_days = 30),
        None,
    )
    .await;
    assert_eq!(lock_days(&account, &bucket).await, Some(30));
}

#[tokio::test]
async fn access_log_expiration_is_applied_to_the_access_log_bucket() {
    let account = new_account();
    let spec = spec(&account);
    apply(
        &spec,
        &approved("CHG-3", |r| r.access_logs.expire_after_days = Some(400)),
        None,
    )
    .await;
    assert_eq!(
        expiration_days(&account, &desired::access_log_bucket_name(&spec)).await,
        Some(400)
    );
    assert_eq!(
        expiration_days(&account, &desired::trail_bucket_name(&spec)).await,
        None
    );
}

//! Object Lock turned on in place for an existing trail bucket, against the moto server with S3's
//! rules for it (scripts/emulator/trailkeeper_object_lock.py): held back without the baseline's
//! acknowledgement, done (versioning first) with it, what it leaves unlocked said in status, and
//! the `trailkeeper diff` line a reviewer approves.

mod common;

use common::*;
use trailkeeper::api::{LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::engine::account::{
    AccountReport, Component, ComponentState, ReconcileOptions, RunMode, account_clients, reconcile_account,
};

async fn apply(spec: &LoggingBaselineSpec) -> AccountReport {
    let (trail_policy, retention) = (TrailPolicySpec::default(), RetentionPolicySpec::default());
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    reconcile_account(
        account_clients(&base_config().await, &specs),
        &specs,
        ReconcileOptions::new(RunMode::Apply),
    )
    .await
}

/// An account whose trail bucket exists without Object Lock or versioning, holding a log file.
async fn existing_bucket(account: &str) -> (Inspector, LoggingBaselineSpec, String) {
    let aws = inspector(account).await;
    let bucket = format!("payments-trail-{account}");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("AWS/CloudTrail/AWSLogs/old.json.gz")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    let mut spec = trail_only(account);
    spec.storage.bucket_name = Some(bucket.clone());
    (aws, spec, bucket)
}

fn lock_existing(reference: &str) -> trailkeeper::api::LockExistingBucket {
    serde_yaml::from_str(&format!(
        "{{acknowledgeIrreversible: true, approval: {{reference: {reference}, reason: 'WORM for every copy'}}}}"
    ))
    .unwrap()
}

async fn lock_enabled(aws: &Inspector, bucket: &str) -> bool {
    match aws.s3.get_object_lock_configuration().bucket(bucket).send().await {
        Ok(out) => out
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| e.as_str() == "Enabled"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn an_existing_bucket_is_locked_in_place_only_with_the_acknowledgement() {
    let account = new_account();
    let (aws, mut spec, bucket) = existing_bucket(&account).await;

    // Without it: everything else is applied, the lock is held back, and status says why.
    let held = apply(&spec).await;
    match held.components.get(&Component::Retention) {
        Some(ComponentState::ApprovalRequired(message)) => {
            assert!(message.contains("storage.lockExistingBucket"), "{message}");
            assert!(message.contains("cannot be undone"), "{message}");
        }
        other => panic!("RetentionApplied should wait for the acknowledgement: {other:?}"),
    }
    assert!(held.pending.iter().all(|c| !c.action.contains("Object Lock")));
    assert!(!lock_enabled(&aws, &bucket).await, "nothing was locked");
    assert!(
        held.components.get(&Component::Trail) != Some(&ComponentState::Waiting(Component::Storage)),
        "the trail is not held up by the lock: {:?}",
        held.components
    );

    // With it: versioning first, then Object Lock with the RetentionPolicy's default retention.
    spec.storage.lock_existing_bucket = Some(lock_existing("CHG-4711"));
    let locked = apply(&spec).await;
    assert!(!locked.failed(), "{:?}", locked.components);
    let applied: Vec<&str> = locked
        .applied
        .iter()
        .filter(|c| c.resource == format!("s3://{bucket}"))
        .map(|c| c.action.as_str())
        .collect();
    let lock_at = applied
        .iter()
        .position(|a| a.starts_with("turn Object Lock on in place"))
        .unwrap_or_else(|| panic!("{applied:?}"));
    assert!(
        applied
            .iter()
            .position(|a| *a == "enable versioning")
            .is_none_or(|v| v < lock_at),
        "{applied:?}"
    );
    assert!(lock_enabled(&aws, &bucket).await);
    assert_eq!(
        locked.components.get(&Component::Retention),
        Some(&ComponentState::Repaired)
    );
    let note = locked
        .details
        .get(&Component::Retention)
        .expect("status says what it leaves unlocked");
    assert!(
        note.iter()
            .any(|n| n.contains("keep no lock") && n.contains("CHG-4711")),
        "{note:?}"
    );
    let status = trailkeeper::controller::status::from_report(
        &locked,
        None,
        Some(1),
        "2026-01-01T00:00:00Z",
        &RetentionPolicySpec::default(),
        "default",
    );
    let retention = status
        .conditions
        .iter()
        .find(|c| c.type_ == "RetentionApplied")
        .expect("RetentionApplied");
    assert!(retention.message.contains("keep no lock"), "{}", retention.message);

    // The log file written before keeps no lock; one written now is locked.
    aws.s3
        .delete_object()
        .bucket(&bucket)
        .key("AWS/CloudTrail/AWSLogs/old.json.gz")
        .version_id("null")
        .send()
        .await
        .expect("the version written before the lock can be deleted");
    let new = aws
        .s3
        .put_object()
        .bucket(&bucket)
        .key("AWS/CloudTrail/AWSLogs/new.json.gz")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    let refused = aws
        .s3
        .delete_object()
        .bucket(&bucket)
        .key("AWS/CloudTrail/AWSLogs/new.json.gz")
        .version_id(new.version_id().unwrap())
        .send()
        .await;
    assert!(refused.is_err(), "a version written after the lock is locked");

    // In line: no write, and the note stays.
    let again = apply(&spec).await;
    assert!(again.in_sync(), "{:?} {:?}", again.drift, again.pending);
    assert_eq!(again.calls.writes, 0);
    assert!(
        again
            .details
            .get(&Component::Retention)
            .is_some_and(|d| d.iter().any(|n| n.contains("keep no lock")))
    );
}

/// S3's rules, in the emulator both ways: Object Lock on an existing bucket needs versioning
/// Enabled, not an empty bucket; once on, versioning cannot be suspended.
#[tokio::test]
async fn the_emulator_locks_an_existing_versioned_bucket_as_s3_does() {
    use aws_sdk_s3::types::{
        BucketVersioningStatus, ObjectLockConfiguration, ObjectLockEnabled, VersioningConfiguration,
    };
    let account = new_account();
    let (aws, _, bucket) = existing_bucket(&account).await;
    let enable = || {
        aws.s3
            .put_object_lock_configuration()
            .bucket(&bucket)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .build(),
            )
            .send()
    };
    let versioning = |status: BucketVersioningStatus| {
        aws.s3
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
    };
    let refused = enable().await.expect_err("refused without versioning");
    assert_eq!(refused.into_service_error().meta().code(), Some("InvalidBucketState"));
    versioning(BucketVersioningStatus::Enabled).await.unwrap();
    enable()
        .await
        .expect("a versioned bucket holding objects can be locked in place");
    assert!(lock_enabled(&aws, &bucket).await);
    let suspended = versioning(BucketVersioningStatus::Suspended)
        .await
        .expect_err("versioning cannot be suspended under Object Lock");
    assert_eq!(suspended.into_service_error().meta().code(), Some("InvalidBucketState"));
}

fn manifests(dir: &std::path::Path, lock: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("baseline.yaml"),
        format!(
            "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaseline\nmetadata: {{name: payments, namespace: accounts}}\nspec:\n  accountId: \"111122223333\"\n  primaryRegion: us-east-1\n  storage:\n    bucketName: payments-cloudtrail\n{lock}"
        ),
    )
    .unwrap();
}

fn diff(base: &std::path::Path, head: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args([
            "diff",
            "--base",
            base.to_str().unwrap(),
            "--head",
            head.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The pull request that asks for the in-place lock shows it to its reviewers, approved by a new
/// reference; the acknowledgement missing, it is invalid before any review.
#[test]
fn the_diff_shows_the_in_place_lock_with_its_approval() {
    let dir = tempfile::tempdir().unwrap();
    let (base, head, unacknowledged) = (dir.path().join("base"), dir.path().join("head"), dir.path().join("bad"));
    manifests(&base, "");
    manifests(
        &head,
        "    lockExistingBucket: {acknowledgeIrreversible: true, approval: {reference: CHG-4711}}\n",
    );
    let (code, out) = diff(&base, &head);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("trail bucket Object Lock: off (an existing bucket trailkeeper did not create) -> turned on in place for s3://payments-cloudtrail, irreversibly; the log files already there keep no lock (approval CHG-4711)"),
        "{out}"
    );
    manifests(
        &unacknowledged,
        "    lockExistingBucket: {acknowledgeIrreversible: false, approval: {reference: CHG-4711}}\n",
    );
    let (code, out) = diff(&base, &unacknowledged);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("acknowledgeIrreversible: true"), "{out}");
}

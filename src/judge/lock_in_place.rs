//! Object Lock turned on in place for an existing trail bucket (`storage.lockExistingBucket`):
//! held back unless the baseline asks for it, and reviewed by `trailkeeper diff` like a shorter
//! retention. Pure functions.

use super::diff::{Action, Delta};
use super::retention_review::{Change, Verdict};
use crate::api::LockExistingBucket;
use crate::manifests::ResolvedBaseline;

/// What status says of a bucket whose Object Lock was turned on in place.
pub fn note(bucket: &str, lock: &LockExistingBucket) -> String {
    format!(
        "s3://{bucket}: Object Lock turned on in place (storage.lockExistingBucket, approval {}): the log files written before it keep no lock (S3 Batch Operations can lock them)",
        lock.approval.reference
    )
}

/// Removes every in-place Object Lock from `delta`; returns why (`bucket` has none and trailkeeper
/// did not create it). Every bucket's writes pass here (`engine::storage::retention_guard`); a
/// baseline that acknowledges it takes its own back first (`take_allowed`).
pub fn hold(delta: &mut Delta, bucket: &str) -> Option<String> {
    let before = delta.actions.len();
    delta
        .actions
        .retain(|a| !matches!(a, Action::EnableObjectLockInPlace(_)));
    (delta.actions.len() < before).then(|| {
        format!(
            "s3://{bucket} has no Object Lock (trailkeeper did not create it): turning it on in place cannot be undone and leaves the log files already there unlocked, so trailkeeper does it only where the spec says so \
             (a LoggingBaseline's storage.lockExistingBucket, with acknowledgeIrreversible: true and an approval reviewed by trailkeeper diff); or let trailkeeper create a bucket of its own"
        )
    })
}

/// The in-place Object Lock of `delta` (with its position) when `lock` allows it, taken out so
/// that the guard of every bucket leaves it; put back with `restore`.
pub fn take_allowed(delta: &mut Delta, lock: Option<&LockExistingBucket>) -> Option<(usize, Action)> {
    if !lock.is_some_and(|l| l.acknowledge_irreversible) {
        return None;
    }
    let at = delta
        .actions
        .iter()
        .position(|a| matches!(a, Action::EnableObjectLockInPlace(_)))?;
    Some((at, delta.actions.remove(at)))
}

/// Puts back what `take_allowed` took.
pub fn restore(delta: &mut Delta, taken: Option<(usize, Action)>) {
    if let Some((at, action)) = taken {
        let at = at.min(delta.actions.len());
        delta.actions.insert(at, action);
    }
}

/// The `trailkeeper diff` line of a baseline that starts asking for the in-place lock: approved
/// with an approval whose reference is new in the change, else rejected. Nothing when the request
/// is unchanged or withdrawn (a lock once on stays on: S3 cannot turn it off).
pub fn review(base: Option<&ResolvedBaseline>, head: &ResolvedBaseline) -> Option<Change> {
    let spec = &head.baseline.spec;
    let lock = spec.storage.lock_existing_bucket.as_ref()?;
    let before = base.and_then(|b| b.baseline.spec.storage.lock_existing_bucket.as_ref());
    if before == Some(lock) {
        return None;
    }
    let reference = &lock.approval.reference;
    let new = before.map(|b| &b.approval.reference) != Some(reference);
    let verdict = if new && lock.acknowledge_irreversible {
        Verdict::Approved
    } else {
        Verdict::Rejected
    };
    Some(Change {
        baseline: head.id.clone(),
        account_id: spec.account_id.clone(),
        setting: "trail bucket Object Lock".into(),
        before: "off (an existing bucket trailkeeper did not create)".into(),
        after: format!(
            "turned on in place for s3://{}, irreversibly; the log files already there keep no lock",
            crate::desired::trail_bucket_name(spec)
        ),
        verdict,
        approval: (verdict == Verdict::Approved).then(|| reference.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LockMode;
    use crate::api::{Approval, LoggingBaseline};
    use crate::desired::LockRetention;

    fn lock(reference: &str) -> LockExistingBucket {
        LockExistingBucket {
            acknowledge_irreversible: true,
            approval: Approval {
                reference: reference.into(),
                reason: None,
            },
        }
    }

    fn in_place() -> Delta {
        Delta {
            actions: vec![
                Action::EnableVersioning,
                Action::EnableObjectLockInPlace(Some(LockRetention {
                    mode: LockMode::Governance,
                    days: 365,
                })),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn the_in_place_lock_is_held_back_unless_the_baseline_acknowledges_it() {
        let mut held = in_place();
        let why = hold(&mut held, "b").expect("held back");
        assert_eq!(held.actions, [Action::EnableVersioning]);
        assert!(
            why.contains("storage.lockExistingBucket") && why.contains("cannot be undone"),
            "{why}"
        );
        assert_eq!(hold(&mut held, "b"), None, "nothing else is held back");

        // Acknowledged: taken out before the guard and put back in its place (after versioning).
        let mut allowed = in_place();
        let taken = take_allowed(&mut allowed, Some(&lock("CHG-1")));
        assert!(taken.is_some());
        assert_eq!(hold(&mut allowed, "b"), None);
        restore(&mut allowed, taken);
        assert_eq!(allowed, in_place());

        let mut unacknowledged = in_place();
        let mut l = lock("CHG-1");
        l.acknowledge_irreversible = false;
        assert_eq!(take_allowed(&mut unacknowledged, Some(&l)), None);
        assert_eq!(take_allowed(&mut unacknowledged, None), None);
        assert!(hold(&mut unacknowledged, "b").is_some());
    }

    fn resolved(lock: Option<LockExistingBucket>) -> ResolvedBaseline {
        let mut baseline: LoggingBaseline = serde_json::from_value(serde_json::json!({
            "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaseline",
            "metadata": {"name": "payments", "namespace": "accounts"},
            "spec": {"accountId": "111122223333", "primaryRegion": "us-east-1",
                     "storage": {"bucketName": "payments-cloudtrail"}}
        }))
        .unwrap();
        baseline.spec.storage.lock_existing_bucket = lock;
        ResolvedBaseline {
            id: "accounts/payments".into(),
            baseline,
            trail_policy: Default::default(),
            retention: Default::default(),
            retention_policy_name: "default".into(),
            archive: None,
        }
    }

    #[test]
    fn diff_approves_a_new_request_with_a_new_reference_and_rejects_a_reused_one() {
        let change = review(Some(&resolved(None)), &resolved(Some(lock("CHG-7")))).expect("a line");
        assert_eq!(change.verdict, Verdict::Approved);
        assert_eq!(
            change.sentence(),
            "trail bucket Object Lock: off (an existing bucket trailkeeper did not create) -> turned on in place for s3://payments-cloudtrail, irreversibly; the log files already there keep no lock (approval CHG-7)"
        );
        assert_eq!(
            review(Some(&resolved(Some(lock("CHG-7")))), &resolved(Some(lock("CHG-7")))),
            None
        );
        let mut changed = lock("CHG-7");
        changed.approval.reason = Some("again".into());
        assert_eq!(
            review(Some(&resolved(Some(lock("CHG-7")))), &resolved(Some(changed))).map(|c| c.verdict),
            Some(Verdict::Rejected)
        );
        assert_eq!(review(Some(&resolved(Some(lock("CHG-7")))), &resolved(None)), None);
        assert_eq!(
            review(None, &resolved(Some(lock("CHG-8")))).map(|c| c.verdict),
            Some(Verdict::Approved)
        );
    }
}

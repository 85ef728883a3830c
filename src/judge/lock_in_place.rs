//! Object Lock turned on in place for an existing trail bucket (`storage.lockExistingBucket`):
//! held back unless the baseline asks for it, and reviewed by `trailkeeper diff` like a shorter
//! retention. Pure functions.

use super::diff::{Action, Delta};
use crate::api::LockExistingBucket;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Approval;
    use crate::api::LockMode;
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
}

//! The trail bucket and its access-log bucket, and the retention guard on their lifecycle and
//! Object Lock.

use super::account::AccountReconcile;
use super::report::{Component, ComponentState, LastApplied};
use super::writes::apply_bucket;
use crate::aws::AwsError;
use crate::aws::s3::ObservedBucket;
use crate::desired;
use crate::judge::diff::{self, Action, Delta};
use crate::judge::lock_in_place::{hold, note, restore, take_allowed};

impl AccountReconcile<'_> {
    pub(super) async fn reconcile_storage(
        &mut self,
        storage: &desired::DesiredStorage,
        access_log_bucket: Result<Option<ObservedBucket>, AwsError>,
        trail_bucket: Result<Option<ObservedBucket>, AwsError>,
        key_arn: Option<&str>,
        last_applied: &LastApplied,
    ) -> bool {
        let key_ready = !matches!(
            self.report.components.get(&Component::Key),
            Some(ComponentState::Failed(_)) | Some(ComponentState::Waiting(_))
        );
        let (access_log_bucket, trail_bucket) = match (access_log_bucket, trail_bucket) {
            (Ok(a), Ok(t)) => (a, t),
            (Err(e), _) | (_, Err(e)) => {
                self.report
                    .components
                    .insert(Component::Storage, ComponentState::Failed(e));
                self.report
                    .components
                    .insert(Component::Retention, ComponentState::Waiting(Component::Storage));
                return false;
            }
        };
        if !key_ready && self.write {
            self.report
                .components
                .insert(Component::Storage, ComponentState::Waiting(Component::Key));
            self.report
                .components
                .insert(Component::Retention, ComponentState::Waiting(Component::Key));
            return false;
        }
        let access_delta = diff::diff_bucket(&storage.access_log_bucket, access_log_bucket.as_ref(), key_arn);
        let mut trail_delta = diff::diff_bucket(&storage.trail_bucket, trail_bucket.as_ref(), key_arn);
        let mut access_delta = access_delta;
        // The trail bucket's in-place lock, when the baseline acknowledges it, passes the guard.
        let lock_in_place = self.specs.baseline.storage.lock_existing_bucket.as_ref();
        let allowed = take_allowed(&mut trail_delta, lock_in_place);
        let blocked = retention_guard(
            &mut access_delta,
            &mut trail_delta,
            access_log_bucket.as_ref(),
            trail_bucket.as_ref(),
            self.specs.retention.approval.as_ref().map(|a| a.reference.as_str()),
            last_applied,
        );
        restore(&mut trail_delta, allowed);
        let locking_in_place = trail_delta
            .actions
            .iter()
            .any(|a| matches!(a, Action::EnableObjectLockInPlace(_)));
        let retention_changes = [&access_delta, &trail_delta].iter().any(|d| {
            d.actions.iter().any(|a| {
                matches!(
                    a,
                    Action::PutLifecycle(_) | Action::PutObjectLock(_) | Action::EnableObjectLockInPlace(_)
                )
            })
        });

        let mut ok = true;
        for (bucket, delta, kms_key) in [
            (&storage.access_log_bucket, access_delta, None),
            (&storage.trail_bucket, trail_delta, key_arn),
        ] {
            let resource = format!("s3://{}", bucket.name);
            let actions = self.begin(Component::Storage, &resource, &delta);
            let mut result = Ok(());
            for action in actions {
                let step = apply_bucket(&self.clients, bucket, kms_key, &action).await;
                result = self.record(&resource, &action, step);
                if result.is_err() {
                    break;
                }
            }
            ok = self.finish(Component::Storage, result);
            if !ok {
                break;
            }
        }
        // Once on (found on, or turned on now), what it leaves unlocked is said at every reconcile.
        let locked =
            trail_bucket.as_ref().is_some_and(|b| b.object_lock_enabled) || (locking_in_place && ok && self.write);
        if let Some(lock) = lock_in_place.filter(|_| locked) {
            self.report
                .details
                .entry(Component::Retention)
                .or_default()
                .push(note(&storage.trail_bucket.name, lock));
        }
        let logging_now = if ok && self.write {
            storage
                .trail_bucket
                .access_logging
                .as_ref()
                .map(|(target, _)| target.clone())
        } else {
            trail_bucket
                .as_ref()
                .and_then(|b| b.access_logging.as_ref().map(|(target, _)| target.clone()))
        };
        self.report.evidence.trail_bucket = Some(crate::judge::compliance::BucketEvidence {
            name: storage.trail_bucket.name.clone(),
            exists: trail_bucket.is_some() || (ok && self.write),
            access_logs_to: logging_now,
        });
        let retention_state = match (blocked, ok) {
            (Some(message), _) => ComponentState::ApprovalRequired(message),
            (None, false) => ComponentState::Waiting(Component::Storage),
            (None, true) if retention_changes && !self.write => ComponentState::Drifted,
            (None, true) if retention_changes => ComponentState::Repaired,
            (None, true) => ComponentState::InSync,
        };
        self.report.components.insert(Component::Retention, retention_state);
        ok
    }
}

/// Removes the retention writes that would shorten how long logs are kept, or weaken the lock,
/// unless the RetentionPolicy carries an approval that is new (not the one already in force), and
/// every Object Lock turned on in place (irreversible: only a baseline's own acknowledgement lets
/// it through, taken out before). Returns the reason when something was held back.
pub(super) fn retention_guard(
    access_delta: &mut Delta,
    trail_delta: &mut Delta,
    access_observed: Option<&ObservedBucket>,
    trail_observed: Option<&ObservedBucket>,
    approval: Option<&str>,
    last_applied: &LastApplied,
) -> Option<String> {
    let in_place: Vec<String> = [
        (&mut *trail_delta, trail_observed),
        (&mut *access_delta, access_observed),
    ]
    .into_iter()
    .filter_map(|(delta, observed)| hold(delta, &observed?.name))
    .collect();
    let approved = approval.is_some_and(|a| last_applied.approval_reference.as_deref() != Some(a));
    if approved {
        return (!in_place.is_empty()).then(|| in_place.join("; "));
    }
    let mut held = Vec::new();
    for (delta, observed, label) in [
        (trail_delta, trail_observed, "trail logs"),
        (access_delta, access_observed, "access logs"),
    ] {
        let Some(observed) = observed else { continue };
        delta.actions.retain(|action| {
            let weakening = match action {
                Action::PutObjectLock(desired) => diff::weakens_lock(&observed.lock_retention, desired)
                    .then(|| format!("{label}: Object Lock would be weakened")),
                Action::PutLifecycle(desired) => {
                    let current = diff::shortens(
                        observed.lifecycle.expire_current_after_days,
                        desired.expire_current_after_days,
                    );
                    let noncurrent = diff::shortens(
                        observed.lifecycle.expire_noncurrent_after_days,
                        desired.expire_noncurrent_after_days,
                    );
                    (current || noncurrent).then(|| format!("{label}: expiration would be shortened"))
                }
                _ => None,
            };
            match weakening {
                Some(reason) => {
                    held.push(reason);
                    false
                }
                None => true,
            }
        });
    }
    let weakened = (!held.is_empty()).then(|| {
        format!(
            "{}: set spec.approval in the RetentionPolicy with a reference that is new in this change",
            held.join("; ")
        )
    });
    let all: Vec<String> = weakened.into_iter().chain(in_place).collect();
    (!all.is_empty()).then(|| all.join("; "))
}

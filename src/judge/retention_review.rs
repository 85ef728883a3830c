//! What a change of manifests does to the retention in force, per account, offline: the
//! `trailkeeper diff` of a pull request. A change that shortens a retention, weakens the lock or
//! widens who may write into a LogArchive is accepted only with an approval whose reference is new
//! in that change.

use std::collections::BTreeMap;

use crate::api::{Admission, RetentionPolicySpec};
use crate::desired::lock_retention;
use crate::judge::diff::{days as log_days, describe_lock, shortens, weakens_lock};
use crate::manifests::{ResolvedArchive, ResolvedBaseline};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Unchanged,
    /// Longer, stronger, or a setting that needs no approval.
    Accepted,
    /// Shorter or weaker, with a new approval.
    Approved,
    /// Shorter or weaker without a new approval: the controller would refuse it.
    Rejected,
}

/// One setting of one account, before and after the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub baseline: String,
    pub account_id: String,
    pub setting: String,
    pub before: String,
    pub after: String,
    pub verdict: Verdict,
    pub approval: Option<String>,
}

impl Change {
    /// `trail logs: kept forever -> expire after 2555 days (approval CHG-1234)`.
    pub fn sentence(&self) -> String {
        let tail = match (self.verdict, &self.approval) {
            (Verdict::Rejected, _) => ": REJECTED, approval required".to_string(),
            (Verdict::Approved, Some(a)) => format!(" (approval {a})"),
            _ => String::new(),
        };
        format!("{}: {} -> {}{tail}", self.setting, self.before, self.after)
    }
}

fn expire(d: Option<i32>, verb: &str) -> String {
    d.map_or_else(|| "kept forever".to_string(), |d| format!("{verb} after {d} days"))
}

/// The approval of `head` when it is new relative to `base`.
fn new_approval(base: &RetentionPolicySpec, head: &RetentionPolicySpec) -> Option<String> {
    let head = head.approval.as_ref()?.reference.clone();
    (base.approval.as_ref().map(|a| &a.reference) != Some(&head)).then_some(head)
}

/// The retention changes of one account between two resolutions of its baseline.
pub fn changes(base: &ResolvedBaseline, head: &ResolvedBaseline) -> Vec<Change> {
    let (b, h) = (&base.retention, &head.retention);
    let approval = new_approval(b, h);
    let mut out = Vec::new();
    let mut push = |setting: &str, before: String, after: String, weaker: bool| {
        if before == after {
            return;
        }
        let verdict = match (weaker, &approval) {
            (false, _) => Verdict::Accepted,
            (true, Some(_)) => Verdict::Approved,
            (true, None) => Verdict::Rejected,
        };
        out.push(Change {
            baseline: head.id.clone(),
            account_id: head.baseline.spec.account_id.clone(),
            setting: setting.to_string(),
            before,
            after,
            verdict,
            approval: approval.clone().filter(|_| verdict == Verdict::Approved),
        });
    };
    // The storage of an Existing trail is its owner's: only the log groups' retention applies.
    let managed_storage = head.baseline.spec.trail.source == crate::api::TrailSource::Managed;
    let (lock_b, lock_h) = (lock_retention(b), lock_retention(h));
    if managed_storage {
        push(
            "trail logs lock",
            describe_lock(&lock_b),
            describe_lock(&lock_h),
            weakens_lock(&lock_b, &lock_h),
        );
    }
    let fields: [(&str, Option<i32>, Option<i32>, &str); 5] = [
        (
            "trail logs",
            b.trail_logs.expire_after_days,
            h.trail_logs.expire_after_days,
            "expire",
        ),
        (
            "trail logs (noncurrent versions)",
            b.trail_logs.noncurrent_versions_expire_after_days,
            h.trail_logs.noncurrent_versions_expire_after_days,
            "expire",
        ),
        (
            "access logs",
            b.access_logs.expire_after_days,
            h.access_logs.expire_after_days,
            "expire",
        ),
        (
            "instance logs",
            b.instance_logs.retention_days,
            h.instance_logs.retention_days,
            "",
        ),
        ("flow logs", b.flow_logs.retention_days, h.flow_logs.retention_days, ""),
    ];
    for (setting, before, after, verb) in fields {
        if !managed_storage && !verb.is_empty() {
            continue;
        }
        let text = |d| if verb.is_empty() { log_days(d) } else { expire(d, verb) };
        push(setting, text(before), text(after), shortens(before, after));
    }
    out
}

/// Changes between two sets of resolved baselines, matched by account id; accounts that appear or
/// disappear are reported as such.
pub fn diff(base: &[ResolvedBaseline], head: &[ResolvedBaseline]) -> Vec<Change> {
    // A LogArchive (its id `LogArchive/...`) is its own entry: its account may have a baseline too.
    let by_account = |set: &[ResolvedBaseline]| -> BTreeMap<String, ResolvedBaseline> {
        set.iter()
            .map(|b| {
                let key = if b.id.starts_with("LogArchive/") {
                    b.id.clone()
                } else {
                    b.baseline.spec.account_id.clone()
                };
                (key, b.clone())
            })
            .collect()
    };
    let (base, head) = (by_account(base), by_account(head));
    let mut out = Vec::new();
    for (account, h) in &head {
        out.extend(super::lock_in_place::review(base.get(account), h));
        match base.get(account) {
            Some(b) => out.extend(changes(b, h)),
            None => out.push(Change {
                baseline: h.id.clone(),
                account_id: h.baseline.spec.account_id.clone(),
                setting: "account".into(),
                before: "not managed".into(),
                after: "managed".into(),
                verdict: Verdict::Accepted,
                approval: None,
            }),
        }
    }
    for (account, b) in &base {
        if !head.contains_key(account) {
            let after = format!(
                "no longer managed (deletionPolicy {:?})",
                b.baseline.spec.deletion_policy
            );
            out.push(Change {
                baseline: b.id.clone(),
                account_id: b.baseline.spec.account_id.clone(),
                setting: "account".into(),
                before: "managed".into(),
                after,
                verdict: Verdict::Accepted,
                approval: None,
            });
        }
    }
    out
}

/// How a LogArchive admits trails, in a diff line.
fn admission_text(archive: &ResolvedArchive) -> String {
    let spec = &archive.archive.spec;
    match spec.admission {
        Admission::Trails => "each member's trail by its ARN, under its own account's path".to_string(),
        Admission::Organization => {
            let mut names: Vec<&str> = archive.members.iter().map(|(_, m)| m.trail_name()).collect();
            names.sort_unstable();
            names.dedup();
            format!(
                "any trail of {} named {}",
                spec.organization_id.as_deref().unwrap_or("(no organizationId)"),
                if names.is_empty() {
                    "as a member's trail".to_string()
                } else {
                    names.join(", ")
                }
            )
        }
    }
}

/// The admission of each LogArchive (`spec.admission`), before and after: admitting the
/// Organization where it was not admitted widens who may write into the locked archive, and is
/// reviewed as a shorter retention is: rejected without an approval whose reference is new in
/// this change. A new archive that admits the Organization needs an approval as well.
pub fn admission_changes(base: &[ResolvedArchive], head: &[ResolvedArchive]) -> Vec<Change> {
    let mut out = Vec::new();
    for h in head {
        let b = base.iter().find(|b| b.id == h.id);
        let (before, after) = (b.map(|b| b.archive.spec.admission), h.archive.spec.admission);
        if before == Some(after) || (before.is_none() && after == Admission::Trails) {
            continue;
        }
        let widens = after == Admission::Organization;
        let approval = h
            .archive
            .spec
            .approval
            .as_ref()
            .map(|a| a.reference.clone())
            .filter(|r| b.and_then(|b| b.archive.spec.approval.as_ref()).map(|a| &a.reference) != Some(r));
        let verdict = match (widens, &approval) {
            (false, _) => Verdict::Accepted,
            (true, Some(_)) => Verdict::Approved,
            (true, None) => Verdict::Rejected,
        };
        let after_text = match widens {
            true => format!("{} (widens who may write into the locked archive)", admission_text(h)),
            false => admission_text(h),
        };
        out.push(Change {
            baseline: format!("LogArchive/{}", h.id),
            account_id: h.archive.spec.account_id.clone(),
            setting: "archive admission".into(),
            before: b.map_or_else(|| "no archive".to_string(), admission_text),
            after: after_text,
            verdict,
            approval: approval.filter(|_| verdict == Verdict::Approved),
        });
    }
    out
}

/// `changes` with each of `more` placed after the last change of the same baseline (or at the
/// end): one heading per baseline in the review.
pub fn merged(mut changes: Vec<Change>, more: Vec<Change>) -> Vec<Change> {
    for change in more {
        let at = changes
            .iter()
            .rposition(|c| c.baseline == change.baseline)
            .map_or(changes.len(), |i| i + 1);
        changes.insert(at, change);
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Approval, LoggingBaseline};

    fn resolved(retention: RetentionPolicySpec) -> ResolvedBaseline {
        let baseline: LoggingBaseline = serde_json::from_value(serde_json::json!({
            "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaseline",
            "metadata": {"name": "payments", "namespace": "accounts"},
            "spec": {"accountId": "111122223333", "primaryRegion": "us-east-1"}
        }))
        .unwrap();
        ResolvedBaseline {
            id: "accounts/payments".into(),
            baseline,
            trail_policy: Default::default(),
            retention,
            retention_policy_name: "default".into(),
            archive: None,
        }
    }

    fn with(f: impl FnOnce(&mut RetentionPolicySpec)) -> RetentionPolicySpec {
        let mut r = RetentionPolicySpec::default();
        f(&mut r);
        r
    }

    #[test]
    fn forever_to_days_with_a_new_approval_is_approved_and_says_so() {
        let head = with(|r| {
            r.trail_logs.expire_after_days = Some(2555);
            r.approval = Some(Approval {
                reference: "CHG-1234".into(),
                reason: None,
            });
        });
        let changes = changes(&resolved(RetentionPolicySpec::default()), &resolved(head));
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].sentence(),
            "trail logs: kept forever -> expire after 2555 days (approval CHG-1234)"
        );
        assert_eq!(changes[0].verdict, Verdict::Approved);
    }

    #[test]
    fn shorter_log_group_retention_without_approval_is_rejected() {
        let base = with(|r| r.flow_logs.retention_days = Some(365));
        let head = with(|r| r.flow_logs.retention_days = Some(90));
        let changes = changes(&resolved(base), &resolved(head));
        assert_eq!(
            changes[0].sentence(),
            "flow logs: 365 days -> 90 days: REJECTED, approval required"
        );
    }

    #[test]
    fn a_reused_approval_does_not_approve_and_lengthening_needs_none() {
        let approval = Some(Approval {
            reference: "CHG-1".into(),
            reason: None,
        });
        let base = with(|r| {
            r.access_logs.expire_after_days = Some(365);
            r.approval = approval.clone();
        });
        let shorter = with(|r| {
            r.access_logs.expire_after_days = Some(30);
            r.approval = approval.clone();
        });
        assert_eq!(
            changes(&resolved(base.clone()), &resolved(shorter))[0].verdict,
            Verdict::Rejected
        );
        let longer = with(|r| r.access_logs.expire_after_days = Some(730));
        assert_eq!(
            changes(&resolved(base), &resolved(longer))[0].verdict,
            Verdict::Accepted
        );
    }

    #[test]
    fn fewer_lock_days_need_an_approval() {
        let head = with(|r| r.trail_logs.object_lock.default_retention_days = 30);
        let changes = changes(&resolved(RetentionPolicySpec::default()), &resolved(head));
        assert_eq!(
            changes[0].sentence(),
            "trail logs lock: Governance 365 days -> Governance 30 days: REJECTED, approval required"
        );
    }
}

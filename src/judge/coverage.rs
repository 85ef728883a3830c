//! Section 4 of a member of another account's Organization trail, judged where the trail lives:
//! the trail owner's verdict replaces the member's NotApplicable ("covered by ARN"). Pure functions.

use super::evidence::{ControlResult, Evidence};
use crate::api::ComplianceStatus;

/// The account that owns the trail the evidence names as covering section 4 (another account's
/// Organization trail), if any.
pub fn covering_owner(e: &Evidence) -> Option<(String, String)> {
    let trail = e.trail.as_ref().filter(|t| !t.details_observable)?;
    let owner = trail.arn.split(':').nth(4)?.to_string();
    Some((trail.arn.clone(), owner))
}

/// Section 4 of a member of another account's Organization trail, judged where the trail lives:
/// each control left NotApplicable ("covered by ARN") takes the verdict and evidence of the same
/// control in the owner's compliance, when the owner's account was judged.
pub fn with_coverage(
    mut status: ComplianceStatus,
    trail_arn: &str,
    owner: Option<&ComplianceStatus>,
) -> ComplianceStatus {
    let Some(owner) = owner else {
        return status;
    };
    for c in status.controls.iter_mut() {
        let covered = c.id.starts_with("4.") && c.result == ControlResult::NotApplicable;
        let Some(theirs) = owner.controls.iter().find(|o| o.id == c.id).filter(|_| covered) else {
            continue;
        };
        match theirs.result {
            ControlResult::Pass => {
                c.result = ControlResult::Pass;
                c.evidence = format!("covered by {trail_arn}: {}", theirs.evidence);
            }
            ControlResult::Fail => {
                c.result = ControlResult::Fail;
                c.evidence = format!("covered by {trail_arn}, whose account fails it: {}", theirs.evidence);
            }
            ControlResult::NotApplicable => {}
        }
    }
    status.summary = super::compliance::summary(&status.controls);
    status
}

/// The compliance of each report, section 4 of Organization trail members judged by the trail
/// owner's report when it is among them (`report` over a whole Organization).
pub fn statuses(evidence: &[(&str, &Evidence)]) -> Vec<ComplianceStatus> {
    let alone: Vec<(&str, ComplianceStatus)> = evidence
        .iter()
        .map(|(account, e)| (*account, super::compliance::status(e)))
        .collect();
    evidence
        .iter()
        .zip(&alone)
        .map(|((_, e), (_, status))| match covering_owner(e) {
            Some((arn, owner)) => {
                let theirs = alone.iter().find(|(account, _)| *account == owner).map(|(_, s)| s);
                with_coverage(status.clone(), &arn, theirs)
            }
            None => status.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::monitoring_controls::tests::{evidence, monitoring};

    #[test]
    fn a_covered_member_takes_the_owners_verdict_and_keeps_it_when_the_owner_is_unknown() {
        let owner = crate::judge::compliance::status(&evidence());
        let mut member = evidence();
        member.trail.as_mut().expect("trail").details_observable = false;
        let alone = crate::judge::compliance::status(&member);
        let arn = "arn:aws:cloudtrail:us-east-1:111122223333:trail/t";
        assert_eq!(with_coverage(alone.clone(), arn, None), alone);
        let covered = with_coverage(alone.clone(), arn, Some(&owner));
        let four: Vec<_> = covered.controls.iter().filter(|c| c.id.starts_with("4.")).collect();
        assert_eq!(four.len(), 15);
        assert!(
            four.iter()
                .all(|c| c.result == ControlResult::Pass && c.evidence.starts_with("covered by arn:"))
        );
        // Section 3 is not the owner's to judge.
        assert_eq!(
            covered
                .controls
                .iter()
                .find(|c| c.id == "3.1")
                .map(|c| c.result.clone()),
            Some(ControlResult::NotApplicable)
        );
        let mut failing = evidence();
        monitoring(&mut failing).alarms.clear();
        let owner = crate::judge::compliance::status(&failing);
        let covered = with_coverage(alone, arn, Some(&owner));
        let c = covered.controls.iter().find(|c| c.id == "4.1").expect("4.1");
        assert_eq!(c.result, ControlResult::Fail);
        assert!(c.evidence.contains("whose account fails it"), "{}", c.evidence);
        let (owner_arn, account) = covering_owner(&member).expect("covered");
        assert_eq!((owner_arn.as_str(), account.as_str()), (arn, "111122223333"));
    }
}

//! The findings in Security Hub against the ones trailkeeper wants: what to import (new, changed,
//! archived and judged again, or about to expire), what to archive (no longer judged), and what to
//! mark RESOLVED (it passes). Pure functions.
//!
//! As Security Hub handles them (API reference, Workflow; user guide, "BatchImportFindings for
//! finding providers"): a new finding's workflow is NEW; an import "resets WorkFlowStatus from
//! NOTIFIED or RESOLVED to NEW" when the record state goes from ARCHIVED to ACTIVE or the compliance
//! status from PASSED to WARNING, FAILED or NOT_AVAILABLE; BatchImportFindings cannot change the
//! workflow, so a passing finding is resolved with BatchUpdateFindings. A finding people
//! SUPPRESSED is left so.
//! https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_Workflow.html
//! https://docs.aws.amazon.com/securityhub/latest/userguide/finding-update-batchimportfindings.html

use crate::aws::securityhub::ObservedFinding;
use crate::desired::findings::{DesiredFinding, FindingStatus, REFRESH_AFTER_DAYS};

/// What one export writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FindingsPlan {
    /// Findings to import, each with its first import's time (None: new).
    pub import: Vec<(DesiredFinding, Option<String>)>,
    /// trailkeeper's active findings no longer judged.
    pub archive: Vec<ObservedFinding>,
    /// Ids of the findings to mark RESOLVED once imported.
    pub resolve: Vec<String>,
}

impl FindingsPlan {
    pub fn is_empty(&self) -> bool {
        self.import.is_empty() && self.archive.is_empty() && self.resolve.is_empty()
    }
}

/// Seconds since the epoch of an ASFF timestamp.
pub fn seconds(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// The workflow a finding has once imported: NEW for a new one, NEW again (from NOTIFIED or
/// RESOLVED) when it is archived and active again or passed and no longer does.
fn workflow_after_import(desired: &DesiredFinding, observed: Option<&ObservedFinding>) -> String {
    let Some(o) = observed else {
        return "NEW".into();
    };
    let reopened = o.record_state == "ARCHIVED";
    let fails_again = o.compliance == "PASSED" && desired.status != FindingStatus::Passed;
    if (reopened || fails_again) && (o.workflow == "NOTIFIED" || o.workflow == "RESOLVED") {
        "NEW".into()
    } else {
        o.workflow.clone()
    }
}

/// The writes that bring Security Hub to `desired`, at `now` (seconds since the epoch).
pub fn plan(desired: &[DesiredFinding], observed: &[ObservedFinding], now: i64) -> FindingsPlan {
    let mut out = FindingsPlan::default();
    for d in desired {
        let found = observed.iter().find(|o| o.id == d.id);
        let stale = found
            .and_then(|o| seconds(&o.updated_at))
            .is_none_or(|at| now - at > REFRESH_AFTER_DAYS * 86_400);
        let changed = match found {
            None => true,
            Some(o) => o.record_state != "ACTIVE" || o.digest.as_deref() != Some(d.digest().as_str()) || stale,
        };
        let workflow = if changed {
            out.import.push((d.clone(), found.map(|o| o.created_at.clone())));
            workflow_after_import(d, found)
        } else {
            found.map(|o| o.workflow.clone()).unwrap_or_default()
        };
        if d.status == FindingStatus::Passed && (workflow == "NEW" || workflow == "NOTIFIED") {
            out.resolve.push(d.id.clone());
        }
    }
    out.archive = observed
        .iter()
        .filter(|o| o.record_state == "ACTIVE" && !desired.iter().any(|d| d.id == o.id))
        .cloned()
        .collect();
    out
}

/// An ASFF timestamp for `now`, later than every `after` (Security Hub ignores an update whose
/// UpdatedAt "matches or occurs before UpdatedAt on the existing finding").
pub fn updated_at(now: jiff::Timestamp, after: &[&str]) -> String {
    let latest = after.iter().filter_map(|t| t.parse::<jiff::Timestamp>().ok()).max();
    let at = match latest {
        Some(latest) if latest >= now => latest + jiff::SignedDuration::from_millis(1),
        _ => now,
    };
    at.round(jiff::Unit::Millisecond).unwrap_or(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::findings::{FindingResource, SeverityLabel};

    fn desired(id: &str, status: FindingStatus) -> DesiredFinding {
        DesiredFinding {
            id: id.into(),
            generator_id: format!("trailkeeper/{id}"),
            title: "t".into(),
            description: "d".into(),
            status,
            severity: SeverityLabel::Medium,
            types: vec!["Software and Configuration Checks".into()],
            resources: vec![FindingResource {
                type_: "AwsAccount".into(),
                id: "AWS::::Account:111122223333".into(),
            }],
            related_requirements: Vec::new(),
            remediation: "r".into(),
            remediation_url: "https://example.com".into(),
            baseline: "ns/b".into(),
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn observed(d: &DesiredFinding, workflow: &str, days_ago: i64) -> ObservedFinding {
        let at = jiff::Timestamp::from_second(NOW - days_ago * 86_400)
            .unwrap()
            .to_string();
        ObservedFinding {
            id: d.id.clone(),
            generator_id: d.generator_id.clone(),
            created_at: at.clone(),
            updated_at: at,
            record_state: "ACTIVE".into(),
            workflow: workflow.into(),
            compliance: d.status.as_str().into(),
            digest: Some(d.digest()),
            ..Default::default()
        }
    }

    #[test]
    fn in_sync_imports_nothing_and_a_passing_finding_is_resolved_once() {
        let pass = desired("a", FindingStatus::Passed);
        let fail = desired("b", FindingStatus::Failed);
        let first = plan(&[pass.clone(), fail.clone()], &[], NOW);
        assert_eq!(first.import.len(), 2);
        assert_eq!(first.resolve, ["a"]);
        let seen = [observed(&pass, "RESOLVED", 1), observed(&fail, "NEW", 1)];
        assert!(plan(&[pass, fail], &seen, NOW).is_empty());
    }

    #[test]
    fn a_changed_verdict_is_imported_again_with_its_creation_time_and_a_repair_resolved_again() {
        let pass = desired("a", FindingStatus::Passed);
        let was_passing = observed(&pass, "RESOLVED", 1);
        let fail = desired("a", FindingStatus::Failed);
        let p = plan(std::slice::from_ref(&fail), std::slice::from_ref(&was_passing), NOW);
        assert_eq!(p.import.len(), 1);
        assert_eq!(p.import[0].1.as_deref(), Some(was_passing.created_at.as_str()));
        assert!(p.resolve.is_empty(), "it fails: nothing to resolve");
        // Failing (Security Hub set the workflow back to NEW), then repaired: resolved again.
        let mut failing = observed(&fail, "NEW", 0);
        failing.compliance = "FAILED".into();
        let again = plan(std::slice::from_ref(&pass), &[failing], NOW);
        assert_eq!((again.import.len(), again.resolve.clone()), (1, vec!["a".to_string()]));
        // Suppressed by a person: left so.
        let suppressed = observed(&pass, "SUPPRESSED", 1);
        assert!(plan(&[pass], &[suppressed], NOW).is_empty());
    }

    #[test]
    fn findings_no_longer_judged_are_archived_and_old_ones_refreshed_before_they_expire() {
        let kept = desired("a", FindingStatus::Failed);
        let gone = observed(&desired("gone", FindingStatus::Failed), "NEW", 1);
        let p = plan(
            std::slice::from_ref(&kept),
            &[observed(&kept, "NEW", 31), gone.clone()],
            NOW,
        );
        assert_eq!(p.archive, std::slice::from_ref(&gone));
        assert_eq!(p.import.len(), 1, "31 days without an update: imported again");
        let mut archived = gone;
        archived.record_state = "ARCHIVED".into();
        assert!(
            plan(&[], std::slice::from_ref(&archived), NOW).is_empty(),
            "archived stays archived"
        );
        // Judged again: imported, and a passing one (reset to NEW by Security Hub) resolved.
        archived.workflow = "RESOLVED".into();
        archived.digest = Some(desired("gone", FindingStatus::Passed).digest());
        let back = plan(&[desired("gone", FindingStatus::Passed)], &[archived], NOW);
        assert_eq!((back.import.len(), back.resolve.len()), (1, 1));
    }

    #[test]
    fn an_update_is_stamped_after_the_finding_it_updates() {
        let now = jiff::Timestamp::from_second(NOW).unwrap();
        assert_eq!(updated_at(now, &[]), "2027-01-15T08:00:00Z");
        let later = "2027-01-15T08:00:00.500Z";
        assert_eq!(updated_at(now, &[later]), "2027-01-15T08:00:00.501Z");
    }
}

use super::*;
use crate::api::{ComplianceStatus, Condition, IntegrityStatus, LoggingBaseline};

fn spec(enabled: bool) -> LoggingBaselineSpec {
    let mut b: LoggingBaseline = serde_json::from_value(serde_json::json!({
        "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaseline",
        "metadata": {"name": "payments", "namespace": "accounts"},
        "spec": {"accountId": "111122223333", "primaryRegion": "eu-west-1"}
    }))
    .unwrap();
    b.spec.security_hub.enabled = enabled;
    b.spec
}

fn control(id: &str, result: ControlResult) -> Control {
    Control {
        id: id.into(),
        title: format!("control {id}"),
        result,
        evidence: "x".repeat(2000),
    }
}

fn status() -> LoggingBaselineStatus {
    LoggingBaselineStatus {
        trail_arn: Some("arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper".into()),
        bucket_name: Some("trailkeeper-111122223333-cloudtrail-eu-west-1".into()),
        compliance: Some(ComplianceStatus {
            benchmark: "CIS".into(),
            summary: "1/2".into(),
            controls: vec![
                control("3.1", ControlResult::Pass),
                control("3.4", ControlResult::Fail),
                control("4.1", ControlResult::NotApplicable),
            ],
        }),
        conditions: vec![Condition {
            type_: "DeliveryHealthy".into(),
            status: "False".into(),
            reason: "DeliveryFailing".into(),
            message: "cloudtrail: nothing delivered for 90 minutes".into(),
            ..Default::default()
        }],
        integrity: Some(IntegrityStatus {
            valid: true,
            digests: 24,
            log_files: 288,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn input<'a>(
    spec: &'a LoggingBaselineSpec,
    policy: &'a TrailPolicySpec,
    status: &'a LoggingBaselineStatus,
) -> FindingsInput<'a> {
    FindingsInput {
        spec,
        trail_policy: policy,
        baseline: "accounts/payments",
        status,
    }
}

#[test]
fn nothing_is_exported_unless_the_baseline_asks() {
    let (policy, status) = (TrailPolicySpec::default(), status());
    assert!(findings(&input(&spec(false), &policy, &status)).is_empty());
}

#[test]
fn one_finding_per_control_delivery_and_duplicates_each_with_a_stable_id() {
    let (mut spec, policy, status) = (spec(true), TrailPolicySpec::default(), status());
    let all = findings(&input(&spec, &policy, &status));
    let ids: Vec<&str> = all.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "trailkeeper/111122223333/cis-aws-foundations-benchmark/v3.0.0/3.1",
            "trailkeeper/111122223333/cis-aws-foundations-benchmark/v3.0.0/3.4",
            "trailkeeper/111122223333/cis-aws-foundations-benchmark/v3.0.0/4.1",
            "trailkeeper/111122223333/delivery",
            "trailkeeper/111122223333/duplicate-trails",
        ]
    );
    let statuses: Vec<&str> = all.iter().map(|f| f.status.as_str()).collect();
    assert_eq!(statuses, ["PASSED", "FAILED", "NOT_AVAILABLE", "FAILED", "PASSED"]);
    // The integrity finding once verifyIntegrity is on.
    spec.verify_integrity.enabled = true;
    let with_integrity = findings(&input(&spec, &policy, &status));
    assert!(
        with_integrity
            .iter()
            .any(|f| f.id.ends_with("/integrity") && f.status == FindingStatus::Passed)
    );
    // The same verdicts, the same findings: the ids and digests do not move.
    assert_eq!(findings(&input(&spec, &policy, &status)), with_integrity);
}

#[test]
fn findings_keep_within_the_asff_limits_and_point_at_the_resource_and_the_remedy() {
    let (spec, policy, status) = (spec(true), TrailPolicySpec::default(), status());
    for f in findings(&input(&spec, &policy, &status)) {
        assert!(f.title.chars().count() <= 256, "{}", f.id);
        assert!(f.description.chars().count() <= 1024, "{}", f.id);
        assert!(f.remediation.chars().count() <= 512, "{}", f.id);
        assert!(f.generator_id.starts_with(GENERATOR_PREFIX));
        assert!(!f.resources.is_empty() && !f.types.is_empty());
    }
    let all = findings(&input(&spec, &policy, &status));
    let logging = all.iter().find(|f| f.id.ends_with("/3.4")).unwrap();
    assert_eq!(logging.resources[0].type_, "AwsS3Bucket");
    assert!(
        logging.remediation.contains("LoggingBaseline accounts/payments"),
        "{}",
        logging.remediation
    );
    assert_eq!(logging.severity, SeverityLabel::Low);
    let trail = all.iter().find(|f| f.id.ends_with("/3.1")).unwrap();
    assert_eq!(trail.resources[0].type_, "AwsCloudTrailTrail");
    assert_eq!(trail.severity, SeverityLabel::High);
    assert_eq!(trail.related_requirements, ["CIS AWS Foundations Benchmark v3.0.0/3.1"]);
    let monitoring = all.iter().find(|f| f.id.ends_with("/4.1")).unwrap();
    assert!(
        monitoring.remediation.contains("Add monitoring"),
        "{}",
        monitoring.remediation
    );
}

#[test]
fn the_product_is_the_accounts_own_custom_integration_in_the_hubs_region() {
    let mut spec = spec(true);
    assert_eq!(
        FindingsTarget::of(&spec).unwrap().product_arn(),
        "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
    );
    spec.security_hub.region = Some("us-east-1".into());
    assert_eq!(FindingsTarget::of(&spec).unwrap().region, "us-east-1");
}

#[test]
fn the_age_of_the_last_delivery_does_not_change_the_delivery_finding() {
    let (spec, policy) = (spec(true), TrailPolicySpec::default());
    let with = |message: &str, healthy: bool| {
        let mut status = status();
        status.conditions[0].message = message.into();
        status.conditions[0].status = if healthy { "True" } else { "False" }.into();
        findings(&input(&spec, &policy, &status))
            .into_iter()
            .find(|f| f.id.ends_with("/delivery"))
            .unwrap()
    };
    assert_eq!(
        with(
            "logs delivered: cloudtrail 3 min ago, cloudtrail-digest 40 min ago",
            true
        ),
        with(
            "logs delivered: cloudtrail 8 min ago, cloudtrail-digest 45 min ago",
            true
        )
    );
    let late = with(
        "cloudtrail: nothing delivered for 95 minutes (alarm after 60 minutes)",
        false,
    );
    assert_eq!(
        late,
        with(
            "cloudtrail: nothing delivered for 100 minutes (alarm after 60 minutes)",
            false
        )
    );
    assert!(
        late.description
            .contains("nothing delivered for longer than the alarm (after 60 minutes)"),
        "{}",
        late.description
    );
    assert_eq!(
        with(
            "cloudtrail: nothing delivered since logging started 70 minutes ago",
            false
        ),
        with(
            "cloudtrail: nothing delivered since logging started 75 minutes ago",
            false
        )
    );
}

/// A member under another account's Organization trail: section 4 takes the trail owner's verdict
/// (as the controller judges it), and what cannot be read from the member is NOT_AVAILABLE, never
/// a false FAILED.
#[test]
fn a_member_under_an_organization_trail_is_judged_with_the_trails_owner() {
    use crate::judge::monitoring_controls::tests::evidence;
    let owner = crate::judge::compliance::status(&evidence());
    let mut member = evidence();
    member.trail.as_mut().expect("trail").details_observable = false;
    let (arn, _) = crate::judge::coverage::covering_owner(&member).expect("covered");
    let alone = crate::judge::compliance::status(&member);
    let mut status = status();
    status.compliance = Some(crate::judge::coverage::with_coverage(alone, &arn, Some(&owner)));
    let (spec, policy) = (spec(true), TrailPolicySpec::default());
    let all = findings(&input(&spec, &policy, &status));
    let of = |id: &str| all.iter().find(|f| f.id.ends_with(&format!("/{id}"))).unwrap();
    for id in ["4.1", "4.15"] {
        assert_eq!(of(id).status, FindingStatus::Passed, "{}", of(id).description);
        assert!(of(id).description.contains("covered by"), "{}", of(id).description);
    }
    // The trail's selectors and logging are the owner's to read: not available here, not failed.
    for id in ["3.1", "3.8", "3.9"] {
        assert_eq!(of(id).status, FindingStatus::NotAvailable, "{}", of(id).description);
    }
    assert!(
        all.iter()
            .filter(|f| f.id.contains("/4."))
            .all(|f| f.status == FindingStatus::Passed)
    );
}

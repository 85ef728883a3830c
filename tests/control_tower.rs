//! AWS Control Tower next door, against the moto server: an Organization with a landing zone's
//! trail (`aws-controltower-BaselineCloudTrail`, delivering into `aws-controltower-logs-...`).
//! A member's baseline creates no second trail beside it and says why; integrated as an Existing
//! trail, its evidence is judged and status and `report` say the account is covered by it.

mod common;

use common::*;
use trailkeeper::api::{LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec, TrailSource};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::engine::account::{
    AccountReport, Component, ComponentState, ReconcileOptions, RunMode, account_clients, reconcile_account,
};
use trailkeeper::judge::control_tower::{REASON, TRAIL_NAME};

async fn run(spec: &LoggingBaselineSpec, policy: &TrailPolicySpec, mode: RunMode) -> AccountReport {
    let retention = RetentionPolicySpec::default();
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: policy,
        retention: &retention,
    };
    reconcile_account(
        account_clients(&base_config().await, &specs),
        &specs,
        ReconcileOptions::new(mode),
    )
    .await
}

/// A landing zone: an Organization whose management account has Control Tower's trail, logging
/// into the log archive bucket as Control Tower names it. Returns (member account, trail ARN).
async fn landing_zone() -> (String, String, String) {
    let management = new_account();
    let aws = inspector(&management).await;
    let organization = create_organization(&aws).await;
    let bucket = format!("aws-controltower-logs-{management}-{REGION}");
    let key = trail_destination(
        &aws,
        &management,
        &bucket,
        Some(&organization),
        TRAIL_NAME,
        Some(&organization),
    )
    .await;
    let created = aws
        .cloudtrail
        .create_trail()
        .name(TRAIL_NAME)
        .s3_bucket_name(&bucket)
        .s3_key_prefix(&organization)
        .is_multi_region_trail(true)
        .is_organization_trail(true)
        .enable_log_file_validation(true)
        .kms_key_id(key)
        .send()
        .await
        .unwrap();
    let arn = created.trail_arn.unwrap();
    aws.cloudtrail
        .put_event_selectors()
        .trail_name(&arn)
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::All)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.cloudtrail.start_logging().name(&arn).send().await.unwrap();
    let member = create_member_account(&aws, &format!("workload-{management}")).await;
    (member, arn, bucket)
}

#[tokio::test]
async fn beside_control_towers_trail_a_baseline_creates_no_second_trail_and_says_why() {
    let (member, arn, bucket) = landing_zone().await;
    let spec = trail_only(&member);
    let report = run(&spec, &TrailPolicySpec::default(), RunMode::Apply).await;
    match report.components.get(&Component::Trail) {
        Some(ComponentState::Refused { reason, message }) => {
            assert_eq!(*reason, REASON);
            assert!(
                message.contains(&format!("covered by Control Tower's trail {arn}")),
                "{message}"
            );
            assert!(message.contains(&bucket), "{message}");
            assert!(message.contains("trail.source: Existing"), "{message}");
        }
        other => panic!("the trail should be refused: {other:?}"),
    }
    // Nothing was created for the trail that will not be: no trail, key or bucket.
    for action in ["cloudtrail:CreateTrail", "kms:CreateKey", "s3:CreateBucket"] {
        assert!(
            !report.calls.by_action.contains_key(action),
            "{action}: {:?}",
            report.calls
        );
    }
    let aws = inspector(&member).await;
    assert!(aws.bucket_names().await.is_empty());
    let trails = aws
        .cloudtrail
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = trails.trail_list().iter().filter_map(|t| t.name()).collect();
    assert_eq!(names, [TRAIL_NAME], "the landing zone's trail alone");

    // Status: TrailReady and Ready False for the reason a person acts on, Stalled; the account is
    // covered by Control Tower's trail.
    let status = trailkeeper::controller::status::from_report(
        &report,
        None,
        Some(1),
        "2026-01-01T00:00:00Z",
        &RetentionPolicySpec::default(),
        "default",
    );
    let condition = |t: &str| status.conditions.iter().find(|c| c.type_ == t).cloned();
    let trail = condition("TrailReady").expect("TrailReady");
    assert_eq!((trail.status.as_str(), trail.reason.as_str()), ("False", REASON));
    assert_eq!(condition("Ready").map(|c| c.reason), Some(REASON.to_string()));
    assert_eq!(condition("Stalled").map(|c| c.status), Some("True".to_string()));
    let ct = status.control_tower.expect("status.controlTower");
    assert_eq!(ct.trail_arn, arn);
    assert!(
        ct.message.starts_with("covered by Control Tower's trail"),
        "{}",
        ct.message
    );

    // A plan says the same, and writes nothing.
    let plan = run(&spec, &TrailPolicySpec::default(), RunMode::Plan).await;
    assert!(matches!(
        plan.components.get(&Component::Trail),
        Some(ComponentState::Refused { .. })
    ));
    assert_eq!(plan.calls.writes, 0);
}

#[tokio::test]
async fn control_towers_trail_integrated_as_existing_is_judged_and_said_to_cover_the_account() {
    let (member, arn, bucket) = landing_zone().await;
    let mut spec = trail_only(&member);
    spec.trail.source = TrailSource::Existing;
    spec.trail.existing_trail_arn = Some(arn.clone());
    let policy = TrailPolicySpec {
        organization_trail: true,
        ..Default::default()
    };
    let report = run(&spec, &policy, RunMode::Apply).await;
    assert!(!report.failed(), "{:?}", report.components);
    assert_eq!(report.calls.writes, 0, "{:?}", report.calls);
    let ct = report.control_tower.clone().expect("the landing zone's trail");
    assert_eq!(
        (ct.arn.as_str(), ct.bucket.as_deref()),
        (arn.as_str(), Some(bucket.as_str()))
    );
    let details = report.details.get(&Component::Trail).cloned().unwrap_or_default();
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("covered by Control Tower's trail")),
        "{details:?}"
    );
    // Its evidence is judged: log file validation and KMS encryption read from DescribeTrails.
    let compliance = trailkeeper::judge::compliance::status(&report.evidence);
    let result = |id: &str| {
        compliance
            .controls
            .iter()
            .find(|c| c.id == id)
            .map(|c| (c.result.clone(), c.evidence.clone()))
    };
    assert_eq!(
        result("3.2").map(|r| r.0),
        Some(trailkeeper::judge::compliance::ControlResult::Pass)
    );
    assert!(result("3.2").is_some_and(|(_, e)| e.contains(TRAIL_NAME)));
    let markdown = trailkeeper::cli::output::render_compliance(
        &[("accounts/workload".to_string(), report)],
        trailkeeper::cli::Format::Markdown,
    );
    assert!(
        markdown.contains(&format!("The account is covered by Control Tower's trail {arn}")),
        "{markdown}"
    );
}

/// Asked to, the baseline creates its trail beside Control Tower's, and the copy's cost is
/// reported.
#[tokio::test]
async fn allowed_beside_control_tower_the_trail_is_created_and_its_copy_reported() {
    let (member, arn, _) = landing_zone().await;
    let mut spec = trail_only(&member);
    spec.trail.allow_beside_control_tower = true;
    let report = run(&spec, &TrailPolicySpec::default(), RunMode::Apply).await;
    assert!(!report.failed(), "{:?}", report.components);
    assert!(report.calls.by_action.contains_key("cloudtrail:CreateTrail"));
    let d = report.duplicate_trails.expect("the copy is reported");
    assert!(d.trails.contains(&arn), "{:?}", d.trails);
    assert_eq!(report.control_tower.map(|t| t.arn), Some(arn));
}

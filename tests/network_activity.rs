//! Network activity events against the moto server (with CloudTrail's selector rules,
//! scripts/emulator/trailkeeper_selectors.py): a TrailPolicy's network activity selectors are
//! applied and read back, kept at no cost, refused by the emulator where CloudTrail refuses them,
//! and their events priced apart in the duplicate-trail estimate.

mod common;

use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
use common::*;
use trailkeeper::api::{LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::engine::account::{AccountReport, ReconcileOptions, RunMode, account_clients, reconcile_account};

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

fn network_policy() -> TrailPolicySpec {
    serde_yaml::from_str(
        "networkActivityEvents: {eventSources: [kms.amazonaws.com, secretsmanager.amazonaws.com], onlyAccessDenied: true}",
    )
    .unwrap()
}

fn field(name: &str, equals: &[&str]) -> AdvancedFieldSelector {
    AdvancedFieldSelector::builder()
        .field(name)
        .set_equals(Some(equals.iter().map(|v| v.to_string()).collect()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn network_activity_selectors_are_applied_read_back_and_kept_at_no_cost() {
    let account = new_account();
    let spec = trail_only(&account);
    let policy = network_policy();
    let first = run(&spec, &policy, RunMode::Apply).await;
    assert!(!first.failed(), "{:?}", first.components);
    assert!(first.calls.by_action.contains_key("cloudtrail:PutEventSelectors"));

    let aws = inspector(&account).await;
    let read = aws
        .cloudtrail
        .get_event_selectors()
        .trail_name(trailkeeper::desired::trail_arn(&spec))
        .send()
        .await
        .unwrap();
    assert!(read.event_selectors().is_empty(), "advanced selectors only");
    let selectors = read.advanced_event_selectors();
    let network: Vec<&AdvancedEventSelector> = selectors
        .iter()
        .filter(|s| {
            s.field_selectors()
                .iter()
                .any(|f| f.field() == "eventCategory" && f.equals() == ["NetworkActivity"])
        })
        .collect();
    let mut sources: Vec<String> = network
        .iter()
        .flat_map(|s| s.field_selectors().iter().filter(|f| f.field() == "eventSource"))
        .flat_map(|f| f.equals().to_vec())
        .collect();
    sources.sort();
    assert_eq!(sources, ["kms.amazonaws.com", "secretsmanager.amazonaws.com"]);
    assert!(network.iter().all(|s| {
        s.field_selectors()
            .iter()
            .any(|f| f.field() == "errorCode" && f.equals() == ["VpceAccessDenied"])
    }));
    // The management events the policy asks for are recorded by an advanced selector too.
    assert!(selectors.iter().any(|s| {
        s.field_selectors()
            .iter()
            .any(|f| f.field() == "eventCategory" && f.equals() == ["Management"])
    }));
    // CIS 3.1 reads the management events from the advanced selector.
    assert!(first.evidence.trail.as_ref().is_some_and(|t| t.management_events_all));

    let again = run(&spec, &policy, RunMode::Apply).await;
    assert!(again.in_sync(), "{:?} {:?}", again.drift, again.pending);
    assert_eq!(again.calls.writes, 0);

    // Tampered with (network activity no longer recorded), the selectors are put back.
    aws.cloudtrail
        .put_event_selectors()
        .trail_name(trailkeeper::desired::trail_arn(&spec))
        .advanced_event_selectors(
            AdvancedEventSelector::builder()
                .name("management only")
                .field_selectors(field("eventCategory", &["Management"]))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let repaired = run(&spec, &policy, RunMode::Apply).await;
    assert!(
        repaired.drift.iter().any(|d| d.field == "eventSelectors"),
        "{:?}",
        repaired.drift
    );
    assert!(run(&spec, &policy, RunMode::Plan).await.in_sync());
}

/// The emulator refuses what CloudTrail refuses for network activity events, and accepts what it
/// accepts.
#[tokio::test]
async fn the_emulator_judges_network_activity_selectors_as_cloudtrail_does() {
    let account = new_account();
    let spec = trail_only(&account);
    converge(&spec).await;
    let aws = inspector(&account).await;
    let trail = trailkeeper::desired::trail_arn(&spec);
    let put = |fields: Vec<AdvancedFieldSelector>| {
        let aws = &aws;
        let trail = trail.clone();
        async move {
            aws.cloudtrail
                .put_event_selectors()
                .trail_name(trail)
                .advanced_event_selectors(
                    AdvancedEventSelector::builder()
                        .name("network")
                        .set_field_selectors(Some(fields))
                        .build()
                        .unwrap(),
                )
                .send()
                .await
        }
    };
    let category = || field("eventCategory", &["NetworkActivity"]);
    put(vec![category(), field("eventSource", &["kms.amazonaws.com"])])
        .await
        .expect("one event source with Equals is accepted");
    put(vec![
        category(),
        field("eventSource", &["ec2.amazonaws.com"]),
        field("errorCode", &["VpceAccessDenied"]),
        AdvancedFieldSelector::builder()
            .field("vpcEndpointId")
            .starts_with("vpce-")
            .build()
            .unwrap(),
    ])
    .await
    .expect("errorCode VpceAccessDenied and vpcEndpointId are accepted");
    for (fields, needle) in [
        (vec![category()], "one eventSource"),
        (
            vec![
                category(),
                field("eventSource", &["kms.amazonaws.com", "ec2.amazonaws.com"]),
            ],
            "one event source per selector",
        ),
        (
            vec![category(), field("eventSource", &["iam.amazonaws.com"])],
            "does not record network activity events",
        ),
        (
            vec![
                category(),
                field("eventSource", &["kms.amazonaws.com"]),
                field("errorCode", &["AccessDenied"]),
            ],
            "VpceAccessDenied",
        ),
        (
            vec![
                category(),
                field("eventSource", &["kms.amazonaws.com"]),
                field("readOnly", &["true"]),
            ],
            "not supported for network activity events",
        ),
    ] {
        let e = put(fields).await.expect_err(needle).into_service_error();
        assert!(e.is_invalid_event_selectors_exception(), "{e:?}");
        assert!(format!("{e:?}").contains(needle), "{needle}: {e:?}");
    }
}

/// Network activity events in the trail's log files are not copies of management events: the
/// duplicate-trail estimate counts them apart, at their own price.
#[tokio::test]
async fn the_duplicate_trail_estimate_prices_network_activity_events_apart() {
    use std::io::Write;
    let account = new_account();
    let aws = inspector(&account).await;
    let spec = trail_only(&account);
    let policy = network_policy();
    assert!(!run(&spec, &policy, RunMode::Apply).await.failed());
    // One log file of the last hour: 10 management events, 30 network activity events.
    let secs = now_secs() - 600;
    let stamp = aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let compact: String = stamp.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let key = format!(
        "{}/AWSLogs/{account}/CloudTrail/{REGION}/{}/{account}_CloudTrail_{REGION}_{}Z_0.json.gz",
        spec.storage.key_prefix,
        &stamp[..10].replace('-', "/"),
        &compact[..13]
    );
    let mut records: Vec<serde_json::Value> = (0..10)
        .map(|_| serde_json::json!({"eventCategory": "Management"}))
        .collect();
    records.extend((0..30).map(|_| {
        serde_json::json!({"eventCategory": "NetworkActivity", "eventSource": "kms.amazonaws.com", "errorCode": "VpceAccessDenied"})
    }));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(serde_json::json!({"Records": records}).to_string().as_bytes())
        .unwrap();
    aws.s3
        .put_object()
        .bucket(trailkeeper::desired::trail_bucket_name(&spec))
        .key(key)
        .body(gz.finish().unwrap().into())
        .send()
        .await
        .unwrap();
    let team = create_trail_recording_management_events(&aws, &account, "team-trail", None).await;
    aws.cloudtrail.start_logging().name(&team).send().await.unwrap();

    let report = run(&spec, &policy, RunMode::Plan).await;
    let d = report.duplicate_trails.expect("the duplicate is reported");
    assert_eq!(d.events_per_month, Some(7_300));
    assert_eq!(d.network_activity_events_per_month, Some(21_900));
    // 7,300 copied management events x $2.00 / 100,000 = $0.146, and 21,900 network activity
    // events x $0.10 / 100,000 = $0.0219: $0.17.
    assert_eq!(d.estimated_monthly_cost_usd, Some(0.17));
    assert!(d.note.contains("network activity events"), "{}", d.note);
}

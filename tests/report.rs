//! Compliance evidence: the CIS logging controls in status, and `trailkeeper report`'s markdown
//! for two accounts against a golden file (`TRAILKEEPER_BLESS=1` rewrites it).

mod common;

use common::*;
use trailkeeper::api::{ControlResult, DataEventSelector, RetentionPolicySpec, TrailPolicySpec};
use trailkeeper::cli::Format;
use trailkeeper::controller::status;
use trailkeeper::engine::account::RunMode;
use trailkeeper::manifests::ResolvedBaseline;

fn resolved(account: &str, trail_policy: TrailPolicySpec) -> ResolvedBaseline {
    let mut baseline = common::baseline(account);
    baseline.metadata.name = Some(format!("account-{account}"));
    ResolvedBaseline {
        id: format!("accounts/account-{account}"),
        baseline,
        trail_policy,
        retention: RetentionPolicySpec::default(),
        retention_policy_name: "built-in".into(),
    }
}

fn s3_data_events() -> TrailPolicySpec {
    TrailPolicySpec {
        data_events: vec![
            serde_json::from_value::<DataEventSelector>(serde_json::json!({
                "type": "AWS::S3::Object",
                "values": ["arn:aws:s3"]
            }))
            .unwrap(),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn the_status_carries_each_control_with_its_evidence() {
    let base = base_config().await;
    let account = new_account();
    let baselines = [resolved(&account, TrailPolicySpec::default())];
    trailkeeper::cli::run_all(&base, &baselines, RunMode::Apply).await;
    let reports = trailkeeper::cli::run_all(&base, &baselines, RunMode::Apply).await;
    let (_, report) = &reports[0];
    let next = status::from_report(
        report,
        None,
        Some(1),
        "2026-11-27T00:00:00Z",
        &RetentionPolicySpec::default(),
        "built-in",
    );
    let compliance = next.compliance.expect("compliance in status");
    assert!(
        compliance
            .benchmark
            .starts_with("CIS Amazon Web Services Foundations Benchmark v3.0.0")
    );
    let result = |id: &str| {
        let c = compliance.controls.iter().find(|c| c.id == id).unwrap();
        (c.result.clone(), c.evidence.clone())
    };
    let trail = trailkeeper::desired::trail_arn(&baselines[0].baseline.spec);
    assert_eq!(
        result("3.1"),
        (
            ControlResult::Pass,
            format!("{trail}: IsMultiRegionTrail=true, IsLogging=true, management events read and write=true")
        )
    );
    assert_eq!(result("3.2").0, ControlResult::Pass);
    assert_eq!(result("3.3").0, ControlResult::NotApplicable, "configRules off");
    let bucket = trailkeeper::desired::trail_bucket_name(&baselines[0].baseline.spec);
    let access = trailkeeper::desired::access_log_bucket_name(&baselines[0].baseline.spec);
    assert_eq!(
        result("3.4"),
        (ControlResult::Pass, format!("s3://{bucket}: logging to s3://{access}"))
    );
    assert_eq!(result("3.5").0, ControlResult::Pass);
    assert_eq!(result("3.6").0, ControlResult::Pass);
    assert_eq!(result("3.7"), (ControlResult::Pass, format!("{REGION}: 1/1 VPCs")));
    // The built-in TrailPolicy records no S3 data events: 3.8 and 3.9 fail, and say why.
    assert_eq!(
        result("3.8"),
        (
            ControlResult::Fail,
            format!("{trail}: S3 object-level write data events=false")
        )
    );
    assert_eq!(result("3.9").0, ControlResult::Fail);
    assert_eq!(compliance.summary, "6/8");

    // With S3 data events in the TrailPolicy, they pass once applied.
    let baselines = [resolved(&account, s3_data_events())];
    trailkeeper::cli::run_all(&base, &baselines, RunMode::Apply).await;
    let reports = trailkeeper::cli::run_all(&base, &baselines, RunMode::Plan).await;
    let controls = trailkeeper::judge::compliance::evaluate(&reports[0].1.evidence);
    assert!(
        controls
            .iter()
            .filter(|c| c.id == "3.8" || c.id == "3.9")
            .all(|c| c.result == ControlResult::Pass),
        "{controls:?}"
    );
}

/// Key ids are random in the emulator: the golden file has KEY_ID in their place.
fn normalize(markdown: &str) -> String {
    let mut out = String::new();
    for part in markdown.split(":key/") {
        if out.is_empty() && !markdown.starts_with(":key/") {
            out.push_str(part);
            continue;
        }
        out.push_str(":key/KEY_ID");
        out.push_str(part.trim_start_matches(|c: char| c.is_ascii_hexdigit() || c == '-'));
    }
    out
}

#[tokio::test]
async fn report_on_two_accounts_gives_the_expected_markdown() {
    let base = base_config().await;
    // This test binary has its own emulator: fixed account ids keep the golden file stable.
    let (converged, untouched) = ("111111111111", "222222222222");
    trailkeeper::cli::run_all(&base, &[resolved(converged, s3_data_events())], RunMode::Apply).await;
    let baselines = [
        resolved(converged, s3_data_events()),
        resolved(untouched, TrailPolicySpec::default()),
    ];
    let reports = trailkeeper::cli::run_all(&base, &baselines, RunMode::Plan).await;
    let markdown = normalize(&trailkeeper::cli::output::render_compliance(&reports, Format::Markdown));
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.md");
    if std::env::var("TRAILKEEPER_BLESS").is_ok() {
        std::fs::write(&golden, &markdown).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        markdown, expected,
        "tests/golden/report.md differs (TRAILKEEPER_BLESS=1 rewrites it)"
    );
}

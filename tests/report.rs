//! Compliance evidence: the CIS logging controls in status, and `trailkeeper report`'s markdown
//! for two accounts against a golden file (`TRAILKEEPER_BLESS=1` rewrites it).

mod common;

use aws_sdk_ec2::types::TrafficType;
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
        archive: None,
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
    trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Apply).await;
    let reports = trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Apply).await;
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
    // configRules is off, and the account records nothing: the benchmark judges the account.
    assert_eq!(
        result("3.3"),
        (
            ControlResult::Fail,
            format!(
                "1 of 1 regions without a recorder of all supported resource types that records with lastStatus Success: \
                 {REGION}: no configuration recorder; global resource types recorded in no region"
            )
        )
    );
    let bucket = trailkeeper::desired::trail_bucket_name(&baselines[0].baseline.spec);
    let access = trailkeeper::desired::access_log_bucket_name(&baselines[0].baseline.spec);
    assert_eq!(
        result("3.4"),
        (ControlResult::Pass, format!("s3://{bucket}: logging to s3://{access}"))
    );
    assert_eq!(result("3.5").0, ControlResult::Pass);
    let key = report.key_arn.clone().expect("the trail key");
    // The trail key and the key of the flow-log group (encryption.logGroups, on by default).
    let (rotation, evidence) = result("3.6");
    assert_eq!(rotation, ControlResult::Pass);
    assert!(
        evidence.starts_with("2 customer-managed symmetric keys, all with KeyRotationEnabled=true: ")
            && evidence.contains(&key),
        "{evidence}"
    );
    assert_eq!(
        result("3.7"),
        (
            ControlResult::Pass,
            format!("1 VPCs in 1 regions ({REGION}), each with a flow log of REJECT or ALL traffic")
        )
    );
    // The built-in TrailPolicy records no S3 data events: 3.8 and 3.9 fail, and say why.
    assert_eq!(
        result("3.8"),
        (
            ControlResult::Fail,
            format!("{trail}: S3 object-level write data events=false")
        )
    );
    assert_eq!(result("3.9").0, ControlResult::Fail);
    // Section 4's fifteen fail too: the built-in trail sends nothing to CloudWatch Logs.
    assert_eq!(compliance.summary, "6/24");

    // With S3 data events in the TrailPolicy, they pass once applied.
    let baselines = [resolved(&account, s3_data_events())];
    trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Apply).await;
    let reports = trailkeeper::engine::fleet::report_all(&base, &baselines).await;
    let controls = trailkeeper::judge::compliance::evaluate(&reports[0].1.evidence);
    assert!(
        controls
            .iter()
            .filter(|c| c.id == "3.8" || c.id == "3.9")
            .all(|c| c.result == ControlResult::Pass),
        "{controls:?}"
    );
}

/// Key and VPC ids are random in the emulator: the golden file has KEY_ID and VPC_ID in their place.
fn normalize(markdown: &str) -> String {
    replace_ids(&replace_ids(markdown, ":key/", "KEY_ID"), ":vpc-", "VPC_ID")
}

/// Each `marker` followed by an id (hex digits and dashes) becomes `marker` and `placeholder`.
fn replace_ids(text: &str, marker: &str, placeholder: &str) -> String {
    let mut parts = text.split(marker);
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        out.push_str(marker);
        out.push_str(placeholder);
        out.push_str(part.trim_start_matches(|c: char| c.is_ascii_hexdigit() || c == '-'));
    }
    out
}

#[tokio::test]
async fn report_on_two_accounts_gives_the_expected_markdown() {
    let base = base_config().await;
    // This test binary has its own emulator: fixed account ids keep the golden file stable.
    let (converged, untouched) = ("111111111111", "222222222222");
    create_roles(converged, &ACCOUNT_ROLES);
    trailkeeper::engine::fleet::run_all(&base, &[resolved(converged, s3_data_events())], RunMode::Apply).await;
    let baselines = [
        resolved(converged, s3_data_events()),
        resolved(untouched, TrailPolicySpec::default()),
    ];
    let reports = trailkeeper::engine::fleet::report_all(&base, &baselines).await;
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

/// A flow log of `traffic` on `vpcs`, delivered to a log group of its own: someone else's, in the
/// default format.
async fn someone_elses_flow_log(aws: &Inspector, account: &str, vpcs: &[String], traffic: TrafficType) {
    aws.ec2
        .create_flow_logs()
        .resource_type(aws_sdk_ec2::types::FlowLogsResourceType::Vpc)
        .set_resource_ids(Some(vpcs.to_vec()))
        .traffic_type(traffic.clone())
        .log_group_name(format!("/someone/{}", traffic.as_str()))
        .deliver_logs_permission_arn(format!("arn:aws:iam::{account}:role/someone"))
        .send()
        .await
        .unwrap();
}

/// 3.3, 3.6 and 3.7 judge the account, whoever made what they read and whatever the baseline
/// manages: Config off in the account fails 3.3 with configRules off; an ACCEPT-only flow log
/// fails 3.7 and someone else's REJECT log (without the baseline's fields) passes it; another
/// customer key without rotation fails 3.6; a region the baseline does not enforce counts.
#[tokio::test]
async fn the_account_wide_controls_judge_the_account_whoever_manages_it() {
    let base = base_config().await;
    let account = new_account();
    let mut baseline = resolved(&account, TrailPolicySpec::default());
    baseline.baseline.spec.flow_logs.enabled = false;
    assert!(!baseline.baseline.spec.config_rules.enabled);
    let aws = inspector(&account).await;
    let vpcs: Vec<String> = aws
        .ec2
        .describe_vpcs()
        .send()
        .await
        .unwrap()
        .vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    assert!(!vpcs.is_empty(), "moto's default VPC");
    someone_elses_flow_log(&aws, &account, &vpcs, TrafficType::Accept).await;
    trailkeeper::engine::fleet::run_all(&base, std::slice::from_ref(&baseline), RunMode::Apply).await;
    let judge = |baseline: ResolvedBaseline| {
        let base = base.clone();
        async move {
            let reports = trailkeeper::engine::fleet::report_all(&base, &[baseline]).await;
            trailkeeper::judge::compliance::evaluate(&reports[0].1.evidence)
        }
    };
    let result = |controls: &[trailkeeper::api::Control], id: &str| {
        let c = controls.iter().find(|c| c.id == id).unwrap();
        (c.result.clone(), c.evidence.clone())
    };

    let controls = judge(baseline.clone()).await;
    let (config, evidence) = result(&controls, "3.3");
    assert_eq!(config, ControlResult::Fail, "{evidence}");
    assert!(
        evidence.contains(&format!("{REGION}: no configuration recorder")),
        "{evidence}"
    );
    let (flow, evidence) = result(&controls, "3.7");
    assert_eq!(flow, ControlResult::Fail, "an ACCEPT-only log: {evidence}");
    assert!(
        evidence.contains(&format!("{REGION}:{} (flow logs of ACCEPT traffic only)", vpcs[0])),
        "{evidence}"
    );
    assert_eq!(result(&controls, "3.6").0, ControlResult::Pass, "the trail key rotates");

    someone_elses_flow_log(&aws, &account, &vpcs, TrafficType::Reject).await;
    let other = aws.kms.create_key().description("someone else's").send().await.unwrap();
    let other = other.key_metadata().unwrap().arn().unwrap().to_string();
    let controls = judge(baseline.clone()).await;
    assert_eq!(
        result(&controls, "3.7").0,
        ControlResult::Pass,
        "someone else's REJECT log: {:?}",
        result(&controls, "3.7")
    );
    let (rotation, evidence) = result(&controls, "3.6");
    assert_eq!(rotation, ControlResult::Fail, "{evidence}");
    assert!(
        evidence.contains(&format!("without rotation: {other}: KeyRotationEnabled=false")),
        "{evidence}"
    );

    // A region the baseline does not enforce: its default VPC has no flow log, Config is off.
    baseline.baseline.spec.compliance_regions.push("us-west-2".into());
    let west: Vec<String> = inspector_in(&account, "us-west-2")
        .await
        .ec2
        .describe_vpcs()
        .send()
        .await
        .unwrap()
        .vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    let controls = judge(baseline).await;
    let (flow, evidence) = result(&controls, "3.7");
    assert_eq!(flow, ControlResult::Fail, "{evidence}");
    assert!(
        evidence.contains(&format!("us-west-2:{} (no flow log)", west[0])),
        "{evidence}"
    );
    let (config, evidence) = result(&controls, "3.3");
    assert_eq!(config, ControlResult::Fail);
    assert!(evidence.contains("2 of 2 regions without a recorder"), "{evidence}");
}

/// Without `complianceRegions`, every region enabled for the account is judged (DescribeRegions),
/// not only the enforced ones: an untouched account's default VPCs fail 3.7 in each.
#[tokio::test]
async fn every_enabled_region_is_judged_when_no_compliance_regions_are_named() {
    let base = base_config().await;
    let account = new_account();
    let mut baseline = resolved(&account, TrailPolicySpec::default());
    baseline.baseline.spec.compliance_regions.clear();
    let reports = trailkeeper::engine::fleet::report_all(&base, &[baseline]).await;
    let report = &reports[0].1;
    assert_eq!(
        report.calls.by_action.get("ec2:DescribeRegions").map(|(n, _)| *n),
        Some(1)
    );
    let regions = match &report.evidence.regions {
        Some(Ok(regions)) => regions,
        other => panic!("the regions were not read: {other:?}"),
    };
    let judged: Vec<&str> = regions.iter().map(|r| r.region.as_str()).collect();
    for region in [REGION, "us-west-2", "eu-west-1"] {
        assert!(judged.contains(&region), "{region} judged: {judged:?}");
    }
    let controls = trailkeeper::judge::compliance::evaluate(&report.evidence);
    let flow = controls.iter().find(|c| c.id == "3.7").unwrap();
    assert_eq!(flow.result, ControlResult::Fail);
    assert!(
        flow.evidence.contains(&format!(
            "in {} regions; without a flow log of REJECT or ALL traffic",
            judged.len()
        )),
        "{}",
        flow.evidence
    );
}

/// 3.3 with someone else's recorder of one resource type fails, naming the recorder and what it
/// lacks; the same recorder of every resource type, delivering, passes (the emulator reports a
/// recording recorder whose bucket admits AWS Config as lastStatus Success, as AWS does after its
/// first delivery: scripts/emulator/trailkeeper_account_wide.py).
#[tokio::test]
async fn a_recorder_of_one_resource_type_fails_3_3() {
    use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, RecordingGroup, ResourceType};
    let base = base_config().await;
    let account = new_account();
    let aws = inspector(&account).await;
    let group = RecordingGroup::builder()
        .all_supported(false)
        .include_global_resource_types(false)
        .resource_types(ResourceType::Bucket)
        .build();
    aws.config
        .put_configuration_recorder()
        .configuration_recorder(
            ConfigurationRecorder::builder()
                .name("buckets-only")
                .role_arn(format!("arn:aws:iam::{account}:role/someone"))
                .recording_group(group)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // AWS Config checks the channel's bucket and its policy (PutDeliveryChannel): someone's own.
    let bucket = format!("someone-{account}");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let delivery = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": format!("arn:aws:s3:::{bucket}")},
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/{account}/Config/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]});
    aws.s3
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(delivery.to_string())
        .send()
        .await
        .unwrap();
    aws.config
        .put_delivery_channel()
        .delivery_channel(
            DeliveryChannel::builder()
                .name("default")
                .s3_bucket_name(&bucket)
                .build(),
        )
        .send()
        .await
        .unwrap();
    aws.config
        .start_configuration_recorder()
        .configuration_recorder_name("buckets-only")
        .send()
        .await
        .unwrap();
    let baseline = resolved(&account, TrailPolicySpec::default());
    assert!(!baseline.baseline.spec.config_rules.enabled);
    let reports = trailkeeper::engine::fleet::report_all(&base, std::slice::from_ref(&baseline)).await;
    let controls = trailkeeper::judge::compliance::evaluate(&reports[0].1.evidence);
    let config = controls.iter().find(|c| c.id == "3.3").unwrap();
    assert_eq!(config.result, ControlResult::Fail);
    assert!(
        config.evidence.contains(&format!(
            "{REGION}: recorder buckets-only: allSupported=false, includeGlobalResourceTypes=false, recording=true, lastStatus=Success"
        )),
        "{}",
        config.evidence
    );
    // The same recorder of every resource type: it passes.
    let everything = RecordingGroup::builder()
        .all_supported(true)
        .include_global_resource_types(true)
        .build();
    aws.config
        .put_configuration_recorder()
        .configuration_recorder(
            ConfigurationRecorder::builder()
                .name("buckets-only")
                .role_arn(format!("arn:aws:iam::{account}:role/someone"))
                .recording_group(everything)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let reports = trailkeeper::engine::fleet::report_all(&base, &[baseline]).await;
    let controls = trailkeeper::judge::compliance::evaluate(&reports[0].1.evidence);
    let config = controls.iter().find(|c| c.id == "3.3").unwrap();
    assert_eq!(config.result, ControlResult::Pass, "{}", config.evidence);
}

/// Runs this build's binary with the emulator's endpoint and static credentials (what a user of
/// the command line sets); returns (exit code, stdout, stderr).
fn trailkeeper_cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The log settings of the README: without `RUST_LOG` only warnings are logged (an apply that
/// writes a whole account logs nothing); `RUST_LOG=info` with `TRAILKEEPER_LOG_FORMAT=json` logs
/// one JSON object a line, each change applied with its account and resource.
#[test]
fn logs_are_warnings_only_by_default_and_json_lines_with_account_and_resource_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let apply = |account: &str, env: &[(&str, &str)]| {
        let manifest = dir.path().join(format!("{account}.yaml"));
        std::fs::write(&manifest, serde_yaml::to_string(&trail_only_baseline(account)).unwrap()).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
            .args(["apply", "-f", manifest.to_str().unwrap()])
            .env("AWS_ENDPOINT_URL", &moto().endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("RUST_LOG")
            .env_remove("TRAILKEEPER_LOG_FORMAT")
            .envs(env.iter().copied())
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let quiet = apply(&new_account(), &[]);
    assert!(!quiet.contains("applied") && !quiet.contains("INFO"), "{quiet}");

    let account = new_account();
    let logged = apply(&account, &[("RUST_LOG", "info"), ("TRAILKEEPER_LOG_FORMAT", "json")]);
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let applied: Vec<&serde_json::Value> = lines.iter().filter(|l| l["fields"]["message"] == "applied").collect();
    assert!(applied.len() > 10, "a fresh account's changes are logged: {logged}");
    for line in applied {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["fields"]["account"], account.as_str(), "{line}");
        assert!(
            line["fields"]["resource"].as_str().is_some_and(|r| !r.is_empty()),
            "{line}"
        );
        assert!(line["fields"]["action"].is_string(), "{line}");
    }
}

/// The command table of the README through the binary: `plan -o json` (exit 2 with changes
/// pending, 0 in sync, 1 on an error), `apply`, `report -o json` (every control of section 3,
/// reads only), `verify -o json` and `--account`, and `crds --dir`.
#[test]
fn the_binary_plans_applies_reports_verifies_and_writes_crds_with_its_exit_codes() {
    let account = new_account();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("baseline.yaml");
    std::fs::write(
        &manifest,
        serde_yaml::to_string(&trail_only_baseline(&account)).unwrap(),
    )
    .unwrap();
    let file = manifest.to_str().unwrap();

    let (code, out, err) = trailkeeper_cli(&["plan", "-f", file, "-o", "json"]);
    assert_eq!(code, 2, "a fresh account has changes pending: {err}");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("plan -o json prints JSON");
    assert_eq!(plan["accounts"][0]["accountId"], account.as_str());
    assert_eq!(plan["accounts"][0]["inSync"], false);

    let (code, out, err) = trailkeeper_cli(&["plan", "-f", file, "-o", "markdown"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        out.contains(&account) && out.lines().any(|l| l.starts_with("| ") && l.ends_with(" |")),
        "plan -o markdown prints a table per account: {out}"
    );

    let (code, out, err) = trailkeeper_cli(&["apply", "-f", file]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(" reads") && out.contains(" writes"),
        "apply prints the calls it made: {out}"
    );
    let (code, out, err) = trailkeeper_cli(&["plan", "-f", file]);
    assert_eq!(code, 0, "in sync after apply: {out}{err}");

    let (code, out, err) = trailkeeper_cli(&["report", "-f", file, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("report -o json prints JSON");
    assert_eq!(report[0]["account"], account.as_str());
    let ids: Vec<&str> = report[0]["compliance"]["controls"]
        .as_array()
        .expect("the controls")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    let expected: Vec<String> = (1..=9)
        .map(|i| format!("3.{i}"))
        .chain((1..=15).map(|i| format!("4.{i}")))
        .collect();
    assert_eq!(ids, expected);

    // No digest in the range proves nothing: not valid, exit 1, and the JSON says how much was read.
    let (code, out, err) = trailkeeper_cli(&[
        "verify",
        "-f",
        file,
        "--start-time",
        "2020-01-01T00:00:00Z",
        "-o",
        "json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let verified: serde_json::Value = serde_json::from_str(&out).expect("verify -o json prints JSON");
    assert_eq!(verified[0]["valid"], false);
    assert_eq!(verified[0]["report"]["digests"], 0);
    let (code, _, err) = trailkeeper_cli(&[
        "verify",
        "-f",
        file,
        "--start-time",
        "2020-01-01T00:00:00Z",
        "--account",
        "999999999999",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no LoggingBaseline of the manifests is for account 999999999999"),
        "{err}"
    );

    // A baseline whose credentials reach another account: plan exits 1 and says why.
    let other = new_account();
    let mut wrong = trail_only_baseline(&account);
    wrong.spec.account_id = other.clone();
    std::fs::write(&manifest, serde_yaml::to_string(&wrong).unwrap()).unwrap();
    let (code, out, err) = trailkeeper_cli(&["plan", "-f", file]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains(&format!("not to spec.accountId {other}")),
        "{out}{err}"
    );

    let crds = dir.path().join("crds");
    let (code, _, err) = trailkeeper_cli(&["crds", "--dir", crds.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for (name, yaml) in trailkeeper::api::crd_files().unwrap() {
        let written = std::fs::read_to_string(crds.join(&name)).unwrap_or_default();
        assert_eq!(written, yaml, "crds --dir wrote {name} as `trailkeeper crds` prints it");
    }
    assert_eq!(std::fs::read_dir(&crds).unwrap().count(), 5);
}

/// tests/common's baseline with only the trail, its key and storage (the regional parts and the
/// audit queries have tests of their own).
fn trail_only_baseline(account: &str) -> trailkeeper::api::LoggingBaseline {
    let mut b = baseline(account);
    b.spec = trail_only(account);
    b
}

/// The binary with a pseudo-terminal for its stdin, stdout and stderr (util-linux's `script`): what
/// a person at a terminal sees, both streams in one.
fn on_a_terminal(args: &[&str]) -> std::process::Output {
    let command = std::iter::once(env!("CARGO_BIN_EXE_trailkeeper"))
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("util-linux's script runs")
}

/// `verify` on a terminal (a pseudo-terminal from util-linux's `script`) redraws one line of
/// stderr with the files verified so far and erases it at the end; piped, it prints no progress.
#[tokio::test(flavor = "multi_thread")]
async fn verify_shows_its_progress_on_a_terminal_and_none_when_piped() {
    let account = new_account();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("baseline.yaml");
    let baseline = trail_only_baseline(&account);
    std::fs::write(&manifest, serde_yaml::to_string(&baseline).unwrap()).unwrap();
    let file = manifest.to_str().unwrap().to_string();
    let (code, _, err) = tokio::task::block_in_place(|| trailkeeper_cli(&["apply", "-f", &file]));
    assert_eq!(code, 0, "{err}");

    // CloudTrail's layout in the trail's bucket: 20 hourly digests of 40 log files each.
    let spec = &baseline.spec;
    let aws = inspector(&account).await;
    let root = match spec.storage.key_prefix.trim_end_matches('/') {
        "" => format!("AWSLogs/{account}/"),
        p => format!("{p}/AWSLogs/{account}/"),
    };
    let now = now_secs();
    let end = now - now % 3600 - 3600;
    let hours = 20;
    let written = chain::write_chain(
        &aws,
        chain::ChainSpec {
            bucket: &trailkeeper::desired::trail_bucket_name(spec),
            root: &root,
            account: &account,
            region: REGION,
            end,
            hours,
            files_per_digest: 40,
        },
    )
    .await;
    let start = aws_smithy_types::DateTime::from_secs(end - hours * 3600)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let end = aws_smithy_types::DateTime::from_secs(end)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let args = ["verify", "-f", &file, "--start-time", &start, "--end-time", &end];

    let on_terminal = tokio::task::block_in_place(|| on_a_terminal(&args));
    let shown = String::from_utf8_lossy(&on_terminal.stdout).to_string();
    assert_eq!(on_terminal.status.code(), Some(0), "{shown}");
    let counts: Vec<(u64, u64)> = shown
        .split("\r\x1b[K")
        .filter_map(|line| line.split_once(": verify: ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.strip_suffix(" files"))
        .filter_map(|fraction| fraction.split_once('/'))
        .map(|(done, total)| (done.parse().unwrap(), total.parse().unwrap()))
        .collect();
    assert!(
        counts.iter().any(|&(done, total)| done > 0 && done < total),
        "no progress line part way through: {shown:?}"
    );
    assert!(
        counts.windows(2).all(|w| w[0].0 <= w[1].0),
        "the count goes back: {counts:?}"
    );
    assert!(counts.iter().all(|&(done, total)| done <= total && total <= 20 + 800));
    assert!(shown.contains("20 digest files and 800 log files checked"), "{shown}");
    let summary = shown.find("digest files and").unwrap();
    assert!(
        shown[..summary].rfind("\r\x1b[K") > shown[..summary].rfind(" files"),
        "the progress line is erased before the summary: {shown:?}"
    );

    let (code, out, err) = tokio::task::block_in_place(|| trailkeeper_cli(&args));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("20 digest files and 800 log files checked"), "{out}");
    assert!(
        !err.contains('\r') && !err.contains(": verify: "),
        "progress on a pipe: {err:?}"
    );

    // plan on a terminal: the accounts done of N, erased before its summary; piped: none.
    let planned = tokio::task::block_in_place(|| on_a_terminal(&["plan", "-f", &file]));
    let shown_plan = String::from_utf8_lossy(&planned.stdout).to_string();
    assert_eq!(planned.status.code(), Some(0), "{shown_plan}");
    assert!(
        shown_plan.contains("\r\x1b[Kplan: ") && shown_plan.contains("/1 accounts"),
        "{shown_plan:?}"
    );
    let (code, _, err) = tokio::task::block_in_place(|| trailkeeper_cli(&["plan", "-f", &file]));
    assert_eq!(code, 0);
    assert!(
        !err.contains('\r') && !err.contains("accounts"),
        "progress on a pipe: {err:?}"
    );

    // The auditor's page with the same logs verified (the last 24 hours hold the 20 digests).
    let (code, page, err) =
        tokio::task::block_in_place(|| trailkeeper_cli(&["report", "-f", &file, "-o", "html", "--verify-hours", "24"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        page.contains("20 digest files and 800 log files of the last 24 h valid\">VALID</td>"),
        "{page}"
    );

    // The binary on a tampered chain, for the account selected: one log file rewritten is
    // Modified, exit 1, in text and in JSON.
    let tampered = &written.log_files[written.log_files.len() / 2];
    aws.s3
        .put_object()
        .bucket(trailkeeper::desired::trail_bucket_name(spec))
        .key(tampered)
        .body(chain::gzip(b"{\"Records\": []}").into())
        .send()
        .await
        .unwrap();
    let selected = [&args[..], &["--account", account.as_str()]].concat();
    let (code, out, err) = tokio::task::block_in_place(|| trailkeeper_cli(&selected));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(tampered.as_str()) && out.contains("Modified"), "{out}");
    let as_json = [&selected[..], &["-o", "json"]].concat();
    let (code, out, err) = tokio::task::block_in_place(|| trailkeeper_cli(&as_json));
    assert_eq!(code, 1, "{out}{err}");
    let verified: serde_json::Value = serde_json::from_str(&out).expect("verify -o json prints JSON");
    assert_eq!(verified[0]["valid"], false);
    assert_eq!(
        verified[0]["report"]["problems"],
        serde_json::json!([{"kind": "log", "key": tampered, "verdict": "modified",
            "detail": verified[0]["report"]["problems"][0]["detail"]}]),
        "{out}"
    );
}

/// A loopback listener that Chromium uses as its proxy for every request that would leave the
/// machine: it records each request's first line (`GET http://host/...`, `CONNECT host:443`) and
/// answers none.
fn request_recorder() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::BufRead as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut line = String::new();
            let _ = std::io::BufReader::new(stream).read_line(&mut line);
            recorded.lock().unwrap().push(line.trim_end().to_string());
        }
    });
    (address, requests)
}

/// Chromium's own requests, made for a blank page too (network time, the component updater, the
/// account service), whatever the page: not the page's.
fn chromiums_own(request: &str) -> bool {
    let target = request.split_whitespace().nth(1).unwrap_or_default();
    let host = target
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    ["clients2.google.com", "update.googleapis.com", "accounts.google.com"].contains(&host)
}

/// Pixels of `rgb` in an RGB(A) PNG, and how many of them lie in the top `fraction` of the image.
fn pixels_of(png_path: &std::path::Path, rgb: [u8; 3], fraction: f64) -> (usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("a screenshot in {other:?}"),
    };
    let top = (info.height as f64 * fraction) as usize;
    let (mut all, mut in_top) = (0, 0);
    for (row, line) in buffer[..info.buffer_size()].chunks(info.line_size).enumerate() {
        for px in line.chunks(channels) {
            if px[..3] == rgb {
                all += 1;
                if row < top {
                    in_top += 1;
                }
            }
        }
    }
    (all, in_top)
}

/// The number of pages of `html` printed to PDF by headless Chromium (its page objects).
fn printed_pages(chromium: &str, html: &std::path::Path, dir: &std::path::Path) -> usize {
    let pdf = html.with_extension("pdf");
    let out = std::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        .arg(format!("--user-data-dir={}", dir.join("print-profile").display()))
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap_or_else(|e| panic!("{chromium}: {e}"));
    let bytes =
        std::fs::read(&pdf).unwrap_or_else(|e| panic!("no PDF ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let text = String::from_utf8_lossy(&bytes);
    text.match_indices("/Type /Page")
        .filter(|(i, _)| !text[i + 10..].starts_with('s'))
        .count()
}

/// `report -o html` for two accounts, one in line and one untouched, rendered by headless
/// Chromium: the screenshot shows the matrix (PASS cells green and FAIL cells red in its upper
/// part), and the page asks the network for nothing (every request would reach a counting proxy;
/// none does), nor names anything to fetch. Printed to PDF, each account's expandable row shows its
/// evidence (README: "readable printed").
#[test]
fn the_html_report_renders_its_matrix_in_chromium_and_fetches_nothing() {
    let chromium = std::env::var("TRAILKEEPER_CHROMIUM")
        .expect("scripts/test.sh sets TRAILKEEPER_CHROMIUM (scripts/ensure-chromium.sh)");
    let (converged, untouched) = (new_account(), new_account());
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, accounts: &[&str]| {
        let path = dir.path().join(name);
        let docs: Vec<String> = accounts
            .iter()
            .map(|a| {
                let mut b = trail_only_baseline(a);
                b.metadata.name = Some(format!("account-{a}"));
                serde_yaml::to_string(&b).unwrap()
            })
            .collect();
        std::fs::write(&path, docs.join("---\n")).unwrap();
        path.to_str().unwrap().to_string()
    };
    let one = write("one.yaml", &[&converged]);
    let both = write("both.yaml", &[&converged, &untouched]);
    let (code, _, err) = trailkeeper_cli(&["apply", "-f", &one]);
    assert_eq!(code, 0, "{err}");
    let (code, page, err) = trailkeeper_cli(&["report", "-f", &both, "-o", "html"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = trailkeeper_cli(&["plan", "-f", &both, "-o", "html"]);
    assert_eq!((code, out.as_str()), (2, ""), "html is report's alone: {err}");
    assert!(err.contains("-o html is for `report`"), "{err}");
    for fetching in [
        "<script", "<link", "<img", "<iframe", "src=", "url(", "@import", "http://", "https://",
    ] {
        assert!(
            !page.contains(fetching),
            "the page names something to fetch: {fetching}"
        );
    }
    assert_eq!(
        page.matches("<tr><td><a href=\"#a-").count(),
        2,
        "a matrix row per account"
    );
    let html = dir.path().join("report.html");
    std::fs::write(&html, &page).unwrap();

    let (proxy, requests) = request_recorder();
    let screenshot = dir.path().join("report.png");
    let out = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--window-size=1400,1000",
        ])
        .arg(format!("--proxy-server=http://{proxy}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap_or_else(|e| panic!("{chromium}: {e}"));
    assert!(
        screenshot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (pass, pass_top) = pixels_of(&screenshot, [0xda, 0xfb, 0xe1], 0.5);
    let (fail, fail_top) = pixels_of(&screenshot, [0xff, 0xeb, 0xe9], 0.5);
    assert!(
        pass_top > 2_000,
        "PASS cells of the matrix: {pass_top} green pixels in the upper half ({pass} in all)"
    );
    assert!(
        fail_top > 2_000,
        "FAIL cells of the matrix: {fail_top} red pixels in the upper half ({fail} in all)"
    );
    // Printed, each account's expandable row shows its evidence: the page prints on more pages
    // than the same page without its print rules (where the closed rows stay closed).
    let printed = printed_pages(&chromium, &html, dir.path());
    let without = dir.path().join("without-print-rules.html");
    std::fs::write(&without, page.replace("@media print{", "@media not all{")).unwrap();
    let closed = printed_pages(&chromium, &without, dir.path());
    println!("printed: {printed} pages; without the print rules: {closed}");
    assert!(
        printed > closed,
        "the evidence is not printed: {printed} pages, {closed} without the print rules"
    );

    let pages: Vec<String> = requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !chromiums_own(r))
        .cloned()
        .collect();
    assert!(pages.is_empty(), "the page reached for the network: {pages:?}");
}

//! AWS Security Hub findings against the moto server, with Security Hub's rules
//! (scripts/emulator/trailkeeper_securityhub.py): after a converge one finding per account and
//! control, PASSED/FAILED as `report` says; a tamper FAILED and its repair PASSED with the same Id;
//! a deleted baseline's findings archived; an export in line imports nothing; batches of at most
//! 100 paced within the quotas; and the emulator refusing what Security Hub refuses.

mod common;

use std::collections::BTreeMap;

use aws_sdk_securityhub::types::{AwsSecurityFinding, AwsSecurityFindingFilters, StringFilter, StringFilterComparison};
use common::*;
use trailkeeper::api::{LoggingBaselineSpec, LoggingBaselineStatus, RetentionPolicySpec, TrailPolicySpec};
use trailkeeper::aws::{AccountClients, CallRecorder};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::desired::findings::{FindingsInput, FindingsTarget, findings};
use trailkeeper::engine::account::{AccountReport, ReconcileOptions, RunMode, reconcile_account};

fn clients(spec: &LoggingBaselineSpec, base: &aws_types::SdkConfig, calls: &CallRecorder) -> AccountClients {
    AccountClients::new(base, &spec.primary_region, spec.credentials.as_ref(), calls.clone())
}

async fn reconcile(spec: &LoggingBaselineSpec, mode: RunMode) -> (AccountReport, LoggingBaselineStatus) {
    let (policy, retention) = (TrailPolicySpec::default(), RetentionPolicySpec::default());
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: &policy,
        retention: &retention,
    };
    let base = base_config().await;
    let report = Box::pin(reconcile_account(
        clients(spec, &base, &CallRecorder::new()),
        &specs,
        ReconcileOptions::new(mode),
    ))
    .await;
    let status = trailkeeper::controller::status::from_report(
        &report,
        None,
        Some(1),
        "2026-01-01T00:00:00Z",
        &retention,
        "default",
    );
    (report, status)
}

/// Exports the findings of `status`; returns the outcome and the calls it made.
async fn export(
    spec: &LoggingBaselineSpec,
    status: &LoggingBaselineStatus,
) -> (
    Result<trailkeeper::api::SecurityHubStatus, trailkeeper::aws::AwsError>,
    trailkeeper::aws::CallCounts,
) {
    let policy = TrailPolicySpec::default();
    let desired = findings(&FindingsInput {
        spec,
        trail_policy: &policy,
        baseline: "accounts/payments",
        status,
    });
    let calls = CallRecorder::new();
    let target = FindingsTarget::of(spec).expect("securityHub enabled");
    let clients = clients(spec, &base_config().await, &calls);
    let outcome = Box::pin(trailkeeper::engine::findings::export(&clients, &target, &desired)).await;
    (outcome, calls.snapshot())
}

async fn enable_security_hub(aws: &Inspector) {
    aws.securityhub.enable_security_hub().send().await.unwrap();
}

/// Every finding of trailkeeper's in the account's Security Hub, by Id.
async fn findings_in_hub(aws: &Inspector) -> BTreeMap<String, AwsSecurityFinding> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = tokio::spawn(
            aws.securityhub
                .get_findings()
                .filters(
                    AwsSecurityFindingFilters::builder()
                        .generator_id(
                            StringFilter::builder()
                                .value("trailkeeper/")
                                .comparison(StringFilterComparison::Prefix)
                                .build(),
                        )
                        .build(),
                )
                .set_next_token(token.take())
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        for f in page.findings() {
            out.insert(f.id().unwrap_or_default().to_string(), f.clone());
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return out,
        }
    }
}

fn compliance_of(f: &AwsSecurityFinding) -> &str {
    f.compliance()
        .and_then(|c| c.status())
        .map(|s| s.as_str())
        .unwrap_or_default()
}

fn workflow_of(f: &AwsSecurityFinding) -> &str {
    f.workflow()
        .and_then(|w| w.status())
        .map(|s| s.as_str())
        .unwrap_or_default()
}

fn cis_id(account: &str, control: &str) -> String {
    format!("trailkeeper/{account}/cis-aws-foundations-benchmark/v3.0.0/{control}")
}

#[tokio::test]
async fn findings_follow_the_verdicts_through_a_tamper_and_its_repair_and_are_archived_at_the_end() {
    let account = new_account();
    let aws = inspector(&account).await;
    enable_security_hub(&aws).await;
    let mut spec = trail_only(&account);
    spec.security_hub.enabled = true;

    // After a converge: one finding per control (and delivery, duplicate trails), as report says.
    let (report, status) = reconcile(&spec, RunMode::Apply).await;
    assert!(!report.failed(), "{:?}", report.components);
    let (outcome, calls) = export(&spec, &status).await;
    let exported = outcome.expect("exported");
    assert_eq!(
        calls.by_action.get("securityhub:BatchImportFindings").map(|c| c.0),
        Some(1)
    );
    let hub = findings_in_hub(&aws).await;
    let compliance = status.compliance.clone().expect("judged");
    assert_eq!(exported.findings as usize, hub.len());
    for control in &compliance.controls {
        let f = hub
            .get(&cis_id(&account, &control.id))
            .unwrap_or_else(|| panic!("{}: no finding", control.id));
        let expected = match control.result {
            trailkeeper::api::ControlResult::Pass => "PASSED",
            trailkeeper::api::ControlResult::Fail => "FAILED",
            trailkeeper::api::ControlResult::NotApplicable => "NOT_AVAILABLE",
        };
        assert_eq!(compliance_of(f), expected, "{}: {}", control.id, control.evidence);
        assert_eq!(f.aws_account_id(), Some(account.as_str()));
        assert_eq!(
            f.product_arn(),
            Some(format!("arn:aws:securityhub:{REGION}:{account}:product/{account}/default").as_str())
        );
        // A passing control is resolved; a failing one stays NEW for the security team.
        let expected_workflow = if expected == "PASSED" { "RESOLVED" } else { "NEW" };
        assert_eq!(workflow_of(f), expected_workflow, "{}", control.id);
    }
    assert!(hub.contains_key(&format!("trailkeeper/{account}/duplicate-trails")));
    let validation = cis_id(&account, "3.2");
    assert_eq!(compliance_of(&hub[&validation]), "PASSED");

    // The next reconcile reads the new trail's deliveries (AwaitingFirstDelivery until then); then,
    // in line: one read, nothing imported.
    let (_, status) = reconcile(&spec, RunMode::Apply).await;
    export(&spec, &status).await.0.expect("exported");
    let (_, status) = reconcile(&spec, RunMode::Apply).await;
    let (again, calls) = export(&spec, &status).await;
    assert_eq!(again.expect("in line").imported, 0);
    assert_eq!(calls.writes, 0, "{:?}", calls.by_action);
    assert_eq!(calls.by_action.get("securityhub:GetFindings").map(|c| c.0), Some(1));

    // Tampered with (log file validation off), observed: the finding of 3.2 fails, same Id.
    aws.cloudtrail
        .update_trail()
        .name(trailkeeper::desired::trail_arn(&spec))
        .enable_log_file_validation(false)
        .send()
        .await
        .unwrap();
    let before = findings_in_hub(&aws).await;
    let (_, tampered) = reconcile(&spec, RunMode::Plan).await;
    let (outcome, _) = export(&spec, &tampered).await;
    outcome.expect("exported");
    let hub = findings_in_hub(&aws).await;
    // Only what the tamper changed is imported: 3.2, and the deliveries (digests are no longer
    // expected without log file validation).
    let changed: Vec<&String> = hub
        .keys()
        .filter(|id| hub[*id].updated_at() != before[*id].updated_at())
        .collect();
    assert_eq!(
        changed,
        [
            &format!("trailkeeper/{account}/cis-aws-foundations-benchmark/v3.0.0/3.2"),
            &format!("trailkeeper/{account}/delivery")
        ]
    );
    assert_eq!(compliance_of(&hub[&validation]), "FAILED");
    assert_eq!(
        workflow_of(&hub[&validation]),
        "NEW",
        "Security Hub reopens a finding that fails again"
    );
    let remediation = hub[&validation]
        .remediation()
        .and_then(|r| r.recommendation())
        .and_then(|r| r.text())
        .unwrap_or_default()
        .to_string();
    assert!(remediation.contains("next reconcile repairs"), "{remediation}");

    // Repaired: PASSED again under the same Id, and resolved.
    let (_, repaired) = reconcile(&spec, RunMode::Apply).await;
    let (outcome, _) = export(&spec, &repaired).await;
    let outcome = outcome.expect("exported");
    assert_eq!((outcome.imported, outcome.resolved), (1, 1));
    let hub = findings_in_hub(&aws).await;
    assert_eq!(compliance_of(&hub[&validation]), "PASSED");
    assert_eq!(workflow_of(&hub[&validation]), "RESOLVED");
    assert_eq!(
        hub.len(),
        exported.findings as usize,
        "no finding was added: the Ids are stable"
    );

    // The baseline deleted: its findings archived.
    let target = FindingsTarget::of(&spec).unwrap();
    let base = base_config().await;
    let archived = trailkeeper::engine::findings::archive_all(&clients(&spec, &base, &CallRecorder::new()), &target)
        .await
        .expect("archived");
    assert_eq!(archived as usize, hub.len());
    let hub = findings_in_hub(&aws).await;
    assert!(
        hub.values()
            .all(|f| f.record_state().map(|r| r.as_str()) == Some("ARCHIVED"))
    );
}

#[tokio::test]
async fn without_security_hub_enabled_the_export_fails_saying_how_to_enable_it() {
    let account = new_account();
    let mut spec = trail_only(&account);
    spec.security_hub.enabled = true;
    let (_, status) = reconcile(&spec, RunMode::Apply).await;
    let (outcome, _) = export(&spec, &status).await;
    let e = outcome.expect_err("Security Hub is not enabled");
    assert_eq!(e.kind, trailkeeper::aws::ErrorKind::Precondition);
    assert!(
        e.to_string()
            .contains("aws securityhub enable-security-hub --region us-east-1"),
        "{e}"
    );
}

/// 250 findings: three imports of at most 100, paced under 10 a second; three paced reads after.
#[tokio::test]
async fn findings_go_in_batches_of_100_within_the_quotas() {
    let account = new_account();
    let aws = inspector(&account).await;
    enable_security_hub(&aws).await;
    let mut spec = trail_only(&account);
    spec.security_hub.enabled = true;
    let target = FindingsTarget::of(&spec).unwrap();
    let one = findings(&FindingsInput {
        spec: &spec,
        trail_policy: &TrailPolicySpec::default(),
        baseline: "accounts/payments",
        status: &LoggingBaselineStatus {
            compliance: Some(trailkeeper::api::ComplianceStatus::default()),
            ..Default::default()
        },
    })
    .remove(0);
    let many: Vec<_> = (0..250)
        .map(|i| {
            let mut f = one.clone();
            f.id = format!("{}-{i}", f.id);
            f
        })
        .collect();
    let calls = CallRecorder::new();
    let base = base_config().await;
    let started = std::time::Instant::now();
    let status = trailkeeper::engine::findings::export(&clients(&spec, &base, &calls), &target, &many)
        .await
        .expect("exported without being throttled");
    assert_eq!(status.imported, 250);
    let counts = calls.snapshot();
    assert_eq!(
        counts.by_action.get("securityhub:BatchImportFindings").map(|c| c.0),
        Some(3)
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "paced: {:?}",
        started.elapsed()
    );
    let calls = CallRecorder::new();
    let again = trailkeeper::engine::findings::export(&clients(&spec, &base, &calls), &target, &many)
        .await
        .expect("in line");
    assert_eq!(again.imported, 0);
    assert_eq!(
        calls.snapshot().by_action.get("securityhub:GetFindings").map(|c| c.0),
        Some(3)
    );
}

/// Security Hub's rules, in the emulator both ways.
#[tokio::test]
async fn the_emulator_judges_findings_as_security_hub_does() {
    use aws_sdk_securityhub::types::{
        AwsSecurityFindingIdentifier, Compliance, ComplianceStatus, RecordState, Resource, Severity, SeverityLabel,
        WorkflowStatus, WorkflowUpdate,
    };
    let account = new_account();
    let aws = inspector(&account).await;
    // Days before now (Security Hub no longer returns findings updated more than 90 days ago).
    let days_ago = |n: i64| (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * n)).to_string();
    let (d4, d3, d2, d1) = (days_ago(4), days_ago(3), days_ago(2), days_ago(1));
    let product = format!("arn:aws:securityhub:{REGION}:{account}:product/{account}/default");
    let finding = |id: &str, updated: &str, status: ComplianceStatus| {
        AwsSecurityFinding::builder()
            .schema_version("2018-10-08")
            .id(id)
            .product_arn(&product)
            .generator_id("test/generator")
            .aws_account_id(&account)
            .types("Software and Configuration Checks")
            .created_at(days_ago(5))
            .updated_at(updated)
            .severity(Severity::builder().label(SeverityLabel::Low).build())
            .title("t")
            .description("d")
            .compliance(Compliance::builder().status(status).build())
            .resources(
                Resource::builder()
                    .r#type("AwsAccount")
                    .id(format!("AWS::::Account:{account}"))
                    .build(),
            )
            .build()
    };
    // Each call a task of its own: Security Hub's types are large (as in the product).
    let import = |f: AwsSecurityFinding| {
        let call = aws.securityhub.batch_import_findings().findings(f).send();
        async move { tokio::spawn(call).await.unwrap().unwrap() }
    };
    // Security Hub not enabled: the finding fails with InvalidAccess.
    let refused = import(finding("a", &d4, ComplianceStatus::Passed)).await;
    assert_eq!(refused.failed_count(), Some(1));
    assert_eq!(refused.failed_findings()[0].error_code(), Some("InvalidAccess"));
    enable_security_hub(&aws).await;
    assert_eq!(
        import(finding("a", &d4, ComplianceStatus::Passed)).await.failed_count(),
        Some(0)
    );
    // Another account's finding, another product, a missing attribute, a title too long: refused.
    let mut other = finding("b", &d4, ComplianceStatus::Passed);
    other.aws_account_id = Some("999999999999".into());
    let mut foreign = finding("c", &d4, ComplianceStatus::Passed);
    foreign.product_arn = Some(format!(
        "arn:aws:securityhub:eu-west-1:{account}:product/{account}/default"
    ));
    let mut untitled = finding("d", &d4, ComplianceStatus::Passed);
    untitled.title = None;
    let mut long = finding("e", &d4, ComplianceStatus::Passed);
    long.title = Some("t".repeat(257));
    for (f, code) in [
        (other, "AccessDenied"),
        (foreign, "AccessDenied"),
        (untitled, "InvalidInput"),
        (long, "InvalidInput"),
    ] {
        let out = import(f).await;
        assert_eq!(out.failed_findings().first().and_then(|f| f.error_code()), Some(code));
    }
    // 101 findings: the request is refused.
    let batch: Vec<_> = (0..101)
        .map(|i| finding(&format!("n{i}"), &d4, ComplianceStatus::Passed))
        .collect();
    let too_many = tokio::spawn(aws.securityhub.batch_import_findings().set_findings(Some(batch)).send())
        .await
        .unwrap();
    assert!(too_many.is_err());
    // Resolved, then an update that is not later: ignored; a later one that fails: reopened (NEW).
    aws.securityhub
        .batch_update_findings()
        .finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id("a")
                .product_arn(&product)
                .build(),
        )
        .workflow(WorkflowUpdate::builder().status(WorkflowStatus::Resolved).build())
        .send()
        .await
        .unwrap();
    import(finding("a", &d4, ComplianceStatus::Failed)).await;
    let hub = findings_in_hub_all(&aws).await;
    assert_eq!(
        (compliance_of(&hub["a"]), workflow_of(&hub["a"])),
        ("PASSED", "RESOLVED")
    );
    import(finding("a", &d3, ComplianceStatus::Failed)).await;
    let hub = findings_in_hub_all(&aws).await;
    assert_eq!((compliance_of(&hub["a"]), workflow_of(&hub["a"])), ("FAILED", "NEW"));
    // Archived, then active again: reopened as well.
    aws.securityhub
        .batch_update_findings()
        .finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id("a")
                .product_arn(&product)
                .build(),
        )
        .workflow(WorkflowUpdate::builder().status(WorkflowStatus::Notified).build())
        .send()
        .await
        .unwrap();
    let mut archived = finding("a", &d2, ComplianceStatus::Failed);
    archived.record_state = Some(RecordState::Archived);
    import(archived).await;
    import(finding("a", &d1, ComplianceStatus::Failed)).await;
    assert_eq!(workflow_of(&findings_in_hub_all(&aws).await["a"]), "NEW");
    // An unknown finding is not resolved.
    let unknown = aws
        .securityhub
        .batch_update_findings()
        .finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id("nope")
                .product_arn(&product)
                .build(),
        )
        .workflow(WorkflowUpdate::builder().status(WorkflowStatus::Resolved).build())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.unprocessed_findings().len(), 1);
    // Security Hub deletes findings 90 days after their last update.
    import(finding("old", &days_ago(91), ComplianceStatus::Passed)).await;
    import(finding("recent", &days_ago(89), ComplianceStatus::Passed)).await;
    let hub = findings_in_hub_all(&aws).await;
    assert!(
        !hub.contains_key("old") && hub.contains_key("recent"),
        "{:?}",
        hub.keys()
    );
}

/// GetFindings beyond its burst (6) is throttled (LimitExceededException); paced, it is not.
#[tokio::test]
async fn the_emulator_throttles_get_findings_past_its_burst() {
    let account = new_account();
    let aws = inspector(&account).await;
    enable_security_hub(&aws).await;
    let config = base_config()
        .await
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let hub = aws_sdk_securityhub::Client::from_conf(
        aws_sdk_securityhub::config::Builder::from(&config)
            .interceptor(MotoAccount(account.clone()))
            .build(),
    );
    let mut refused = None;
    for i in 0..7 {
        if let Err(e) = hub.get_findings().send().await {
            refused = Some((i, e.into_service_error()));
            break;
        }
    }
    let (at, e) = refused.expect("the seventh read in a burst is throttled");
    assert_eq!(at, 6);
    assert!(e.is_limit_exceeded_exception(), "{e:?}");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    hub.get_findings()
        .send()
        .await
        .expect("a read a third of a second later passes");
}

/// Every finding of the account's hub, any generator, by Id.
async fn findings_in_hub_all(aws: &Inspector) -> BTreeMap<String, AwsSecurityFinding> {
    let page = tokio::spawn(aws.securityhub.get_findings().send())
        .await
        .unwrap()
        .unwrap();
    page.findings()
        .iter()
        .map(|f| (f.id().unwrap_or_default().to_string(), f.clone()))
        .collect()
}

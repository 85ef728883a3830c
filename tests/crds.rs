//! The generated CRDs: `crds/` is current, and every CEL rule answers as the API server would,
//! both ways (client-side CEL evaluation of kube 5).

use trailkeeper::api::{LoggingBaseline, RetentionPolicy, TrailPolicy};

#[test]
fn the_crds_directory_holds_what_trailkeeper_crds_prints() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let files = trailkeeper::api::crd_files().unwrap();
    assert_eq!(files.len(), 3);
    for (name, yaml) in files {
        let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            on_disk == yaml,
            "crds/{name} is stale: run `cargo run -- crds --dir crds` and commit"
        );
    }
    let extra: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| !n.ends_with(".trailkeeper.io.yaml"))
        .collect();
    assert!(
        extra.is_empty(),
        "files in crds/ that trailkeeper does not generate: {extra:?}"
    );
}

#[test]
fn the_crds_carry_names_columns_and_the_cel_rules() {
    let yaml = trailkeeper::api::crds_yaml().unwrap();
    for needle in [
        "self.source != 'Existing' || has(self.existingTrailArn)",
        "self.mode != 'Compliance' || self.acknowledgeIrreversible",
        "self == oldSelf",
        "self in [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]",
        "oldSelf.trailLogs.expireAfterDays",
        "oldSelf.trailLogs.objectLock.defaultRetentionDays",
        "self.approval.reference != oldSelf.approval.reference",
        "- lb",
        "- tp",
        "- rp",
        "- trailkeeper",
        "name: Account",
        "name: Region",
        "name: Ready",
        "name: Age",
        "status: {}",
    ] {
        assert!(yaml.contains(needle), "the CRDs lack {needle:?}");
    }
}

fn baseline(extra: &str) -> LoggingBaseline {
    serde_yaml::from_str(&format!(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaseline\nmetadata: {{name: b, namespace: n}}\nspec:\n  accountId: \"111122223333\"\n  primaryRegion: us-east-1\n{extra}"
    ))
    .unwrap()
}

fn retention(spec: &str) -> RetentionPolicy {
    serde_yaml::from_str(&format!(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: RetentionPolicy\nmetadata: {{name: default, namespace: n}}\nspec:\n{spec}"
    ))
    .unwrap()
}

fn trail_policy(spec: &str) -> TrailPolicy {
    serde_yaml::from_str(&format!(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: TrailPolicy\nmetadata: {{name: default, namespace: n}}\nspec:\n{spec}"
    ))
    .unwrap()
}

fn rejected_with<T>(result: Result<(), T>, needle: &str)
where
    T: std::fmt::Debug,
{
    let err = result.expect_err("the rule should reject this");
    let text = format!("{err:?}");
    assert!(text.contains(needle), "rejected, but not for {needle:?}: {text}");
}

#[test]
fn an_existing_trail_needs_its_arn() {
    rejected_with(
        baseline("  trail: {source: Existing}").validate_cel(),
        "existingTrailArn",
    );
    baseline("  trail: {source: Existing, existingTrailArn: 'arn:aws:cloudtrail:us-east-1:111122223333:trail/org'}")
        .validate_cel()
        .unwrap();
    baseline("  trail: {source: Managed}").validate_cel().unwrap();
}

#[test]
fn the_account_id_is_immutable() {
    let old = baseline("");
    let mut new = old.clone();
    new.validate_cel_update(&old).unwrap();
    new.spec.account_id = "999988887777".into();
    rejected_with(new.validate_cel_update(&old), "accountId is immutable");
}

#[test]
fn the_flow_log_aggregation_interval_is_60_or_600() {
    baseline("  flowLogs: {maxAggregationInterval: 60}")
        .validate_cel()
        .unwrap();
    rejected_with(
        baseline("  flowLogs: {maxAggregationInterval: 300}").validate_cel(),
        "60 or 600",
    );
}

#[test]
fn the_results_bucket_may_not_be_the_trail_or_access_log_bucket() {
    for name in [
        "trailkeeper-111122223333-cloudtrail-us-east-1",
        "trailkeeper-111122223333-cloudtrail-access-us-east-1",
    ] {
        rejected_with(
            baseline(&format!("  auditQueries: {{resultsBucketName: {name}}}")).validate_cel(),
            "a bucket of their own",
        );
    }
    rejected_with(
        baseline("  storage: {bucketName: my-logs}\n  auditQueries: {resultsBucketName: my-logs}").validate_cel(),
        "a bucket of their own",
    );
    rejected_with(
        baseline("  storage: {namePrefix: acme}\n  auditQueries: {resultsBucketName: acme-111122223333-cloudtrail-us-east-1}")
            .validate_cel(),
        "a bucket of their own",
    );
    baseline("  auditQueries: {resultsBucketName: my-query-results}")
        .validate_cel()
        .unwrap();
    baseline("").validate_cel().unwrap();
}

#[test]
fn a_compliance_lock_needs_the_acknowledgement() {
    rejected_with(
        retention("  trailLogs: {objectLock: {mode: Compliance, defaultRetentionDays: 365}}").validate_cel(),
        "acknowledgeIrreversible",
    );
    retention(
        "  trailLogs: {objectLock: {mode: Compliance, defaultRetentionDays: 365, acknowledgeIrreversible: true}}",
    )
    .validate_cel()
    .unwrap();
    retention("  trailLogs: {objectLock: {mode: Governance, defaultRetentionDays: 365}}")
        .validate_cel()
        .unwrap();
}

#[test]
fn log_group_retention_only_takes_cloudwatch_values() {
    for field in ["instanceLogs", "flowLogs"] {
        retention(&format!("  {field}: {{retentionDays: 90}}"))
            .validate_cel()
            .unwrap();
        rejected_with(
            retention(&format!("  {field}: {{retentionDays: 100}}")).validate_cel(),
            "CloudWatch Logs",
        );
    }
}

#[test]
fn data_and_advanced_selectors_are_exclusive_and_field_selectors_need_an_operator() {
    trail_policy("  dataEvents: [{type: 'AWS::S3::Object', values: ['arn:aws:s3']}]")
        .validate_cel()
        .unwrap();
    rejected_with(
        trail_policy(
            "  dataEvents: [{type: 'AWS::S3::Object', values: ['arn:aws:s3']}]\n  advancedEventSelectors: [{name: a, fieldSelectors: [{field: eventCategory, equals: [Data]}]}]",
        )
        .validate_cel(),
        "either dataEvents or advancedEventSelectors",
    );
    rejected_with(
        trail_policy("  advancedEventSelectors: [{name: a, fieldSelectors: [{field: eventCategory}]}]").validate_cel(),
        "at least one operator",
    );
}

/// Each retention in days, with how to write it in a spec.
const RETENTION_FIELDS: [(&str, &str); 5] = [
    ("trailLogs.expireAfterDays", "  trailLogs: {expireAfterDays: DAYS}"),
    (
        "trailLogs.noncurrentVersionsExpireAfterDays",
        "  trailLogs: {noncurrentVersionsExpireAfterDays: DAYS}",
    ),
    ("accessLogs.expireAfterDays", "  accessLogs: {expireAfterDays: DAYS}"),
    ("instanceLogs.retentionDays", "  instanceLogs: {retentionDays: DAYS}"),
    ("flowLogs.retentionDays", "  flowLogs: {retentionDays: DAYS}"),
];

fn with_days(template: &str, days: Option<i32>, approval: Option<&str>) -> RetentionPolicy {
    let mut spec = match days {
        Some(d) => template.replace("DAYS", &d.to_string()),
        None => String::new(),
    };
    if let Some(reference) = approval {
        spec.push_str(&format!("\n  approval: {{reference: {reference}, reason: test}}"));
    }
    if spec.is_empty() {
        spec = "  {}".into();
    }
    let mut policy = retention(&spec);
    // The API server applies defaults before the rules run; serde did the same here.
    policy.metadata.name = Some("default".into());
    policy
}

#[test]
fn shortening_any_retention_needs_a_new_approval() {
    for (field, template) in RETENTION_FIELDS {
        let forever = with_days(template, None, None);
        let ninety = with_days(template, Some(90), None);
        // forever -> 90 days without approval: rejected
        rejected_with(ninety.validate_cel_update(&forever), field);
        // with a new approval: accepted
        with_days(template, Some(90), Some("CHG-1"))
            .validate_cel_update(&forever)
            .unwrap();
        // with the approval already used for the previous change: rejected
        let previous = with_days(template, Some(180), Some("CHG-1"));
        rejected_with(
            with_days(template, Some(90), Some("CHG-1")).validate_cel_update(&previous),
            field,
        );
        with_days(template, Some(90), Some("CHG-2"))
            .validate_cel_update(&previous)
            .unwrap();
        // lengthening, and back to forever, need no approval
        with_days(template, Some(365), None)
            .validate_cel_update(&ninety)
            .unwrap();
        forever.validate_cel_update(&ninety).unwrap();
        // a new object is never a transition
        ninety.validate_cel().unwrap();
    }
}

fn lock(mode: &str, days: i32, approval: Option<&str>) -> RetentionPolicy {
    let ack = if mode == "Compliance" {
        ", acknowledgeIrreversible: true"
    } else {
        ""
    };
    let mut spec = format!("  trailLogs: {{objectLock: {{mode: {mode}, defaultRetentionDays: {days}{ack}}}}}");
    if let Some(reference) = approval {
        spec.push_str(&format!("\n  approval: {{reference: {reference}}}"));
    }
    retention(&spec)
}

#[test]
fn weakening_the_lock_needs_a_new_approval() {
    let governance = lock("Governance", 365, None);
    rejected_with(
        lock("Governance", 30, None).validate_cel_update(&governance),
        "objectLock is weakened",
    );
    rejected_with(
        lock("Disabled", 365, None).validate_cel_update(&governance),
        "objectLock is weakened",
    );
    rejected_with(
        lock("Governance", 365, None).validate_cel_update(&lock("Compliance", 365, None)),
        "objectLock is weakened",
    );
    lock("Governance", 30, Some("CHG-9"))
        .validate_cel_update(&governance)
        .unwrap();
    // Stronger needs no approval.
    lock("Governance", 730, None).validate_cel_update(&governance).unwrap();
    lock("Compliance", 365, None).validate_cel_update(&governance).unwrap();
}

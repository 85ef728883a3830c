//! `trailkeeper validate`: exit 0 for valid manifests, 1 with one line per problem, 2 for input
//! it cannot read; never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn trailkeeper(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn validate(paths: &[&Path]) -> (i32, String) {
    let mut args = vec!["validate"];
    for p in paths {
        args.push("-f");
        args.push(p.to_str().unwrap());
    }
    let out = trailkeeper(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "validate panicked: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn write(dir: &tempfile::TempDir, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

const BASELINE: &str = r#"apiVersion: trailkeeper.io/v1alpha1
kind: LoggingBaseline
metadata: {name: payments, namespace: accounts}
spec:
  accountId: "111122223333"
  primaryRegion: us-east-1
"#;

/// Validates one manifest and returns (exit code, stderr).
fn validate_text(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "manifest.yaml", text);
    validate(&[&path])
}

fn assert_problem(text: &str, path: &str, message: &str) {
    let (code, stderr) = validate_text(text);
    assert_eq!(code, 1, "expected exit 1 for {path}: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(path))
        .unwrap_or_else(|| panic!("no line names {path}: {stderr}"));
    assert!(
        line.contains(message),
        "the line for {path} does not say {message:?}: {line}"
    );
    assert!(
        line.contains("manifest.yaml: "),
        "the line does not name the file: {line}"
    );
}

#[test]
fn the_examples_are_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (code, stderr) = validate(&[&examples]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_valid_baseline_alone_is_valid() {
    assert_eq!(validate_text(BASELINE).0, 0);
}

#[test]
fn schema_violations_name_the_object_field_and_problem() {
    assert_problem(
        &BASELINE.replace("111122223333", "12345"),
        "spec.accountId",
        "does not match the pattern",
    );
    assert_problem(
        &BASELINE.replace("us-east-1", "moon-base"),
        "spec.primaryRegion",
        "does not match the pattern",
    );
    assert_problem(&format!("{BASELINE}  mode: Enforced\n"), "spec.mode", "must be one of");
    assert_problem(
        &format!("{BASELINE}  deletionPolicy: Keep\n"),
        "spec.deletionPolicy",
        "must be one of",
    );
    assert_problem(
        &format!("{BASELINE}  flowLogs: {{destination: Kinesis}}\n"),
        "spec.flowLogs.destination",
        "must be one of",
    );
    assert_problem(
        &format!("{BASELINE}  flowLogs: {{fields: []}}\n"),
        "spec.flowLogs.fields",
        "at least 1 items",
    );
    assert_problem(
        &format!("{BASELINE}  credentials: {{assumeRoleArn: 'arn:aws:iam::1:role/x'}}\n"),
        "spec.credentials.assumeRoleArn",
        "does not match",
    );
    assert_problem(
        &format!("{BASELINE}  encryption: {{kmsKeyArn: not-an-arn}}\n"),
        "spec.encryption.kmsKeyArn",
        "does not match",
    );
    assert_problem(&format!("{BASELINE}  trial: {{}}\n"), "spec.trial", "unknown field");
    assert_problem(
        &BASELINE.replace("  primaryRegion: us-east-1\n", ""),
        "spec.primaryRegion",
        "is required",
    );
    let (_, stderr) = validate_text(&BASELINE.replace("12345", "x"));
    assert!(stderr.is_empty());
}

#[test]
fn cel_rules_are_enforced_offline() {
    assert_problem(
        &format!("{BASELINE}  trail: {{source: Existing}}\n"),
        "LoggingBaseline/accounts/payments",
        "existingTrailArn",
    );
    let compliance = "apiVersion: trailkeeper.io/v1alpha1\nkind: RetentionPolicy\nmetadata: {name: default, namespace: accounts}\nspec:\n  trailLogs: {objectLock: {mode: Compliance}}\n";
    assert_problem(
        compliance,
        "RetentionPolicy/accounts/default",
        "acknowledgeIrreversible",
    );
    let bad_days = "apiVersion: trailkeeper.io/v1alpha1\nkind: RetentionPolicy\nmetadata: {name: default, namespace: accounts}\nspec:\n  flowLogs: {retentionDays: 100}\n";
    assert_problem(bad_days, "RetentionPolicy/accounts/default", "CloudWatch Logs");
}

#[test]
fn references_between_manifests_are_checked() {
    assert_problem(
        &format!("{BASELINE}  retentionPolicyRef: {{name: long-term}}\n"),
        "spec.retentionPolicyRef.name",
        "RetentionPolicy \"long-term\" does not exist in namespace \"accounts\"",
    );
    assert_problem(
        &format!("{BASELINE}  trail: {{policyRef: {{name: strict}}}}\n"),
        "spec.trail.policyRef.name",
        "TrailPolicy \"strict\" does not exist",
    );
    let two = format!(
        "{BASELINE}---\n{}",
        BASELINE.replace("name: payments", "name: payments-again")
    );
    assert_problem(
        &two,
        "spec.accountId",
        "already claimed by LoggingBaseline/accounts/payments",
    );
    let twice = format!("{BASELINE}---\n{BASELINE}");
    assert_problem(&twice, "LoggingBaseline/accounts/payments", "defined more than once");
}

#[test]
fn a_policy_in_another_namespace_does_not_satisfy_a_reference() {
    let policy = "apiVersion: trailkeeper.io/v1alpha1\nkind: RetentionPolicy\nmetadata: {name: long-term, namespace: other}\nspec: {}\n";
    let text = format!("{BASELINE}  retentionPolicyRef: {{name: long-term}}\n---\n{policy}");
    assert_problem(&text, "spec.retentionPolicyRef.name", "does not exist");
}

#[test]
fn garbage_gets_a_message_and_exit_1_or_2_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let binary = write(&dir, "binary.yaml", [0u8, 159, 146, 150, 255, 0, 1, 2]);
    let (code, stderr) = validate(&[&binary]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not UTF-8"), "{stderr}");

    let missing = dir.path().join("missing.yaml");
    assert_eq!(validate(&[&missing]).0, 2);

    let cases: Vec<(&str, String)> = vec![
        ("truncated", BASELINE[..BASELINE.len() / 2].to_string() + "\n  - [unclosed"),
        ("wrong kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n".into()),
        ("scalar", "just a string\n".into()),
        ("list", "- a\n- b\n".into()),
        ("tabs", "apiVersion: trailkeeper.io/v1alpha1\n\tkind: LoggingBaseline\n".into()),
        ("no metadata", "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaseline\nspec: {}\n".into()),
        ("spec is a list", "apiVersion: trailkeeper.io/v1alpha1\nkind: TrailPolicy\nmetadata: {name: a}\nspec: [1, 2]\n".into()),
        ("non-string keys", "apiVersion: trailkeeper.io/v1alpha1\nkind: TrailPolicy\nmetadata: {name: a}\nspec: {tags: {1: 2, [a]: b}}\n".into()),
        ("deep nesting", format!("a: {}", "[".repeat(5000))),
        ("huge document", format!("{BASELINE}  regions: [{}]\n", vec!["us-east-1"; 200_000].join(", "))),
        ("huge string", format!("{BASELINE}  tags: {{big: \"{}\"}}\n", "x".repeat(2_000_000))),
        ("anchors", "a: &a [*a]\n".into()),
    ];
    for (name, text) in cases {
        let path = write(&dir, &format!("{}.yaml", name.replace(' ', "-")), &text);
        let (code, stderr) = validate(&[&path]);
        assert!(code == 1 || code == 2, "{name}: exit {code}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{name}: no message");
    }
}

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
    // A region that is not one: the whole value is judged, not a prefix of it.
    assert_problem(
        &BASELINE.replace("us-east-1", "us-east-1x"),
        "spec.primaryRegion",
        "does not match the pattern",
    );
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
fn garbage_gets_a_message_naming_the_file_and_its_exit_code_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let binary = write(&dir, "binary.yaml", [0u8, 159, 146, 150, 255, 0, 1, 2]);
    let (code, stderr) = validate(&[&binary]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not UTF-8"), "{stderr}");

    let missing = dir.path().join("missing.yaml");
    let (code, stderr) = validate(&[&missing]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("missing.yaml"), "{stderr}");

    // Each: exit 1 (the file was read; this is what is wrong with it), and the line that says so.
    let cases: Vec<(&str, String, &str)> = vec![
        ("truncated", BASELINE[..BASELINE.len() / 2].to_string() + "\n  - [unclosed", "not valid YAML"),
        ("wrong kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n".into(), "is not a trailkeeper resource"),
        ("scalar", "just a string\n".into(), "not a Kubernetes object"),
        ("list", "- a\n- b\n".into(), "not a Kubernetes object"),
        ("tabs", "apiVersion: trailkeeper.io/v1alpha1\n\tkind: LoggingBaseline\n".into(), "tab character"),
        ("no metadata", "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaseline\nspec: {}\n".into(), "metadata.name: is required"),
        ("spec is a list", "apiVersion: trailkeeper.io/v1alpha1\nkind: TrailPolicy\nmetadata: {name: a}\nspec: [1, 2]\n".into(), "spec: must be of type object, got array"),
        ("non-string keys", "apiVersion: trailkeeper.io/v1alpha1\nkind: TrailPolicy\nmetadata: {name: a}\nspec: {tags: {1: 2, [a]: b}}\n".into(), "key must be a string"),
        ("deep nesting", format!("a: {}", "[".repeat(5000)), "nested too deeply"),
        ("huge document", format!("{BASELINE}  regions: [{}]\n", vec!["us-east-1"; 200_000].join(", ")), "spec.regions: must have at most 40 items"),
        ("huge string", format!("{BASELINE}  tags: {{big: \"{}\"}}\n", "x".repeat(2_000_000)), "spec.tags.big: must be at most 256 characters long"),
        ("anchors", "a: &a [*a]\n".into(), "nested too deeply"),
    ];
    for (name, text, message) in cases {
        let file = format!("{}.yaml", name.replace(' ', "-"));
        let path = write(&dir, &file, &text);
        let (code, stderr) = validate(&[&path]);
        assert_eq!(code, 1, "{name}: {stderr}");
        assert!(
            stderr.starts_with(&format!("{file}: ")) || stderr.contains(&format!("/{file}: ")),
            "{name}: the message does not name the file: {stderr}"
        );
        assert!(stderr.contains(message), "{name}: expected {message:?} in {stderr}");
    }
}

/// A LoggingBaselineSet of two listed accounts whose template spec ends with `template_extra`
/// (indented under `spec:` of the template).
fn set_manifest(name: &str, template_extra: &str) -> String {
    format!(
        r#"apiVersion: trailkeeper.io/v1alpha1
kind: LoggingBaselineSet
metadata: {{name: {name}, namespace: accounts}}
spec:
  template:
    spec:
      primaryRegion: us-east-1
      credentials: {{assumeRoleArn: "arn:aws:iam::{{{{accountId}}}}:role/trailkeeper"}}
{template_extra}  generator:
    accounts: [{{id: "111122223333"}}, {{id: "444455556666"}}]
"#
    )
}

#[test]
fn misspelt_fields_in_a_set_template_are_refused_as_in_a_baseline() {
    let text = set_manifest(
        "fleet",
        "      mod: Observe\n      regoins: [eu-west-1]\n      trail: {polcyRef: {name: strict}}\n",
    );
    for field in [
        "spec.template.spec.mod",
        "spec.template.spec.regoins",
        "spec.template.spec.trail.polcyRef",
    ] {
        assert_problem(&text, field, "unknown field (check its spelling");
    }
    let text = set_manifest("fleet", "").replace("role/trailkeeper\"}", "role/trailkeeper\", externalld: x}");
    assert_problem(&text, "spec.template.spec.credentials.externalld", "unknown field");
    assert_problem(&text, "LoggingBaselineSet/accounts/fleet", "unknown field");
    assert_eq!(validate_text(&set_manifest("fleet", "      mode: Observe\n")).0, 0);
}

#[test]
fn a_set_whose_name_or_template_labels_kubernetes_would_refuse_is_invalid() {
    assert_problem(
        &set_manifest(&"a".repeat(64), ""),
        "metadata.name",
        "at most 63 characters",
    );
    let labelled = set_manifest("fleet", "").replace(
        "  template:\n",
        "  template:\n    labels: {\"bad key/with space\": x, account: \"{{accountName}} team\"}\n",
    );
    assert_problem(
        &labelled,
        "spec.template.labels[\"bad key/with space\"]",
        "not a valid label key",
    );
    let rendered = set_manifest("fleet", "").replace(
        "  template:\n",
        "  template:\n    labels: {account: \"{{accountId}}\", name: \"{{accountName}} x\"}\n",
    );
    assert_problem(
        &rendered,
        "spec.generator.accounts[111122223333]",
        "spec.template.labels.name renders to",
    );
}

#[test]
fn names_namespaces_and_label_keys_are_checked_as_the_api_server_does() {
    for (metadata, path) in [
        (
            "{name: payments, namespace: \"Bad_NS!! with spaces\"}",
            "metadata.namespace",
        ),
        ("{name: payments, namespace: \"\"}", "metadata.namespace"),
        ("{name: payments, namespace: \"\\n\"}", "metadata.namespace"),
        ("{name: \"a..b\", namespace: accounts}", "metadata.name"),
        ("{name: \"a.-b\", namespace: accounts}", "metadata.name"),
        ("{name: \"\", namespace: accounts}", "metadata.name"),
        (
            "{name: payments, namespace: accounts, labels: {\"bad key\": x}}",
            "metadata.labels[\"bad key\"]",
        ),
        (
            "{name: payments, namespace: accounts, labels: {team: \"two words\"}}",
            "metadata.labels.team",
        ),
        (
            "{name: payments, namespace: accounts, annotations: {\"/x\": y}}",
            "metadata.annotations./x",
        ),
    ] {
        let text = BASELINE.replace("{name: payments, namespace: accounts}", metadata);
        assert_problem(&text, path, "not a valid");
    }
}

/// Runs the binary and fails when it takes longer than `limit`.
fn run_within(args: &[&str], limit: std::time::Duration) -> (i32, String) {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
            return (status.code().unwrap_or(-1), stderr);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn symbolic_link_loops_end_and_each_file_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "payments.yaml", BASELINE);
    std::os::unix::fs::symlink(".", dir.path().join("again")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("and-again")).unwrap();
    std::os::unix::fs::symlink("payments.yaml", dir.path().join("alias.yaml")).unwrap();
    let path = dir.path().to_str().unwrap();
    let (code, stderr) = run_within(
        &["validate", "-f", path, "-f", path],
        std::time::Duration::from_secs(20),
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn only_regular_files_are_read_and_the_size_limit_holds_while_reading() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "payments.yaml", BASELINE);
    let fifo = dir.path().join("pipe.yaml");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let limit = std::time::Duration::from_secs(20);
    let (code, stderr) = run_within(&["validate", "-f", dir.path().to_str().unwrap()], limit);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("pipe.yaml: cannot read: not a regular file (a named pipe)"),
        "{stderr}"
    );
    let (code, stderr) = run_within(&["validate", "-f", "/dev/zero"], limit);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a regular file (a device)"), "{stderr}");
}

#[test]
fn a_closed_pipe_ends_every_printing_subcommand_quietly() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let valid = write(&dir, "valid.yaml", BASELINE);
    let invalid = write(&dir, "invalid.yaml", BASELINE.replace("us-east-1", "moon"));
    let (valid, invalid) = (valid.to_str().unwrap(), invalid.to_str().unwrap());
    let cases: [(&[&str], i32); 5] = [
        (&["crds"], 0),
        (&["iam-policy"], 0),
        (&["iam-policy", "-f", valid], 0),
        (&["validate", "-f", valid], 0),
        (&["validate", "-f", invalid], 1),
    ];
    for (args, expected) in cases {
        for closed in ["stdout", "stderr"] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The reader goes away before anything is written.
            let kept = if closed == "stdout" {
                drop(child.stdout.take());
                child.stderr.take().map(|mut e| {
                    let mut s = String::new();
                    let _ = std::io::Read::read_to_string(&mut e, &mut s);
                    s
                })
            } else {
                drop(child.stderr.take());
                child.stdout.take().map(|mut o| {
                    let mut s = String::new();
                    let _ = std::io::Read::read_to_string(&mut o, &mut s);
                    s
                })
            };
            let status = child.wait().unwrap();
            let kept = kept.unwrap_or_default();
            assert!(!kept.contains("panicked"), "{args:?} with {closed} closed: {kept}");
            assert_eq!(status.code(), Some(expected), "{args:?} with {closed} closed: {kept}");
        }
    }
}

#[test]
fn unclear_values_get_clear_messages_with_their_place() {
    assert_problem(
        &format!("{BASELINE}  auditQueries: {{resultsExpireAfterDays: .nan}}\n"),
        "spec.auditQueries.resultsExpireAfterDays",
        "is .nan or .inf",
    );
    let (code, stderr) = validate_text(&format!(
        "{BASELINE}  auditQueries: {{resultsExpireAfterDays: 18446744073709551617}}\n"
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the integer 18446744073709551617 does not fit in 64 bits"),
        "{stderr}"
    );
    assert!(!stderr.contains("u128"), "{stderr}");
    assert_problem(
        &format!("{BASELINE}  \"mode \": Observe\n"),
        "spec[\"mode \"]",
        "unknown field",
    );
    assert_problem(
        &format!("{BASELINE}  \"mo\\0de\": Observe\n"),
        "spec[\"mo\\0de\"]",
        "unknown field",
    );
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    let (code, stderr) = validate_text(bomb);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("aliases expand to too many nodes"), "{stderr}");
}

#[test]
fn tags_aws_would_refuse_are_refused() {
    for (tags, needle) in [
        ("{\"aws:owner\": x}", "may not start with aws:"),
        ("{\"\": x}", "1 to 128 characters"),
        ("{\"a\\nb\": x}", "control characters"),
        ("{team: \"a\\u0000b\"}", "does not match the pattern"),
        ("{team: \"two\\nlines\"}", "does not match the pattern"),
    ] {
        assert_problem(&format!("{BASELINE}  tags: {tags}\n"), "spec.tags", needle);
    }
    assert_eq!(
        validate_text(&format!("{BASELINE}  tags: {{team: \"payments and billing\"}}\n")).0,
        0
    );
}

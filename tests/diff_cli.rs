//! `trailkeeper diff`: what a retention change in a pull request does, per account, offline.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/retention")
}

fn diff(base: &Path, head: &Path, format: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args([
            "diff",
            "--base",
            base.to_str().unwrap(),
            "--head",
            head.to_str().unwrap(),
            "-o",
            format,
        ])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn an_approved_retention_change_prints_what_it_does_per_account() {
    let (code, stdout, stderr) = diff(&fixtures().join("base"), &fixtures().join("head"), "text");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let expected = "\
accounts/payments-prod (111122223333)
  trail logs: kept forever -> expire after 2555 days (approval CHG-1234)
  instance logs: kept forever -> 731 days (approval CHG-1234)
  flow logs: 365 days -> 90 days (approval CHG-1234)
accounts/org-management (444455556666)
  instance logs: kept forever -> 731 days (approval CHG-1234)
  flow logs: 365 days -> 90 days (approval CHG-1234)
0 rejected, 5 approved, 0 accepted
";
    assert_eq!(stdout, expected);

    // The same as JSON, for a CI job: one object per change with its verdict and approval.
    let (code, stdout, stderr) = diff(&fixtures().join("base"), &fixtures().join("head"), "json");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("diff -o json prints JSON");
    let changes = json["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 5);
    assert_eq!(
        changes[0],
        serde_json::json!({"baseline": "accounts/payments-prod", "accountId": "111122223333",
            "setting": "trail logs", "before": "kept forever", "after": "expire after 2555 days",
            "verdict": "Approved", "approval": "CHG-1234"})
    );
    assert!(changes.iter().all(|c| c["verdict"] == "Approved"));
}

#[test]
fn the_same_change_without_approval_is_rejected_with_exit_1() {
    let head = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("head")).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let without = text.split("  approval:").next().unwrap().to_string();
        std::fs::write(head.path().join(entry.file_name()), without).unwrap();
    }
    let (code, stdout, _) = diff(&fixtures().join("base"), head.path(), "text");
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("  flow logs: 365 days -> 90 days: REJECTED, approval required\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  trail logs: kept forever -> expire after 2555 days: REJECTED, approval required\n"));
    assert!(stdout.ends_with("5 rejected, 0 approved, 0 accepted\n"), "{stdout}");
}

#[test]
fn the_markdown_renders_as_a_table_for_a_pull_request_comment() {
    let (code, stdout, _) = diff(&fixtures().join("base"), &fixtures().join("head"), "markdown");
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "### trailkeeper diff: retention");
    assert_eq!(lines[2], "| Baseline | Account | Setting | Before | After | Verdict |");
    assert_eq!(lines[3], "|---|---|---|---|---|---|");
    assert_eq!(
        lines[4],
        "| accounts/payments-prod | 111122223333 | trail logs | kept forever | expire after 2555 days | approved (CHG-1234) |"
    );
    let rows = lines.iter().filter(|l| l.starts_with("| accounts/")).count();
    assert_eq!(rows, 5);
    assert!(
        lines.iter().all(|l| !l.starts_with('|') || l.matches('|').count() == 7),
        "every row has six cells"
    );
}

#[test]
fn no_change_says_so() {
    let (code, stdout, _) = diff(&fixtures().join("base"), &fixtures().join("base"), "text");
    assert_eq!(code, 0);
    assert_eq!(stdout, "no retention change\n");
}

#[test]
fn a_manifest_with_retention_values_cloudwatch_does_not_allow_never_gets_through() {
    let head = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("head")).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path())
            .unwrap()
            .replace("retentionDays: 90", "retentionDays: 100");
        std::fs::write(head.path().join(entry.file_name()), text).unwrap();
    }
    let (code, _, stderr) = diff(&fixtures().join("base"), head.path(), "text");
    assert_eq!(code, 1);
    assert!(stderr.contains("CloudWatch Logs"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args(["validate", "-f", head.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("flowLogs.retentionDays"));
}

/// The head fixtures with the approval's reference line replaced.
fn head_with_reference(reference_yaml: &str) -> tempfile::TempDir {
    let head = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("head")).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path())
            .unwrap()
            .replace("reference: CHG-1234", &format!("reference: {reference_yaml}"));
        std::fs::write(head.path().join(entry.file_name()), text).unwrap();
    }
    head
}

#[test]
fn the_markdown_escapes_a_hostile_approval_reference() {
    let head = head_with_reference(r#""CHG-1|x</details><!--<img src=x onerror=alert(1)>[a](https://e.test)""#);
    let (code, stdout, stderr) = diff(&fixtures().join("base"), head.path(), "markdown");
    assert_eq!(code, 0, "{stderr}");
    for raw in ["</details>", "<!--", "<img", "[a]"] {
        assert!(!stdout.contains(raw), "{raw} reaches the comment: {stdout}");
    }
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| accounts/")).collect();
    assert_eq!(rows.len(), 5, "{stdout}");
    assert!(rows.iter().all(|l| l.matches('|').count() == 7), "{stdout}");
    assert!(
        rows[0].contains("approved (CHG-1&#124;x&#60;/details&#62;"),
        "{}",
        rows[0]
    );
}

#[test]
fn an_approval_reference_with_surrounding_space_or_control_characters_is_refused() {
    for reference in [
        r#""CHG-1234 ""#,
        r#"" CHG-1234""#,
        r#""CHG-1234\n""#,
        r#""CHG-\u00001234""#,
        r#""CHG-1234\u202e""#,
    ] {
        let head = head_with_reference(reference);
        let (code, stdout, stderr) = diff(&fixtures().join("base"), head.path(), "markdown");
        assert_eq!(code, 1, "{reference}: {stdout}{stderr}");
        assert!(stderr.contains("spec.approval.reference"), "{reference}: {stderr}");
        assert!(stdout.is_empty(), "{reference}: nothing is rendered: {stdout}");
    }
}

/// A LogArchive's RetentionPolicy is reviewed as an account's is: the archive's lock shortened
/// without a new approval is rejected, named by the archive.
#[test]
fn a_shorter_lock_of_a_log_archive_without_approval_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let write = |side: &str, days: u32| {
        let path = dir.path().join(side);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(
            path.join("archive.yaml"),
            format!(
                r#"apiVersion: trailkeeper.io/v1alpha1
kind: LogArchive
metadata: {{name: org-archive, namespace: log-archive}}
spec: {{accountId: "777788889999", region: us-east-1, retentionPolicyRef: {{name: archive}}}}
---
apiVersion: trailkeeper.io/v1alpha1
kind: RetentionPolicy
metadata: {{name: archive, namespace: log-archive}}
spec:
  trailLogs: {{objectLock: {{mode: Governance, defaultRetentionDays: {days}}}}}
"#
            ),
        )
        .unwrap();
        path
    };
    let (base, head) = (write("base", 3650), write("head", 365));
    let (code, stdout, stderr) = diff(&base, &head, "text");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("LogArchive/log-archive/org-archive (777788889999)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("REJECTED, approval required"), "{stdout}");
}

/// Admitting the Organization widens who may write into a locked LogArchive: `diff` says what
/// widens and rejects it (exit 1) without an approval whose reference is new in the change;
/// narrowing back to the members' trails needs none.
#[test]
fn admitting_the_organization_is_reviewed_like_a_retention_change() {
    let dir = tempfile::tempdir().unwrap();
    let write = |side: &str, admission: &str, reference: &str| {
        let path = dir.path().join(side);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(
            path.join("archive.yaml"),
            format!(
                r#"apiVersion: trailkeeper.io/v1alpha1
kind: LogArchive
metadata: {{name: org-archive, namespace: log-archive}}
spec:
  accountId: "777788889999"
  region: us-east-1
  organizationId: o-abcdefghij
  admission: {admission}
  approval: {{reference: {reference}, reason: more members than the policies can name}}
---
apiVersion: trailkeeper.io/v1alpha1
kind: LoggingBaseline
metadata: {{name: member, namespace: log-archive}}
spec:
  accountId: "111122223333"
  primaryRegion: us-east-1
  storage: {{archiveRef: {{name: org-archive}}}}
"#
            ),
        )
        .unwrap();
        path
    };
    let trails = write("trails", "Trails", "CHG-1");
    let reused = write("reused", "Organization", "CHG-1");
    let (code, stdout, stderr) = diff(&trails, &reused, "text");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "archive admission: each member's trail by its ARN, under its own account's path -> any trail of o-abcdefghij named trailkeeper (widens who may write into the locked archive): REJECTED, approval required"
        ),
        "{stdout}"
    );
    let approved = write("approved", "Organization", "CHG-2");
    let (code, stdout, stderr) = diff(&trails, &approved, "text");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("(approval CHG-2)"), "{stdout}");
    let (code, stdout, stderr) = diff(&approved, &trails, "text");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("archive admission: any trail of o-abcdefghij named trailkeeper -> each member's trail"),
        "{stdout}"
    );
}

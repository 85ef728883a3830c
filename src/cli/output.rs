//! Rendering of plan and apply reports as text, JSON or Markdown.

use std::fmt::Write;

use serde_json::json;

use super::Format;
use crate::engine::account::{AccountReport, Component, ComponentState, RunMode};
use crate::judge::retention_review::{Change, Verdict};

pub fn render(reports: &[(String, AccountReport)], mode: RunMode, format: Format) -> String {
    match format {
        Format::Text => text(reports, mode),
        Format::Json => serde_json::to_string_pretty(
            &json!({ "accounts": reports.iter().map(|(id, r)| to_json(id, r)).collect::<Vec<_>>() }),
        )
        .map(|s| s + "\n")
        .unwrap_or_default(),
        // -o html is refused before anything runs for every command but `report`.
        Format::Markdown | Format::Html => markdown(reports, mode),
    }
}

pub fn state_name(state: &ComponentState) -> String {
    match state {
        ComponentState::InSync => "InSync".into(),
        ComponentState::Repaired => "Repaired".into(),
        ComponentState::Drifted => "Drifted".into(),
        ComponentState::NotCompliant => "NotCompliant".into(),
        ComponentState::ApprovalRequired(m) => format!("ApprovalRequired: {m}"),
        ComponentState::NotManaged => "NotManaged".into(),
        ComponentState::Failed(e) => format!("Failed: {e}"),
        ComponentState::Waiting(c) => format!("Waiting for {c:?}"),
        ComponentState::WaitingForArchive(m) => format!("WaitingForLogArchive: {m}"),
        ComponentState::Refused { reason, message } => format!("{reason}: {message}"),
        ComponentState::NotEffective { reason, message } => format!("{reason}: {message}"),
    }
}

fn headline(r: &AccountReport, mode: RunMode) -> String {
    // What happens next is the reader's: the run is over.
    let again = match mode {
        RunMode::Apply => "run apply again",
        RunMode::Plan => "run plan again",
    };
    let after = if r.failed_transiently() {
        format!(" (tried {} times in this run; it may pass: {again})", r.attempts)
    } else {
        String::new()
    };
    if let Some(e) = &r.error {
        return format!("error: {e}{after}");
    }
    if r.failed() {
        return format!("failed{after}");
    }
    let not_compliant = if r.not_compliant.is_empty() {
        String::new()
    } else {
        format!(
            "; {} settings not compliant and not managed by trailkeeper",
            r.not_compliant.len()
        )
    };
    let state = match mode {
        _ if r.pending.is_empty() && r.applied.is_empty() && !r.not_compliant.is_empty() => "not compliant".into(),
        RunMode::Plan if r.in_sync() => "in sync".into(),
        RunMode::Plan => format!("{} changes pending", r.pending.len()),
        RunMode::Apply if !r.applied.is_empty() => format!("{} changes applied", r.applied.len()),
        RunMode::Apply if r.in_sync() => "in sync, nothing changed".into(),
        RunMode::Apply => format!("not in sync: {} changes pending", r.pending.len()),
    };
    state + &not_compliant
}

fn text(reports: &[(String, AccountReport)], mode: RunMode) -> String {
    let mut out = String::new();
    let (mut reads, mut writes) = (0, 0);
    for (id, r) in reports {
        let _ = writeln!(
            out,
            "{id} (account {}, {}): {}",
            r.account_id,
            r.region,
            headline(r, mode)
        );
        for d in &r.drift {
            let _ = writeln!(out, "  ~ {} {}: {} -> {}", d.resource, d.field, d.actual, d.expected);
        }
        for d in &r.not_compliant {
            let _ = writeln!(
                out,
                "  ! {} {}: {} (expected {}; not managed by trailkeeper)",
                d.resource, d.field, d.actual, d.expected
            );
        }
        for c in &r.pending {
            let _ = writeln!(out, "  + {}: {}", c.resource, c.action);
        }
        for c in &r.applied {
            let _ = writeln!(out, "  = {}: {}", c.resource, c.action);
        }
        for (component, state) in &r.components {
            if !matches!(
                state,
                ComponentState::InSync
                    | ComponentState::Repaired
                    | ComponentState::NotManaged
                    | ComponentState::Drifted
            ) {
                let _ = writeln!(out, "  {component:?}: {}", state_name(state));
            }
        }
        if let Some(a) = &r.audit_queries {
            let _ = writeln!(
                out,
                "  audit queries: {} named queries over {}.{} in workgroup {} (results in {})",
                a.named_queries, a.database, a.table, a.work_group, a.results_location
            );
        }
        let _ = writeln!(
            out,
            "  calls: {} reads, {} writes in {} ms",
            r.calls.reads,
            r.calls.writes,
            r.duration.as_millis()
        );
        reads += r.calls.reads;
        writes += r.calls.writes;
    }
    let in_sync = reports.iter().filter(|(_, r)| r.in_sync()).count();
    let _ = writeln!(
        out,
        "{} accounts: {in_sync} in sync; {reads} reads, {writes} writes",
        reports.len()
    );
    out
}

fn to_json(id: &str, r: &AccountReport) -> serde_json::Value {
    json!({
        "baseline": id,
        "accountId": r.account_id,
        "region": r.region,
        "inSync": r.in_sync(),
        "error": r.error.as_ref().map(|e| json!({"reason": e.reason(), "message": e.to_string()})),
        "drift": r.drift,
        "notCompliant": r.not_compliant,
        "pending": r.pending.iter().map(|c| json!({"resource": c.resource, "action": c.action})).collect::<Vec<_>>(),
        "applied": r.applied.iter().map(|c| json!({"resource": c.resource, "action": c.action})).collect::<Vec<_>>(),
        "components": r.components.iter().map(|(c, s)| (format!("{c:?}"), json!(state_name(s)))).collect::<serde_json::Map<_, _>>(),
        "trailArn": r.trail_arn,
        "kmsKeyArn": r.key_arn,
        "bucketName": r.bucket_name,
        "accessLogBucketName": r.access_log_bucket_name,
        "auditQueries": r.audit_queries,
        "calls": {"reads": r.calls.reads, "writes": r.calls.writes},
        "durationMs": r.duration.as_millis() as u64,
    })
}

/// Text made inert in a Markdown table cell or heading of a pull request comment: the characters
/// that split a cell or start HTML, a link, an image or code become character references
/// (GitHub decodes them for display only, after the table and HTML have been parsed), and line
/// breaks and other control characters become spaces, so a value cannot end the table, close a
/// `<details>`, open a comment or inject markup.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '<' | '>' | '&' | '\\' | '`' | '[' | ']' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn markdown(reports: &[(String, AccountReport)], mode: RunMode) -> String {
    let mut out = String::new();
    let title = if mode == RunMode::Plan {
        "trailkeeper plan"
    } else {
        "trailkeeper apply"
    };
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(out, "| Baseline | Account | Region | Result |\n|---|---|---|---|");
    for (id, r) in reports {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(id),
            cell(&r.account_id),
            cell(&r.region),
            cell(&headline(r, mode))
        );
    }
    for (id, r) in reports {
        if r.drift.is_empty() && r.pending.is_empty() && r.not_compliant.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n#### {}\n", cell(id));
        let _ = writeln!(out, "| Resource | Field | Current | Desired |\n|---|---|---|---|");
        for d in r.drift.iter().chain(&r.not_compliant) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&d.resource),
                cell(&d.field),
                cell(&d.actual),
                cell(&d.expected)
            );
        }
        if !r.pending.is_empty() {
            let _ = writeln!(out);
            for c in &r.pending {
                let _ = writeln!(out, "- {}: {}", cell(&c.resource), cell(&c.action));
            }
        }
    }
    out
}

fn verdict(c: &Change) -> String {
    match (c.verdict, &c.approval) {
        (Verdict::Rejected, _) => "**REJECTED**: approval required".into(),
        (Verdict::Approved, Some(a)) => format!("approved ({})", cell(a)),
        (Verdict::Approved, None) => "approved".into(),
        (Verdict::Accepted, _) => "accepted".into(),
        (Verdict::Unchanged, _) => "unchanged".into(),
    }
}

/// The retention changes of a pull request, as text lines per account, JSON or a Markdown table.
pub fn render_diff(changes: &[Change], format: Format) -> String {
    let mut out = String::new();
    let count = |v: Verdict| changes.iter().filter(|c| c.verdict == v).count();
    let summary = format!(
        "{} rejected, {} approved, {} accepted",
        count(Verdict::Rejected),
        count(Verdict::Approved),
        count(Verdict::Accepted)
    );
    match format {
        Format::Json => {
            let items: Vec<serde_json::Value> = changes
                .iter()
                .map(|c| {
                    json!({"baseline": c.baseline, "accountId": c.account_id, "setting": c.setting, "before": c.before,
                        "after": c.after, "verdict": format!("{:?}", c.verdict), "approval": c.approval})
                })
                .collect();
            out = serde_json::to_string_pretty(&json!({"changes": items})).unwrap_or_default() + "\n";
        }
        Format::Text => {
            let mut current = None;
            for c in changes {
                if current != Some(&c.baseline) {
                    let _ = writeln!(out, "{} ({})", c.baseline, c.account_id);
                    current = Some(&c.baseline);
                }
                let _ = writeln!(out, "  {}", c.sentence());
            }
            if changes.is_empty() {
                let _ = writeln!(out, "no retention change");
            } else {
                let _ = writeln!(out, "{summary}");
            }
        }
        Format::Markdown | Format::Html => {
            let _ = writeln!(out, "### trailkeeper diff: retention\n");
            if changes.is_empty() {
                let _ = writeln!(out, "No retention change.");
                return out;
            }
            let _ = writeln!(
                out,
                "| Baseline | Account | Setting | Before | After | Verdict |\n|---|---|---|---|---|---|"
            );
            for c in changes {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    cell(&c.baseline),
                    cell(&c.account_id),
                    cell(&c.setting),
                    cell(&c.before),
                    cell(&c.after),
                    verdict(c)
                );
            }
            let _ = writeln!(out, "\n{summary}");
        }
    }
    out
}

/// The compliance evidence of each account (`trailkeeper report`): one section per account, the
/// benchmark's logging controls with result and evidence, and the Config rules beside them.
pub fn render_compliance(reports: &[(String, AccountReport)], format: Format) -> String {
    let evidence: Vec<(&str, &crate::judge::evidence::Evidence)> = reports
        .iter()
        .map(|(_, r)| (r.account_id.as_str(), &r.evidence))
        .collect();
    let judged: Vec<(&String, &AccountReport, crate::api::ComplianceStatus)> = reports
        .iter()
        .zip(crate::judge::coverage::statuses(&evidence))
        .map(|((id, r), status)| (id, r, status))
        .collect();
    if format == Format::Json {
        let json: Vec<serde_json::Value> = judged
            .iter()
            .map(|(id, r, c)| {
                serde_json::json!({
                    "baseline": id,
                    "account": r.account_id,
                    "error": r.error.as_ref().map(|e| e.to_string()),
                    "compliance": c,
                    "configRules": r.details.get(&Component::ConfigRules),
                    "duplicateTrails": r.duplicate_trails,
                    "controlTower": r.control_tower.as_ref().map(|t| t.covered()),
                })
            })
            .collect();
        return serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
    }
    let mut out = format!(
        "# Audit logging evidence\n\n{}. Read from AWS by `trailkeeper report` (nothing written).\n",
        crate::judge::compliance::BENCHMARK
    );
    for (id, r, c) in judged {
        out.push_str(&format!("\n## Account {} ({})\n\n", cell(&r.account_id), cell(id)));
        if let Some(e) = &r.error {
            out.push_str(&format!("Not evaluated: {}\n", cell(&e.to_string())));
            continue;
        }
        out.push_str(&format!(
            "{} controls pass.\n\n| Control | Result | Evidence |\n|---|---|---|\n",
            c.summary
        ));
        for control in &c.controls {
            out.push_str(&format!(
                "| {} {} | {:?} | {} |\n",
                control.id,
                cell(&control.title),
                control.result,
                cell(&control.evidence)
            ));
        }
        if let Some(ct) = &r.control_tower {
            out.push_str(&format!("\nThe account is {}.\n", cell(&ct.covered())));
        }
        if let Some(rules) = r.details.get(&Component::ConfigRules) {
            out.push_str(&format!("\nAWS Config rules: {}\n", cell(&rules.join("; "))));
        }
        if let Some(d) = &r.duplicate_trails {
            let cost = d
                .estimated_monthly_cost_usd
                .map_or("cost not estimated".to_string(), |c| format!("about ${c:.2} a month"));
            out.push_str(&format!(
                "\nDuplicate trails in {} (the primary Region only): {} record management events twice, {} paid cop{} ({cost}; {}).\n",
                cell(&d.region),
                cell(&d.trails.join(", ")),
                d.paid_copies,
                if d.paid_copies == 1 { "y" } else { "ies" },
                cell(&d.note)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// apply's words say what happens next (issue 43): what may pass was tried again in the run
    /// and the reader runs apply again; what needs a person is not retried and not promised.
    #[test]
    fn a_transient_failure_says_it_was_tried_again_and_to_run_apply_again() {
        use crate::aws::{AwsError, ErrorKind};
        let failure = |kind| AwsError {
            kind,
            action: "sts:GetCallerIdentity".into(),
            resource: "the caller".into(),
            code: "DispatchFailure".into(),
            message: "identity resolver timed out after 20s".into(),
        };
        let mut slow = AccountReport::new("111122223333", "us-east-1", crate::api::Mode::Enforce);
        slow.error = Some(crate::engine::report::EngineError::Aws(failure(ErrorKind::Transient)));
        slow.attempts = 3;
        assert!(slow.failed_transiently());
        let line = headline(&slow, RunMode::Apply);
        assert!(
            line.contains("tried 3 times in this run; it may pass: run apply again"),
            "{line}"
        );
        assert!(!line.contains("will retry"), "{line}");
        let mut denied = slow.clone();
        denied.error = Some(crate::engine::report::EngineError::Aws(failure(
            ErrorKind::AccessDenied,
        )));
        assert!(!denied.failed_transiently());
        let line = headline(&denied, RunMode::Apply);
        assert!(
            line.contains("grant sts:GetCallerIdentity") && !line.contains("run apply again"),
            "{line}"
        );
    }

    #[test]
    fn a_cell_cannot_split_the_table_nor_carry_html_links_or_line_breaks() {
        let hostile = "CHG-1 | x\n</details><!-- <img src=x> [a](b) `c` \\|\r\u{2028}&amp;";
        let rendered = cell(hostile);
        for raw in ['|', '<', '>', '\n', '\r', '[', ']', '`', '\\', '\u{2028}'] {
            assert!(!rendered.contains(raw), "{raw:?} survives in {rendered}");
        }
        assert!(
            rendered.starts_with(
                "CHG-1 &#124; x </details>"
                    .replace('<', "&#60;")
                    .replace('>', "&#62;")
                    .as_str()
            ),
            "{rendered}"
        );
        assert_eq!(cell("accounts/payments-prod"), "accounts/payments-prod");
    }

    #[test]
    fn the_approval_of_a_diff_row_is_escaped() {
        let change = Change {
            baseline: "accounts/p".into(),
            account_id: "111122223333".into(),
            setting: "flow logs".into(),
            before: "365 days".into(),
            after: "90 days".into(),
            verdict: Verdict::Approved,
            approval: Some("CHG-1|</details>\n<!--".into()),
        };
        let markdown = render_diff(&[change], Format::Markdown);
        let row = markdown.lines().find(|l| l.starts_with("| accounts/p")).unwrap();
        assert_eq!(row.matches('|').count(), 7, "{row}");
        assert!(
            !markdown.contains("</details>") && !markdown.contains("<!--"),
            "{markdown}"
        );
    }
}

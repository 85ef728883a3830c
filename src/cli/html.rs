//! `trailkeeper report -o html`: one self-contained page for an auditor (inline style, no script,
//! nothing fetched from the network): a matrix of accounts by the benchmark's logging controls,
//! delivery and integrity; each cell's evidence on hover (its title) and in the account's
//! expandable row below; printed, the rows are expanded and the colours kept.

use std::fmt::Write as _;

use crate::api::{ComplianceStatus, Condition, ControlResult};

/// The integrity of an account's logs over the period `report --verify-hours` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integrity {
    pub hours: u32,
    pub valid: bool,
    pub digests: usize,
    pub log_files: usize,
    /// One line per problem found (`Modified log AWSLogs/...: why`), or why it could not be read.
    pub problems: Vec<String>,
}

/// One account of the page.
pub struct Row<'a> {
    pub baseline: &'a str,
    pub account: &'a str,
    /// Why the account could not be judged (then only this is shown).
    pub error: Option<String>,
    pub compliance: ComplianceStatus,
    pub delivery: Option<Condition>,
    /// None: not checked (`--verify-hours` not given).
    pub integrity: Option<Integrity>,
}

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

// Printed, every account's evidence shows: a closed <details> hides its content through the
// `::details-content` slot in current browsers (Chromium 131 and later), which `display` on the
// children does not undo (tests/report.rs prints the page in Chromium and counts its pages).
const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1b1f24}
h1{font-size:1.5em;margin:0 0 .2em}p.meta{color:#57606a;margin:0 0 1em}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}th.c{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:500}
td.r{text-align:center;font-weight:600;white-space:nowrap}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}.na{background:#f6f8fa;color:#57606a}.unknown{background:#fff8c5;color:#7d4e00}
details{margin:.3em 0}summary{cursor:pointer}td.evidence{font-size:12px}
.legend span{display:inline-block;padding:0 .5em;margin-right:.5em;border:1px solid #d0d7de}
@media print{body{margin:0;font-size:11px}details>summary{list-style:none;font-weight:600}details::details-content{content-visibility:visible;display:block}details>*{display:block}
.pass,.fail,.na,.unknown{-webkit-print-color-adjust:exact;print-color-adjust:exact}tr{break-inside:avoid}}
";

fn result_cell(result: &ControlResult, evidence: &str) -> String {
    let (class, text) = match result {
        ControlResult::Pass => ("pass", "PASS"),
        ControlResult::Fail => ("fail", "FAIL"),
        ControlResult::NotApplicable => ("na", "N/A"),
    };
    format!("<td class=\"r {class}\" title=\"{}\">{text}</td>", escape(evidence))
}

fn delivery_cell(delivery: Option<&Condition>) -> String {
    match delivery {
        Some(c) if c.status == "True" => format!("<td class=\"r pass\" title=\"{}\">OK</td>", escape(&c.message)),
        Some(c) if c.status == "False" => {
            format!(
                "<td class=\"r fail\" title=\"{}: {}\">FAILING</td>",
                escape(&c.reason),
                escape(&c.message)
            )
        }
        Some(c) => format!("<td class=\"r unknown\" title=\"{}\">WAITING</td>", escape(&c.message)),
        None => "<td class=\"r na\" title=\"the trail's deliveries could not be read\">N/A</td>".to_string(),
    }
}

fn integrity_cell(integrity: Option<&Integrity>) -> String {
    match integrity {
        None => "<td class=\"r na\" title=\"not checked: report --verify-hours N, or trailkeeper verify\">—</td>"
            .to_string(),
        Some(i) if i.valid => format!(
            "<td class=\"r pass\" title=\"{} digest files and {} log files of the last {} h valid\">VALID</td>",
            i.digests, i.log_files, i.hours
        ),
        Some(i) => format!(
            "<td class=\"r fail\" title=\"{}\">NOT VALID</td>",
            escape(&i.problems.join("; "))
        ),
    }
}

/// The page: the matrix, then per account the evidence behind each cell.
pub fn render(benchmark: &str, rows: &[Row<'_>]) -> String {
    let controls: Vec<(String, String)> = rows
        .iter()
        .flat_map(|r| r.compliance.controls.iter().map(|c| (c.id.clone(), c.title.clone())))
        .fold(Vec::new(), |mut seen, c| {
            if !seen.iter().any(|(id, _)| *id == c.0) {
                seen.push(c);
            }
            seen
        });
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Audit logging evidence</title><style>{STYLE}</style></head><body>\n\
         <h1>Audit logging evidence</h1>\n<p class=\"meta\">{}. {} accounts. Read from AWS by \
         <code>trailkeeper report</code> (nothing written). Hover a cell for its evidence; expand an \
         account for all of it.</p>\n<p class=\"legend\"><span class=\"pass\">PASS</span><span class=\"fail\">FAIL</span>\
         <span class=\"na\">N/A: not applicable</span><span class=\"unknown\">WAITING: no delivery yet</span></p>\n",
        escape(benchmark),
        rows.len()
    );
    page.push_str("<table id=\"matrix\"><thead><tr><th>Account</th><th>Passed</th>");
    for (id, title) in &controls {
        let _ = write!(page, "<th class=\"c\" title=\"{}\">{}</th>", escape(title), escape(id));
    }
    page.push_str("<th class=\"c\">Delivery</th><th class=\"c\">Integrity</th></tr></thead><tbody>\n");
    for row in rows {
        let _ = write!(
            page,
            "<tr><td><a href=\"#a-{0}\">{0}</a><br><small>{1}</small></td>",
            escape(row.account),
            escape(row.baseline)
        );
        if let Some(error) = &row.error {
            let _ = writeln!(
                page,
                "<td class=\"r unknown\" colspan=\"{}\">not evaluated: {}</td></tr>",
                controls.len() + 3,
                escape(error)
            );
            continue;
        }
        let _ = write!(page, "<td class=\"r\">{}</td>", escape(&row.compliance.summary));
        for (id, _) in &controls {
            match row.compliance.controls.iter().find(|c| &c.id == id) {
                Some(c) => page.push_str(&result_cell(&c.result, &c.evidence)),
                None => page.push_str("<td class=\"r na\">—</td>"),
            }
        }
        page.push_str(&delivery_cell(row.delivery.as_ref()));
        page.push_str(&integrity_cell(row.integrity.as_ref()));
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody></table>\n");
    what_to_set(&mut page, rows);
    page.push_str("<h2>Evidence</h2>\n");
    for row in rows {
        evidence_section(&mut page, row);
    }
    page.push_str("</body></html>\n");
    page
}

/// For each control that fails, what to set (`judge::remedies`), with the accounts it fails in;
/// controls with the same advice failing in the same accounts (section 4's fifteen) share a row.
fn what_to_set(page: &mut String, rows: &[Row<'_>]) {
    let mut failing: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for row in rows.iter().filter(|r| r.error.is_none()) {
        for c in row
            .compliance
            .controls
            .iter()
            .filter(|c| c.result == ControlResult::Fail)
        {
            match failing.iter_mut().find(|(id, _, _)| *id == c.id) {
                Some((_, _, accounts)) => accounts.push(row.account),
                None => failing.push((&c.id, &c.title, vec![row.account])),
            }
        }
    }
    if failing.is_empty() {
        page.push_str("<p class=\"meta\">Every control judged passes.</p>\n");
        return;
    }
    // (controls, the accounts they fail in, what to set): one row per accounts and advice.
    type Row<'a> = (Vec<(&'a str, &'a str)>, String, &'a str);
    let mut grouped: Vec<Row> = Vec::new();
    for (id, title, accounts) in failing {
        let advice = crate::judge::remedies::what_to_set(id).unwrap_or("see the evidence below");
        let accounts = accounts.join(", ");
        match grouped.iter_mut().find(|(_, a, adv)| *a == accounts && *adv == advice) {
            Some((controls, _, _)) => controls.push((id, title)),
            None => grouped.push((vec![(id, title)], accounts, advice)),
        }
    }
    page.push_str("<h2>What to set for each FAIL</h2>\n<table id=\"remedies\"><tr><th>Control</th><th>Fails in</th><th>To pass</th></tr>\n");
    for (controls, accounts, advice) in grouped {
        let named = match controls.as_slice() {
            [(id, title)] => format!("{id} {title}"),
            several => several.iter().map(|(id, _)| *id).collect::<Vec<_>>().join(", "),
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"evidence\">{}</td></tr>",
            escape(&named),
            escape(&accounts),
            escape(advice)
        );
    }
    page.push_str("</table>\n");
}

fn evidence_section(page: &mut String, row: &Row<'_>) {
    let _ = writeln!(
        page,
        "<details id=\"a-{0}\"><summary>Account {0} ({1}): {2}</summary>\n<table><tr><th>Control</th><th>Result</th><th>Evidence</th></tr>",
        escape(row.account),
        escape(row.baseline),
        escape(row.error.as_deref().unwrap_or(&row.compliance.summary))
    );
    for c in &row.compliance.controls {
        let _ = writeln!(
            page,
            "<tr><td>{} {}</td>{}<td class=\"evidence\">{}</td></tr>",
            escape(&c.id),
            escape(&c.title),
            result_cell(&c.result, &c.evidence),
            escape(&c.evidence)
        );
    }
    if let Some(d) = &row.delivery {
        let _ = writeln!(
            page,
            "<tr><td>Delivery</td>{}<td class=\"evidence\">{}: {}</td></tr>",
            delivery_cell(Some(d)),
            escape(&d.reason),
            escape(&d.message)
        );
    }
    let integrity = match &row.integrity {
        Some(i) if i.valid => format!(
            "{} digest files and {} log files of the last {} hours valid (signatures, chain, hashes)",
            i.digests, i.log_files, i.hours
        ),
        Some(i) => i.problems.join("\n"),
        None => "not checked".to_string(),
    };
    let _ = writeln!(
        page,
        "<tr><td>Integrity</td>{}<td class=\"evidence\">{}</td></tr>\n</table></details>",
        integrity_cell(row.integrity.as_ref()),
        escape(&integrity)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_cannot_break_out_of_its_cell_or_attribute() {
        let hostile = "\"><script>alert(1)</script><img src=x onerror=y>'&";
        let escaped = escape(hostile);
        for raw in ['<', '>', '"', '\''] {
            assert!(!escaped.contains(raw), "{raw} in {escaped}");
        }
        let compliance = ComplianceStatus {
            benchmark: "b".into(),
            summary: "0/1".into(),
            controls: vec![crate::api::Control {
                id: "3.1".into(),
                title: hostile.into(),
                result: ControlResult::Fail,
                evidence: hostile.into(),
            }],
        };
        let page = render(
            hostile,
            &[Row {
                baseline: hostile,
                account: "111122223333",
                error: None,
                compliance,
                delivery: None,
                integrity: None,
            }],
        );
        assert!(!page.contains("<script") && !page.contains("<img"), "{page}");
        assert!(!page.contains("src=") || !page.contains("<img"));
        assert!(page.contains("FAIL"));
    }

    fn row<'a>(account: &'a str, results: &[(&str, ControlResult)]) -> Row<'a> {
        let controls = results
            .iter()
            .map(|(id, result)| crate::api::Control {
                id: id.to_string(),
                title: format!("control {id}"),
                result: result.clone(),
                evidence: String::new(),
            })
            .collect();
        Row {
            baseline: account,
            account,
            error: None,
            compliance: ComplianceStatus {
                benchmark: "b".into(),
                summary: String::new(),
                controls,
            },
            delivery: None,
            integrity: None,
        }
    }

    #[test]
    fn each_failing_control_says_what_to_set_and_where_it_fails() {
        use ControlResult::{Fail, Pass};
        let page = render(
            "b",
            &[
                row("111122223333", &[("3.3", Fail), ("3.6", Pass)]),
                row("444455556666", &[("3.3", Fail), ("3.6", Fail)]),
            ],
        );
        let remedies = page
            .split("<table id=\"remedies\">")
            .nth(1)
            .expect("a table of remedies");
        assert!(
            remedies.contains("<td>111122223333, 444455556666</td>")
                && remedies.contains("configRules.createRecorder: true"),
            "{remedies}"
        );
        assert!(remedies.contains("<td>444455556666</td>") && remedies.contains("enable rotation"));
        // The same advice for the same accounts: one row naming the controls.
        let section4 = render(
            "b",
            &[row("111122223333", &[("4.1", Fail), ("4.2", Fail), ("4.3", Pass)])],
        );
        let remedies = section4.split("<table id=\"remedies\">").nth(1).unwrap();
        let remedies = remedies.split("</table>").next().unwrap();
        assert_eq!(remedies.matches("<tr><td>").count(), 1, "{remedies}");
        assert!(remedies.contains("<td>4.1, 4.2</td>"), "{remedies}");
        let passing = render("b", &[row("111122223333", &[("3.3", Pass)])]);
        assert!(passing.contains("Every control judged passes") && !passing.contains("id=\"remedies\""));
    }
}

//! What each check expects, what a target answered, and the summary table.

use std::fmt;
use std::sync::Mutex;

/// What a target answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Refused, with the error code.
    Refused(String),
    /// A state read back: COMPLETED, FAILED, published, failed, delivered...
    Status(String),
    /// The check could not tell (a setup step failed, or nothing came within the bound).
    Unknown(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Accepted => write!(f, "accepted"),
            Outcome::Refused(code) => write!(f, "refused: {code}"),
            Outcome::Status(status) => write!(f, "{status}"),
            Outcome::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}

/// What AWS is expected to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Accepted,
    /// Refused with this error code.
    Refused(&'static str),
    /// Refused, whatever the code (AWS documents none).
    RefusedAny,
    Status(&'static str),
}

impl Expect {
    pub fn holds(&self, outcome: &Outcome) -> bool {
        match (self, outcome) {
            (Expect::Accepted, Outcome::Accepted) => true,
            (Expect::Refused(code), Outcome::Refused(got)) => code == got,
            (Expect::RefusedAny, Outcome::Refused(_)) => true,
            (Expect::Status(status), Outcome::Status(got)) => status == got,
            _ => false,
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Accepted => write!(f, "accepted"),
            Expect::Refused(code) => write!(f, "refused: {code}"),
            Expect::RefusedAny => write!(f, "refused"),
            Expect::Status(status) => write!(f, "{status}"),
        }
    }
}

/// Where an expectation comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// AWS's documentation says so (docs/conformance.md cites the page).
    Documented,
    /// AWS's documentation is ambiguous; this is the emulator's reading (the review's finding
    /// id), which this check settles.
    Reading(&'static str),
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Basis::Documented => write!(f, "documented"),
            Basis::Reading(finding) => write!(f, "reading ({finding})"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Check {
    pub scenario: &'static str,
    pub check: String,
    pub expect: Expect,
    pub basis: Basis,
    pub outcome: Outcome,
    /// What the target said besides (an alarm's history, a delivery error), for the notes.
    pub note: Option<String>,
}

impl Check {
    pub fn holds(&self) -> bool {
        self.expect.holds(&self.outcome)
    }
}

/// The checks of a run, recorded as they are made (a scenario that fails half-way keeps the
/// first half).
#[derive(Default)]
pub struct Checks {
    checks: Mutex<Vec<Check>>,
}

impl Checks {
    pub fn record(
        &self,
        scenario: &'static str,
        check: impl Into<String>,
        expect: Expect,
        basis: Basis,
        outcome: Outcome,
    ) {
        self.record_with(scenario, check, expect, basis, outcome, None);
    }

    pub fn record_with(
        &self,
        scenario: &'static str,
        check: impl Into<String>,
        expect: Expect,
        basis: Basis,
        outcome: Outcome,
        note: Option<String>,
    ) {
        self.checks.lock().unwrap_or_else(|e| e.into_inner()).push(Check {
            scenario,
            check: check.into(),
            expect,
            basis,
            outcome,
            note,
        });
    }

    pub fn into_vec(self) -> Vec<Check> {
        self.checks.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The table of one target's run.
pub fn table(label: &str, checks: &[Check]) -> String {
    let mut out = format!("| scenario | check | expectation | basis | {label} | holds? |\n|---|---|---|---|---|---|\n");
    for c in checks {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            c.scenario,
            cell(&c.check),
            c.expect,
            c.basis,
            cell(&c.outcome.to_string()),
            if c.holds() { "yes" } else { "NO" }
        ));
    }
    out.push_str(&notes(checks, label));
    out
}

/// The table of a run on AWS beside the same scenarios on the emulator: agree when both
/// answered as expected.
pub fn table_both(aws: &[Check], emulator: &[Check]) -> String {
    let mut out = String::from(
        "| scenario | check | expectation | basis | AWS | emulator | agree? |\n|---|---|---|---|---|---|---|\n",
    );
    for c in aws {
        let twin = emulator.iter().find(|e| e.scenario == c.scenario && e.check == c.check);
        let (emulated, agree) = match twin {
            Some(e) => (
                e.outcome.to_string(),
                match (c.holds(), e.holds()) {
                    (true, true) => "yes",
                    (false, true) => "NO: AWS differs (file it)",
                    (true, false) => "NO: the emulator differs",
                    (false, false) => "NO: neither as expected",
                },
            ),
            None => (
                "not run".to_string(),
                if c.holds() { "-" } else { "NO: AWS differs (file it)" },
            ),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            c.scenario,
            cell(&c.check),
            c.expect,
            c.basis,
            cell(&c.outcome.to_string()),
            cell(&emulated),
            agree
        ));
    }
    out.push_str(&notes(aws, "AWS"));
    out.push_str(&notes(emulator, "emulator"));
    out
}

fn notes(checks: &[Check], label: &str) -> String {
    let noted: Vec<String> = checks
        .iter()
        .filter_map(|c| Some(format!("- {} / {}: {}\n", c.scenario, c.check, c.note.as_ref()?)))
        .collect();
    if noted.is_empty() {
        return String::new();
    }
    format!("\nNotes ({label}):\n{}", noted.concat())
}

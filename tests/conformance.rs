//! The conformance suite: the emulator's claims about AWS, as scenarios that run against the
//! emulator here (in the test command) and against two real AWS sandbox accounts when their
//! profiles are given. Each check asserts AWS's documented behaviour (or, where AWS's pages are
//! ambiguous, the emulator's reading, which the real run settles), and a run prints a table:
//! scenario, check, expectation, AWS's answer, the emulator's answer, agree?
//!
//! On AWS (docs/conformance.md: the IAM it needs, its time and cost):
//!   TRAILKEEPER_CONFORMANCE_ARCHIVE_PROFILE=sandbox-a TRAILKEEPER_CONFORMANCE_MEMBER_PROFILE=sandbox-b \
//!     cargo test --test conformance -- --nocapture the_emulators_claims_hold_on_aws
//! Without those variables that test prints how to run it and passes: no AWS call is made.
//!
//! 1. CreateTrail into another account's bucket and key (U1, M4): `trail::cross_account_trail`.
//! 2. Replication with Object Lock and KMS (U2, F1, M1, M2): `replication::replication`.
//! 3. An alarm into an encrypted topic (F2, M7): `alarm::alarm_into_encrypted_topic`.
//! 4. Policy size limits and principals that do not exist (F5, M3): `limits::limits`.
//! 5. `${aws:SourceAccount}` in a bucket policy's Resource: `trail::policy_variables`.

mod common;

#[path = "conformance/alarm.rs"]
mod alarm;
#[path = "conformance/limits.rs"]
mod limits;
#[path = "conformance/replication.rs"]
mod replication;
#[path = "conformance/report.rs"]
mod report;
#[path = "conformance/resources.rs"]
mod resources;
#[path = "conformance/target.rs"]
mod target;
#[path = "conformance/trail.rs"]
mod trail;

use futures::FutureExt;
use report::{Basis, Check, Checks, Expect, Outcome};
use target::{Cleanup, Target};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Trail,
    Replication,
    Alarm,
    Limits,
    Variables,
}

impl Scenario {
    const ALL: [Scenario; 5] = [
        Scenario::Trail,
        Scenario::Replication,
        Scenario::Alarm,
        Scenario::Limits,
        Scenario::Variables,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Trail => trail::SCENARIO_TRAIL,
            Scenario::Replication => replication::SCENARIO,
            Scenario::Alarm => alarm::SCENARIO,
            Scenario::Limits => limits::SCENARIO,
            Scenario::Variables => trail::SCENARIO_VARIABLE,
        }
    }

    fn needs_member(self) -> bool {
        matches!(self, Scenario::Trail | Scenario::Variables)
    }

    /// The scenarios `TRAILKEEPER_CONFORMANCE_SCENARIOS` names (e.g. `1,3`), all by default.
    fn selected() -> Vec<Scenario> {
        let Ok(list) = std::env::var(target::SCENARIOS) else {
            return Self::ALL.to_vec();
        };
        Self::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| list.split(',').any(|n| n.trim() == (i + 1).to_string()))
            .map(|(_, s)| s)
            .collect()
    }
}

/// One scenario on `target`, its resources deleted at the end whatever happened (a panic
/// included); a setup step that failed is a check that does not hold.
async fn run(target: &Target, scenario: Scenario) -> Vec<Check> {
    let (cleanup, checks) = (Cleanup::default(), Checks::default());
    let body = async {
        match scenario {
            Scenario::Trail => trail::cross_account_trail(target, &cleanup, &checks).await,
            Scenario::Replication => replication::replication(target, &cleanup, &checks).await,
            Scenario::Alarm => alarm::alarm_into_encrypted_topic(target, &cleanup, &checks).await,
            Scenario::Limits => limits::limits(target, &cleanup, &checks).await,
            Scenario::Variables => trail::policy_variables(target, &cleanup, &checks).await,
        }
    };
    let result = std::panic::AssertUnwindSafe(body)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {text}"))
        });
    let left = cleanup.run(target.poll).await;
    if let Err(e) = result {
        checks.record(
            scenario.name(),
            "the scenario's setup",
            Expect::Accepted,
            Basis::Documented,
            Outcome::Unknown(e),
        );
    }
    if !left.is_empty() {
        checks.record(
            scenario.name(),
            "cleanup",
            Expect::Accepted,
            Basis::Documented,
            Outcome::Unknown(format!(
                "left behind (tagged {}={}): {}",
                target::TAG,
                target.suffix,
                left.join("; ")
            )),
        );
    }
    checks.into_vec()
}

async fn run_all(target: &Target, scenarios: &[Scenario]) -> Vec<Check> {
    let runs = scenarios.iter().map(|s| run(target, *s));
    futures::future::join_all(runs).await.concat()
}

/// Runs `scenario` on the emulator, prints its table and asserts every check.
async fn on_the_emulator(scenario: Scenario) {
    let target = Target::emulator().await;
    let checks = run(&target, scenario).await;
    println!("{}", report::table(target.label, &checks));
    assert!(!checks.is_empty(), "no check ran");
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.holds()).collect();
    assert!(
        failed.is_empty(),
        "{} checks: the emulator differs from AWS's documented behaviour (the table above)",
        failed.len()
    );
}

#[tokio::test]
async fn a_trail_into_another_accounts_bucket_and_key_on_the_emulator() {
    on_the_emulator(Scenario::Trail).await;
}

#[tokio::test]
async fn replication_with_object_lock_and_kms_on_the_emulator() {
    on_the_emulator(Scenario::Replication).await;
}

#[tokio::test]
async fn an_alarm_into_an_encrypted_topic_on_the_emulator() {
    on_the_emulator(Scenario::Alarm).await;
}

#[tokio::test]
#[ignore = "until the emulator's policy limits land"]
async fn policies_over_their_size_and_principals_that_do_not_exist_on_the_emulator() {
    on_the_emulator(Scenario::Limits).await;
}

#[tokio::test]
async fn a_policy_variable_in_a_bucket_policys_resource_on_the_emulator() {
    on_the_emulator(Scenario::Variables).await;
}

/// Every scenario on real AWS when `TRAILKEEPER_CONFORMANCE_ARCHIVE_PROFILE` (and, for the trail
/// scenarios, `..._MEMBER_PROFILE`) name sandbox profiles, beside the same scenarios on the
/// emulator; fails when AWS answers otherwise than expected (the emulator is then wrong: file it
/// with the table). Skipped, passing, without them.
#[tokio::test]
async fn the_emulators_claims_hold_on_aws() {
    let Some(aws) = Target::aws().await else {
        eprintln!(
            "conformance on AWS skipped: set {} (and {} for the trail scenarios) to sandbox profiles, then \
             `cargo test --test conformance -- --nocapture the_emulators_claims_hold_on_aws` (docs/conformance.md)",
            target::ARCHIVE_PROFILE,
            target::MEMBER_PROFILE
        );
        return;
    };
    let aws = match aws {
        Ok(aws) => aws,
        Err(e) => panic!("conformance on AWS: {e}"),
    };
    let selected = Scenario::selected();
    let on_aws: Vec<Scenario> = selected
        .iter()
        .copied()
        .filter(|s| aws.member.is_some() || !s.needs_member())
        .collect();
    for skipped in selected.iter().filter(|s| !on_aws.contains(s)) {
        eprintln!(
            "scenario {} skipped: it needs a second account ({})",
            skipped.name(),
            target::MEMBER_PROFILE
        );
    }
    let on_emulator: Vec<Scenario> = on_aws
        .iter()
        .copied()
        .filter(|s| *s != Scenario::Limits || limits::emulator_models_it())
        .collect();
    eprintln!(
        "conformance run {} in accounts {} and {} ({} and {}): up to {} minutes",
        aws.suffix,
        aws.archive.id,
        aws.member.as_ref().map_or("-", |m| m.id.as_str()),
        aws.region,
        aws.replica_region,
        aws.wait.as_secs() / 60 + 3
    );
    let emulator = Target::emulator().await;
    let (answered, emulated) = tokio::join!(run_all(&aws, &on_aws), run_all(&emulator, &on_emulator));
    let table = report::table_both(&answered, &emulated);
    println!("{table}");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/conformance-{}.md", aws.suffix));
    if std::fs::write(&file, &table).is_ok() {
        eprintln!("the table is in {}", file.display());
    }
    let differ: Vec<&Check> = answered.iter().filter(|c| !c.holds()).collect();
    assert!(
        differ.is_empty(),
        "{} checks on AWS differ from what the emulator claims: the emulator is wrong, not AWS. \
         File an issue with the table above ({}; docs/conformance.md, \"When a check disagrees\").",
        differ.len(),
        file.display()
    );
}

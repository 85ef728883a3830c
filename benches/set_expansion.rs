//! `trailkeeper validate` on one LoggingBaselineSet listing N accounts: each account's baseline is
//! rendered from the template and validated as a written-out LoggingBaseline would be (schema and
//! CEL rules). Before issue 27 the CEL rules were compiled again for every account (about 35 ms
//! an account in a debug build).
//!
//! `cargo bench --profile dev --bench set_expansion` (`TRAILKEEPER_BENCH_N`, default 5000, the
//! most a set may list). Prints the wall time of the whole command (the binary, as a user runs
//! it) and of the in-process validation, in milliseconds per account.

use std::time::Instant;

fn manifest(accounts: usize) -> String {
    let mut text = String::from(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaselineSet\nmetadata: {name: fleet, namespace: accounts}\nspec:\n  template:\n    labels: {fleet: bench}\n    spec:\n      primaryRegion: us-east-1\n      regions: [us-east-1, eu-west-1]\n      credentials: {assumeRoleArn: \"arn:aws:iam::{{accountId}}:role/trailkeeper\"}\n      tags: {account: \"{{accountName}}\"}\n  generator:\n    accounts:\n",
    );
    for i in 0..accounts {
        text.push_str(&format!(
            "      - {{id: \"{:012}\", name: account-{i}}}\n",
            100_000_000_000u64 + i as u64
        ));
    }
    text
}

fn main() {
    let n: usize = std::env::var("TRAILKEEPER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("set.yaml");
    std::fs::write(&path, manifest(n)).expect("the manifest is written");

    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args(["validate", "-f"])
        .arg(&path)
        .output()
        .expect("the binary runs");
    let command = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "validate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    let files = trailkeeper::manifests::collect_files(std::slice::from_ref(&path)).expect("readable");
    let (documents, problems) = trailkeeper::manifests::load(&files).expect("readable");
    let (set, more) = trailkeeper::manifests::validate(&documents);
    let in_process = started.elapsed().as_secs_f64();
    assert!(problems.is_empty() && more.is_empty(), "{problems:?} {more:?}");
    assert_eq!(set.baselines.len(), n);

    let per_account = |seconds: f64| seconds * 1e3 / n as f64;
    println!(
        "set_expansion N={n}: `trailkeeper validate` {command:.2} s ({:.3} ms per account); in process {in_process:.2} s ({:.3} ms per account)",
        per_account(command),
        per_account(in_process)
    );
}

//! The cost of a fleet: N fresh accounts converged from empty against the moto server on loopback,
//! then one in-sync pass; and the memory of the controller's cache of LoggingBaselines.
//!
//! `cargo bench --bench fleet` (N = 10, 100, 500; `TRAILKEEPER_BENCH_N=10,50` to choose).
//! Prints, per N: wall time, AWS reads and writes per account for the converge and the in-sync
//! pass, calls per second, peak resident memory, CPU seconds per account reconcile, and the ratio
//! of in-sync reads to the floor (the fewest reads an in-sync check needs).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::time::Instant;

use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use trailkeeper::api::{LoggingBaseline, RetentionPolicySpec, TrailPolicySpec};
use trailkeeper::engine::account::{AccountReport, RunMode};
use trailkeeper::manifests::ResolvedBaseline;

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

// The floor (the fewest reads in sync, the fewest writes fresh) is in tests/common, where
// tests/engine.rs holds the calls to it in every CI run.
use common::{FLOOR_READS, FLOOR_WRITES};

/// The test baseline with the audit queries on, as a production baseline has them by default.
fn bench_baseline(account: &str) -> LoggingBaseline {
    let mut b = common::baseline(account);
    b.spec.audit_queries.enabled = true;
    b
}

fn resolved(account: &str) -> ResolvedBaseline {
    ResolvedBaseline {
        id: format!("bench/{account}"),
        baseline: bench_baseline(account),
        trail_policy: TrailPolicySpec::default(),
        retention: RetentionPolicySpec::default(),
        retention_policy_name: "built-in".into(),
        archive: None,
    }
}

fn per_account(reports: &[(String, AccountReport)]) -> (f64, f64) {
    let n = reports.len() as f64;
    let reads: u32 = reports.iter().map(|(_, r)| r.calls.reads.saturating_sub(1)).sum(); // minus AssumeRole
    let writes: u32 = reports.iter().map(|(_, r)| r.calls.writes).sum();
    (f64::from(reads) / n, f64::from(writes) / n)
}

async fn fleet(n: usize) {
    let base = common::base_config().await;
    let baselines: Vec<ResolvedBaseline> = (0..n).map(|_| resolved(&common::new_account())).collect();
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let converge = trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Apply).await;
    let converge_wall = started.elapsed();
    let failed = converge.iter().filter(|(_, r)| r.failed()).count();
    let started = Instant::now();
    let in_sync = trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Apply).await;
    let sync_wall = started.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let (c_reads, c_writes) = per_account(&converge);
    let (s_reads, s_writes) = per_account(&in_sync);
    let calls = |reports: &[(String, AccountReport)]| -> u32 {
        reports.iter().map(|(_, r)| r.calls.reads + r.calls.writes).sum()
    };
    let not_in_sync = in_sync.iter().filter(|(_, r)| !r.in_sync()).count();
    if std::env::var("TRAILKEEPER_BENCH_ACTIONS").is_ok() {
        let mut totals: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
        for (_, r) in &in_sync {
            for (action, (count, _)) in &r.calls.by_action {
                *totals.entry(action.to_string()).or_default() += count;
            }
        }
        for (action, count) in totals {
            println!("  in-sync {action}: {:.2} per account", f64::from(count) / n as f64);
        }
    }
    println!("N = {n}");
    println!(
        "  converge: {:.1} s wall, {c_reads:.1} reads and {c_writes:.1} writes per account, {:.0} calls/s, {failed} failed",
        converge_wall.as_secs_f64(),
        f64::from(calls(&converge)) / converge_wall.as_secs_f64()
    );
    println!(
        "  in-sync:  {:.1} s wall, {s_reads:.1} reads and {s_writes:.1} writes per account, {:.0} calls/s, {not_in_sync} not in sync",
        sync_wall.as_secs_f64(),
        f64::from(calls(&in_sync)) / sync_wall.as_secs_f64()
    );
    println!(
        "  floor: {FLOOR_READS} reads in sync (measured/floor {:.2}), {FLOOR_WRITES} writes fresh (measured/floor {:.2})",
        s_reads / f64::from(FLOOR_READS),
        c_writes / f64::from(FLOOR_WRITES)
    );
    println!(
        "  CPU: {:.4} s per account reconcile; peak resident memory {} MiB",
        cpu / (2.0 * n as f64),
        common::proc_status_kib("self", "VmHWM:") / 1024
    );
}

/// In-sync reads of one account, alone and with `groups` log groups and `keys` keys of other
/// people in it: what trailkeeper reads should depend on what it owns only.
async fn crowded(groups: usize, keys: usize) {
    let base = common::base_config().await;
    let quiet = resolved(&common::new_account());
    let busy = resolved(&common::new_account());
    let aws = common::inspector(&busy.baseline.spec.account_id).await;
    for i in 0..groups {
        aws.logs
            .create_log_group()
            .log_group_name(format!("/var/log/other-team/app-{i:04}"))
            .send()
            .await
            .unwrap();
    }
    for _ in 0..keys {
        aws.kms.create_key().send().await.unwrap();
    }
    let baselines = [quiet, busy];
    trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Apply).await;
    let in_sync = trailkeeper::engine::fleet::run_all(&base, &baselines, RunMode::Apply).await;
    let reads = |i: usize| in_sync[i].1.calls.reads.saturating_sub(1);
    println!(
        "crowded account: in-sync reads {} alone, {} with {groups} foreign log groups and {keys} foreign keys",
        reads(0),
        reads(1)
    );
}

/// A LoggingBaseline as the API server sends it: with managedFields, the last-applied annotation
/// and a full status.
fn cached_object(i: usize) -> LoggingBaseline {
    let account = format!("{:012}", 300_000_000_000u64 + i as u64);
    let mut b = bench_baseline(&account);
    b.metadata.uid = Some(format!("6f1c3a52-0000-4000-8000-{i:012}"));
    b.metadata.resource_version = Some(format!("{}", 1_000_000 + i));
    b.metadata.generation = Some(3);
    b.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-11-01T00:00:00Z".parse().unwrap(),
    ));
    b.metadata.finalizers = Some(vec!["trailkeeper.io/cleanup".into()]);
    b.metadata.annotations = Some(
        [(
            "kubectl.kubernetes.io/last-applied-configuration".to_string(),
            serde_json::to_string(&b.spec).unwrap(),
        )]
        .into(),
    );
    b.metadata.managed_fields = Some(vec![serde_json::from_value(serde_json::json!({
        "manager": "kubectl", "operation": "Apply", "apiVersion": "trailkeeper.io/v1alpha1", "time": "2026-11-01T00:00:00Z",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:accountId": {}, "f:primaryRegion": {}, "f:credentials": {"f:assumeRoleArn": {}}}}
    })).unwrap()]);
    let conditions = [
        "KeyReady",
        "StorageReady",
        "TrailReady",
        "RetentionApplied",
        "FlowLogsReady",
        "AuditQueriesReady",
        "Ready",
    ]
    .iter()
    .map(|t| trailkeeper::api::Condition {
        type_: t.to_string(),
        status: "True".into(),
        reason: "InSync".into(),
        message: "in line with the baseline".into(),
        last_transition_time: Some("2026-11-01T00:00:00Z".into()),
        observed_generation: Some(3),
    })
    .collect();
    b.status = Some(trailkeeper::api::LoggingBaselineStatus {
        observed_generation: Some(3),
        conditions,
        trail_arn: Some(format!("arn:aws:cloudtrail:us-east-1:{account}:trail/trailkeeper")),
        bucket_name: Some(format!("trailkeeper-{account}-cloudtrail-us-east-1")),
        ..Default::default()
    });
    b
}

fn cache_memory(n: usize) {
    let (store, mut writer) = reflector::store::<LoggingBaseline>();
    let before = counting_alloc::live();
    for i in 0..n {
        let mut object = cached_object(i);
        trailkeeper::controller::baselines::slim(&mut object);
        writer.apply_watcher_event(&Event::Apply(object));
    }
    let after = counting_alloc::live();
    assert_eq!(store.state().len(), n);
    println!(
        "cache of {n} LoggingBaselines: {} bytes per baseline (managedFields and last-applied dropped)",
        (after - before) / n
    );
}

/// What a user of the command line sees (issue 43): N accounts whose controls judge every region
/// enabled (no complianceRegions: the default), converged by this build's binary with `apply`,
/// then `plan` of the N in sync: reads per account (from its JSON, less each role's AssumeRole)
/// against the floor, and the peak RSS of each `plan` and `apply` process.
fn cli(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let manifests: Vec<String> = (0..n)
        .map(|i| {
            let mut b = bench_baseline(&common::new_account());
            b.metadata.name = Some(format!("acct-{i:03}"));
            b.spec.compliance_regions.clear();
            serde_yaml::to_string(&b).unwrap()
        })
        .collect();
    let file = dir.path().join("accounts.yaml");
    std::fs::write(&file, manifests.join("---\n")).unwrap();
    let run = |command: &str| {
        use std::io::Read;
        let started = Instant::now();
        // Reaped by wait4 below (for its rusage), not by Child::wait.
        #[allow(clippy::zombie_processes)]
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
            .args([command, "-f", file.to_str().unwrap(), "-o", "json"])
            .env("AWS_ENDPOINT_URL", &common::moto().endpoint)
            .env("AWS_REGION", common::REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
        // This process's own peak RSS (ru_maxrss) of this child: wait4 reports it.
        let mut status = 0;
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: waits for our own child; wait4 writes the status and the usage it is given.
        let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, usage.as_mut_ptr()) };
        assert_eq!(waited, child.id() as libc::pid_t, "wait4");
        let peak_kib = unsafe { usage.assume_init() }.ru_maxrss;
        let wall = started.elapsed();
        let report: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_default();
        let reads: u64 = report["accounts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["calls"]["reads"].as_u64().unwrap_or(0).saturating_sub(1))
                    .sum()
            })
            .unwrap_or(0);
        let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        (code, wall, reads as f64 / n as f64, peak_kib / 1024)
    };
    let (applied, apply_wall, _, apply_peak) = run("apply");
    let (planned, plan_wall, plan_reads, plan_peak) = run("plan");
    println!(
        "cli, {n} accounts judging every enabled region: apply exit {applied:?} in {:.1} s, peak RSS {apply_peak} MiB; plan (in sync) exit {planned:?} in {:.1} s, {plan_reads:.1} reads per account (floor {FLOOR_READS}: {:.2}), peak RSS {plan_peak} MiB",
        apply_wall.as_secs_f64(),
        plan_wall.as_secs_f64(),
        plan_reads / f64::from(FLOOR_READS)
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` lists and runs nothing here.
    }
    let sizes: Vec<usize> = std::env::var("TRAILKEEPER_BENCH_N")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 500]);
    println!(
        "trailkeeper fleet benchmark on {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    // TRAILKEEPER_BENCH_CLI=20: the command line's plan of 20 accounts only.
    if let Some(n) = std::env::var("TRAILKEEPER_BENCH_CLI").ok().and_then(|v| v.parse().ok()) {
        tokio::task::block_in_place(|| cli(n));
        return;
    }
    for n in [1_000, 10_000] {
        cache_memory(n);
    }
    crowded(200, 50).await;
    for n in sizes {
        fleet(n).await;
    }
}

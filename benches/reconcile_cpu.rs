//! The CPU a controller reconcile spends besides AWS: the CEL rules checked on a baseline and its
//! two policies (before: the CRD regenerated and every rule compiled at each check, as
//! `validate_cel` does; after: `check_cel`, compiled once per kind), and building one account's
//! SDK clients (what a reconcile pays when its clients are not reused).
//!
//! `cargo bench --bench reconcile_cpu` (`TRAILKEEPER_BENCH_ITERATIONS`, default 200). Prints
//! microseconds of CPU per reconcile for each, single-threaded, in this process.

use std::time::Instant;

use trailkeeper::api::{LoggingBaseline, RetentionPolicy, TrailPolicy};

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU and wall microseconds per iteration of `f`.
fn measure(iterations: u32, mut f: impl FnMut()) -> (f64, f64) {
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    for _ in 0..iterations {
        f();
    }
    let per = |total: f64| total * 1e6 / f64::from(iterations);
    (per(cpu_seconds() - cpu), per(wall.elapsed().as_secs_f64()))
}

fn objects() -> (LoggingBaseline, TrailPolicy, RetentionPolicy) {
    let baseline = serde_yaml::from_str(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaseline\nmetadata: {name: b, namespace: n}\nspec:\n  accountId: \"111122223333\"\n  primaryRegion: us-east-1\n  regions: [us-east-1, eu-west-1]\n",
    )
    .expect("baseline");
    let trail = serde_yaml::from_str(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: TrailPolicy\nmetadata: {name: default, namespace: n}\nspec: {}\n",
    )
    .expect("trail policy");
    let retention = serde_yaml::from_str(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: RetentionPolicy\nmetadata: {name: default, namespace: n}\nspec:\n  trailLogs: {expireAfterDays: 2555}\n  approval: {reference: CHG-1}\n",
    )
    .expect("retention policy");
    (baseline, trail, retention)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` lists and runs nothing here.
    }
    let iterations: u32 = std::env::var("TRAILKEEPER_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (baseline, trail, retention) = objects();
    println!("trailkeeper reconcile CPU benchmark, {iterations} iterations, one thread");

    let (before_cpu, before_wall) = measure(iterations, || {
        assert!(baseline.validate_cel().is_ok() && trail.validate_cel().is_ok() && retention.validate_cel().is_ok());
    });
    let (after_cpu, after_wall) = measure(iterations, || {
        assert!(
            trailkeeper::api::check_cel(&baseline).is_ok()
                && trailkeeper::api::check_cel(&trail).is_ok()
                && trailkeeper::api::check_cel(&retention).is_ok()
        );
    });
    println!(
        "CEL rules of a baseline and its two policies: before {before_cpu:.0} us CPU ({before_wall:.0} us wall), after {after_cpu:.0} us CPU ({after_wall:.0} us wall) per reconcile: {:.0}x less",
        before_cpu / after_cpu.max(1.0)
    );

    let base = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("a", "b", None, None, "bench"),
        ))
        .build();
    let credentials: trailkeeper::api::Credentials =
        serde_yaml::from_str("assumeRoleArn: arn:aws:iam::111122223333:role/trailkeeper").expect("credentials");
    let clients_iterations = (iterations / 4).max(10);
    let (clients_cpu, clients_wall) = measure(clients_iterations, || {
        let clients = trailkeeper::aws::AccountClients::new(
            &base,
            "us-east-1",
            Some(&credentials),
            trailkeeper::aws::CallRecorder::new(),
        );
        std::hint::black_box(clients);
    });
    println!(
        "one account's SDK clients built: {clients_cpu:.0} us CPU ({clients_wall:.0} us wall): paid once per baseline now (cached per baseline), and per extra region each reconcile"
    );
}

//! The cost of `trailkeeper verify`: 10,000 log files (100 hourly digests of 100 files each,
//! `TRAILKEEPER_BENCH_FILES` to change) written as CloudTrail writes them into the emulator, then
//! verified. Prints the wall time, the reads it made, and the files per second.
//!
//! `MOTO_SERVER=$(scripts/ensure-moto.sh) cargo bench --bench verify`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use trailkeeper::aws::{AccountClients, CallRecorder};
use trailkeeper::desired::athena::TrailLocation;
use trailkeeper::engine::verify::{self, LogLocation};

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let files: usize = std::env::var("TRAILKEEPER_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let per_digest = 100.min(files);
    let hours = (files / per_digest) as i64;
    let account = common::new_account();
    let aws = common::inspector(&account).await;
    let bucket = format!("verify-bench-{account}");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let now = common::now_secs();
    let end = now - now % 3600 - 3600;
    let root = format!("AWS/CloudTrail/AWSLogs/{account}/");
    let written = Instant::now();
    common::chain::write_chain(
        &aws,
        common::chain::ChainSpec {
            bucket: &bucket,
            root: &root,
            account: &account,
            region: common::REGION,
            end,
            hours,
            files_per_digest: per_digest,
        },
    )
    .await;
    println!(
        "wrote {hours} digests and {} log files in {:.1} s",
        hours as usize * per_digest,
        written.elapsed().as_secs_f64()
    );
    let spec = common::spec(&account);
    let clients = AccountClients::new(
        &common::base_config().await,
        common::REGION,
        spec.credentials.as_ref(),
        CallRecorder::new(),
    );
    let location = LogLocation {
        trail: TrailLocation {
            bucket,
            key_prefix: Some("AWS/CloudTrail".into()),
            organization_id: None,
        },
        account,
    };
    let started = Instant::now();
    let report = verify::verify(&clients, &location, end - hours * 3600, end)
        .await
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    let reads = clients.calls.snapshot().reads;
    println!(
        "verify: {} digests and {} log files in {took:.1} s ({:.0} files/s), {reads} reads (AssumeRole included), valid: {}",
        report.digests,
        report.log_files,
        report.log_files as f64 / took,
        report.valid()
    );
}

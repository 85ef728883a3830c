//! The log-archive account's reconcile as members grow: N members (N = 3, 100, 1000 by default,
//! the Organization admitted where the members are more than the policies can name;
//! `TRAILKEEPER_BENCH_N=3,50` to choose) converged from empty against the moto server on
//! loopback, then an in-sync pass. Prints, per N: how the policies admit the members, their sizes
//! against S3's and KMS's limits, and the AWS reads and writes of each pass, split into the
//! delivery proof's listings (ListObjectsV2 of each member's day folders) and the rest, which must
//! not grow with N.
//!
//! `cargo bench --profile dev --bench archive`. The members deliver nothing: each member's proof
//! is then its four listings (today's and yesterday's folders, log files and digests), the most
//! it costs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use trailkeeper::api::{LogArchiveSpec, RetentionPolicySpec};
use trailkeeper::desired::archive::Member;
use trailkeeper::engine::account::RunMode;
use trailkeeper::engine::archive::{ArchiveOptions, archive_clients, reconcile_archive};

fn members(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| {
            let account = format!("{:012}", 300_000_000_000u64 + i as u64);
            Member {
                trail_arn: format!("arn:aws:cloudtrail:us-east-1:{account}:trail/trailkeeper"),
                account_id: account.clone(),
                organization: false,
                role_arn: Some(format!("arn:aws:iam::{account}:role/trailkeeper")),
            }
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("TRAILKEEPER_BENCH_N")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![3, 100, 1000]);
    let base = common::base_config().await;
    for n in sizes {
        let account = common::new_account();
        let spec: LogArchiveSpec = serde_json::from_value(serde_json::json!({
            "accountId": account,
            "region": common::REGION,
            "organizationId": "o-a1b2c3d4e5",
            "credentials": {"assumeRoleArn": format!("arn:aws:iam::{account}:role/trailkeeper")},
            "auditors": [format!("arn:aws:iam::{account}:role/auditor")],
        }))
        .expect("the bench's archive");
        let retention = RetentionPolicySpec::default();
        let all = members(n);
        let mut spec = spec;
        if trailkeeper::desired::archive::members_that_fit(&spec, &all) < n {
            // More members than the policies can name: the Organization admitted, as asked for.
            spec.admission = trailkeeper::api::Admission::Organization;
            spec.approval = Some(trailkeeper::api::Approval {
                reference: "BENCH-1".into(),
                reason: None,
            });
        }
        for (pass, label) in [(0, "converge"), (1, "in sync")] {
            let started = Instant::now();
            let report = reconcile_archive(
                archive_clients(&base, &spec),
                &spec,
                &retention,
                &all,
                ArchiveOptions::new(RunMode::Apply),
            )
            .await;
            let elapsed = started.elapsed().as_secs_f64();
            assert!(!report.account.failed(), "{:?}", report.account.components);
            if pass == 1 {
                assert!(report.account.in_sync(), "{:?}", report.account.components);
            }
            let calls = &report.account.calls;
            // Each member's proof: ListObjectsV2 of its folders (s3:ListBucket, as HeadBucket is).
            let listings = 4 * n as u32;
            println!(
                "archive N={n} {label}: admission {:?}, bucket policy {} of 20480 bytes, key policy {} of 32768 bytes; {} reads ({} of them the delivery proof, {} the rest), {} writes, {elapsed:.2} s",
                report.admission.expect("admitted"),
                report.bucket_policy_bytes,
                report.key_policy_bytes,
                calls.reads,
                listings,
                calls.reads.saturating_sub(listings),
                calls.writes,
            );
        }
    }
}

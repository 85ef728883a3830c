//! The offline fleet run of `plan`, `apply` and `report`: every account of the manifests
//! reconciled (or planned) in parallel, the archives first, transient failures tried again.

use futures::StreamExt;

use super::account::{self, AccountReport, EvidenceScope, ReconcileOptions, RunMode};
use super::archive::{ArchiveOptions, ArchiveReport, archive_clients, reconcile_archive};
use crate::desired::archive::ArchiveTarget;
use crate::manifests::{ResolvedArchive, ResolvedBaseline};
use crate::progress::Progress;

/// Accounts reconciled at once.
pub const ACCOUNT_CONCURRENCY: usize = 16;

/// Reconciles the accounts in parallel (each account's own calls are paced by its clients).
pub async fn run_all(
    base: &aws_types::SdkConfig,
    baselines: &[ResolvedBaseline],
    mode: RunMode,
) -> Vec<(String, AccountReport)> {
    run_all_counting(base, baselines, mode, &Progress::none()).await
}

/// `run_all`, counting the accounts done on `progress`.
pub async fn run_all_counting(
    base: &aws_types::SdkConfig,
    baselines: &[ResolvedBaseline],
    mode: RunMode,
    progress: &Progress,
) -> Vec<(String, AccountReport)> {
    run_all_with_archives(base, baselines, &[], mode, EvidenceScope::KeptRegions, progress).await
}

/// What `report` reads: each account planned, with the account-wide controls read in every
/// region judged (a reconcile reads the regions it keeps).
pub async fn report_all(base: &aws_types::SdkConfig, baselines: &[ResolvedBaseline]) -> Vec<(String, AccountReport)> {
    run_all_with_archives(
        base,
        baselines,
        &[],
        RunMode::Plan,
        EvidenceScope::EveryRegion,
        &Progress::none(),
    )
    .await
}

/// How often `plan` and `apply` try an account again within their run when it failed only for
/// what may pass (a network error, a timeout, throttling), and how long they wait before each.
pub const RETRIES_IN_A_RUN: [std::time::Duration; 2] =
    [std::time::Duration::from_secs(5), std::time::Duration::from_secs(20)];

/// Tries again, after `RETRIES_IN_A_RUN`'s waits, the accounts whose reconcile failed only
/// transiently (`announce` is told how many, and the wait); what still fails says so (the CLI's
/// output: "run apply again").
pub async fn retry_transient_failures(
    base: &aws_types::SdkConfig,
    baselines: &[ResolvedBaseline],
    targets: &[(String, ArchiveTarget)],
    mode: RunMode,
    reports: &mut [(String, AccountReport)],
    announce: impl Fn(usize, std::time::Duration),
) {
    for wait in RETRIES_IN_A_RUN {
        let again: Vec<ResolvedBaseline> = baselines
            .iter()
            .filter(|b| reports.iter().any(|(id, r)| *id == b.id && r.failed_transiently()))
            .cloned()
            .collect();
        if again.is_empty() {
            return;
        }
        announce(again.len(), wait);
        tokio::time::sleep(wait).await;
        let retried = run_all_with_archives(
            base,
            &again,
            targets,
            mode,
            EvidenceScope::KeptRegions,
            &Progress::none(),
        )
        .await;
        for (id, report) in retried {
            if let Some((_, slot)) = reports.iter_mut().find(|(i, _)| *i == id) {
                let attempts = slot.attempts + 1;
                *slot = report;
                slot.attempts = attempts;
            }
        }
    }
}

/// Each LogArchive of the manifests reconciled (or planned) for its members.
pub async fn run_archives(
    base: &aws_types::SdkConfig,
    archives: &[ResolvedArchive],
    mode: RunMode,
    progress: &Progress,
) -> Vec<(String, ArchiveReport)> {
    progress.add_total(archives.len() as u64);
    let mut reports = Vec::new();
    for a in archives {
        let clients = archive_clients(base, &a.archive.spec);
        let members: Vec<_> = a.members.iter().map(|(_, m)| m.clone()).collect();
        let report = reconcile_archive(
            clients,
            &a.archive.spec,
            &a.retention,
            &members,
            ArchiveOptions::new(mode),
        )
        .await;
        progress.advance(1);
        reports.push((a.id.clone(), report));
    }
    reports
}

/// `run_all_counting`, the members of an archive delivering where `targets` (by baseline id) say.
pub async fn run_all_with_archives(
    base: &aws_types::SdkConfig,
    baselines: &[ResolvedBaseline],
    targets: &[(String, ArchiveTarget)],
    mode: RunMode,
    evidence: EvidenceScope,
    progress: &Progress,
) -> Vec<(String, AccountReport)> {
    progress.add_total(baselines.len() as u64);
    futures::stream::iter(baselines)
        .map(|b| async move {
            let specs = b.specs();
            let clients = account::account_clients(base, &specs);
            let options = ReconcileOptions {
                archive: targets.iter().find(|(id, _)| *id == b.id).map(|(_, t)| t.clone()),
                evidence,
                ..ReconcileOptions::new(mode)
            };
            let report = account::reconcile_account(clients, &specs, options).await;
            progress.advance(1);
            (b.id.clone(), report)
        })
        .buffered(ACCOUNT_CONCURRENCY)
        .collect()
        .await
}

//! One reconcile of a LogArchive: its account's key and two buckets, observed and brought to the
//! archive's desired state (policies admitting exactly its members), by the same key and storage
//! parts that keep an account's own.

use std::time::Instant;

use super::account::{AccountReconcile, observe_bucket_if_managed};
use super::report::{AccountReport, Component, ComponentState, EngineError, LastApplied, RunMode};
use crate::api::{Admission, LogArchiveSpec, Mode, RetentionPolicySpec, TrailPolicySpec};
use crate::aws::{AccountClients, AwsError, CallRecorder, ErrorKind, kms};
use crate::desired::archive::{self, Member};
use crate::desired::{AccountSpecs, DesiredAccount};

/// What a LogArchive's reconcile saw and did.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveReport {
    /// The key and storage components, drift and writes, as an account's report has them.
    pub account: AccountReport,
    /// How the policies admit the members (None: the members could not be admitted at all).
    pub admission: Option<Admission>,
    pub bucket_policy_bytes: usize,
    pub key_policy_bytes: usize,
    /// The members, sorted, and whether the policies in force admit them.
    pub members: Vec<(Member, bool)>,
    pub key_prefix: String,
}

/// The clients of the archive account: its region, its credentials.
pub fn archive_clients(base: &aws_types::SdkConfig, spec: &LogArchiveSpec) -> AccountClients {
    AccountClients::new(base, &spec.region, spec.credentials.as_ref(), CallRecorder::new())
}

/// Reconciles (or plans) the archive for `members`. Never panics; every failure is in the report.
pub async fn reconcile_archive(
    clients: AccountClients,
    spec: &LogArchiveSpec,
    retention: &RetentionPolicySpec,
    members: &[Member],
    mode: RunMode,
    last_applied: LastApplied,
) -> ArchiveReport {
    let started = Instant::now();
    let calls = clients.calls.clone();
    let calls_before = calls.snapshot();
    let mut members_sorted = members.to_vec();
    members_sorted.sort();
    members_sorted.dedup();
    let mut report = ArchiveReport {
        account: AccountReport::new(&spec.account_id, &spec.region, spec.mode),
        admission: None,
        bucket_policy_bytes: 0,
        key_policy_bytes: 0,
        members: members_sorted.iter().map(|m| (m.clone(), false)).collect(),
        key_prefix: spec.key_prefix.trim_end_matches('/').to_string(),
    };
    let desired = match archive::archive(spec, retention, &members_sorted) {
        Ok(d) => d,
        Err(message) => {
            // Checked before any call: what cannot be admitted never reaches AWS.
            report.account.error = Some(EngineError::Aws(AwsError {
                kind: ErrorKind::Invalid,
                action: "trailkeeper:ValidateSpec".into(),
                resource: format!("s3://{}", archive::bucket_name(spec)),
                code: "InvalidSpec".into(),
                message,
            }));
            return report;
        }
    };
    report.admission = Some(desired.admission);
    report.bucket_policy_bytes = desired.bucket_policy_bytes;
    report.key_policy_bytes = desired.key_policy_bytes;
    let baseline = archive::as_baseline(spec);
    let trail_policy = TrailPolicySpec::default();
    let specs = AccountSpecs {
        baseline: &baseline,
        trail_policy: &trail_policy,
        retention,
    };
    let approved = retention
        .approval
        .as_ref()
        .is_some_and(|a| last_applied.approval_reference.as_deref() != Some(&a.reference));
    let mut run = AccountReconcile {
        approved,
        clients,
        desired: desired.account,
        specs: &specs,
        write: mode == RunMode::Apply && spec.mode == Mode::Enforce,
        observed_trail: None,
        organization: None,
        forwarding: None,
        archive: None,
        report: report.account,
    };
    Box::pin(run.reconcile_key_and_storage(&last_applied)).await;
    report.account = run.report;
    let admitted = [Component::Key, Component::Storage].iter().all(|c| {
        matches!(
            report.account.components.get(c),
            Some(ComponentState::InSync | ComponentState::Repaired)
        )
    }) && report.account.error.is_none();
    for (_, member_admitted) in &mut report.members {
        *member_admitted = admitted;
    }
    report.account.calls = calls.snapshot().since(&calls_before);
    report.account.duration = started.elapsed();
    report
}

impl AccountReconcile<'_> {
    /// The key, then the access-log bucket and the archive bucket (encrypted with the key).
    async fn reconcile_key_and_storage(&mut self, last_applied: &LastApplied) {
        if !self.check_identity().await {
            return;
        }
        let DesiredAccount { key, storage, .. } = self.desired.clone();
        let Some(storage) = storage else { return };
        let c = &self.clients;
        let (observed_key, access_log_bucket, archive_bucket) = tokio::join!(
            Box::pin(kms::observe_key(c, &key.source, last_applied.key_arn.as_deref())),
            Box::pin(observe_bucket_if_managed(c, Some(&storage.access_log_bucket))),
            Box::pin(observe_bucket_if_managed(c, Some(&storage.trail_bucket))),
        );
        let key_arn = self.reconcile_key(observed_key).await;
        self.report.bucket_name = Some(storage.trail_bucket.name.clone());
        self.report.access_log_bucket_name = Some(storage.access_log_bucket.name.clone());
        self.reconcile_storage(
            &storage,
            access_log_bucket,
            archive_bucket,
            key_arn.as_deref(),
            last_applied,
        )
        .await;
    }
}

//! One reconcile of a LogArchive: its account's key and two buckets, observed and brought to the
//! archive's desired state (policies admitting exactly its members), by the same key and storage
//! parts that keep an account's own.

use std::collections::BTreeSet;
use std::time::Instant;

use futures::StreamExt;

use super::account::{AccountReconcile, observe_bucket_if_managed};
use super::report::{AccountReport, Component, ComponentState, EngineError, LastApplied, RunMode};
use crate::api::{Admission, LogArchiveSpec, Mode, RetentionPolicySpec, TrailPolicySpec};
use crate::api::{AuditQueriesStatus, BatchReplicationStatus};
use crate::aws::{AccountClients, AwsError, CallRecorder, ErrorKind, kms, organizations, s3};
use crate::desired::archive::{self, Member};
use crate::desired::{AccountSpecs, DesiredAccount, athena};
use crate::engine::regional::RegionOutcome;
use crate::judge::archive_delivery::{self, MemberDelivery};

/// What a LogArchive's reconcile saw and did.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveReport {
    /// The key and storage components, drift and writes, as an account's report has them.
    pub account: AccountReport,
    /// How the policies admit the members, once written (None: nothing was written, what was in
    /// force stays).
    pub admission: Option<Admission>,
    /// Exactly what the policies written admit (`status.admits`).
    pub admits: Option<String>,
    /// The approval that allowed admitting the Organization, once written.
    pub admission_approval: Option<String>,
    pub bucket_policy_bytes: usize,
    pub key_policy_bytes: usize,
    /// The members, sorted, and whether the policies in force admit them.
    pub members: Vec<(Member, bool)>,
    pub key_prefix: String,
    /// Per member, what arrived under its path (when the bucket could be listed).
    pub delivery: Vec<MemberDelivery>,
    /// The replica, when the archive has one and it was reconciled.
    pub replication: Option<ReplicationReport>,
    /// Where to run the audit queries over every member.
    pub audit_queries: Option<AuditQueriesStatus>,
}

impl ArchiveReport {
    /// Where `member` delivers after this reconcile (`name`: the archive's `namespace/name`), as
    /// the archive's status would say: None until the archive has its key.
    pub fn target_for(&self, name: &str, member: &Member) -> Option<archive::ArchiveTarget> {
        let trail = &member.trail_arn;
        Some(archive::ArchiveTarget {
            name: name.to_string(),
            bucket: self.account.bucket_name.clone()?,
            key_prefix: self.key_prefix.clone(),
            key_arn: self.account.key_arn.clone()?,
            admitted: self
                .members
                .iter()
                .any(|(m, ok)| *ok && m.is(&member.account_id, trail)),
            // Admitted by this reconcile's policies, as far as the caller knows.
            admitted_at: None,
            late: self
                .delivery
                .iter()
                .find(|d| d.account_id == member.account_id)
                .and_then(|d| d.problem.clone()),
        })
    }
}

/// How an archive is reconciled.
#[derive(Clone, Debug)]
pub struct ArchiveOptions {
    pub mode: RunMode,
    pub last_applied: LastApplied,
    /// Members seen delivering before (their account ids): nothing found under their path is late.
    pub delivered_before: BTreeSet<String>,
    /// The admission in force (the last status's), and the approval that allowed it: admitting
    /// the Organization where it is not needs a new approval.
    pub admission_in_force: Option<Admission>,
    pub admission_approval: Option<String>,
    /// The replica's Batch Replication as the last reconcile left it (its need, its job).
    pub batch_replication: Option<BatchReplicationStatus>,
}

impl ArchiveOptions {
    pub fn new(mode: RunMode) -> Self {
        ArchiveOptions {
            mode,
            last_applied: LastApplied::default(),
            delivered_before: BTreeSet::new(),
            admission_in_force: None,
            admission_approval: None,
            batch_replication: None,
        }
    }
}

mod replication;

pub use replication::{
    BATCH_REPLICATION_FAILED, BATCH_REPLICATION_RUNNING, REPLICATION_FAILING, REPLICATION_LATE, ReplicationReport,
    job_finished,
};

/// Members whose deliveries are listed at once.
const LISTING_CONCURRENCY: usize = 8;

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
    options: ArchiveOptions,
) -> ArchiveReport {
    let ArchiveOptions {
        mode,
        last_applied,
        delivered_before,
        admission_in_force,
        admission_approval,
        batch_replication,
    } = options;
    let started = Instant::now();
    let calls = clients.calls.clone();
    let calls_before = calls.snapshot();
    let mut members_sorted = members.to_vec();
    members_sorted.sort();
    members_sorted.dedup();
    let mut report = ArchiveReport {
        account: AccountReport::new(&spec.account_id, &spec.region, spec.mode),
        admission: None,
        admits: None,
        admission_approval: None,
        bucket_policy_bytes: 0,
        key_policy_bytes: 0,
        members: members_sorted.iter().map(|m| (m.clone(), false)).collect(),
        key_prefix: spec.key_prefix.trim_end_matches('/').to_string(),
        delivery: Vec::new(),
        replication: None,
        audit_queries: None,
    };
    // Checked before any call: what cannot be admitted, or may not be without an approval, never
    // reaches AWS.
    let refuse = |report: &mut ArchiveReport, code: &str, message: String| {
        report.account.error = Some(EngineError::Aws(AwsError {
            kind: ErrorKind::Invalid,
            action: "trailkeeper:ValidateSpec".into(),
            resource: format!("s3://{}", archive::bucket_name(spec)),
            code: code.into(),
            message,
        }));
    };
    if let Err(message) = archive::archive(spec, retention, &members_sorted) {
        refuse(&mut report, "InvalidSpec", message);
        return report;
    }
    let approval = match archive::admission_approval(spec, admission_in_force, admission_approval.as_deref()) {
        Ok(approval) => approval,
        Err(message) => {
            report
                .account
                .components
                .insert(Component::Storage, ComponentState::ApprovalRequired(message));
            return report;
        }
    };
    // An Organization trail is named by the management account, whoever created it: read from
    // the archive's account, a member of the same Organization.
    if members_sorted.iter().any(|m| m.organization) {
        match organizations::describe(&clients).await {
            Ok(Some(found)) if spec.organization_id.as_deref() == Some(found.id.as_str()) => {
                members_sorted = members_sorted
                    .into_iter()
                    .map(|m| m.owned_by(&found.management_account))
                    .collect();
                members_sorted.sort();
                report.members = members_sorted.iter().map(|m| (m.clone(), false)).collect();
            }
            Ok(found) => {
                let actual = found.map_or_else(|| "no Organization".to_string(), |o| format!("Organization {}", o.id));
                refuse(
                    &mut report,
                    "InvalidSpec",
                    format!(
                        "spec.organizationId is {} but the archive's account {} belongs to {actual}: set the Organization of the members' Organization trail",
                        spec.organization_id.as_deref().unwrap_or_default(),
                        spec.account_id
                    ),
                );
                return report;
            }
            Err(e) => {
                report.account.error = Some(EngineError::Aws(e));
                return report;
            }
        }
    }
    let desired = match archive::archive(spec, retention, &members_sorted) {
        Ok(d) => d,
        Err(message) => {
            refuse(&mut report, "InvalidSpec", message);
            return report;
        }
    };
    report.bucket_policy_bytes = desired.bucket_policy_bytes;
    report.key_policy_bytes = desired.key_policy_bytes;
    let (admission, admits) = (desired.admission, desired.admits.clone());
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
    let listable = !matches!(
        run.report.components.get(&Component::Storage),
        None | Some(ComponentState::Failed(_) | ComponentState::Waiting(_))
    ) && run.report.error.is_none();
    if listable {
        let alarm_after = i64::from(spec.delivery_alarm_after_minutes) * 60;
        report.delivery = prove_delivery(&run.clients, spec, &members_sorted, &delivered_before, alarm_after).await;
    }
    if spec.audit_queries.enabled {
        let key_arn = run.report.key_arn.clone();
        report.audit_queries = Box::pin(run.reconcile_archive_queries(spec, &members_sorted, key_arn.as_deref())).await;
    }
    if let Some(replica) = archive::replication(spec, retention) {
        let newest = report
            .delivery
            .iter()
            .filter_map(|d| d.log_file.clone())
            .max_by_key(|(_, at)| *at);
        let key_arn = run.report.key_arn.clone();
        let observed = replication::Observed {
            newest_log_file: newest,
            batch_replication,
        };
        report.replication =
            Box::pin(run.reconcile_replication(spec, &replica, key_arn.as_deref(), observed, &last_applied)).await;
    }
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
    if admitted {
        report.admission = Some(admission);
        report.admits = Some(admits);
        report.admission_approval = approval;
    }
    report.account.calls = calls.snapshot().since(&calls_before);
    report.account.duration = started.elapsed();
    report
}

/// The newest file of the first of `folders` that holds any.
async fn newest_in(clients: &AccountClients, bucket: &str, folders: Vec<String>) -> Option<(String, i64)> {
    for folder in folders {
        match s3::list_keys(clients, bucket, &folder).await {
            Ok(keys) if keys.is_empty() => continue,
            Ok(keys) => return archive_delivery::newest(&keys),
            Err(e) => {
                tracing::warn!(bucket, folder, error = %e, "a member's deliveries could not be listed");
                return None;
            }
        }
    }
    None
}

/// The newest log file and digest under each member's path, today's folder (yesterday's when
/// today's is empty): at most four listings a member, whatever the bucket holds.
async fn prove_delivery(
    clients: &AccountClients,
    spec: &LogArchiveSpec,
    members: &[Member],
    delivered_before: &BTreeSet<String>,
    alarm_after: i64,
) -> Vec<MemberDelivery> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let bucket = archive::bucket_name(spec);
    let prefix = spec.key_prefix.trim_end_matches('/');
    let days = [archive_delivery::day_of(now), archive_delivery::day_of(now - 86_400)];
    let organization = spec.organization_id.as_deref();
    let runs: Vec<futures::future::BoxFuture<'_, MemberDelivery>> = members
        .iter()
        .map(|member| {
            let folders = |kind| {
                days.iter()
                    .map(|day| archive_delivery::day_folder(prefix, organization, member, kind, day))
                    .collect::<Vec<_>>()
            };
            let (log_folders, digest_folders) = (folders("CloudTrail"), folders("CloudTrail-Digest"));
            let bucket = bucket.as_str();
            let run = async move {
                let (log_file, digest) = tokio::join!(
                    newest_in(clients, bucket, log_folders),
                    newest_in(clients, bucket, digest_folders)
                );
                let before = delivered_before.contains(&member.account_id);
                let mut judged = archive_delivery::judge_member(member, log_file, digest, before, now, alarm_after);
                if let Some(organization) = organization.filter(|_| member.organization) {
                    let region = member.trail_arn.split(':').nth(3).unwrap_or_default();
                    let root = archive_delivery::organization_root(prefix, organization);
                    judged.organization_accounts =
                        organization_accounts(clients, bucket, &root, region, now - alarm_after).await;
                }
                judged
            };
            Box::pin(run) as futures::future::BoxFuture<'_, MemberDelivery>
        })
        .collect();
    futures::stream::iter(runs)
        .buffered(LISTING_CONCURRENCY)
        .collect()
        .await
}

/// Which accounts an Organization trail delivers for (N4): its account folders under `root`
/// (one listing with a delimiter), each asked for one key delivered since `since` in the trail's
/// home `region`: (delivering, quiet). None when the folders could not be listed.
async fn organization_accounts(
    clients: &AccountClients,
    bucket: &str,
    root: &str,
    region: &str,
    since: i64,
) -> Option<(Vec<String>, Vec<String>)> {
    let folders = match s3::list_folders(clients, bucket, root).await {
        Ok(folders) => folders,
        Err(e) => {
            tracing::warn!(bucket, root, error = %e, "an Organization trail's account folders could not be listed");
            return None;
        }
    };
    let accounts: Vec<String> = folders
        .iter()
        .filter_map(|f| archive_delivery::account_of_folder(root, f))
        .collect();
    let checks = accounts.into_iter().map(|account| async move {
        let (prefix, start_after) = archive_delivery::delivered_since(root, &account, region, since);
        let found = s3::first_key_after(clients, bucket, &prefix, &start_after).await;
        (account, found)
    });
    let checked: Vec<(String, Result<Option<String>, AwsError>)> = futures::stream::iter(checks)
        .buffered(LISTING_CONCURRENCY)
        .collect()
        .await;
    let (mut delivering, mut quiet) = (Vec::new(), Vec::new());
    for (account, found) in checked {
        match found {
            Ok(Some(_)) => delivering.push(account),
            Ok(None) => quiet.push(account),
            Err(e) => tracing::warn!(bucket, account, error = %e, "an account's deliveries could not be listed"),
        }
    }
    Some((delivering, quiet))
}

impl AccountReconcile<'_> {
    /// Athena over every member: a table whose account partition lists the members, one per
    /// layout of their logs (members with trails of their own under `AWSLogs/`, those of an
    /// Organization trail under `AWSLogs/{o-id}/`: `athena::archive_tables`).
    async fn reconcile_archive_queries(
        &mut self,
        spec: &LogArchiveSpec,
        members: &[Member],
        key_arn: Option<&str>,
    ) -> Option<AuditQueriesStatus> {
        let storage_ready = matches!(
            self.report.components.get(&Component::Storage),
            Some(ComponentState::InSync | ComponentState::Repaired | ComponentState::Drifted)
        );
        if members.is_empty() {
            // No account to query yet: the table is made with the first member.
            self.merge_state(Component::AuditQueries, ComponentState::NotManaged);
            return None;
        }
        if !storage_ready || (key_arn.is_none() && self.write) {
            self.merge_state(Component::AuditQueries, ComponentState::Waiting(Component::Storage));
            return None;
        }
        let bucket = archive::bucket_name(spec);
        let layouts: Vec<(String, bool)> = members.iter().map(|m| (m.account_id.clone(), m.organization)).collect();
        let tables = athena::archive_tables(
            self.specs.baseline,
            &bucket,
            Some(spec.key_prefix.trim_end_matches('/')),
            spec.organization_id.as_deref(),
            &layouts,
        );
        if tables.is_empty() {
            // Only Organization-trail members and no Organization id: refused before this.
            self.merge_state(Component::AuditQueries, ComponentState::NotManaged);
            return None;
        }
        let mut outcome = RegionOutcome {
            region: spec.region.clone(),
            ..Default::default()
        };
        let status = Box::pin(super::audit_queries::reconcile_audit_queries(
            &self.clients,
            self.specs,
            self.write,
            key_arn,
            &bucket,
            &tables,
            &mut outcome,
        ))
        .await;
        self.absorb_changes(outcome);
        Some(status)
    }

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

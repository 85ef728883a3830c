//! The LogArchive controller: reconciles each archive's account for the LoggingBaselines that name
//! it (its members), and reports in its status which members its policies admit; a member's
//! trail waits for that (see `desired::archive::target_of`).

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::context::{ARCHIVE_KEY_PREFIX, Context, Error, FailureKind, MANAGER, api_for, now};
use super::predicates::hash_of;
use super::{status, writer};
use crate::api::{
    ArchiveMember, Condition, DeliveredFile, LastReconcile, LogArchive, LogArchiveStatus, LoggingBaseline,
    OrganizationDelivery, PolicyBytes, ReplicationStatus, RetentionPolicy, TrailPolicy,
};
use crate::desired::archive::{Member, as_baseline, member_of};
use crate::engine::archive::{ArchiveOptions, ArchiveReport, reconcile_archive};
use crate::engine::report::{LastApplied, RunMode};

/// Runs the LogArchive controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let ns = ctx.settings.watch_namespace.clone();
    let archives: Api<LogArchive> = api_for(&ctx.client, ns.as_deref());
    let baselines: Api<LoggingBaseline> = api_for(&ctx.client, ns.as_deref());
    // Members come and go with their spec (a new archiveRef, a deletion), not with their status.
    let members = watcher(baselines, watcher::Config::default().any_semantic())
        .default_backoff()
        .touched_objects()
        .predicate_filter(spec_or_deletion, Default::default());
    // Its own status writes must not trigger a reconcile (each would write status again): only
    // a new spec or a deletion passes; the resync finds drift made in AWS.
    let (store, writer) = reflector::store();
    // A shard (`--selector`) keeps the archives its selector matches: one writer per archive.
    let mut config = watcher::Config::default().any_semantic();
    if let Some(selector) = &ctx.settings.selector {
        config = config.labels(selector);
    }
    let archives = watcher(archives, config)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            archive_spec_or_deletion,
            PredicateConfig::default().ttl(ctx.predicate_ttl()),
        );
    let newly_held = super::shard::newly_held(ctx.shards.clone(), store.clone(), {
        let shards = ctx.shards.clone();
        move |archive: &LogArchive| shards.of(&archive.spec.account_id)
    });
    Controller::for_stream(archives, store)
        .reconcile_on(newly_held)
        .with_config(kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency))
        .watches_stream(members, |b: LoggingBaseline| {
            let archive = b.spec.storage.archive_ref.as_ref()?;
            Some(ObjectRef::<LogArchive>::new(&archive.name).within(&b.namespace().unwrap_or_default()))
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!(error = %e, "archive reconcile error");
            }
        })
        .await;
}

/// An archive's spec and its deletion.
fn archive_spec_or_deletion(archive: &LogArchive) -> Option<u64> {
    hash_of((
        archive.metadata.generation,
        archive.metadata.deletion_timestamp.is_some(),
    ))
}

/// A member's spec (its archiveRef, its trail) and its deletion: a member being deleted leaves.
fn spec_or_deletion(baseline: &LoggingBaseline) -> Option<u64> {
    hash_of((
        baseline.metadata.generation,
        baseline.metadata.deletion_timestamp.is_some(),
    ))
}

pub(super) fn key_of(archive: &LogArchive) -> String {
    format!(
        "{ARCHIVE_KEY_PREFIX}{}/{}",
        archive.namespace().unwrap_or_default(),
        archive.name_any()
    )
}

fn error_policy(archive: Arc<LogArchive>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(archive = %key_of(&archive), %error, "archive reconcile failed");
    Action::requeue(ctx.failure_delay(&key_of(&archive), FailureKind::Transient))
}

async fn reconcile(archive: Arc<LogArchive>, ctx: Arc<Context>) -> Result<Action, Error> {
    if archive.meta().deletion_timestamp.is_some() {
        // Retain: the archive's bucket and key hold the members' logs; nothing is removed.
        return Ok(Action::await_change());
    }
    // The archive account's shard's holder writes it (its policies, its status).
    let Some(_turn) = ctx.shards.begin(ctx.shards.of(&archive.spec.account_id)) else {
        return Ok(Action::await_change());
    };
    if let Err(e) = crate::api::check_cel(archive.as_ref()) {
        // What admission would refuse (an object stored before a rule existed) never reaches AWS.
        let message = format!("the LogArchive breaks its CRD's rules: {e}");
        patch_status(
            &ctx,
            &archive,
            not_ready_status(&archive, status::reasons::INVALID_SPEC, message),
        )
        .await?;
        return Ok(Action::await_change());
    }
    let ns = archive.namespace().unwrap_or_default();
    let retention = super::policies::resolve::<RetentionPolicy>(
        &ctx.client,
        ctx.policies.get().map(|s| &s.retention),
        &ns,
        archive.spec.retention_policy_ref.as_ref(),
    )
    .await?;
    let retention = match retention {
        Ok(found) => found.map(|p| p.spec).unwrap_or_default(),
        Err(message) => {
            patch_status(
                &ctx,
                &archive,
                not_ready_status(&archive, status::reasons::INVALID_REFERENCE, message),
            )
            .await?;
            return Ok(Action::await_change());
        }
    };
    let members = members_of(&ctx, &archive).await?;
    let previous = archive.status.clone().unwrap_or_default();
    let options = options_from(&previous);
    let clients = ctx.aws.for_baseline(&key_of(&archive), &as_baseline(&archive.spec));
    let admitting: Vec<Member> = members.iter().map(|(m, _)| m.clone()).collect();
    let run = reconcile_archive(clients, &archive.spec, &retention, &admitting, options);
    let deadline = tokio::time::Instant::now() + ctx.settings.reconcile_timeout;
    let Ok(report) = tokio::time::timeout_at(deadline, run).await else {
        let message = format!(
            "the reconcile of the log archive in account {} did not finish within {} s: AWS did not answer in time; trailkeeper will try again",
            archive.spec.account_id,
            ctx.settings.reconcile_timeout.as_secs()
        );
        patch_status(
            &ctx,
            &archive,
            not_ready_status(&archive, status::reasons::TIMEOUT, message),
        )
        .await?;
        return Ok(Action::requeue(
            ctx.failure_delay(&key_of(&archive), FailureKind::Transient),
        ));
    };
    let next = status_of(&archive, &report, &members, &previous);
    write_status_and_warn(&ctx, &archive, next, &previous).await?;
    if let Some(kind) = super::context::failure_kind(&report.account) {
        return Ok(Action::requeue(ctx.failure_delay(&key_of(&archive), kind)));
    }
    ctx.succeeded(&key_of(&archive));
    if batch_job_running(&report) {
        // A Batch Replication job is observed until it ends, sooner than at the resync.
        return Ok(Action::requeue(BATCH_JOB_RECHECK.min(ctx.resync())));
    }
    Ok(Action::requeue(ctx.resync()))
}

/// The engine's options of a reconcile, from what the previous status remembers.
fn options_from(previous: &LogArchiveStatus) -> ArchiveOptions {
    ArchiveOptions {
        mode: RunMode::Apply,
        last_applied: LastApplied {
            key_arn: previous.kms_key_arn.clone(),
            ..Default::default()
        },
        delivered_before: previous
            .members
            .iter()
            .filter(|m| m.newest_log_file.is_some() || m.newest_digest.is_some())
            .map(|m| m.account_id.clone())
            .collect(),
        admission_in_force: previous.admission,
        admission_approval: previous.admission_approval.clone(),
        // What was found to need Batch Replication, and its job, stay known across reconciles.
        batch_replication: previous.replication.as_ref().and_then(|r| r.batch_replication.clone()),
    }
}

/// Writes `next`, and a Warning Event when its Ready turns False (or is False for the first time).
async fn write_status_and_warn(
    ctx: &Context,
    archive: &LogArchive,
    next: LogArchiveStatus,
    previous: &LogArchiveStatus,
) -> Result<(), Error> {
    let ready = status::ready_condition(&next.conditions).cloned();
    let was_ready = status::ready_condition(&previous.conditions).map(|c| c.status == "True");
    patch_status(ctx, archive, next).await?;
    if let Some(ready) = ready
        && ready.status != "True"
        && was_ready != Some(false)
    {
        writer::publish_event(
            ctx.writers.recorder(ctx.shards.of(&archive.spec.account_id)),
            archive,
            EventType::Warning,
            &ready.reason,
            "Reconcile",
            ready.message.clone(),
        )
        .await;
    }
    Ok(())
}

/// How soon a running Batch Replication job is looked at again.
const BATCH_JOB_RECHECK: std::time::Duration = std::time::Duration::from_secs(300);

fn batch_job_running(report: &ArchiveReport) -> bool {
    report
        .replication
        .as_ref()
        .and_then(|r| r.batch.as_ref())
        .is_some_and(|b| b.job_id.is_some() && !crate::engine::archive::job_finished(b.job_status.as_deref()))
}

/// The baselines of the archive's namespace that name it, each as the member the archive admits
/// (its trail, and whether its TrailPolicy makes it an Organization trail). A baseline being
/// deleted is no longer a member: its statements go, its logs stay.
async fn members_of(ctx: &Context, archive: &LogArchive) -> Result<Vec<(Member, String)>, Error> {
    let ns = archive.namespace().unwrap_or_default();
    let name = archive.name_any();
    let api: Api<LoggingBaseline> = Api::namespaced(ctx.client.clone(), &ns);
    let listed = api.list(&ListParams::default()).await?;
    let mut members = Vec::new();
    for baseline in listed.items {
        let names_it = baseline
            .spec
            .storage
            .archive_ref
            .as_ref()
            .is_some_and(|r| r.name == name);
        if !names_it || baseline.meta().deletion_timestamp.is_some() {
            continue;
        }
        let trail_policy = super::policies::resolve::<TrailPolicy>(
            &ctx.client,
            ctx.policies.get().map(|s| &s.trail),
            &ns,
            baseline.spec.trail.policy_ref.as_ref(),
        )
        .await?
        .ok()
        .flatten()
        .map(|p| p.spec)
        .unwrap_or_default();
        members.push((
            member_of(&baseline.spec, &trail_policy),
            format!("{ns}/{}", baseline.name_any()),
        ));
    }
    members.sort();
    Ok(members)
}

fn status_of(
    archive: &LogArchive,
    report: &ArchiveReport,
    members: &[(Member, String)],
    previous: &LogArchiveStatus,
) -> LogArchiveStatus {
    let generation = archive.metadata.generation;
    let conditions: Vec<Condition> = status::conditions(&report.account)
        .into_iter()
        .map(|mut c| {
            if c.type_ == status::types::READY && c.status == "True" {
                c.message = format!("the archive admits {} members", members.len());
            }
            c
        })
        .collect();
    // Nothing written this time (refused before any call, or a write failed): what was admitted
    // stays admitted.
    let written = report.admission.is_some();
    let members = member_statuses(report, members, previous);
    let late_members: Vec<String> = members
        .iter()
        .filter(|m| m.late.is_some())
        .map(|m| m.account_id.clone())
        .collect();
    let mut conditions = conditions;
    if !report.delivery.is_empty() || !late_members.is_empty() {
        conditions.insert(0, delivery_condition(&members, &late_members));
    }
    LogArchiveStatus {
        observed_generation: generation,
        conditions: status::merge_conditions(&previous.conditions, conditions, &now(), generation),
        bucket_name: report.account.bucket_name.clone(),
        access_log_bucket_name: report.account.access_log_bucket_name.clone(),
        kms_key_arn: report.account.key_arn.clone().or_else(|| previous.kms_key_arn.clone()),
        key_prefix: Some(report.key_prefix.clone()),
        admission: report.admission.or(previous.admission),
        admits: report.admits.clone().or_else(|| previous.admits.clone()),
        admission_approval: match written {
            true => report.admission_approval.clone(),
            false => previous.admission_approval.clone(),
        },
        policy_bytes: match written {
            true => Some(PolicyBytes {
                bucket_policy: u32::try_from(report.bucket_policy_bytes).unwrap_or(u32::MAX),
                key_policy: u32::try_from(report.key_policy_bytes).unwrap_or(u32::MAX),
            }),
            false => previous.policy_bytes,
        },
        admitted_members: u32::try_from(members.iter().filter(|m| m.admitted).count()).unwrap_or(u32::MAX),
        members,
        late_members,
        audit_queries: report.audit_queries.clone(),
        replication: report
            .replication
            .as_ref()
            .map(|r| ReplicationStatus {
                bucket_name: r.bucket.clone(),
                kms_key_arn: r.key_arn.clone(),
                role_arn: r.role_arn.clone(),
                rule_in_force: r.rule_in_force,
                newest_object: r.newest_object.clone(),
                batch_replication: r.batch.clone(),
            })
            // Not reached this time (the archive bucket failed): what was known stands.
            .or_else(|| archive.spec.replication.as_ref().and(previous.replication.clone())),
        last_reconcile: Some(LastReconcile {
            time: now(),
            reads: report.account.calls.reads,
            writes: report.account.calls.writes,
            duration_ms: u64::try_from(report.account.duration.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

/// Each member as the status reports it: its trail, whether the policies in force admit it (and
/// since when), and what was last delivered of it.
fn member_statuses(
    report: &ArchiveReport,
    members: &[(Member, String)],
    previous: &LogArchiveStatus,
) -> Vec<ArchiveMember> {
    // Nothing written this time (refused before any call, or a write failed): what was admitted
    // stays admitted.
    let written = report.admission.is_some();
    let admitted = |m: &Member| match written {
        true => report
            .members
            .iter()
            .any(|(r, ok)| *ok && r.is(&m.account_id, &m.trail_arn)),
        false => previous
            .members
            .iter()
            .any(|p| p.admitted && m.is(&p.account_id, &p.trail_arn)),
    };
    let file = |found: &Option<(String, i64)>| {
        found.as_ref().map(|(key, at)| DeliveredFile {
            key: key.clone(),
            delivered_at: jiff::Timestamp::from_second(*at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        })
    };
    members
        .iter()
        .map(|(m, baseline)| {
            let delivery = report.delivery.iter().find(|d| d.account_id == m.account_id);
            let before = previous.members.iter().find(|p| p.account_id == m.account_id);
            // The trail as the archive names it (an Organization trail: by its management account).
            let trail_arn = report
                .members
                .iter()
                .find(|(r, _)| r.is(&m.account_id, &m.trail_arn))
                .map_or_else(|| m.trail_arn.clone(), |(r, _)| r.trail_arn.clone());
            let admitted = admitted(m);
            // Since when the policies in force admit it: kept while it stays admitted.
            let admitted_at = match (admitted, before) {
                (false, _) => None,
                (true, Some(b)) if b.admitted => b.admitted_at.clone().or_else(|| Some(now())),
                (true, _) => Some(now()),
            };
            ArchiveMember {
                account_id: m.account_id.clone(),
                trail_arn,
                baseline: baseline.clone(),
                admitted,
                admitted_at,
                // Not listed this time (the bucket could not be read): what was last seen stands.
                newest_log_file: delivery
                    .map_or_else(|| before.and_then(|b| b.newest_log_file.clone()), |d| file(&d.log_file)),
                newest_digest: delivery
                    .map_or_else(|| before.and_then(|b| b.newest_digest.clone()), |d| file(&d.digest)),
                late: delivery.map_or_else(|| before.and_then(|b| b.late.clone()), |d| d.problem.clone()),
                organization_accounts: delivery.map_or_else(
                    || before.and_then(|b| b.organization_accounts.clone()),
                    |d| {
                        d.organization_accounts
                            .as_ref()
                            .map(|(delivering, quiet)| OrganizationDelivery {
                                delivering: delivering.clone(),
                                quiet: quiet.clone(),
                            })
                    },
                ),
            }
        })
        .collect()
}

/// DeliveryHealthy of the archive: every member's logs arrive, or the late ones named.
fn delivery_condition(members: &[ArchiveMember], late: &[String]) -> Condition {
    // An Organization trail's accounts: which deliver and which went quiet (a closed or
    // suspended account goes quiet too, so they are named, not alarmed on).
    let organizations: Vec<String> = members
        .iter()
        .filter_map(|m| {
            let accounts = m.organization_accounts.as_ref()?;
            let quiet = match accounts.quiet.is_empty() {
                true => String::new(),
                false => format!(" ({})", accounts.quiet.join(", ")),
            };
            Some(format!(
                "; the Organization trail of {}: {} accounts deliver, {} went quiet{quiet}",
                m.account_id,
                accounts.delivering.len(),
                accounts.quiet.len()
            ))
        })
        .collect();
    let (state, reason, message) = if late.is_empty() {
        let delivering = members.iter().filter(|m| m.newest_log_file.is_some()).count();
        (
            "True",
            status::reasons::DELIVERING,
            format!(
                "{delivering} of {} members delivered today or yesterday; none is late{}",
                members.len(),
                organizations.concat()
            ),
        )
    } else {
        let first = members.iter().find_map(|m| m.late.clone()).unwrap_or_default();
        (
            "False",
            status::reasons::DELIVERY_FAILING,
            format!("late members: {}; {first}", late.join(", ")),
        )
    };
    Condition {
        type_: status::types::DELIVERY_HEALTHY.into(),
        status: state.into(),
        reason: reason.into(),
        message,
        ..Default::default()
    }
}

/// The previous status, not Ready for `reason`: what was admitted stays admitted.
fn not_ready_status(archive: &LogArchive, reason: &str, message: String) -> LogArchiveStatus {
    let ready = Condition {
        type_: status::types::READY.into(),
        status: "False".into(),
        reason: reason.into(),
        message,
        ..Default::default()
    };
    let mut next = archive.status.clone().unwrap_or_default();
    let generation = archive.metadata.generation;
    next.conditions = status::merge_conditions(&next.conditions, vec![ready], &now(), generation);
    next.observed_generation = generation;
    next
}

async fn patch_status(ctx: &Context, archive: &LogArchive, next: LogArchiveStatus) -> Result<(), Error> {
    let client = ctx.writers.client(ctx.shards.of(&archive.spec.account_id));
    writer::apply_status(client, archive, MANAGER, &next).await?;
    Ok(())
}

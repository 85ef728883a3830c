//! `trailkeeper run`: the kube-runtime Controller for LoggingBaselines. Reconciles hand the object
//! to the finalizer, which calls `apply` or `cleanup`; status is written once per reconcile with
//! server-side apply; TrailPolicy and RetentionPolicy changes re-reconcile the baselines using them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use crate::api::{
    LogArchive, LoggingBaseline, LoggingBaselineStatus, RetentionPolicy, RetentionPolicySpec, TrailPolicy,
    TrailPolicySpec,
};
use crate::controller::{status, writer};
use crate::desired::AccountSpecs;
use crate::engine::account::{AccountReport, LastApplied, ReconcileOptions, RunMode, reconcile_account};
use crate::engine::cleanup;
use crate::judge::evidence::OtherRegions;

pub use super::context::{AwsClients, Context, Error, FINALIZER, MANAGER, PolicyStores, Settings, slim};
use super::context::{FailureKind, account_keeper, api_for, failure_kind, key_of, now};
use super::events::{publish, publish_outcome, ready_of};
use super::integrity::verify_integrity;
use super::policies::policies;
pub use super::policies::{baselines_using_retention_policy, baselines_using_trail_policy};
use super::predicates::hash_of;

/// The reconcile entry: the finalizer calls `apply` or `cleanup`.
pub async fn reconcile(baseline: Arc<LoggingBaseline>, ctx: Arc<Context>) -> Result<Action, Error> {
    // The account's shard's holder writes it; this replica, when it holds it, from then on.
    let shard = ctx.shards.of(&baseline.spec.account_id);
    let Some(_turn) = ctx.shards.begin(shard) else {
        return Ok(Action::await_change());
    };
    if ctx.defers_resync(&baseline) {
        crate::runtime::metrics::record_deferred_resync();
        return Ok(Action::requeue(ctx.resync()));
    }
    // Attempted: no longer waited for by others' resyncs, whatever comes of it.
    ctx.attempt(&baseline);
    if ctx.shards.is_sharded() {
        crate::runtime::metrics::record_shard_reconcile(shard);
    }
    let started = Instant::now();
    let ns = baseline.namespace().unwrap_or_default();
    let api: Api<LoggingBaseline> = Api::namespaced(ctx.writers.client(shard).clone(), &ns);
    let result = finalizer(&api, FINALIZER, baseline, |event| async {
        match event {
            Finalizer::Apply(b) => apply(b, ctx.clone()).await,
            Finalizer::Cleanup(b) => cleanup(b, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    crate::runtime::metrics::record_reconcile(started.elapsed(), result.as_ref().err().map(|e| e.metric_label()));
    result
}

/// Kubernetes API failures (AWS failures are reported in status and requeued by `apply`).
pub fn error_policy(baseline: Arc<LoggingBaseline>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(baseline = %key_of(&baseline), %error, "reconcile failed");
    Action::requeue(ctx.failure_delay(&key_of(&baseline), FailureKind::Transient))
}

async fn patch_status(ctx: &Context, baseline: &LoggingBaseline, status: &LoggingBaselineStatus) -> Result<(), Error> {
    let shard = ctx.shards.of(&baseline.spec.account_id);
    let mut status = std::borrow::Cow::Borrowed(status);
    if ctx.shards.is_sharded() {
        status.to_mut().reconciled_by = Some(crate::api::ReconciledBy {
            replica: ctx.shards.identity().to_string(),
            shard,
            shards: ctx.shards.count(),
        });
    }
    writer::apply_status(ctx.writers.client(shard), baseline, MANAGER, status.as_ref()).await?;
    Ok(())
}

async fn apply(baseline: Arc<LoggingBaseline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key_of(&baseline);
    ctx.saw(&baseline);
    let generation = baseline.metadata.generation;
    let previous = baseline.status.as_ref();
    if let Some(keeper) = ctx
        .baselines
        .get()
        .and_then(|store| account_keeper(&baseline, &store.state()))
    {
        let message = format!(
            "account {} is kept by the older LoggingBaseline {keeper}: this one writes nothing while both exist (delete one of them)",
            baseline.spec.account_id
        );
        mark_not_ready(&ctx, &baseline, status::reasons::CONFLICT, "Reconcile", message).await?;
        // Looked at again soon: it takes over once the keeper is deleted.
        return Ok(Action::requeue(ctx.resync().min(CONFLICT_RECHECK)));
    }
    let (trail_policy, retention, policy_name) = match policies(&ctx.client, ctx.policies.get(), &baseline).await? {
        Ok(p) => p,
        Err((reason, message)) => {
            // Nothing reaches AWS until the specs are usable; a change of any of them re-triggers.
            mark_not_ready(&ctx, &baseline, reason, "Resolve", message).await?;
            return Ok(Action::await_change());
        }
    };
    let specs = AccountSpecs {
        baseline: &baseline.spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let clients = ctx.aws.for_baseline(&key, &baseline.spec);
    let archive = archive_of(&ctx, &baseline).await;
    let options = ReconcileOptions {
        mode: RunMode::Apply,
        last_applied: LastApplied {
            approval_reference: previous
                .and_then(|s| s.applied_retention.as_ref())
                .and_then(|a| a.approval.clone()),
            key_arn: previous.and_then(|s| s.kms_key_arn.clone()),
        },
        forwarding: forwarding_for(&ctx, &baseline),
        archive: archive
            .as_ref()
            .and_then(|a| crate::desired::archive::target_of(&archive_name(a), a.status.as_ref()?, &baseline.spec)),
        evidence: Default::default(),
    };
    // One bound for the reconcile and its verification together: a verification due gets what
    // the reconcile left of it, so a pod's shutdown never waits for two.
    let deadline = tokio::time::Instant::now() + ctx.settings.reconcile_timeout;
    let run = reconcile_account(clients, &specs, options);
    let Ok(report) = tokio::time::timeout_at(deadline, run).await else {
        // Each AWS call has its own timeout; this bounds the whole (a stalled endpoint, a call
        // that retries for long), so that the slot goes to other baselines.
        let message = format!(
            "the reconcile of account {} did not finish within {} s: AWS did not answer in time; trailkeeper will try again",
            baseline.spec.account_id,
            ctx.settings.reconcile_timeout.as_secs()
        );
        mark_not_ready(&ctx, &baseline, status::reasons::TIMEOUT, "Reconcile", message).await?;
        crate::runtime::metrics::record_reconcile_timeout();
        return Ok(Action::requeue(ctx.failure_delay(&key, FailureKind::Transient)));
    };
    // The regions a reconcile does not read, as the account-wide sweep last judged them.
    let mut report = report;
    let sweep = latest_sweep(&ctx, &baseline, &key, &mut report);
    let mut next = status::from_report(&report, previous, generation, &now(), &retention, &policy_name);
    next.compliance_sweep = sweep.clone();
    // Section 4 of a member of another account's Organization trail: judged where the trail is.
    if let Some((trail_arn, owner)) = crate::judge::coverage::covering_owner(&report.evidence)
        && let Some(compliance) = next.compliance.take()
    {
        let theirs = owner_compliance(&ctx, &baseline, &owner).await;
        next.compliance = Some(crate::judge::coverage::with_coverage(
            compliance,
            &trail_arn,
            theirs.as_ref(),
        ));
    }
    if baseline.spec.verify_integrity.enabled && report.error.is_none() {
        verify_integrity(&ctx, &baseline, &trail_policy, archive.as_ref(), deadline, &mut next).await;
    }
    super::findings::export_findings(&ctx, &baseline, &trail_policy, &key, deadline, &mut next).await;
    patch_status(&ctx, &baseline, &next).await?;
    if let Some(sweep) = &sweep {
        ctx.sweeps.written(&key, sweep);
        crate::runtime::metrics::set_sweep_time(&baseline.spec.account_id, &sweep.time);
    }
    record_metrics(&baseline, &key, &report, &next);
    publish_outcome(&ctx, &baseline, &report, &next).await;
    match failure_kind(&report) {
        // A failure, or something not yet in force (`retry_soon`: AWS has not seen the archive's
        // new policies or a key policy yet): soon again, backing off.
        Some(kind) => Ok(Action::requeue(ctx.failure_delay(&key, kind))),
        None => {
            ctx.succeeded(&key);
            Ok(Action::requeue(ctx.resync()))
        }
    }
}

/// The account-wide sweep last written for `baseline`, when it needs one: what it judged of the
/// regions the reconcile does not read goes into `report`'s evidence.
fn latest_sweep(
    ctx: &Context,
    baseline: &LoggingBaseline,
    key: &str,
    report: &mut AccountReport,
) -> Option<crate::api::ComplianceSweep> {
    let previous = baseline.status.as_ref();
    let sweep = super::sweep::needs_sweep(&baseline.spec)
        .then(|| {
            ctx.sweeps
                .latest(key, previous.and_then(|p| p.compliance_sweep.as_ref()))
        })
        .flatten();
    if report.evidence.other_regions == OtherRegions::NotSwept
        && let Some(sweep) = &sweep
    {
        report.evidence.other_regions = OtherRegions::Swept(sweep.clone());
    }
    sweep
}

/// The series of a reconcile: the drift repaired, Ready, delivery, the CIS controls and the cost
/// of duplicate trails.
fn record_metrics(baseline: &LoggingBaseline, key: &str, report: &AccountReport, next: &LoggingBaselineStatus) {
    crate::runtime::metrics::record_drift_repairs(report.applied.len());
    let ready = ready_of(next);
    crate::runtime::metrics::set_baseline_ready(key, ready.as_ref().map(|(s, _)| s == "True"));
    if report.delivery_observed {
        let deliveries = report.delivery.iter().map(|f| crate::runtime::metrics::Delivery {
            component: &f.component,
            age_seconds: f.age_seconds,
            failing: f.problem.is_some(),
        });
        crate::runtime::metrics::set_delivery(&baseline.spec.account_id, deliveries);
    }
    if let Some(compliance) = &next.compliance {
        crate::runtime::metrics::set_cis_controls(&baseline.spec.account_id, compliance);
    }
    if report.error.is_none() {
        crate::runtime::metrics::set_duplicate_trail_cost(&baseline.spec.account_id, next.duplicate_trails.as_ref());
    }
}

/// The compliance last judged for `account` by a baseline of the same namespace (the owner of an
/// Organization trail that covers this baseline's account), read from the API server: the cache
/// keeps no compliance (`slim`).
async fn owner_compliance(
    ctx: &Context,
    baseline: &LoggingBaseline,
    account: &str,
) -> Option<crate::api::ComplianceStatus> {
    let owners: Vec<Arc<LoggingBaseline>> = ctx
        .baselines
        .get()?
        .state()
        .into_iter()
        .filter(|b| b.namespace() == baseline.namespace() && b.spec.account_id == account)
        .collect();
    for owner in owners {
        if let Ok(Some(status)) = status_of(ctx, &owner).await
            && status.compliance.is_some()
        {
            return status.compliance;
        }
    }
    None
}

/// The whole status of `baseline` as the API server has it (the cache's is slim). A GET of the
/// object, which the chart's RBAC grants (the status subresource's GET it does not need).
async fn status_of(ctx: &Context, baseline: &LoggingBaseline) -> Result<Option<LoggingBaselineStatus>, Error> {
    let api: Api<LoggingBaseline> = Api::namespaced(ctx.client.clone(), &baseline.namespace().unwrap_or_default());
    Ok(api.get(&baseline.name_any()).await?.status)
}

/// A baseline that could not be reconciled (`reason`): its status says so, and an Event when it
/// was ready before.
async fn mark_not_ready(
    ctx: &Context,
    baseline: &LoggingBaseline,
    reason: &str,
    action: &str,
    message: String,
) -> Result<(), Error> {
    // The whole previous status, not the cache's slim copy: what is applied replaces it.
    let whole = status_of(ctx, baseline).await?;
    let previous = whole.as_ref();
    let status = status::not_ready(previous, baseline.metadata.generation, &now(), reason, &message);
    patch_status(ctx, baseline, &status).await?;
    if previous.and_then(ready_of) != ready_of(&status) {
        publish(ctx, baseline, EventType::Warning, reason, action, message).await;
    }
    crate::runtime::metrics::set_baseline_ready(&key_of(baseline), Some(false));
    Ok(())
}

async fn cleanup(baseline: Arc<LoggingBaseline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key_of(&baseline);
    let (trail_policy, retention) = (TrailPolicySpec::default(), RetentionPolicySpec::default());
    let specs = AccountSpecs {
        baseline: &baseline.spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    if let Some(keeper) = ctx
        .baselines
        .get()
        .and_then(|store| account_keeper(&baseline, &store.state()))
    {
        // Its resources are the keeper's: deleting them would undo the baseline that stays.
        let note = format!(
            "account {} is kept by LoggingBaseline {keeper}: nothing of it is deleted",
            baseline.spec.account_id
        );
        publish(&ctx, &baseline, EventType::Normal, "Retained", "Delete", note).await;
        ctx.forget(&baseline);
        return Ok(Action::await_change());
    }
    // Whatever the deletion policy: nothing judges the account's findings any more.
    super::findings::archive_findings(&ctx, &baseline, &key).await;
    if baseline.spec.deletion_policy == crate::api::DeletionPolicy::Retain {
        let note = "deletionPolicy Retain: the trail, its buckets and key are left in place".to_string();
        publish(&ctx, &baseline, EventType::Normal, "Retained", "Delete", note).await;
        ctx.forget(&baseline);
        return Ok(Action::await_change());
    }
    let clients = ctx.aws.for_baseline(&key, &baseline.spec);
    // Bounded like a reconcile: a stalled endpoint must not hold a slot (or a shutdown) for long.
    let bounded = tokio::time::timeout(ctx.settings.reconcile_timeout, cleanup::cleanup(&clients, &specs)).await;
    let outcome = bounded.unwrap_or_else(|_| {
        let account = format!("account {}", baseline.spec.account_id);
        let timeout = crate::aws::AwsError::timeout("cleanup", &account, ctx.settings.reconcile_timeout);
        Err(crate::engine::report::EngineError::Aws(timeout))
    });
    match outcome {
        Ok(steps) => {
            // One event per outcome: the API server folds events of the same reason into a series.
            let listed = |keep: fn(&cleanup::Outcome) -> bool| {
                steps
                    .iter()
                    .filter(|s| keep(&s.outcome))
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let deleted = listed(|o| matches!(o, cleanup::Outcome::Deleted | cleanup::Outcome::Scheduled));
            let retained = listed(|o| matches!(o, cleanup::Outcome::Retained(_)));
            if !deleted.is_empty() {
                publish(&ctx, &baseline, EventType::Normal, "Deleted", "Delete", deleted).await;
            }
            if !retained.is_empty() {
                publish(&ctx, &baseline, EventType::Warning, "Retained", "Delete", retained).await;
            }
            ctx.forget(&baseline);
            Ok(Action::await_change())
        }
        Err(e) => {
            publish(&ctx, &baseline, EventType::Warning, e.reason(), "Delete", e.to_string()).await;
            Err(Error::Cleanup {
                baseline: key,
                message: e.to_string(),
                reason: e.reason(),
            })
        }
    }
}

/// A hash of where an archive's members deliver, which of them it admits and which are late.
fn what_an_archive_admits(archive: &LogArchive) -> Option<u64> {
    let status = archive.status.as_ref()?;
    let members: Vec<_> = status
        .members
        .iter()
        // Its late verdict too: the member's DeliveryHealthy follows the archive's at once.
        .map(|member| (&member.trail_arn, member.admitted, member.late.is_some()))
        .collect();
    hash_of((&status.bucket_name, &status.key_prefix, &status.kms_key_arn, members))
}

/// The baselines that name `archive` as theirs.
fn members_of_archive(store: &Store<LoggingBaseline>, archive: &LogArchive) -> Vec<ObjectRef<LoggingBaseline>> {
    let (ns, name) = (archive.namespace().unwrap_or_default(), archive.name_any());
    store
        .state()
        .iter()
        .filter(|b| {
            b.namespace().as_deref() == Some(ns.as_str())
                && b.spec.storage.archive_ref.as_ref().is_some_and(|r| r.name == name)
        })
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// A hash of what should trigger a reconcile: the spec (its generation), the finalizers and the
/// deletion mark.
fn spec_or_lifecycle(baseline: &LoggingBaseline) -> Option<u64> {
    hash_of((
        baseline.metadata.generation,
        &baseline.metadata.finalizers,
        baseline.metadata.deletion_timestamp.is_some(),
    ))
}

/// The policies, cached in `cache`, and a stream of those whose spec changed (a new
/// generation), appeared or were deleted: a label, annotation or status change of a policy must
/// not re-reconcile (and re-observe in AWS) every baseline that uses it.
fn spec_changes<K>(
    api: Api<K>,
    cache: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let mut generations: HashMap<String, Option<i64>> = HashMap::new();
    watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(cache)
        .filter_map(move |event| {
            let changed = match event {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                    let uid = p.meta().uid.clone().unwrap_or_default();
                    let generation = p.meta().generation;
                    (generations.insert(uid, generation) != Some(generation)).then_some(Ok(p))
                }
                Ok(watcher::Event::Delete(p)) => {
                    generations.remove(&p.meta().uid.clone().unwrap_or_default());
                    Some(Ok(p))
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(changed)
        })
}

/// The forwarding of tampering events for this reconcile, when known. With events on and the
/// central bus not set up yet, the baseline is noted first (then the forwarding read), so that
/// the events loop reconciles it again once the bus is ready, whichever happens first.
fn forwarding_for(ctx: &Context, baseline: &LoggingBaseline) -> Option<crate::desired::events::Forwarding> {
    ctx.settings.events.as_ref()?;
    let key = ObjectRef::from_obj(baseline);
    let lock = || ctx.unforwarded.lock().unwrap_or_else(|e| e.into_inner());
    lock().insert(key.clone());
    let forwarding = ctx.forwarding.get().cloned();
    if forwarding.is_some() {
        lock().remove(&key);
    }
    forwarding
}

/// The LoggingBaseline controller, with its side loops (the drift-events queue, the account-wide
/// sweep, forgetting departed baselines, returning free pages), until `shutdown` resolves.
pub(super) async fn run_baselines(
    ctx: Arc<Context>,
    store: Store<LoggingBaseline>,
    writer: reflector::store::Writer<LoggingBaseline>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let settings = ctx.settings.clone();
    let ns = settings.watch_namespace.as_deref();
    let mut config = watcher::Config::default().any_semantic();
    if let Some(selector) = &settings.selector {
        config = config.labels(selector);
    }
    let baselines = api_for::<LoggingBaseline>(&ctx.client, ns);
    // Status patches must not trigger reconciles (each would patch status again): only changes
    // of spec, finalizers and deletion pass. Periodic resync finds drift made in AWS.
    let stream = watcher(baselines, config)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, PredicateConfig::default().ttl(ctx.predicate_ttl()));
    let controller = Controller::for_stream(stream, store.clone());
    {
        let (store, health) = (store.clone(), ctx.health.clone());
        tokio::spawn(async move {
            if crate::runtime::cache::cache_synced(&store).await {
                health.synced.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    let _ = ctx.baselines.set(store.clone());
    let (trail_store, trail_writer) = reflector::store();
    let (retention_store, retention_writer) = reflector::store();
    let trail_policies = spec_changes(api_for::<TrailPolicy>(&ctx.client, ns), trail_writer);
    let retention_policies = spec_changes(api_for::<RetentionPolicy>(&ctx.client, ns), retention_writer);
    let _ = ctx.policies.set(PolicyStores {
        trail: trail_store,
        retention: retention_store,
    });
    let (tamper_tx, tamper_rx) = futures::channel::mpsc::channel(1024);
    // Regions events ask the sweep to read again, and the baselines whose sweep is done.
    let (sweep_tx, sweep_rx) = futures::channel::mpsc::channel(1024);
    let (swept_tx, swept_rx) = futures::channel::mpsc::channel(1024);
    let sweeper = super::sweep::run(ctx.clone(), store.clone(), sweep_rx, swept_tx);
    let drift_events = drift_events(&ctx, store.clone(), tamper_tx, sweep_tx);
    // What is kept per baseline is dropped once it leaves this controller's view.
    let departed = forget_departed(ctx.clone(), store.clone());
    let newly_held = super::shard::newly_held(ctx.shards.clone(), store.clone(), {
        let shards = ctx.shards.clone();
        move |b: &LoggingBaseline| shards.of(&b.spec.account_id)
    });
    let (store_tp, store_rp, store_la) = (store.clone(), store.clone(), store);
    // A member's trail waits until its archive admits it: each change of what an archive admits
    // (not its every status write) brings its members back.
    let admissions = watcher(api_for::<LogArchive>(&ctx.client, ns), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .predicate_filter(what_an_archive_admits, PredicateConfig::default());
    // What these bring is never a resync: marked, so that it is not deferred (`defers_resync`).
    let urgent = |ctx: &Arc<Context>| {
        let ctx = ctx.clone();
        move |baseline: &ObjectRef<LoggingBaseline>| ctx.mark_urgent([baseline.clone()])
    };
    let urgent_all = |ctx: &Arc<Context>| {
        let ctx = ctx.clone();
        move |baselines: Vec<ObjectRef<LoggingBaseline>>| {
            ctx.mark_urgent(baselines.iter().cloned());
            baselines
        }
    };
    let (for_trail, for_retention, for_archive) = (urgent_all(&ctx), urgent_all(&ctx), urgent_all(&ctx));
    let controller = controller
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .reconcile_on(futures::stream::select(tamper_rx, swept_rx).inspect(urgent(&ctx)))
        .reconcile_on(newly_held.inspect(urgent(&ctx)))
        .watches_stream(trail_policies, move |p| {
            for_trail(baselines_using_trail_policy(&store_tp, &p))
        })
        .watches_stream(retention_policies, move |p| {
            for_retention(baselines_using_retention_policy(&store_rp, &p))
        })
        .watches_stream(admissions, move |a| for_archive(members_of_archive(&store_la, &a)))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(baseline = %object, "reconciled"),
                Err(e) => tracing::warn!(error = %e, "reconcile error"),
            }
        });
    tokio::select! {
        _ = controller => {}
        _ = drift_events => {}
        _ = sweeper => {}
        _ = departed => {}
        _ = crate::runtime::allocator::return_free_pages_periodically() => {}
    }
}

/// The queue loop of tampering events, when events are on; it never returns (without events, or
/// once the loop returns, only the controller runs). It is part of the controller's future, not
/// a task of its own: when the controller stops, or is cancelled on the lease's loss, the loop
/// stops with it (mid long poll too).
fn drift_events(
    ctx: &Context,
    store: Store<LoggingBaseline>,
    tamper_tx: futures::channel::mpsc::Sender<ObjectRef<LoggingBaseline>>,
    sweep_tx: futures::channel::mpsc::Sender<crate::drift_events::queue::SweepRequest>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (forwarding, unforwarded) = (ctx.forwarding.clone(), ctx.unforwarded.clone());
    let (base, shards) = (ctx.aws.base.clone(), ctx.shards.clone());
    let events = ctx.settings.events.clone();
    async move {
        if let Some(events) = events {
            let ready = move |f| {
                let _ = forwarding.set(f);
                unforwarded.lock().unwrap_or_else(|e| e.into_inner()).drain().collect()
            };
            let gates = crate::drift_events::queue::EventGates::of(&shards, &events.queue_url);
            crate::drift_events::queue::run(events, base, store, gates, ready, tamper_tx, sweep_tx).await;
        }
        std::future::pending::<()>().await
    }
}

/// Every `FORGET_DEPARTED_EVERY`, what is kept of the baselines gone from this controller's view
/// (with sharding, those of the shards handed back or lost too) is dropped.
async fn forget_departed(ctx: Arc<Context>, store: Store<LoggingBaseline>) {
    let mut every = tokio::time::interval(FORGET_DEPARTED_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if crate::runtime::cache::cache_synced(&store).await {
            let mut present = store.state();
            present.retain(|b| ctx.shards.holds(ctx.shards.of(&b.spec.account_id)));
            ctx.forget_departed(&present);
        }
    }
}

/// How often a baseline in Conflict looks whether the account's keeper is gone.
const CONFLICT_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// How often caches and series of baselines gone from view are dropped.
const FORGET_DEPARTED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The LogArchive a baseline names (None: it names none, or the archive is not found: its trail
/// then waits, and the archive's status change brings it back).
async fn archive_of(ctx: &Context, baseline: &LoggingBaseline) -> Option<LogArchive> {
    let name = &baseline.spec.storage.archive_ref.as_ref()?.name;
    let api: Api<LogArchive> = Api::namespaced(ctx.client.clone(), &baseline.namespace().unwrap_or_default());
    match api.get_opt(name).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(archive = %name, error = %e, "the LogArchive could not be read");
            None
        }
    }
}

/// `namespace/name` of an archive, as members' reasons name it.
fn archive_name(archive: &LogArchive) -> String {
    format!("{}/{}", archive.namespace().unwrap_or_default(), archive.name_any())
}

//! The LoggingBaselineSet controller: keeps one LoggingBaseline per account the set's generator
//! selects (src/desired/set.rs renders them), deletes those no longer selected (each runs its own
//! deletionPolicy: Retain by default, nothing in AWS touched), and leaves alone, as conflicts, the
//! accounts a baseline not of the set keeps. Organizations is read through the set's role, paced,
//! and cached for the resync interval (or until the generator changes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_types::SdkConfig;
use futures::StreamExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};

use crate::api::{
    Condition, Credentials, LoggingBaseline, LoggingBaselineSet, LoggingBaselineSetStatus, OrganizationGenerator,
};
use crate::aws::organizations::{self, LIST_INTERVAL};
use crate::aws::{AccountClients, AwsError, CallRecorder, Pacer};
use crate::controller::shard::Writers;
use crate::controller::status::{self, reasons};
use crate::controller::writer;
use crate::desired::set::{self, SelectedAccount};
use crate::runtime::leader::shards::Shards;

/// The field manager of the baselines a set writes (server-side apply).
pub const SET_MANAGER: &str = "trailkeeper-set";

pub struct SetContext {
    /// Reads and watches (with sharding its writes are refused: see `writers`).
    pub client: Client,
    pub base: SdkConfig,
    pub recorder: Recorder,
    /// A set is written (its children, its status, its Events) by the holder of its shard,
    /// through that shard's writer.
    pub shards: Arc<Shards>,
    pub writers: Arc<Writers>,
    /// How long an Organizations read is reused.
    pub resync: Duration,
    /// The bound of one set's reconcile (Organizations reads included).
    pub timeout: Duration,
    /// Per set (namespace/name): the generator read, when, and what it selected.
    cache: Mutex<HashMap<String, CachedSelection>>,
    /// The namespaces' baselines: the baselines' controller's cache, or (sharded: that cache
    /// holds the shard's own only) the set controller's own cache of its children's watch.
    baselines: std::sync::OnceLock<Store<LoggingBaseline>>,
    /// The sets as the controller's watch sees them (the per-set cache keeps these only).
    sets: std::sync::OnceLock<Store<LoggingBaselineSet>>,
}

struct CachedSelection {
    generator: String,
    at: Instant,
    read_at: String,
    accounts: Vec<SelectedAccount>,
}

impl SetContext {
    pub fn new(
        client: Client,
        base: SdkConfig,
        recorder: Recorder,
        resync: Duration,
        baselines: Option<Store<LoggingBaseline>>,
    ) -> Self {
        let cache = std::sync::OnceLock::new();
        if let Some(store) = baselines {
            let _ = cache.set(store);
        }
        Self {
            shards: Shards::single("", crate::fence::WriteGate::open()),
            writers: Arc::new(Writers::from_parts(client.clone(), recorder.clone())),
            client,
            base,
            recorder,
            resync,
            timeout: Duration::from_secs(300),
            cache: Mutex::new(HashMap::new()),
            baselines: cache,
            sets: std::sync::OnceLock::new(),
        }
    }

    /// Writes through `writers`, each set by the holder of its shard in `shards`.
    pub fn with_shards(mut self, shards: Arc<Shards>, writers: Arc<Writers>) -> Self {
        self.shards = shards;
        self.writers = writers;
        self
    }

    fn shard_of(&self, set: &LoggingBaselineSet) -> u32 {
        self.shards.of(&super::shard::key_of(set))
    }

    /// The baselines of a namespace, from a cache once it has synced (no request).
    async fn baselines_in(&self, namespace: &str) -> Vec<LoggingBaseline> {
        let Some(store) = self.baselines.get() else {
            return Vec::new();
        };
        let _ = crate::runtime::cache::cache_synced(store).await;
        store
            .state()
            .iter()
            .filter(|b| b.namespace().as_deref() == Some(namespace))
            .map(|b| b.as_ref().clone())
            .collect()
    }

    /// Drops the cached selections of sets that are gone.
    fn forget_departed_sets(&self) {
        let Some(store) = self.sets.get() else {
            return;
        };
        let present: std::collections::HashSet<String> = store
            .state()
            .iter()
            .map(|s| format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any()))
            .collect();
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| present.contains(key));
        crate::runtime::metrics::retain_sets(|key| present.contains(key));
    }
}

/// The ACTIVE accounts of the Organization the generator selects (its units, with their children
/// when asked, or the whole Organization), without the excluded ones, with their tags when the
/// generator filters by tag or the template uses one.
pub async fn select_from_organization(
    clients: &AccountClients,
    generator: &OrganizationGenerator,
    need_tags: bool,
) -> Result<Vec<SelectedAccount>, AwsError> {
    let pacer = Pacer::new(LIST_INTERVAL);
    let mut parents: Vec<(String, bool)> = if generator.organizational_units.is_empty() {
        organizations::roots(clients, &pacer)
            .await?
            .into_iter()
            .map(|r| (r, true))
            .collect()
    } else {
        generator
            .organizational_units
            .iter()
            .map(|u| (u.id.clone(), u.include_children))
            .collect()
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut selected = Vec::new();
    while let Some((parent, children)) = parents.pop() {
        for account in organizations::accounts_of_parent(clients, &pacer, &parent).await? {
            if account.state != "ACTIVE" || generator.exclude.contains(&account.id) || !seen.insert(account.id.clone())
            {
                continue;
            }
            let tags = if need_tags || !generator.account_tags.is_empty() {
                organizations::account_tags(clients, &pacer, &account.id).await?
            } else {
                Default::default()
            };
            if generator.account_tags.iter().all(|(k, v)| tags.get(k) == Some(v)) {
                selected.push(SelectedAccount {
                    id: account.id,
                    name: account.name,
                    tags,
                });
            }
        }
        if children {
            for unit in organizations::units_of_parent(clients, &pacer, &parent).await? {
                parents.push((unit, true));
            }
        }
    }
    selected.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(selected)
}

/// What the set selects now, and when Organizations was read (None for a list).
async fn selection(
    ctx: &SetContext,
    set: &LoggingBaselineSet,
) -> Result<(Vec<SelectedAccount>, Option<String>), AwsError> {
    if let Some(listed) = set::listed_accounts(set) {
        return Ok((listed, None));
    }
    let Some(generator) = set.spec.generator.organization.as_ref() else {
        return Ok((Vec::new(), None));
    };
    let key = format!("{}/{}", set.namespace().unwrap_or_default(), set.name_any());
    let need_tags = set.spec.template.spec.to_string().contains("{{tag:");
    let fingerprint = format!("{}|{need_tags}", serde_json::to_string(generator).unwrap_or_default());
    if let Some(cached) = ctx.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
        && cached.generator == fingerprint
        && cached.at.elapsed() < ctx.resync
    {
        return Ok((cached.accounts.clone(), Some(cached.read_at.clone())));
    }
    let region = ctx
        .base
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let credentials = generator.role_arn.as_ref().map(|arn| Credentials {
        assume_role_arn: arn.clone(),
        external_id: None,
    });
    let clients = AccountClients::new(&ctx.base, &region, credentials.as_ref(), CallRecorder::new());
    let accounts = select_from_organization(&clients, generator, need_tags).await?;
    let read_at = jiff::Timestamp::now().to_string();
    ctx.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
        key,
        CachedSelection {
            generator: fingerprint,
            at: Instant::now(),
            read_at: read_at.clone(),
            accounts: accounts.clone(),
        },
    );
    Ok((accounts, Some(read_at)))
}

fn ready(b: &LoggingBaseline) -> bool {
    b.status
        .as_ref()
        .and_then(|s| status::ready_condition(&s.conditions))
        .is_some_and(|c| c.status == "True")
}

#[derive(thiserror::Error, Debug)]
pub enum SetError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(
        "the set's reconcile did not finish within {0} s (Organizations or the API server did not answer in time); retried"
    )]
    Timeout(u64),
}

async fn publish(ctx: &SetContext, set: &LoggingBaselineSet, type_: EventType, reason: &str, note: String) {
    let recorder = ctx.writers.recorder(ctx.shard_of(set));
    writer::publish_event(recorder, set, type_, reason, "Reconcile", note).await;
}

async fn patch_status(
    ctx: &SetContext,
    set: &LoggingBaselineSet,
    status: &LoggingBaselineSetStatus,
) -> Result<(), SetError> {
    writer::apply_status(ctx.writers.client(ctx.shard_of(set)), set, SET_MANAGER, status).await?;
    Ok(())
}

/// The set's conditions: Ready, and kstatus' Stalled (a conflict or an invalid set: a person must
/// act) or Reconciling while it is not Ready; each keeps its transition time while its status holds.
fn set_conditions(
    previous: Option<&LoggingBaselineSetStatus>,
    ok: bool,
    reason: &str,
    message: String,
) -> Vec<Condition> {
    let previous = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let ready = status::condition(status::types::READY, ok, reason, message);
    // A set's times keep their sub-second digits, as they always have (a baseline's are rounded).
    let now = jiff::Timestamp::now().to_string();
    status::merge_conditions(previous, status::with_kstatus(ready), &now, None)
}

pub async fn reconcile(set: Arc<LoggingBaselineSet>, ctx: Arc<SetContext>) -> Result<Action, SetError> {
    ctx.forget_departed_sets();
    let Some(_turn) = ctx.shards.begin(ctx.shard_of(&set)) else {
        return Ok(Action::await_change());
    };
    match tokio::time::timeout(ctx.timeout, reconcile_set(&set, &ctx)).await {
        Ok(result) => result,
        Err(_) => Err(SetError::Timeout(ctx.timeout.as_secs())),
    }
}

async fn reconcile_set(set: &Arc<LoggingBaselineSet>, ctx: &Arc<SetContext>) -> Result<Action, SetError> {
    let (set, ctx) = (set.clone(), ctx.clone());
    let ns = set.namespace().unwrap_or_default();
    let baselines: Api<LoggingBaseline> = Api::namespaced(ctx.writers.client(ctx.shard_of(&set)).clone(), &ns);
    let previous = set.status.as_ref();
    let generation = set.metadata.generation;
    // A set being deleted: its children go with it (ownerReferences), nothing to read or write.
    if set.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // An invalid set (a misspelt template field would otherwise be dropped, and its children run
    // with the default instead) changes nothing: no child created, updated or deleted.
    let invalid = set::check(&set);
    if !invalid.is_empty() {
        refuse_invalid(&ctx, &set, &invalid).await?;
        return Ok(Action::await_change());
    }
    let (selected, read_at) = match selection(&ctx, &set).await {
        Ok(found) => found,
        Err(e) => {
            // The children stay as they are: a failed read never deletes a baseline.
            let mut status = previous.cloned().unwrap_or_default();
            status.conditions = set_conditions(previous, false, e.reason(), e.to_string());
            status.observed_generation = generation;
            publish(&ctx, &set, EventType::Warning, e.reason(), e.to_string()).await;
            patch_status(&ctx, &set, &status).await?;
            return Ok(Action::requeue(Duration::from_secs(60).min(ctx.resync)));
        }
    };
    let existing = ctx.baselines_in(&ns).await;
    let plan = set::plan(&set, &selected, &existing);
    let created = apply_plan(&baselines, &plan, &existing).await?;
    announce(&ctx, &set, &plan, created).await;
    let status = set_status(&set, &selected, &existing, plan, created, read_at);
    crate::runtime::metrics::set_set_conflicts(&format!("{ns}/{}", set.name_any()), status.conflict_count);
    if previous != Some(&status) {
        patch_status(&ctx, &set, &status).await?;
    }
    Ok(Action::requeue(ctx.resync))
}

/// The status of a set that is not valid, and a Warning Event naming what is wrong (once).
async fn refuse_invalid(
    ctx: &SetContext,
    set: &LoggingBaselineSet,
    invalid: &[set::SetProblem],
) -> Result<(), SetError> {
    let previous = set.status.as_ref();
    let found: Vec<String> = invalid.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    let message = format!(
        "the set is not valid; no LoggingBaseline created, changed or deleted: {}",
        found.join("; ")
    );
    let mut status = previous.cloned().unwrap_or_default();
    status.conditions = set_conditions(previous, false, reasons::INVALID_SPEC, message.clone());
    status.observed_generation = set.metadata.generation;
    if previous != Some(&status) {
        publish(ctx, set, EventType::Warning, reasons::INVALID_SPEC, message).await;
        patch_status(ctx, set, &status).await?;
    }
    Ok(())
}

/// Creates the plan's new baselines, applies the changed ones (server-side apply) and deletes
/// those no longer selected; returns how many baselines it created. A baseline the cache does not
/// show yet is created with a create, so that one the API server already has (a cache behind
/// the last reconcile's creations) is not counted, or announced, twice: it is applied instead.
/// A deletion names the uid the plan saw: a baseline of the same name made since is not deleted.
async fn apply_plan(
    baselines: &Api<LoggingBaseline>,
    plan: &set::SetPlan,
    existing: &[LoggingBaseline],
) -> Result<usize, SetError> {
    let apply = PatchParams::apply(SET_MANAGER).force();
    let create = PostParams {
        field_manager: Some(SET_MANAGER.to_string()),
        ..Default::default()
    };
    let mut created = 0;
    for baseline in &plan.apply {
        if !existing.iter().any(|b| b.name_any() == baseline.name_any()) {
            match baselines.create(&create, baseline).await {
                Ok(_) => {
                    created += 1;
                    continue;
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        baselines
            .patch(&baseline.name_any(), &apply, &Patch::Apply(baseline))
            .await?;
    }
    for name in &plan.delete {
        let uid = existing.iter().find(|b| &b.name_any() == name).and_then(|b| b.uid());
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid,
                resource_version: None,
            }),
            ..Default::default()
        };
        match baselines.delete(name, &params).await {
            Ok(_) => {}
            // Gone already, or another baseline of that name now (its uid differs).
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}

/// The Events of what the plan did, and a Warning for each conflict not reported before.
async fn announce(ctx: &SetContext, set: &LoggingBaselineSet, plan: &set::SetPlan, created: usize) {
    let previous = set.status.as_ref();
    if created > 0 {
        publish(
            ctx,
            set,
            EventType::Normal,
            "BaselinesCreated",
            format!("created {created} LoggingBaselines"),
        )
        .await;
    }
    if plan.updates > 0 {
        publish(
            ctx,
            set,
            EventType::Normal,
            "BaselinesUpdated",
            format!("updated {} LoggingBaselines to the template", plan.updates),
        )
        .await;
    }
    if !plan.delete.is_empty() {
        publish(
            ctx,
            set,
            EventType::Normal,
            "BaselinesDeleted",
            format!(
                "deleted {} (accounts no longer selected; each runs its own deletionPolicy): {}",
                plan.delete.len(),
                plan.delete.join(", ")
            ),
        )
        .await;
    }
    let known_conflicts: Vec<&str> = previous
        .map(|s| s.conflicts.iter().map(|c| c.account_id.as_str()).collect())
        .unwrap_or_default();
    for conflict in plan
        .conflicts
        .iter()
        .filter(|c| !known_conflicts.contains(&c.account_id.as_str()))
    {
        publish(ctx, set, EventType::Warning, "Conflict", conflict.reason.clone()).await;
    }
}

/// The set's status after applying `plan`.
fn set_status(
    set: &LoggingBaselineSet,
    selected: &[set::SelectedAccount],
    existing: &[LoggingBaseline],
    plan: set::SetPlan,
    created: usize,
    read_at: Option<String>,
) -> LoggingBaselineSetStatus {
    let previous = set.status.as_ref();
    let owned: Vec<&LoggingBaseline> = existing
        .iter()
        .filter(|b| set::owned_by(b, set) && !plan.delete.contains(&b.name_any()))
        .collect();
    let baseline_count = owned.len() + created;
    let ready_count = owned.iter().filter(|b| ready(b)).count();
    let ok = plan.conflicts.is_empty();
    let message = if ok {
        format!("{} accounts selected, each with its LoggingBaseline", selected.len())
    } else {
        format!(
            "{} of {} selected accounts left alone: {}",
            plan.conflicts.len(),
            selected.len(),
            plan.conflicts[0].reason
        )
    };
    LoggingBaselineSetStatus {
        selected: selected.len() as i32,
        baselines: baseline_count as i32,
        ready: ready_count as i32,
        created: created as i32,
        updated: plan.updates as i32,
        deleted: plan.delete.len() as i32,
        conflict_count: plan.conflicts.len() as i32,
        conflicts: plan.conflicts,
        last_organizations_read: read_at.or_else(|| previous.and_then(|s| s.last_organizations_read.clone())),
        conditions: set_conditions(previous, ok, if ok { "Reconciled" } else { "Conflict" }, message),
        observed_generation: set.metadata.generation,
    }
}

fn error_policy(_set: Arc<LoggingBaselineSet>, error: &SetError, _ctx: Arc<SetContext>) -> Action {
    tracing::warn!(%error, "LoggingBaselineSet reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// What of a child changes its set's status: its Ready (counted), its labels (ownership), its
/// deletion. A status patch that leaves Ready as it was triggers no reconcile of the set.
fn counted_change(baseline: &LoggingBaseline) -> Option<u64> {
    super::predicates::hash_of((
        baseline.metadata.generation,
        &baseline.metadata.labels,
        baseline.metadata.deletion_timestamp.is_some(),
        ready(baseline),
    ))
}

/// The set controller's settings (the baselines' controller's, where they apply).
pub struct SetSettings {
    pub namespace: Option<String>,
    /// A shard's label selector: its sets only.
    pub selector: Option<String>,
    pub concurrency: u16,
}

/// Runs the set controller until `shutdown`.
pub async fn run(
    ctx: Arc<SetContext>,
    settings: SetSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    use kube::runtime::{WatchStreamExt, reflector};
    let (sets, baselines): (Api<LoggingBaselineSet>, Api<LoggingBaseline>) = match &settings.namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let mut set_config = watcher::Config::default().any_semantic();
    if let Some(selector) = &settings.selector {
        set_config = set_config.labels(selector);
    }
    // The children's watch: when the baselines' cache is not the namespaces' whole (a shard),
    // it is cached here, so that a reconcile reads no list.
    let children = watcher(baselines, watcher::Config::default().any_semantic()).default_backoff();
    let children = if ctx.baselines.get().is_none() {
        let (store, writer) = reflector::store();
        let _ = ctx.baselines.set(store);
        children.modify(super::context::slim).reflect(writer).boxed()
    } else {
        children.boxed()
    };
    // A child's change (its Ready, its deletion) updates the set's counts; a burst of them is
    // one reconcile.
    let children = children
        .applied_objects()
        .predicate_filter(counted_change, Default::default());
    let controller = Controller::new(sets, set_config);
    let _ = ctx.sets.set(controller.store());
    let newly_held = super::shard::newly_held(ctx.shards.clone(), controller.store(), {
        let shards = ctx.shards.clone();
        move |set: &LoggingBaselineSet| shards.of(&super::shard::key_of(set))
    });
    controller
        .reconcile_on(newly_held)
        .owns_stream(children)
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(Duration::from_secs(1))
                .concurrency(settings.concurrency),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "set reconcile");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(ready: &str, observed: i64) -> LoggingBaseline {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaseline",
            "metadata": {"name": "fleet-111122223333", "namespace": "accounts", "generation": 1,
                "labels": {"trailkeeper.io/set": "fleet"}},
            "spec": {"accountId": "111122223333", "primaryRegion": "us-east-1"},
            "status": {"observedGeneration": observed,
                "conditions": [{"type": "Ready", "status": ready, "reason": "InSync", "message": ""}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_childs_status_patch_that_keeps_its_ready_does_not_concern_its_set() {
        assert_eq!(counted_change(&child("True", 1)), counted_change(&child("True", 2)));
        assert_ne!(counted_change(&child("True", 1)), counted_change(&child("False", 1)));
        let mut relabelled = child("True", 1);
        relabelled.labels_mut().insert("team".into(), "audit".into());
        assert_ne!(counted_change(&child("True", 1)), counted_change(&relabelled));
    }
}

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
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
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
use crate::controller::status::{self, reasons};
use crate::controller::writer;
use crate::desired::set::{self, SelectedAccount};

/// The field manager of the baselines a set writes (server-side apply).
pub const SET_MANAGER: &str = "trailkeeper-set";

pub struct SetContext {
    pub client: Client,
    pub base: SdkConfig,
    pub recorder: Recorder,
    /// How long an Organizations read is reused.
    pub resync: Duration,
    /// Per set (namespace/name): the generator read, when, and what it selected.
    cache: Mutex<HashMap<String, CachedSelection>>,
    /// The baselines' controller's cache (None: list them from the API server).
    baselines: Option<Store<LoggingBaseline>>,
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
        Self {
            client,
            base,
            recorder,
            resync,
            cache: Mutex::new(HashMap::new()),
            baselines,
        }
    }

    /// The baselines of a namespace: from the cache once it has synced, else listed.
    async fn baselines_in(
        &self,
        api: &Api<LoggingBaseline>,
        namespace: &str,
    ) -> Result<Vec<LoggingBaseline>, kube::Error> {
        if let Some(store) = &self.baselines {
            let _ = store.wait_until_ready().await;
            return Ok(store
                .state()
                .iter()
                .filter(|b| b.namespace().as_deref() == Some(namespace))
                .map(|b| b.as_ref().clone())
                .collect());
        }
        Ok(api.list(&ListParams::default()).await?.items)
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

fn condition(ok: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: status::types::READY.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        last_transition_time: Some(jiff::Timestamp::now().to_string()),
        observed_generation: None,
    }
}

#[derive(thiserror::Error, Debug)]
pub enum SetError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

async fn publish(ctx: &SetContext, set: &LoggingBaselineSet, type_: EventType, reason: &str, note: String) {
    writer::publish_event(&ctx.recorder, set, type_, reason, "Reconcile", note).await;
}

async fn patch_status(
    ctx: &SetContext,
    set: &LoggingBaselineSet,
    status: &LoggingBaselineSetStatus,
) -> Result<(), SetError> {
    writer::apply_status(&ctx.client, set, SET_MANAGER, status).await?;
    Ok(())
}

/// Keeps the conditions' transition time while their status holds.
/// The set's conditions: Ready, and kstatus' Stalled (a conflict or an invalid set: a person must
/// act) or Reconciling while it is not Ready.
fn set_conditions(previous: Option<&LoggingBaselineSetStatus>, ready: Condition) -> Vec<Condition> {
    let ready = carry_transition(previous, ready);
    let kstatus = super::status::kstatus_condition(&ready).map(|c| carry_transition(previous, c));
    kstatus.into_iter().chain([ready]).collect()
}

fn carry_transition(previous: Option<&LoggingBaselineSetStatus>, mut now: Condition) -> Condition {
    if let Some(before) = previous.and_then(|s| s.conditions.iter().find(|c| c.type_ == now.type_))
        && before.status == now.status
    {
        now.last_transition_time = before.last_transition_time.clone();
    }
    now
}

pub async fn reconcile(set: Arc<LoggingBaselineSet>, ctx: Arc<SetContext>) -> Result<Action, SetError> {
    let ns = set.namespace().unwrap_or_default();
    let baselines: Api<LoggingBaseline> = Api::namespaced(ctx.client.clone(), &ns);
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
            status.conditions = set_conditions(previous, condition(false, e.reason(), e.to_string()));
            status.observed_generation = generation;
            publish(&ctx, &set, EventType::Warning, e.reason(), e.to_string()).await;
            patch_status(&ctx, &set, &status).await?;
            return Ok(Action::requeue(Duration::from_secs(60).min(ctx.resync)));
        }
    };
    let existing = ctx.baselines_in(&baselines, &ns).await?;
    let plan = set::plan(&set, &selected, &existing);
    let created = apply_plan(&baselines, &plan, &existing).await?;
    announce(&ctx, &set, &plan, created).await;
    let status = set_status(&set, &selected, &existing, plan, created, read_at);
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
    status.conditions = set_conditions(previous, condition(false, reasons::INVALID_SPEC, message.clone()));
    status.observed_generation = set.metadata.generation;
    if previous != Some(&status) {
        publish(ctx, set, EventType::Warning, reasons::INVALID_SPEC, message).await;
        patch_status(ctx, set, &status).await?;
    }
    Ok(())
}

/// Applies the plan's baselines (server-side apply) and deletes those no longer selected;
/// returns how many baselines it created.
async fn apply_plan(
    baselines: &Api<LoggingBaseline>,
    plan: &set::SetPlan,
    existing: &[LoggingBaseline],
) -> Result<usize, SetError> {
    let apply = PatchParams::apply(SET_MANAGER).force();
    let mut created = 0;
    for baseline in &plan.apply {
        baselines
            .patch(&baseline.name_any(), &apply, &Patch::Apply(baseline))
            .await?;
        if !existing.iter().any(|b| b.name_any() == baseline.name_any()) {
            created += 1;
        }
    }
    for name in &plan.delete {
        match baselines.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
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
        conditions: set_conditions(
            previous,
            condition(ok, if ok { "Reconciled" } else { "Conflict" }, message),
        ),
        observed_generation: set.metadata.generation,
    }
}

fn error_policy(_set: Arc<LoggingBaselineSet>, error: &SetError, _ctx: Arc<SetContext>) -> Action {
    tracing::warn!(%error, "LoggingBaselineSet reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// Runs the set controller until `shutdown`.
pub async fn run(
    ctx: Arc<SetContext>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (sets, baselines): (Api<LoggingBaselineSet>, Api<LoggingBaseline>) = match &namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    Controller::new(sets, watcher::Config::default().any_semantic())
        // A child's change (its Ready, its deletion) updates the set's counts; a burst of them
        // is one reconcile.
        .owns(baselines, watcher::Config::default().any_semantic())
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_secs(1)))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "set reconcile");
            }
        })
        .await;
}

//! The status of TrailPolicies and RetentionPolicies: `observedGeneration` (so that kstatus, Flux
//! and Argo CD see when a change was read), Ready (the policy passes its kind's rules; one
//! admitted under an older CRD may not, and its baselines then stop at InvalidSpec) with Stalled
//! while it does not, and how many baselines of the namespace use it. Written only when it
//! changes, through the fenced client, and refreshed at each resync (the count follows baselines).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::MANAGER;
use super::policies::{baselines_using_retention_policy, baselines_using_trail_policy};
use super::shard::Writers;
use super::status::{self, merge_conditions, reasons, types};
use super::writer;
use crate::api::{LoggingBaseline, PolicyStatus, RetentionPolicy, TrailPolicy};
use crate::runtime::leader::shards::Shards;

/// A policy kind with a PolicyStatus.
pub trait Policy:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + CustomResourceExt
    + Clone
    + Serialize
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    fn policy_status(&self) -> Option<&PolicyStatus>;
    /// How many of `baselines` use this policy.
    fn used_by(&self, baselines: &Store<LoggingBaseline>) -> usize;
}

impl Policy for TrailPolicy {
    fn policy_status(&self) -> Option<&PolicyStatus> {
        self.status.as_ref()
    }
    fn used_by(&self, baselines: &Store<LoggingBaseline>) -> usize {
        baselines_using_trail_policy(baselines, self).len()
    }
}

impl Policy for RetentionPolicy {
    fn policy_status(&self) -> Option<&PolicyStatus> {
        self.status.as_ref()
    }
    fn used_by(&self, baselines: &Store<LoggingBaseline>) -> usize {
        baselines_using_retention_policy(baselines, self).len()
    }
}

pub struct PolicyContext {
    /// Reads and watches (with sharding its writes are refused).
    pub client: Client,
    /// A policy's status is written by the holder of its shard, through that shard's writer.
    pub shards: Arc<Shards>,
    pub writers: Arc<Writers>,
    /// The baselines this operator sees; None when it is a shard (`--selector`): every shard then
    /// writes the same status, without a count that only the whole fleet could give.
    pub baselines: Option<Store<LoggingBaseline>>,
    pub resync: Duration,
}

/// How long a reconcile waits for the baselines' cache to fill.
const CACHE_WAIT: Duration = Duration::from_secs(5);

/// The status a policy should have now.
pub fn next_status<K: Policy>(policy: &K, used_by: Option<usize>, now: &str) -> PolicyStatus {
    let generation = policy.meta().generation;
    let ready = match crate::api::check_cel(policy) {
        Ok(()) => status::condition(
            types::READY,
            true,
            reasons::ACCEPTED,
            match used_by {
                Some(n) => format!("applied by the {n} LoggingBaselines of the namespace that use it"),
                None => "applied by the LoggingBaselines that use it".to_string(),
            },
        ),
        Err(errors) => {
            let problems: Vec<String> = errors
                .into_vec()
                .into_iter()
                .map(|e| format!("{}: {}", e.field_path, e.message))
                .collect();
            status::condition(
                types::READY,
                false,
                reasons::INVALID_SPEC,
                format!(
                    "fails the rules of {} (admitted under an older CRD?); its baselines are not reconciled: {}",
                    K::kind(&()),
                    problems.join("; ")
                ),
            )
        }
    };
    let next = status::with_kstatus(ready);
    let previous = policy
        .policy_status()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    PolicyStatus {
        observed_generation: generation,
        conditions: merge_conditions(previous, next, now, generation),
        baselines: used_by.map(|n| n as i32),
    }
}

async fn reconcile<K: Policy>(policy: Arc<K>, ctx: Arc<PolicyContext>) -> Result<Action, kube::Error> {
    if policy.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let shard = ctx.shards.of(&super::shard::key_of(policy.as_ref()));
    let Some(_turn) = ctx.shards.begin(shard) else {
        return Ok(Action::await_change());
    };
    let used_by = match &ctx.baselines {
        Some(store) => {
            // Bounded, as the policy resolution's wait: a baseline cache that cannot list must
            // not hold this reconcile (and the controller's graceful shutdown) forever.
            let synced = tokio::time::timeout(CACHE_WAIT, crate::runtime::cache::cache_synced(store)).await;
            if !matches!(synced, Ok(true)) {
                return Ok(Action::requeue(CACHE_WAIT));
            }
            Some(policy.used_by(store))
        }
        None => None,
    };
    let next = next_status(policy.as_ref(), used_by, &super::context::now());
    if policy.policy_status() != Some(&next) {
        writer::apply_status(ctx.writers.client(shard), policy.as_ref(), MANAGER, &next).await?;
    }
    Ok(Action::requeue(ctx.resync))
}

fn error_policy<K: Policy>(policy: Arc<K>, error: &kube::Error, _ctx: Arc<PolicyContext>) -> Action {
    tracing::warn!(kind = %K::kind(&()), policy = %policy.name_any(), error = %error, "cannot write the policy's status");
    Action::requeue(Duration::from_secs(30))
}

/// Runs the status controller of one policy kind until `shutdown` resolves.
pub async fn run<K: Policy>(
    ctx: Arc<PolicyContext>,
    namespace: Option<&str>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<K> = super::context::api_for(&ctx.client, namespace);
    let controller = Controller::new(api, watcher::Config::default());
    let newly_held = super::shard::newly_held(ctx.shards.clone(), controller.store(), {
        let shards = ctx.shards.clone();
        move |policy: &K| shards.of(&super::shard::key_of(policy))
    });
    controller
        .reconcile_on(newly_held)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "policy status");
            }
        })
        .await;
}

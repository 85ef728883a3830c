//! The Kubernetes controllers, started together by `run`: LoggingBaselines (`baselines`, with the
//! account-wide `sweep`), LoggingBaselineSets (`sets`), LogArchives (`archives`), the status of
//! TrailPolicies and RetentionPolicies (`policy_status`), and the status they write (`status`,
//! through the one fenced `writer`).

pub mod archives;
pub mod baselines;
pub mod context;
mod events;
mod findings;
mod integrity;
pub mod policies;
pub mod policy_status;
mod predicates;
pub mod sets;
pub mod shard;
pub mod status;
pub mod sweep;
pub mod sweep_schedule;
pub mod writer;

use std::sync::Arc;

use kube::runtime::reflector;

use crate::api::{RetentionPolicy, TrailPolicy};
use context::Context;

/// Runs every controller until `shutdown` resolves; in-flight reconciles are finished first.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    // One shutdown for every controller.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (store, writer) = reflector::store();
    // The sets find their namespace's baselines in the baselines' cache, without a request; a
    // shard (`--selector`) sees only its own baselines there, so its set controller caches its
    // children's watch instead.
    let cached = ctx.settings.selector.is_none().then(|| store.clone());
    let mut sets = sets::SetContext::new(
        ctx.client.clone(),
        ctx.aws.base.clone(),
        ctx.recorder.clone(),
        ctx.settings.resync,
        cached,
    )
    .with_shards(ctx.shards.clone(), ctx.writers.clone());
    sets.timeout = ctx.settings.reconcile_timeout;
    let set_settings = sets::SetSettings {
        namespace: ctx.settings.watch_namespace.clone(),
        selector: ctx.settings.selector.clone(),
        concurrency: ctx.settings.concurrency,
    };
    let policies = Arc::new(policy_status::PolicyContext {
        client: ctx.client.clone(),
        shards: ctx.shards.clone(),
        writers: ctx.writers.clone(),
        baselines: ctx.settings.selector.is_none().then(|| store.clone()),
        resync: ctx.settings.resync,
    });
    let ns = ctx.settings.watch_namespace.clone();
    tokio::join!(
        baselines::run_baselines(ctx.clone(), store, writer, stopped(stop_rx.clone())),
        sets::run(Arc::new(sets), set_settings, stopped(stop_rx.clone())),
        policy_status::run::<TrailPolicy>(policies.clone(), ns.as_deref(), stopped(stop_rx.clone())),
        policy_status::run::<RetentionPolicy>(policies, ns.as_deref(), stopped(stop_rx.clone())),
        archives::run(ctx.clone(), stopped(stop_rx)),
    );
}

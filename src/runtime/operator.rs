//! `trailkeeper run`: wiring of the controller, leader election, the HTTP endpoint and shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::Client;

use crate::cli::RunArgs;
use crate::controller::baselines::{self, Context, Settings};
use crate::runtime::http::Health;
use crate::runtime::leader::{Elector, KubeLease, Timing, WriteGate};

/// Resolves on SIGTERM or Ctrl-C.
async fn termination() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The resync interval a user may ask for: at least 10 s, at most a week (beyond, duration
/// arithmetic would overflow, and drift would go unseen for too long anyway).
pub fn resync_interval(seconds: u64) -> Duration {
    Duration::from_secs(seconds.clamp(10, 7 * 24 * 3600))
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let base = crate::aws::load_base_config().await;
    let events = args
        .events_queue_url
        .clone()
        .filter(|u| !u.is_empty())
        .map(|queue_url| crate::drift_events::queue::EventSettings {
            queue_url,
            bus_name: args.events_bus_name.clone(),
            organization_id: args.events_organization_id.clone().filter(|o| !o.is_empty()),
        });
    let default_resync = if events.is_some() { 3600 } else { 600 };
    let settings = Settings {
        resync: resync_interval(args.resync_seconds.unwrap_or(default_resync)),
        events,
        concurrency: args.concurrency.max(1),
        watch_namespace: args.watch_namespace.clone(),
        selector: args.selector.clone(),
        reconcile_timeout: Duration::from_secs(args.reconcile_timeout_seconds.clamp(30, 3600)),
        ..Settings::default()
    };
    let health = Arc::new(Health::default());
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    tokio::spawn(crate::runtime::http::serve(listener, health.clone()));

    // The API server must answer and the CRDs be installed before we call ourselves ready.
    client.apiserver_version().await?;
    // At the scope the controller watches: with --watch-namespace its RBAC is a Role there only.
    let baselines: kube::Api<crate::api::LoggingBaseline> = match &args.watch_namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    baselines.list(&kube::api::ListParams::default().limit(1)).await?;
    health.api_reachable.store(true, Ordering::Relaxed);

    if !args.leader_election {
        crate::runtime::metrics::set_leader(true);
        health.active.store(true, Ordering::Relaxed);
        tracing::info!("starting without leader election");
        let ctx = Context::with_gate(client, base, settings, WriteGate::open(), health);
        baselines::run(Arc::new(ctx), termination()).await;
        return Ok(());
    }
    let termination = termination();
    tokio::pin!(termination);

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| format!("trailkeeper-{}", std::process::id())));
    let elector = Elector::new(
        KubeLease::new(client.clone(), &args.lease_namespace, &args.lease_name),
        identity,
        Timing::default(),
    );
    let (leading_tx, mut leading) = tokio::sync::watch::channel(None);
    let (stop_campaign, campaign_stopped) = tokio::sync::oneshot::channel::<()>();
    let campaign = tokio::spawn(crate::runtime::leader::campaign(elector, leading_tx, async move {
        let _ = campaign_stopped.await;
    }));
    // AWS writes follow the lease on their own: shut at the renew deadline even if this task, or
    // the whole process, was stalled.
    let gate = WriteGate::shut();
    {
        let (gate, mut leading, health) = (gate.clone(), leading.clone(), health.clone());
        tokio::spawn(async move {
            loop {
                let until = *leading.borrow_and_update();
                gate.lead_until(until);
                health.active.store(until.is_some(), Ordering::Relaxed);
                if leading.changed().await.is_err() {
                    gate.lead_until(None);
                    return;
                }
            }
        });
    }

    let stop = |campaign: tokio::task::JoinHandle<()>| async move {
        let _ = stop_campaign.send(());
        let _ = campaign.await;
    };
    tokio::select! {
        _ = &mut termination => {
            stop(campaign).await;
            return Ok(());
        }
        _ = leading.wait_for(Option::is_some) => {}
    }
    tracing::info!("leading: starting the controller");
    let ctx = Arc::new(Context::with_gate(client, base, settings, gate, health.clone()));
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let mut controller = tokio::spawn(baselines::run(ctx, async move {
        let _ = shutdown_rx.await;
    }));
    let outcome = tokio::select! {
        _ = &mut controller => Ok(()),
        _ = crate::runtime::leader::lost(leading.clone()) => Err(()),
        _ = &mut termination => {
            // In-flight reconciles finish while the lease is still ours, and no longer.
            let _ = shutdown_tx.send(());
            tokio::select! {
                _ = &mut controller => Ok(()),
                _ = crate::runtime::leader::lost(leading.clone()) => Err(()),
            }
        }
    };
    // Losing the lease aborts in-flight reconciles at once: another replica may be writing.
    controller.abort();
    health.active.store(false, Ordering::Relaxed);
    stop(campaign).await;
    match outcome {
        Ok(()) => Ok(()),
        Err(()) => anyhow::bail!("lost the leader lease: stopped at once so that another replica takes over"),
    }
}

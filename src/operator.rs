//! `trailkeeper run`: wiring of the controller, leader election, the HTTP endpoint and shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::Client;

use crate::cli::RunArgs;
use crate::http::Health;
use crate::leader::{Elector, KubeLease, Timing};
use crate::reconcile::controller::{self, Context, Settings};

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

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let base = crate::aws::load_base_config().await;
    let settings = Settings {
        resync: Duration::from_secs(args.resync_seconds.max(10)),
        concurrency: args.concurrency.max(1),
        watch_namespace: args.watch_namespace.clone(),
        selector: args.selector.clone(),
        ..Settings::default()
    };
    let health = Arc::new(Health::default());
    let listener = tokio::net::TcpListener::bind(&args.http_addr).await?;
    tokio::spawn(crate::http::serve(listener, health.clone()));

    // The API server must answer and the CRDs be installed before we call ourselves ready.
    client.apiserver_version().await?;
    // At the scope the controller watches: with --watch-namespace its RBAC is a Role there only.
    let baselines: kube::Api<crate::api::LoggingBaseline> = match &args.watch_namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    baselines.list(&kube::api::ListParams::default().limit(1)).await?;
    health.ready.store(true, Ordering::Relaxed);

    let ctx = Arc::new(Context::new(client.clone(), base, settings));
    if !args.leader_election {
        crate::metrics::set_leader(true);
        tracing::info!("starting without leader election");
        controller::run(ctx, termination()).await;
        return Ok(());
    }
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| format!("trailkeeper-{}", std::process::id())));
    let elector = Elector::new(
        KubeLease::new(client, &args.lease_namespace, &args.lease_name),
        identity,
        Timing::default(),
    );
    let (leading_tx, mut leading) = tokio::sync::watch::channel(false);
    tokio::spawn(crate::leader::campaign(elector, leading_tx));
    tokio::select! {
        _ = termination() => return Ok(()),
        _ = leading.wait_for(|l| *l) => {}
    }
    tracing::info!("leading: starting the controller");
    let mut lost = leading.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<&'static str>();
    let watch_stop = async move {
        let reason = tokio::select! {
            _ = termination() => "terminated",
            _ = lost.wait_for(|l| !*l) => "lost the lease",
        };
        let _ = stop_tx.send(reason);
    };
    tokio::spawn(watch_stop);
    let (reason_tx, reason_rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        let reason = stop_rx.await.unwrap_or("terminated");
        let _ = reason_tx.send(reason);
    };
    controller::run(ctx, shutdown).await;
    match reason_rx.await.unwrap_or("terminated") {
        "lost the lease" => anyhow::bail!("lost the leader lease: stopping so that another replica takes over"),
        _ => Ok(()),
    }
}

//! `trailkeeper run`, the top of the process: its flags, and the wiring of the controllers
//! (`controller::run`), leader election, the HTTP endpoint and shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::Client;

use crate::controller::context::{Context, Settings};
use crate::controller::writer::FencedWrites;
use crate::fence::WriteGate;
use crate::runtime::http::Health;
use crate::runtime::leader::{Elector, KubeLease, TermEnd, Timing};

/// The flags of `trailkeeper run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "TRAILKEEPER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Reconcile only the LoggingBaselines (and LoggingBaselineSets and LogArchives) matching this
    /// label selector (shard a large fleet).
    #[arg(long, env = "TRAILKEEPER_SELECTOR")]
    pub selector: Option<String>,
    /// Seconds between two observations of an account in line (jittered by up to 10%; 10 s to a
    /// week). Default: 600, or 3600 with `--events-queue-url` (tampering is then repaired on its
    /// event, and the resync only catches what no event reports).
    #[arg(long, env = "TRAILKEEPER_RESYNC_SECONDS")]
    pub resync_seconds: Option<u64>,
    /// The SQS queue to long-poll for tampering events: trailkeeper sets up, in the queue's
    /// account and region, a central EventBridge bus and its rule into the queue, and in each
    /// account and region it enforces, a rule forwarding the calls that tamper with the baseline.
    #[arg(long, env = "TRAILKEEPER_EVENTS_QUEUE_URL")]
    pub events_queue_url: Option<String>,
    /// The name of the central event bus.
    #[arg(long, env = "TRAILKEEPER_EVENTS_BUS_NAME", default_value = crate::desired::events::DEFAULT_BUS)]
    pub events_bus_name: String,
    /// Admit forwarded events from this AWS Organization's accounts only (o-...).
    #[arg(long, env = "TRAILKEEPER_EVENTS_ORGANIZATION_ID")]
    pub events_organization_id: Option<String>,
    /// Seconds one account's reconcile may take as a whole before it fails with reason Timeout
    /// (30 to 3600; each AWS call also has its own timeout).
    #[arg(long, env = "TRAILKEEPER_RECONCILE_TIMEOUT_SECONDS", default_value_t = 300)]
    pub reconcile_timeout_seconds: u64,
    /// Seconds in-flight reconciles may finish after SIGTERM before they are cut off and the Lease
    /// released; below the pod's terminationGracePeriodSeconds (the chart sets it 10 s below).
    #[arg(long, env = "TRAILKEEPER_SHUTDOWN_DRAIN_SECONDS", default_value_t = 20)]
    pub shutdown_drain_seconds: u64,
    /// LoggingBaselines reconciled at once.
    #[arg(long, env = "TRAILKEEPER_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Hours between two account-wide sweeps of an account: CIS 3.3, 3.6 and 3.7 read in the
    /// regions its baseline does not keep (a reconcile reads the regions it keeps), each account
    /// at its own moment of the interval; a region is read again at once when an event concerns
    /// it there. 0 turns the sweep off (those controls then say the other regions are not read).
    #[arg(long, env = "TRAILKEEPER_COMPLIANCE_SWEEP_HOURS", default_value_t = crate::controller::sweep::DEFAULT_INTERVAL_HOURS)]
    pub compliance_sweep_hours: u64,
    /// Accounts swept at once.
    #[arg(long, env = "TRAILKEEPER_COMPLIANCE_SWEEP_CONCURRENCY", default_value_t = 2)]
    pub compliance_sweep_concurrency: u16,
    /// Baselines whose AWS SDK clients are kept between reconciles (the most recently reconciled;
    /// about 16 KiB a client, ten or so a region).
    #[arg(long, env = "TRAILKEEPER_CLIENT_CACHE_BASELINES", default_value_t = crate::controller::context::DEFAULT_CLIENT_BASELINES)]
    pub client_cache_baselines: usize,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "TRAILKEEPER_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: String,
    /// Take a Lease before reconciling, so that only one replica acts at a time.
    #[arg(long, env = "TRAILKEEPER_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    #[arg(long, env = "TRAILKEEPER_LEASE_NAME", default_value = "trailkeeper")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (default: the pod's name, POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Split the fleet into this many shards (by a stable hash of each account id), each with a
    /// Lease and a write gate of its own, shared evenly by the replicas (1 to 256; 1: one Lease,
    /// one replica writes everything). Every replica of a Deployment must be given the same.
    #[arg(long, env = "TRAILKEEPER_SHARDS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=crate::runtime::leader::shards::MAX_SHARDS as i64))]
    pub shards: u32,
}

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

/// The controller's settings from the flags: the resync an hour with events (the events repair
/// tampering), ten minutes without; both clamped, as are the reconcile bound and the concurrency.
pub fn settings_of(args: &RunArgs) -> Settings {
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
    Settings {
        resync: resync_interval(args.resync_seconds.unwrap_or(default_resync)),
        events,
        concurrency: args.concurrency.max(1),
        watch_namespace: args.watch_namespace.clone(),
        selector: args.selector.clone(),
        reconcile_timeout: Duration::from_secs(args.reconcile_timeout_seconds.clamp(30, 3600)),
        // At most a week: what it judges must not go unread longer.
        compliance_sweep: (args.compliance_sweep_hours > 0).then(|| crate::controller::sweep::SweepSettings {
            interval: Duration::from_secs(args.compliance_sweep_hours.min(7 * 24) * 3600),
            concurrency: usize::from(args.compliance_sweep_concurrency.max(1)),
        }),
        client_baselines: args.client_cache_baselines,
        ..Settings::default()
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = kube::Config::infer().await?;
    // Reads, and the Lease.
    let client = Client::try_from(config.clone())?;
    let base = crate::aws::load_base_config().await;
    let settings = settings_of(&args);
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

    if args.shards > 1 {
        anyhow::ensure!(
            args.leader_election,
            "--shards {} needs leader election (--leader-election true): each shard is a Lease",
            args.shards
        );
        return run_sharded(&args, config, client, base, settings, health).await;
    }
    if !args.leader_election {
        crate::runtime::metrics::set_leader(true);
        health.leading.store(true, Ordering::Relaxed);
        tracing::info!("starting without leader election");
        let gate = WriteGate::open();
        let writer = controller_client(config, &gate)?;
        let ctx = Context::with_gate(writer, base, settings, gate, health);
        crate::controller::run(Arc::new(ctx), termination()).await;
        return Ok(());
    }

    let identity = identity_of(&args);
    // The Lease is written with a client of its own: election writes while it does not lead.
    let elector = Elector::new(
        KubeLease::new(client, &args.lease_namespace, &args.lease_name),
        identity,
        Timing::default(),
    );
    // Every write of the controller, to AWS and to the API server, follows the lease: shut at the
    // renew deadline even if this task, or the whole process, was stalled.
    let gate = WriteGate::shut();
    let writer = controller_client(config, &gate)?;
    let ctx = Arc::new(Context::with_gate(writer, base, settings, gate.clone(), health.clone()));
    let on_leading = {
        let health = health.clone();
        move |leads: bool| health.leading.store(leads, Ordering::Relaxed)
    };
    let bounds = crate::runtime::leader::TermBounds {
        drain: Duration::from_secs(args.shutdown_drain_seconds),
        cancel: CANCEL_GRACE,
    };
    let end = crate::runtime::leader::serve(elector, gate, on_leading, termination(), bounds, move |stop| {
        crate::controller::run(ctx, stop)
    })
    .await;
    health.leading.store(false, Ordering::Relaxed);
    match end {
        TermEnd::NeverLed | TermEnd::Finished => Ok(()),
        TermEnd::LeaseLost => {
            anyhow::bail!("lost the leader lease: stopped at once, the lease left to the replica that takes over")
        }
    }
}

/// This replica in the Leases: `--identity`, else the host name, else one of this process.
fn identity_of(args: &RunArgs) -> String {
    args.identity
        .clone()
        .unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| format!("trailkeeper-{}", std::process::id())))
}

/// `trailkeeper run --shards N`: every replica runs the controllers from the start; each object
/// is reconciled and written only by the replica that holds its shard, through that shard's
/// writer and AWS clients, fenced on the shard's Lease. SIGTERM: in-flight reconciles finish
/// (for `--shutdown-drain-seconds` at most) while the shards are held, then they are released.
async fn run_sharded(
    args: &RunArgs,
    config: kube::Config,
    client: Client,
    base: aws_types::SdkConfig,
    settings: Settings,
    health: Arc<Health>,
) -> anyhow::Result<()> {
    use crate::controller::shard::Writers;
    use crate::runtime::leader::shards::{KubeLeases, ShardManager, Shards, serve_shards};
    let identity = identity_of(args);
    let shards = Shards::sharded(&identity, args.shards);
    let writers = Writers::fenced(&config, &shards, &crate::controller::context::reporter())?;
    // Reads and watches: its writes are always refused, every write goes through its object's
    // shard's writer.
    let reads = controller_client(config, &WriteGate::shut())?;
    let _ = health.shards.set(shards.clone());
    health.leading.store(true, Ordering::Relaxed);
    let ctx = Arc::new(Context::sharded(
        reads,
        writers,
        shards.clone(),
        base,
        settings,
        health.clone(),
    ));
    let drain = Duration::from_secs(args.shutdown_drain_seconds);
    let leases = KubeLeases::new(client, &args.lease_namespace, &args.lease_name);
    let manager = ShardManager::new(leases, &args.lease_name, shards, Timing::default(), drain);
    tracing::info!(shards = args.shards, %identity, "starting with sharding: this replica takes its share of the shards");
    let bounds = crate::runtime::leader::TermBounds {
        drain,
        cancel: CANCEL_GRACE,
    };
    serve_shards(manager, termination(), bounds, move |stop| {
        crate::controller::run(ctx, stop)
    })
    .await;
    health.leading.store(false, Ordering::Relaxed);
    Ok(())
}

/// How long cancelled reconciles may take to unwind after the lease is lost (their writes are
/// refused meanwhile).
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// The controllers' client: every write they make goes through the one writer
/// (`controller::writer`), fenced on `gate`.
fn controller_client(config: kube::Config, gate: &WriteGate) -> anyhow::Result<Client> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&FencedWrites::new(gate.clone()))
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_resync_is_clamped_between_ten_seconds_and_a_week() {
        use std::time::Duration;
        assert_eq!(super::resync_interval(1), Duration::from_secs(10));
        assert_eq!(super::resync_interval(600), Duration::from_secs(600));
        assert_eq!(super::resync_interval(u64::MAX), Duration::from_secs(7 * 24 * 3600));
    }

    /// The settings `trailkeeper run` builds from its flags, parsed as the binary parses them.
    fn settings(flags: &[&str]) -> crate::controller::context::Settings {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["trailkeeper", "run"].iter().chain(flags)).unwrap();
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("not run")
        };
        super::settings_of(&args)
    }

    /// The README's defaults of `trailkeeper run` (each checked where its variable is not set in
    /// this process's environment, which the flag reads too).
    #[test]
    fn the_run_flags_have_the_documented_defaults() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["trailkeeper", "run"]).unwrap();
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("not run")
        };
        let unset = |name: &str| std::env::var_os(name).is_none();
        if unset("TRAILKEEPER_CONCURRENCY") {
            assert_eq!(args.concurrency, 8);
        }
        if unset("TRAILKEEPER_HTTP_ADDR") {
            assert_eq!(args.http_addr, "0.0.0.0:8080");
        }
        if unset("TRAILKEEPER_LEADER_ELECTION") {
            assert!(args.leader_election);
        }
        if unset("TRAILKEEPER_LEASE_NAME") {
            assert_eq!(args.lease_name, "trailkeeper");
        }
        if unset("POD_NAMESPACE") {
            assert_eq!(args.lease_namespace, "default");
        }
        if unset("TRAILKEEPER_EVENTS_BUS_NAME") {
            assert_eq!(args.events_bus_name, "trailkeeper-events");
        }
        if unset("TRAILKEEPER_SHUTDOWN_DRAIN_SECONDS") {
            assert_eq!(args.shutdown_drain_seconds, 20);
        }
        if unset("TRAILKEEPER_SHARDS") {
            assert_eq!(args.shards, 1, "one shard: one Lease, as without sharding");
        }
        for out_of_range in ["0", "257"] {
            assert!(crate::cli::Cli::try_parse_from(["trailkeeper", "run", "--shards", out_of_range]).is_err());
        }
        let off = crate::cli::Cli::try_parse_from(["trailkeeper", "run", "--leader-election", "false"]).unwrap();
        let crate::cli::Command::Run(off) = off.command else {
            panic!("not run")
        };
        assert!(!off.leader_election, "--leader-election false turns it off");
    }

    #[test]
    fn the_account_wide_sweep_is_daily_by_default_bounded_and_can_be_turned_off() {
        use std::time::Duration;
        if std::env::var_os("TRAILKEEPER_COMPLIANCE_SWEEP_HOURS").is_none() {
            let sweep = settings(&[]).compliance_sweep.expect("on by default");
            assert_eq!(sweep.interval, Duration::from_secs(24 * 3600));
            assert_eq!(sweep.concurrency, 2);
        }
        let weekly = settings(&[
            "--compliance-sweep-hours",
            "1000",
            "--compliance-sweep-concurrency",
            "0",
        ]);
        let weekly = weekly.compliance_sweep.expect("on");
        assert_eq!(weekly.interval, Duration::from_secs(7 * 24 * 3600), "at most a week");
        assert_eq!(weekly.concurrency, 1, "at least one at a time");
        assert!(settings(&["--compliance-sweep-hours", "0"]).compliance_sweep.is_none());
    }

    #[test]
    fn the_flags_defaults_and_clamps_reach_the_controller() {
        use std::time::Duration;
        let defaults = settings(&[]);
        assert_eq!(defaults.resync, Duration::from_secs(600), "ten minutes without events");
        assert_eq!(defaults.reconcile_timeout, Duration::from_secs(300));
        assert!(defaults.events.is_none());
        let events = settings(&[
            "--events-queue-url",
            "https://sqs.us-east-1.amazonaws.com/111122223333/trailkeeper-events",
            "--events-organization-id",
            "o-abc123",
        ]);
        assert_eq!(events.resync, Duration::from_secs(3600), "an hour with events");
        let queue = events.events.expect("events on");
        assert_eq!(queue.organization_id.as_deref(), Some("o-abc123"));
        assert!(
            settings(&["--events-queue-url", ""]).events.is_none(),
            "an empty URL is off"
        );
        let low = settings(&[
            "--resync-seconds",
            "1",
            "--reconcile-timeout-seconds",
            "5",
            "--concurrency",
            "0",
        ]);
        assert_eq!(
            (low.resync, low.reconcile_timeout, low.concurrency),
            (Duration::from_secs(10), Duration::from_secs(30), 1)
        );
        let high = settings(&["--resync-seconds", "99999999", "--reconcile-timeout-seconds", "99999"]);
        assert_eq!(
            (high.resync, high.reconcile_timeout),
            (Duration::from_secs(7 * 24 * 3600), Duration::from_secs(3600))
        );
    }
}

//! The controller itself at fleet scale (issue 17): N LoggingBaselines on a real API server
//! (tests/common/cluster.rs) against the emulator, reconciled by `trailkeeper run` (this package's
//! binary, as a subprocess, with events on and the resync at its events default of an hour).
//!
//! `cargo bench --bench controller` (N = 100; `TRAILKEEPER_BENCH_N=100,1000` to choose;
//! `TRAILKEEPER_BENCH_TAMPERS` tampers, default 20). Prints, per N:
//! - time to all-Ready from empty accounts, and the controller's peak and final RSS;
//! - a restart: a fresh process reconciles every baseline once, all in sync: its wall time, AWS
//!   reads and writes per account, and its RSS with every baseline seen (the steady state);
//! - AWS calls per account per hour in sync: with events (resync 1 h) and without (resync 10 min);
//! - Kubernetes API requests of each process by verb (from the API server's audit log): watches,
//!   not polling;
//! - time from a tamper call (StopLogging) to its repair, p50 and p95 over the tampers.
//!
//! - the account-wide sweep (issue 43, on by default): each account's controls judge every region
//!   enabled (no complianceRegions); the emulator's enabled regions are narrowed to
//!   `TRAILKEEPER_EMULATOR_REGIONS` (default us-east-1,eu-west-1,eu-north-1: two swept per account)
//!   so that hundreds of accounts do not each build an EC2 backend per region in the emulator; the
//!   product keeps AWS's. Prints the sweeps, their reads per account, and the clients built.
//!
//! `TRAILKEEPER_BENCH_REPLICAS=3` (issue 46): three replicas share the fleet by shards (`--shards
//! 12`); prints the time to all Ready and every replica's RSS instead of the single-replica figures.
//!
//! `TRAILKEEPER_BENCH_WRAP="heaptrack -o /tmp/controller"` profiles the controller's heap.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster;
use kube::Client;
use kube::api::{Api, PostParams};
use trailkeeper::api::LoggingBaseline;

const OPERATOR_ACCOUNT: &str = "123456789012";
/// Above this many accounts the benchmark's accounts are members of an Organization (see `bench`).
const ACCOUNTS_NAMED_BY_THE_BUS: usize = 600;

struct Controller {
    child: Child,
    metrics_url: String,
    started: Instant,
}

impl Controller {
    fn rss_kib(&self, field: &str) -> u64 {
        common::proc_status_kib(&self.child.id().to_string(), field)
    }

    /// The heap's figures of `/metrics` (glibc): allocated and free, in KiB.
    async fn heap_kib(&self) -> (u64, u64) {
        let text = reqwest_get(&self.metrics_url).await;
        let gauge = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
                .unwrap_or(0)
                / 1024
        };
        (
            gauge("trailkeeper_heap_allocated_bytes"),
            gauge("trailkeeper_heap_free_bytes"),
        )
    }

    /// A counter of `/metrics` (the first line that starts with `name`).
    async fn counter(&self, name: &str) -> u64 {
        let text = reqwest_get(&self.metrics_url).await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
            .unwrap_or(0)
    }

    async fn counter_f64(&self, name: &str) -> f64 {
        let text = reqwest_get(&self.metrics_url).await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or(0.0)
    }

    /// Sums of `trailkeeper_aws_calls_total` by (service:operation), ok and error alike.
    async fn aws_calls(&self) -> BTreeMap<String, u64> {
        let text = reqwest_get(&self.metrics_url).await;
        let mut calls = BTreeMap::new();
        for line in text.lines().filter(|l| l.starts_with("trailkeeper_aws_calls_total{")) {
            let label = |name: &str| {
                line.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("")
                    .to_string()
            };
            let n: u64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0);
            *calls
                .entry(format!("{}:{}", label("service"), label("operation")))
                .or_default() += n;
        }
        calls
    }

    fn stop(self) {}
}

/// Stopped (SIGTERM) when dropped, also when the benchmark panics.
impl Drop for Controller {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET of the metrics endpoint (no HTTP client crate for one request).
async fn reqwest_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut stream) = tokio::net::TcpStream::connect(host).await else {
        return String::new();
    };
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body).await;
    body
}

fn is_read(operation: &str) -> bool {
    trailkeeper::aws::calls::is_read(operation)
}

/// (reads, writes) of a count by action.
fn split(calls: &BTreeMap<String, u64>) -> (u64, u64) {
    calls.iter().fold((0, 0), |(r, w), (action, n)| {
        let operation = action.split(':').nth(1).unwrap_or("");
        if is_read(operation) { (r + n, w) } else { (r, w + n) }
    })
}

fn since(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// One replica of a sharded fleet (`TRAILKEEPER_BENCH_REPLICAS`).
#[derive(Clone, Copy)]
struct Sharding<'a> {
    shards: u32,
    identity: &'a str,
}

fn start_controller(
    kubeconfig: &std::path::Path,
    ns: &str,
    queue_url: &str,
    bus: &str,
    organization: Option<&str>,
    sharding: Option<Sharding<'_>>,
) -> Controller {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    // TRAILKEEPER_BENCH_WRAP runs the controller under another program, e.g. a heap profiler
    // ("heaptrack -o /tmp/controller"); its RSS figures are then the wrapper's.
    let wrap = std::env::var("TRAILKEEPER_BENCH_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut command = match wrap.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(wrap).arg(env!("CARGO_BIN_EXE_trailkeeper"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_trailkeeper")),
    };
    match sharding {
        // Each replica its Leases (one per shard) in the bench's namespace.
        Some(sharding) => command
            .args(["run", "--leader-election", "true", "--concurrency", "16"])
            .args(["--shards", &sharding.shards.to_string()])
            .args(["--lease-namespace", ns, "--identity", sharding.identity]),
        None => command.args(["run", "--leader-election", "false", "--concurrency", "16"]),
    };
    let child = command
        .args(["--watch-namespace", ns])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", kubeconfig)
        .env("AWS_ENDPOINT_URL", &common::moto().endpoint)
        .env("AWS_REGION", common::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("TRAILKEEPER_EVENTS_QUEUE_URL", queue_url)
        .env("TRAILKEEPER_EVENTS_BUS_NAME", bus)
        .envs(organization.map(|o| ("TRAILKEEPER_EVENTS_ORGANIZATION_ID", o)))
        .env(
            "RUST_LOG",
            std::env::var("TRAILKEEPER_BENCH_RUST_LOG").unwrap_or_else(|_| "error".into()),
        )
        .env_remove("TRAILKEEPER_CALL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(match std::env::var("TRAILKEEPER_BENCH_LOG") {
            Ok(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("the controller's log file"),
            ),
            Err(_) => Stdio::null(),
        })
        .spawn()
        .expect("trailkeeper run starts");
    Controller {
        child,
        metrics_url: format!("http://127.0.0.1:{port}/metrics"),
        started: Instant::now(),
    }
}

async fn ready_count(api: &Api<LoggingBaseline>) -> usize {
    api.list(&Default::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|b| {
                    b.status
                        .as_ref()
                        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// API requests of `user` by verb since line `from` of the audit log; returns the new length too.
fn api_requests(user: &str, from: usize) -> (BTreeMap<String, usize>, usize) {
    let log = std::fs::read_to_string(&cluster::api_server().audit_log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let mut verbs = BTreeMap::new();
    for line in lines.iter().skip(from) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["user"]["username"] == user && event["stage"] == "ResponseComplete" {
            *verbs
                .entry(event["verb"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
    }
    (verbs, lines.len())
}

async fn controller_identity(client: &Client, ns: &str) -> (std::path::PathBuf, String) {
    let sa: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "bench-controller"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("bench-controller-{ns}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "bench-controller", "namespace": ns}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let token = cluster::service_account_token(client, ns, "bench-controller").await;
    (
        cluster::api_server().write_kubeconfig(&format!("bench-{ns}"), &token),
        format!("system:serviceaccount:{ns}:bench-controller"),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sharding (issue 46): `replicas` processes of `trailkeeper run --shards 4 x replicas` share the
/// fleet; the time to all Ready and each replica's RSS, peak and settled (every baseline cached
/// by every replica: the informers watch the whole fleet, each replica works its shards only).
#[allow(clippy::too_many_arguments)]
async fn sharded(
    n: usize,
    replicas: usize,
    api: &Api<LoggingBaseline>,
    kubeconfig: &std::path::Path,
    ns: &str,
    queue: &str,
    bus: &str,
    organization: Option<&str>,
) {
    let shards = 4 * replicas as u32;
    let names: Vec<String> = (0..replicas).map(|r| format!("replica-{r}")).collect();
    let fleet: Vec<Controller> = names
        .iter()
        .map(|identity| {
            let sharding = Sharding { shards, identity };
            start_controller(kubeconfig, ns, queue, bus, organization, Some(sharding))
        })
        .collect();
    let started = Instant::now();
    let mut peaks = vec![0; replicas];
    let sample = |peaks: &mut Vec<u64>| {
        for (peak, replica) in peaks.iter_mut().zip(&fleet) {
            *peak = (*peak).max(replica.rss_kib("VmRSS"));
        }
    };
    loop {
        sample(&mut peaks);
        let ready = ready_count(api).await;
        if ready == n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "only {ready}/{n} Ready after an hour"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let converge = started.elapsed();
    // Every account's first sweep, by its shard's holder.
    loop {
        let mut swept = 0;
        for replica in &fleet {
            swept += replica
                .counter("trailkeeper_compliance_sweeps_total{outcome=\"account\"}")
                .await;
        }
        sample(&mut peaks);
        if swept as usize >= n || started.elapsed() > Duration::from_secs(3600) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let swept = started.elapsed();
    // Settled: the status writes of the sweeps done, the allocator's free pages returned.
    tokio::time::sleep(Duration::from_secs(30)).await;
    sample(&mut peaks);
    let mut calls = Vec::new();
    for replica in &fleet {
        let (reads, writes) = split(&replica.aws_calls().await);
        calls.push((reads, writes, replica.counter("trailkeeper_shards_held").await));
    }
    println!(
        "\n## N = {n}, {replicas} replicas sharing {shards} shards (controller: {} build, concurrency 16 each, events on, resync 1 h)",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!(
        "all Ready after {:.1} s; every account swept after {:.1} s",
        converge.as_secs_f64(),
        swept.as_secs_f64()
    );
    for (i, replica) in fleet.iter().enumerate() {
        let (reads, writes, held) = calls[i];
        println!(
            "{}: {held} shards held; AWS reads {reads}, writes {writes}; RSS peak {} MiB, settled {} MiB ({} MiB anonymous, {} MiB file)",
            names[i],
            replica.rss_kib("VmHWM").max(peaks[i]) / 1024,
            replica.rss_kib("VmRSS") / 1024,
            replica.rss_kib("RssAnon") / 1024,
            replica.rss_kib("RssFile") / 1024
        );
    }
}

async fn bench(n: usize, tampers: usize, replicas: usize) {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "bench").await;
    let (kubeconfig, user) = controller_identity(&client, &ns).await;
    let operator = common::inspector(OPERATOR_ACCOUNT).await;
    let queue = operator.new_queue(&format!("bench-{ns}")).await;
    let bus = format!("bench-{ns}");

    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    // The central bus's policy names each managed account up to about 650 of them (EventBridge's
    // 10,240-character policy quota); past that the accounts are members of an Organization, which
    // the bus admits by its id (`--events-organization-id`), as the README says to run it.
    let (accounts, organization) = if n > ACCOUNTS_NAMED_BY_THE_BUS {
        let organization = common::create_organization(&operator).await;
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            members.push(common::create_member_account(&operator, &format!("bench-{ns}-{i}")).await);
        }
        (members, Some(organization))
    } else {
        ((0..n).map(|_| common::new_account()).collect(), None)
    };
    for (i, account) in accounts.iter().enumerate() {
        let mut b = common::baseline(account);
        // Every enabled region judged: the kept one by each reconcile, the others by the sweep.
        b.spec.compliance_regions.clear();
        b.metadata.name = Some(format!("acct-{i:04}"));
        b.metadata.namespace = Some(ns.clone());
        api.create(&PostParams::default(), &b).await.unwrap();
    }

    if replicas > 1 {
        return sharded(
            n,
            replicas,
            &api,
            &kubeconfig,
            &ns,
            &queue,
            &bus,
            organization.as_deref(),
        )
        .await;
    }

    // 1. From empty accounts to all Ready.
    let (_, audit_from) = api_requests(&user, 0);
    let first = start_controller(&kubeconfig, &ns, &queue, &bus, organization.as_deref(), None);
    let mut peak = 0;
    loop {
        peak = peak.max(first.rss_kib("VmRSS"));
        let ready = ready_count(&api).await;
        if ready == n {
            break;
        }
        assert!(
            first.started.elapsed() < Duration::from_secs(3600),
            "only {ready}/{n} Ready after an hour"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let converge = first.started.elapsed();
    // Every account's first sweep (at once, a few at a time), each folded into status by a reconcile.
    let swept_all = loop {
        let swept = first
            .counter("trailkeeper_compliance_sweeps_total{outcome=\"account\"}")
            .await;
        peak = peak.max(first.rss_kib("VmRSS"));
        if swept as usize >= n || first.started.elapsed() > Duration::from_secs(3600) {
            break first.started.elapsed();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let sweeps = first
        .counter("trailkeeper_compliance_sweeps_total{outcome=\"account\"}")
        .await;
    let sweep_reads = first.counter("trailkeeper_compliance_sweep_reads_total").await;
    let sweep_seconds = first.counter_f64("trailkeeper_compliance_sweep_seconds_sum").await;
    // Settle: the events of its own writes, the status writes.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let converge_calls = first.aws_calls().await;
    let converge_clients = first.counter("trailkeeper_aws_clients_built_total").await;
    let (first_hwm, first_rss) = (first.rss_kib("VmHWM"), first.rss_kib("VmRSS"));
    first.stop();
    let (first_requests, audit_mid) = api_requests(&user, audit_from);

    // 2. A fresh process: every baseline reconciled once, in sync.
    let second = start_controller(&kubeconfig, &ns, &queue, &bus, organization.as_deref(), None);
    let mut in_sync = Duration::ZERO;
    let mut last = BTreeMap::new();
    let mut stable_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The queue's long polls go on in sync: the pass is over when the rest stops.
        let mut calls = second.aws_calls().await;
        calls.retain(|action, _| !action.starts_with("sqs:"));
        let reconciled = calls.get("sts:GetCallerIdentity").copied().unwrap_or(0) as usize;
        // (one GetCallerIdentity per reconcile)
        if calls != last {
            last = calls;
            stable_since = Instant::now();
            if reconciled >= n {
                in_sync = second.started.elapsed();
            }
        } else if reconciled >= n && stable_since.elapsed() > Duration::from_secs(5) {
            break;
        }
        assert!(
            second.started.elapsed() < Duration::from_secs(3600),
            "the in-sync pass did not end"
        );
    }
    let pass = last.clone();
    let restart_clients = second.counter("trailkeeper_aws_clients_built_total").await;
    let (reads, writes) = split(&pass);
    // The one-time central wiring check of the new process (its four reads) is in `pass` too.
    let events_reads: u64 = pass
        .iter()
        .filter(|(k, _)| k.starts_with("events:") || k.contains("trailkeeper-events"))
        .map(|(_, v)| *v)
        .sum();
    let forwarding_role_reads = 2 * n as u64; // GetRole and GetRolePolicy of the forwarding role
    let per_account = reads as f64 / n as f64;
    let without_events = (reads - events_reads - forwarding_role_reads) as f64 / n as f64;
    let (steady_hwm, steady_rss) = (second.rss_kib("VmHWM"), second.rss_kib("VmRSS"));
    // What the steady RSS is made of: the heap (RssAnon, grows with N) and the binary's pages
    // (RssFile, flat in N).
    let (steady_anon, steady_file) = (second.rss_kib("RssAnon"), second.rss_kib("RssFile"));
    // What the heap is made of: allocated (live data) and free inside the arenas
    // (fragmentation). And the same after the allocator's periodic return of free pages (every
    // 10 s): the RSS the process keeps.
    let (heap_allocated, heap_free) = second.heap_kib().await;
    tokio::time::sleep(trailkeeper::runtime::allocator::RETURN_FREE_PAGES_EVERY + Duration::from_secs(2)).await;
    let (settled_anon, settled_file) = (second.rss_kib("RssAnon"), second.rss_kib("RssFile"));
    let (settled_allocated, settled_free) = second.heap_kib().await;

    // Printed now: a failure of the tampers below leaves these figures.
    let (converge_reads, converge_writes) = split(&converge_calls);
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("\n## N = {n} (controller: {build} build, concurrency 16, events on, resync 1 h)");
    println!(
        "all Ready after {:.1} s; AWS reads/writes per account {:.1} / {:.1}; RSS peak {} MiB, at the end {} MiB",
        converge.as_secs_f64(),
        converge_reads as f64 / n as f64,
        converge_writes as f64 / n as f64,
        first_hwm.max(peak) / 1024,
        first_rss / 1024
    );
    println!(
        "account-wide sweep: {sweeps} sweeps done {:.1} s after the start ({:.1} reads and {:.2} s each; regions enabled in the emulator: {}), then one reconcile each to fold it in; SDK clients built {} (converge process)",
        swept_all.as_secs_f64(),
        sweep_reads as f64 / sweeps.max(1) as f64,
        sweep_seconds / sweeps.max(1) as f64,
        std::env::var("TRAILKEEPER_EMULATOR_REGIONS").unwrap_or_default(),
        converge_clients
    );
    println!(
        "restart, every baseline in sync: {:.1} s; reads per account {per_account:.1} ({without_events:.1} without events' rule and role), writes {writes}; RSS peak {} MiB, steady {} MiB ({} MiB anonymous, {} MiB file)",
        in_sync.as_secs_f64(),
        steady_hwm / 1024,
        steady_rss / 1024,
        steady_anon / 1024,
        steady_file / 1024
    );
    println!(
        "SDK clients built by the restart pass: {restart_clients} ({:.1} per reconcile; kept between reconciles for the 16 most recent baselines)",
        restart_clients as f64 / n as f64
    );
    println!(
        "heap after the pass: {} MiB allocated, {} MiB free in the arenas; {} s later: RSS {} MiB ({} MiB anonymous, {} MiB file), heap {} MiB allocated, {} MiB free",
        heap_allocated / 1024,
        heap_free / 1024,
        trailkeeper::runtime::allocator::RETURN_FREE_PAGES_EVERY.as_secs() + 2,
        (settled_anon + settled_file) / 1024,
        settled_anon / 1024,
        settled_file / 1024,
        settled_allocated / 1024,
        settled_free / 1024
    );
    println!(
        "AWS calls per account per hour in sync: {per_account:.1} with events (resync 1 h), {:.1} without (resync 10 min: 6 x {without_events:.1})",
        without_events * 6.0
    );
    // 3. Tampering: StopLogging on a trail, until trailkeeper has it logging again.
    let before_tampers = second.aws_calls().await;
    let mut repairs = Vec::new();
    for t in 0..tampers {
        let account = &accounts[(t * 7919) % n];
        let aws = common::inspector(account).await;
        let trail = format!("arn:aws:cloudtrail:{}:{account}:trail/trailkeeper", common::REGION);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let tampered = Instant::now();
        aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
        while aws.trail_is_logging(&trail).await != Some(true) {
            if tampered.elapsed() > Duration::from_secs(120) {
                let metrics = reqwest_get(&second.metrics_url).await;
                let events: Vec<&str> = metrics.lines().filter(|l| l.contains("drift_event")).collect();
                panic!("StopLogging of {account} not repaired in 2 min; {events:#?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        repairs.push(tampered.elapsed());
    }
    repairs.sort();
    let tamper_calls = since(&second.aws_calls().await, &before_tampers);
    let (tamper_reads, tamper_writes) = split(&tamper_calls);
    let final_rss = second.rss_kib("VmRSS");
    second.stop();
    let (second_requests, _) = api_requests(&user, audit_mid);

    println!("Kubernetes API requests, converge process: {first_requests:?}; restart process: {second_requests:?}");
    println!(
        "tamper -> repair over {} StopLogging: p50 {:.2} s, p95 {:.2} s, max {:.2} s; calls per tamper {:.1} reads / {:.1} writes; RSS after {} MiB",
        repairs.len(),
        percentile(&repairs, 0.5).as_secs_f64(),
        percentile(&repairs, 0.95).as_secs_f64(),
        repairs.last().copied().unwrap_or_default().as_secs_f64(),
        tamper_reads as f64 / tampers.max(1) as f64,
        tamper_writes as f64 / tampers.max(1) as f64,
        final_rss / 1024
    );
}

fn main() {
    if std::env::var_os("TRAILKEEPER_EMULATOR_REGIONS").is_none() {
        // SAFETY: no other thread runs yet; the emulator (started later) inherits it.
        unsafe { std::env::set_var("TRAILKEEPER_EMULATOR_REGIONS", "us-east-1,eu-west-1,eu-north-1") };
    }
    let sizes: Vec<usize> = std::env::var("TRAILKEEPER_BENCH_N")
        .unwrap_or_else(|_| "100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let tampers = std::env::var("TRAILKEEPER_BENCH_TAMPERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let replicas = std::env::var("TRAILKEEPER_BENCH_REPLICAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for n in sizes {
        runtime.block_on(bench(n, tampers, replicas));
    }
}

//! Two replicas of `trailkeeper run` on a real API server, each reaching AWS (moto) through a proxy
//! of its own that counts the writes it sends. The leader is frozen (SIGSTOP) past its lease; the
//! other takes over and repairs drift; the first, woken while drift is there to repair, makes no
//! AWS write while the other holds the lease. Frozen in the middle of a reconcile (its AWS answers
//! held back), it makes no write to the API server either: each replica acts as a ServiceAccount
//! of its own, and the API server's audit log counts its requests.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cluster;
use common::proxy::Proxy;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use trailkeeper::api::LoggingBaseline;
use trailkeeper::desired;

const TIMEOUT: Duration = Duration::from_secs(120);

struct Replica {
    child: Child,
    proxy: Proxy,
    log: std::path::PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    /// A replica acting as a ServiceAccount `name` granted the chart's RBAC rules.
    async fn start(name: &str, namespace: &str) -> Replica {
        let (kubeconfig, _) = identity_of(&cluster::admin().await, namespace, name).await;
        Self::start_with(name, namespace, &kubeconfig).await
    }

    async fn start_with(name: &str, namespace: &str, kubeconfig: &std::path::Path) -> Replica {
        let server = cluster::api_server();
        let proxy = Proxy::start(None).await;
        let log = server.dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
            .args(["run", "--http-addr", "127.0.0.1:0", "--resync-seconds", "10"])
            .args([
                "--watch-namespace",
                namespace,
                "--lease-namespace",
                namespace,
                "--identity",
                name,
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .env("AWS_REGION", common::REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("trailkeeper run starts");
        Replica { child, proxy, log }
    }

    fn signal(&self, signal: &str) -> std::io::Result<std::process::ExitStatus> {
        Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the replica's process has ended: a replica that finds it lost the lease stops
    /// its work and exits, so every write it could still send has been sent (or not) by then.
    async fn exited(&mut self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while self.child.try_wait().expect("the replica's status").is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the replica runs on {TIMEOUT:?} after it lost the lease\n--- its log\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn holder(client: &Client, namespace: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    leases
        .get_opt("trailkeeper")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Waits until `replica` holds the lease of `ns`.
async fn wait_holder(client: &Client, ns: &str, replica: &str) {
    cluster::eventually(&format!("{replica} holds the lease"), TIMEOUT, || {
        let (client, ns, replica) = (client.clone(), ns.to_string(), replica.to_string());
        async move { holder(&client, &ns).await.as_deref() == Some(replica.as_str()) }
    })
    .await;
}

/// A LoggingBaseline of a fresh account in `ns`, waited on until Ready (a replica leads); returns
/// the account.
async fn ready_baseline(client: &Client, ns: &str) -> String {
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), ns);
    let account = common::new_account();
    let mut baseline = common::baseline(&account);
    baseline.metadata.namespace = Some(ns.to_string());
    baselines.create(&PostParams::default(), &baseline).await.unwrap();
    let name = baseline.name_any();
    cluster::eventually(&format!("{name} Ready"), TIMEOUT, || {
        let (api, name) = (baselines.clone(), name.clone());
        async move {
            api.get(&name).await.is_ok_and(|b| {
                b.status
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
        }
    })
    .await;
    account
}

async fn logging(aws: &common::Inspector, trail: &str) -> bool {
    aws.trail_is_logging(trail).await == Some(true)
}

#[tokio::test]
async fn a_frozen_leader_writes_nothing_after_it_wakes_while_the_other_replica_leads() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "failover").await;

    let mut a = Replica::start("replica-a", &ns).await;
    wait_holder(&client, &ns, "replica-a").await;
    let b = Replica::start("replica-b", &ns).await;

    let account = ready_baseline(&client, &ns).await;
    assert!(!a.proxy.writes().is_empty(), "the leader converged the account");
    assert!(
        b.proxy.writes().is_empty(),
        "the standby wrote to AWS: {:?}",
        b.proxy.writes()
    );

    // Freeze the leader past its lease: the standby takes over and repairs drift.
    a.signal("STOP").unwrap();
    wait_holder(&client, &ns, "replica-b").await;
    let aws = common::inspector(&account).await;
    let trail = desired::trail_arn(&common::spec(&account));
    aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
    cluster::eventually("replica-b restarts logging", TIMEOUT, || logging(&aws, &trail)).await;
    assert!(
        b.proxy.writes().iter().any(|w| w == "StartLogging"),
        "{:?}",
        b.proxy.writes()
    );

    // Drift for the frozen replica to find when it wakes: its resync came due while frozen.
    aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
    let writes_before = a.proxy.writes().len();
    a.signal("CONT").unwrap();
    a.exited().await;
    let woken_writes = a.proxy.writes()[writes_before..].to_vec();
    assert_eq!(
        holder(&client, &ns).await.as_deref(),
        Some("replica-b"),
        "replica-b still leads"
    );
    assert!(
        woken_writes.is_empty(),
        "the woken replica wrote to AWS while the other led: {woken_writes:?}\n--- its log\n{}",
        a.log()
    );
    cluster::eventually("the drift repaired by replica-b", TIMEOUT, || logging(&aws, &trail)).await;
    drop(a);
    drop(b);
}

/// A Lease on the real API server whose holder's clock is an hour behind or ahead (its
/// `renewTime` is written that way, every second). A replica judges by what it observes: it never
/// takes the lease while the holder renews, and takes it once the holder has been silent for the
/// lease duration, whatever `renewTime` says.
#[tokio::test]
async fn a_lease_renewed_with_a_skewed_clock_is_neither_stolen_nor_held_forever() {
    use trailkeeper::runtime::leader::{Elector, KubeLease, LeaseRecord, LeaseStore, Timing, monotonic_ms, wall_ms};
    let client = cluster::admin().await;
    let ns = cluster::fresh_namespace(&client, "skew").await;
    // Short, for a quick test, yet long enough that a slow API server under a loaded CI machine
    // does not delay the holder's renewals past the lease.
    let timing = Timing {
        duration: Duration::from_secs(6),
        renew_deadline: Duration::from_secs(4),
        retry: Duration::from_millis(250),
    };
    for (i, skew_ms) in [-3_600_000i64, 3_600_000].into_iter().enumerate() {
        let name = format!("skewed-{i}");
        let ghost = KubeLease::new(client.clone(), &ns, &name);
        let record = |version: Option<String>| LeaseRecord {
            holder: Some("skewed-holder".into()),
            renewed_at_ms: wall_ms() + skew_ms,
            acquired_at_ms: wall_ms() + skew_ms,
            duration_secs: 6,
            transitions: 0,
            version,
        };
        assert!(ghost.create(&record(None)).await.unwrap());
        let mut replica = Elector::new(KubeLease::new(client.clone(), &ns, &name), "replica", timing.clone());
        // The holder renews every second for 12 s (twice the lease duration).
        let renewing_until = tokio::time::Instant::now() + Duration::from_secs(12);
        let mut next_renewal = tokio::time::Instant::now();
        while tokio::time::Instant::now() < renewing_until {
            if tokio::time::Instant::now() >= next_renewal {
                let current = ghost.get().await.unwrap().unwrap();
                assert_eq!(
                    current.holder.as_deref(),
                    Some("skewed-holder"),
                    "the replica took a lease that was being renewed (skew {skew_ms} ms)"
                );
                assert!(ghost.replace(&record(current.version)).await.unwrap());
                next_renewal += Duration::from_secs(1);
            }
            assert!(!replica.round(monotonic_ms(), wall_ms()).await.unwrap());
            tokio::time::sleep(timing.retry).await;
        }
        // The holder is silent from now on: the replica takes over after the duration.
        let silent = tokio::time::Instant::now();
        while !replica.round(monotonic_ms(), wall_ms()).await.unwrap() {
            assert!(
                silent.elapsed() < Duration::from_secs(20),
                "the replica waits on a silent holder (skew {skew_ms} ms)"
            );
            tokio::time::sleep(timing.retry).await;
        }
        // Its last renewal came at most a second (plus one round of the loop) before the holder
        // fell silent; the replica takes over a lease duration (6 s) after it saw that renewal.
        assert!(
            silent.elapsed() >= Duration::from_millis(4_500),
            "taken after {:?}: before the lease duration had passed since the last renewal",
            silent.elapsed()
        );
    }
}

/// A ServiceAccount of its own for each replica, granted the chart's RBAC rules: the API server's
/// audit log then tells the requests of one replica from the other's.
async fn identity_of(client: &Client, namespace: &str, name: &str) -> (std::path::PathBuf, String) {
    let (token, user) = cluster::chart_identity(client, namespace, name).await;
    let kubeconfig = cluster::api_server().write_kubeconfig(&format!("{namespace}-{name}"), &token);
    (kubeconfig, user)
}

/// The writes (create, update, patch, delete) `user` made, as the API server's audit log has them
/// (one entry per request, at its ResponseComplete stage): (verb, resource, response code).
fn api_writes_of(user: &str) -> Vec<(String, String, i64)> {
    cluster::api_server()
        .audit_events_of(user)
        .into_iter()
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete" | "deletecollection")
            )
        })
        .map(|e| {
            (
                e["verb"].as_str().unwrap_or_default().to_string(),
                e["objectRef"]["resource"].as_str().unwrap_or_default().to_string(),
                e["responseStatus"]["code"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

/// Replica A is frozen while one of its reconciles waits for AWS (its answers held back by its
/// proxy); B takes the lease and repairs; A, woken with the answers now there and drift still to
/// repair, sends the API server no write (status, Event, finalizer: counted in the server's audit
/// log under A's own identity) and AWS no write (counted by its proxy).
#[tokio::test]
async fn a_leader_frozen_mid_reconcile_writes_nothing_to_the_api_server_or_aws_after_it_wakes() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "frozen").await;
    let (kubeconfig_a, user_a) = identity_of(&client, &ns, "replica-a").await;
    let (kubeconfig_b, _) = identity_of(&client, &ns, "replica-b").await;

    let mut a = Replica::start_with("replica-a", &ns, &kubeconfig_a).await;
    wait_holder(&client, &ns, "replica-a").await;
    let b = Replica::start_with("replica-b", &ns, &kubeconfig_b).await;
    let account = ready_baseline(&client, &ns).await;
    assert!(
        api_writes_of(&user_a)
            .iter()
            .any(|(verb, resource, _)| verb == "patch" && resource == "loggingbaselines"),
        "A's status writes are in the audit log under its identity: {:?}",
        api_writes_of(&user_a)
    );

    // Drift, and A's answers from AWS held back: its next reconcile (resync 10 s) waits on AWS.
    let aws = common::inspector(&account).await;
    let trail = desired::trail_arn(&common::spec(&account));
    a.proxy.delay_answers(Some(Duration::from_secs(8)));
    aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
    cluster::eventually("a reconcile of replica-a waits on AWS", TIMEOUT, || async {
        a.proxy.answers_held() > 0
    })
    .await;
    a.signal("STOP").unwrap();
    wait_holder(&client, &ns, "replica-b").await;
    cluster::eventually("replica-b restarts logging", TIMEOUT, || logging(&aws, &trail)).await;
    // Drift again for A to find: its held answers have arrived by now.
    aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (aws_before, api_before) = (a.proxy.writes().len(), api_writes_of(&user_a).len());
    a.signal("CONT").unwrap();
    a.exited().await;
    let aws_after = a.proxy.writes()[aws_before..].to_vec();
    let api_after = api_writes_of(&user_a)[api_before..].to_vec();
    assert_eq!(
        holder(&client, &ns).await.as_deref(),
        Some("replica-b"),
        "replica-b still leads"
    );
    assert!(
        aws_after.is_empty(),
        "the woken replica wrote to AWS: {aws_after:?}\n--- its log\n{}",
        a.log()
    );
    assert!(
        api_after.is_empty(),
        "the woken replica wrote to the API server: {api_after:?}\n--- its log\n{}",
        a.log()
    );
    cluster::eventually("the drift repaired by replica-b", TIMEOUT, || logging(&aws, &trail)).await;
    drop(a);
    drop(b);
}

/// SIGTERM to the leader's process while one of its reconciles waits for AWS: the reconcile
/// finishes under the Lease (the drift it found is repaired, its status written), then the Lease is
/// released (no holder, so a standby need not wait out its duration) and the process exits 0.
/// The order is read from the API server's audit log under the replica's own identity.
#[tokio::test]
async fn sigterm_finishes_the_reconcile_in_flight_then_releases_the_lease_and_exits_0() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "sigterm").await;
    let (kubeconfig, user) = identity_of(&client, &ns, "replica-a").await;
    let mut a = Replica::start_with("replica-a", &ns, &kubeconfig).await;
    wait_holder(&client, &ns, "replica-a").await;
    let account = ready_baseline(&client, &ns).await;

    // Drift, then A's answers held back: the first GetTrailStatus sent after the drift belongs to
    // a reconcile that will find it, and that reconcile waits on AWS when SIGTERM arrives.
    let aws = common::inspector(&account).await;
    let trail = desired::trail_arn(&common::spec(&account));
    aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
    let sent_before = a.proxy.operations().len();
    a.proxy.delay_answers(Some(Duration::from_secs(4)));
    cluster::eventually("a reconcile of replica-a reads the stopped trail", TIMEOUT, || async {
        a.proxy.operations()[sent_before..]
            .iter()
            .any(|op| op == "GetTrailStatus")
            && a.proxy.answers_held() > 0
    })
    .await;
    let (aws_before, api_before) = (a.proxy.writes().len(), api_writes_of(&user).len());
    let terminated = std::time::Instant::now();
    a.signal("TERM").unwrap();
    a.proxy.delay_answers(None);
    a.exited().await;
    let took = terminated.elapsed();
    let status = a.child.try_wait().unwrap().expect("exited");
    assert!(status.success(), "exit status {status:?}\n--- its log\n{}", a.log());
    // Well inside the chart's grace period (30 s): the drain bound is 20 s.
    assert!(took < Duration::from_secs(25), "took {took:?} to exit\n{}", a.log());

    let aws_after = a.proxy.writes()[aws_before..].to_vec();
    assert!(
        aws_after.iter().any(|w| w == "StartLogging"),
        "the reconcile in flight at SIGTERM did not finish its repair: {aws_after:?}\n--- its log\n{}",
        a.log()
    );
    assert!(logging(&aws, &trail).await, "the trail logs again");
    let api_after = api_writes_of(&user)[api_before..].to_vec();
    let last_status = api_after
        .iter()
        .rposition(|(verb, resource, code)| verb == "patch" && resource == "loggingbaselines" && *code == 200);
    let last_lease = api_after
        .iter()
        .rposition(|(verb, resource, code)| verb == "update" && resource == "leases" && *code == 200);
    assert!(
        matches!((last_status, last_lease), (Some(s), Some(l)) if s < l && l == api_after.len() - 1),
        "expected the status written, then the Lease released last: {api_after:?}"
    );
    assert_eq!(holder(&client, &ns).await, None, "the Lease was released");
}

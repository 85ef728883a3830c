//! Two replicas of `trailkeeper run` on a real API server, each reaching AWS (moto) through a proxy
//! of its own that counts the writes it sends. The leader is frozen (SIGSTOP) past its lease; the
//! other takes over and repairs drift; the first, woken while drift is there to repair, makes no
//! AWS write while the other holds the lease.

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
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    async fn start(name: &str, namespace: &str) -> Replica {
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
            .env("KUBECONFIG", &server.admin_kubeconfig)
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

async fn logging(aws: &common::Inspector, trail: &str) -> bool {
    aws.trail_is_logging(trail).await == Some(true)
}

#[tokio::test]
async fn a_frozen_leader_writes_nothing_after_it_wakes_while_the_other_replica_leads() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "failover").await;

    let a = Replica::start("replica-a", &ns).await;
    cluster::eventually("replica-a holds the lease", TIMEOUT, || {
        let (client, ns) = (client.clone(), ns.clone());
        async move { holder(&client, &ns).await.as_deref() == Some("replica-a") }
    })
    .await;
    let b = Replica::start("replica-b", &ns).await;

    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let mut baseline = common::baseline(&account);
    baseline.metadata.namespace = Some(ns.clone());
    baselines.create(&PostParams::default(), &baseline).await.unwrap();
    let name = baseline.name_any();
    cluster::eventually(&format!("{name} Ready"), TIMEOUT, || {
        let api = baselines.clone();
        let name = name.clone();
        async move {
            api.get(&name).await.is_ok_and(|b| {
                b.status
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
        }
    })
    .await;
    assert!(!a.proxy.writes().is_empty(), "the leader converged the account");
    assert!(
        b.proxy.writes().is_empty(),
        "the standby wrote to AWS: {:?}",
        b.proxy.writes()
    );

    // Freeze the leader past its lease: the standby takes over and repairs drift.
    a.signal("STOP").unwrap();
    cluster::eventually("replica-b takes the lease", TIMEOUT, || {
        let (client, ns) = (client.clone(), ns.clone());
        async move { holder(&client, &ns).await.as_deref() == Some("replica-b") }
    })
    .await;
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
    tokio::time::sleep(Duration::from_secs(12)).await;
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
        assert!(
            silent.elapsed() >= Duration::from_secs(2),
            "taken after {:?}",
            silent.elapsed()
        );
    }
}

//! A term of leadership that loses its lease: the lease's renewals stop reaching the store (a
//! partition), the deadline passes, and the replica cancels its work (here the real queue loop of
//! drift events, long-polling SQS on moto through a counting proxy), leaves the lease naming
//! itself (it is no longer its to release) and ends. A terminated term finishes its work and
//! releases the lease.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_types::region::Region;
use common::proxy::Proxy;
use trailkeeper::drift_events::queue::{self, EventSettings};
use trailkeeper::fence::WriteGate;
use trailkeeper::runtime::leader::{Elector, LeaseRecord, LeaseStore, StopSignal, TermBounds, TermEnd, Timing, serve};

/// An in-memory lease with the API server's optimistic concurrency, which can be cut off: then
/// every request hangs, as to an API server that no longer answers.
#[derive(Clone, Default)]
struct MemoryLease {
    record: Arc<Mutex<Option<(LeaseRecord, u64)>>>,
    partitioned: Arc<AtomicBool>,
}

impl MemoryLease {
    async fn reachable(&self) {
        if self.partitioned.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }

    fn holder(&self) -> Option<String> {
        self.record.lock().unwrap().as_ref().and_then(|(r, _)| r.holder.clone())
    }
}

impl LeaseStore for MemoryLease {
    async fn get(&self) -> Result<Option<LeaseRecord>, kube::Error> {
        self.reachable().await;
        Ok(self.record.lock().unwrap().as_ref().map(|(r, v)| LeaseRecord {
            version: Some(v.to_string()),
            ..r.clone()
        }))
    }

    async fn create(&self, record: &LeaseRecord) -> Result<bool, kube::Error> {
        self.reachable().await;
        let mut slot = self.record.lock().unwrap();
        if slot.is_some() {
            return Ok(false);
        }
        *slot = Some((record.clone(), 1));
        Ok(true)
    }

    async fn replace(&self, record: &LeaseRecord) -> Result<bool, kube::Error> {
        self.reachable().await;
        let mut slot = self.record.lock().unwrap();
        match slot.as_mut() {
            Some((current, version)) if record.version.as_deref() == Some(version.to_string().as_str()) => {
                *current = record.clone();
                *version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

fn timing() -> Timing {
    Timing {
        duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry: Duration::from_millis(250),
    }
}

/// The operator's identity on moto, reached through `proxy`.
async fn base_through(proxy: &Proxy) -> aws_types::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&proxy.endpoint)
        .region(Region::new(common::REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(trailkeeper::aws::timeouts())
        .load()
        .await
}

type Work =
    Box<dyn FnOnce(StopSignal, WriteGate) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send>;

/// The queue loop of drift events, as the controller runs it, on a queue of its own.
async fn queue_loop(proxy: &Proxy, tag: &str) -> Work {
    let operator = common::inspector("123456789012").await;
    let name = format!("tk-lease-{tag}-{}", std::process::id());
    let settings = EventSettings {
        queue_url: operator.new_queue(&name).await,
        bus_name: format!("tk-lease-bus-{tag}-{}", std::process::id()),
        organization_id: None,
    };
    let base = base_through(proxy).await;
    Box::new(move |stop, gate| {
        Box::pin(async move {
            // No baseline, and the list of them complete (the loop waits for it).
            let (store, mut writer) = kube::runtime::reflector::store();
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
            writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
            let (reconcile, _received) = futures::channel::mpsc::channel(16);
            tokio::select! {
                _ = queue::run(settings, base, store, gate, |_| Vec::new(), reconcile, futures::channel::mpsc::channel(16).0) => {}
                _ = stop => {}
            }
        })
    })
}

#[tokio::test]
async fn on_lease_loss_the_work_stops_and_the_lease_still_names_the_old_holder() {
    let proxy = Proxy::start(None).await;
    let lease = MemoryLease::default();
    let gate = WriteGate::shut();
    let work = queue_loop(&proxy, "loss").await;
    let term = {
        let (lease, gate) = (lease.clone(), gate.clone());
        tokio::spawn(async move {
            let elector = Elector::new(lease, "replica-a", timing());
            serve(
                elector,
                gate.clone(),
                |_| {},
                std::future::pending(),
                TermBounds {
                    drain: Duration::from_secs(20),
                    cancel: Duration::from_secs(5),
                },
                move |stop| work(stop, gate),
            )
            .await
        })
    };
    // The loop runs: the central bus is set up, then the queue is long-polled.
    common::cluster::eventually("the queue is polled", Duration::from_secs(60), || async {
        proxy.operations().iter().any(|op| op == "ReceiveMessage")
    })
    .await;
    assert_eq!(lease.holder().as_deref(), Some("replica-a"));

    lease.partitioned.store(true, Ordering::SeqCst);
    let end = tokio::time::timeout(Duration::from_secs(30), term)
        .await
        .expect("the term ends once the lease is lost")
        .unwrap();
    assert_eq!(end, TermEnd::LeaseLost);
    assert!(!gate.is_open(), "the gate is shut");
    lease.partitioned.store(false, Ordering::SeqCst);
    assert_eq!(
        lease.holder().as_deref(),
        Some("replica-a"),
        "a replica that lost the lease does not release it"
    );
    // The loop stopped: nothing more reaches AWS (a long poll lasts 20 s; wait past one).
    let seen = proxy.operations().len();
    tokio::time::sleep(Duration::from_secs(22)).await;
    let after: Vec<String> = proxy.operations()[seen..].to_vec();
    assert!(after.is_empty(), "the queue loop still runs after the loss: {after:?}");
}

#[tokio::test]
async fn a_terminated_term_finishes_its_work_then_releases_the_lease() {
    let lease = MemoryLease::default();
    let gate = WriteGate::shut();
    let (terminate, terminated) = tokio::sync::oneshot::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let term = {
        let (lease, gate, finished) = (lease.clone(), gate.clone(), finished.clone());
        tokio::spawn(async move {
            let elector = Elector::new(lease, "replica-a", timing());
            let termination = async move {
                let _ = terminated.await;
            };
            serve(
                elector,
                gate.clone(),
                |_| {},
                termination,
                TermBounds {
                    drain: Duration::from_secs(20),
                    cancel: Duration::from_secs(5),
                },
                move |stop| async move {
                    stop.await;
                    // In-flight work finishes under the lease, its writes still allowed.
                    assert!(gate.is_open(), "the lease is held while the work finishes");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    finished.store(true, Ordering::SeqCst);
                },
            )
            .await
        })
    };
    common::cluster::eventually("replica-a leads", Duration::from_secs(10), || async { gate.is_open() }).await;
    terminate.send(()).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), term)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, TermEnd::Finished);
    assert!(
        finished.load(Ordering::SeqCst),
        "the work finished before the term ended"
    );
    assert_eq!(lease.holder(), None, "released for the next replica");
    assert!(!gate.is_open());
}

#[tokio::test]
async fn a_terminated_term_cuts_off_what_outlasts_the_drain_then_releases_the_lease() {
    let lease = MemoryLease::default();
    let gate = WriteGate::shut();
    let (terminate, terminated) = tokio::sync::oneshot::channel::<()>();
    let gate_when_cut = Arc::new(Mutex::new(None));
    let term = {
        let (lease, gate, gate_when_cut) = (lease.clone(), gate.clone(), gate_when_cut.clone());
        tokio::spawn(async move {
            let elector = Elector::new(lease, "replica-a", timing());
            let termination = async move {
                let _ = terminated.await;
            };
            let bounds = TermBounds {
                drain: Duration::from_secs(1),
                cancel: Duration::from_secs(5),
            };
            serve(
                elector,
                gate.clone(),
                |_| {},
                termination,
                bounds,
                move |_stop| async move {
                    // A reconcile that ignores the stop (an AWS call that hangs).
                    struct OnDrop(WriteGate, Arc<Mutex<Option<bool>>>);
                    impl Drop for OnDrop {
                        fn drop(&mut self) {
                            *self.1.lock().unwrap() = Some(self.0.is_open());
                        }
                    }
                    let _cut = OnDrop(gate, gate_when_cut);
                    std::future::pending::<()>().await
                },
            )
            .await
        })
    };
    common::cluster::eventually("replica-a leads", Duration::from_secs(10), || async { gate.is_open() }).await;
    let terminated_at = std::time::Instant::now();
    terminate.send(()).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), term)
        .await
        .expect("the term ends after the drain, not with the hung work")
        .unwrap();
    assert_eq!(end, TermEnd::Finished);
    assert!(
        terminated_at.elapsed() >= Duration::from_secs(1),
        "{:?}",
        terminated_at.elapsed()
    );
    assert_eq!(
        *gate_when_cut.lock().unwrap(),
        Some(false),
        "the work was cut off, and behind a shut gate"
    );
    assert_eq!(lease.holder(), None, "released for the next replica");
}

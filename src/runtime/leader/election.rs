//! Leader election on a coordination.k8s.io Lease, so that two replicas never reconcile at once.
//!
//! Time is judged on this replica's monotonic clock, never by comparing another replica's
//! `renewTime` with the local wall clock (clock skew would let two replicas lead): as client-go
//! does, a lease held by another replica counts as expired once it has not changed for
//! `duration` as observed here. The holder renews every `retry` and leads only until
//! `renew_deadline` after the start of its last successful renewal (< `duration`), so it has
//! stopped before anyone else may take over. Writes carry the resourceVersion, so two replicas
//! racing for an expired lease cannot both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};

pub use crate::fence::monotonic_ms;

/// What a lease says, as far as the election is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Option<String>,
    /// The holder's wall-clock time of its last renewal (Unix ms), for people reading the Lease.
    /// Never compared with this replica's clock.
    pub renewed_at_ms: i64,
    /// When the holder acquired the lease (Unix ms); kept across renewals.
    pub acquired_at_ms: i64,
    pub duration_secs: i32,
    pub transitions: i32,
    /// The store's version of the record (resourceVersion), for optimistic concurrency.
    pub version: Option<String>,
}

/// Where the lease lives. `create` and `replace` return false when another writer got there first.
pub trait LeaseStore {
    fn get(&self) -> impl Future<Output = Result<Option<LeaseRecord>, kube::Error>> + Send;
    fn create(&self, record: &LeaseRecord) -> impl Future<Output = Result<bool, kube::Error>> + Send;
    fn replace(&self, record: &LeaseRecord) -> impl Future<Output = Result<bool, kube::Error>> + Send;
}

#[derive(Clone, Debug)]
pub struct Timing {
    pub duration: Duration,
    pub renew_deadline: Duration,
    pub retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// Unix time in milliseconds, written into the Lease for people to read.
pub fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// What the last round saw of the lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Seen {
    /// No round has read it yet, or the last read failed.
    #[default]
    Unknown,
    /// This replica holds it.
    Mine,
    /// Nobody holds it: none, released, or expired as observed here.
    Free,
    /// Another replica holds it (or this one, by a lease it does not take: see `round_taking`).
    Held(String),
}

/// The record of another holder as last seen, and when (locally) it was first seen so.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Observed {
    holder: Option<String>,
    renewed_at_ms: i64,
    version: Option<String>,
    since_ms: i64,
}

pub struct Elector<S> {
    store: S,
    identity: String,
    timing: Timing,
    /// Local time until which this replica leads.
    leading_until_ms: Option<i64>,
    observed: Option<Observed>,
    acquired_at_ms: Option<i64>,
    seen: Seen,
}

impl<S: LeaseStore> Elector<S> {
    pub fn new(store: S, identity: impl Into<String>, timing: Timing) -> Self {
        Self {
            store,
            identity: identity.into(),
            timing,
            leading_until_ms: None,
            observed: None,
            acquired_at_ms: None,
            seen: Seen::Unknown,
        }
    }

    /// What the last round saw.
    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Whether this replica may act as leader at local time `now_ms`.
    pub fn is_leader(&self, now_ms: i64) -> bool {
        self.leading_until_ms.is_some_and(|until| now_ms < until)
    }

    /// The local time until which this replica leads, if it does.
    pub fn leading_until(&self) -> Option<i64> {
        self.leading_until_ms
    }

    /// One round, started at local time `now_ms` (wall clock `wall_ms`): renew the lease we hold,
    /// or take it when it is free or has not changed for `duration` as observed here.
    /// Returns whether this replica leads.
    pub async fn round(&mut self, now_ms: i64, wall_ms: i64) -> Result<bool, kube::Error> {
        self.round_taking(now_ms, wall_ms, true).await
    }

    /// A round that writes only when `take`: otherwise it observes (the lease's expiry is judged
    /// as in any round) and leads not, even where the lease still names this replica (a shard
    /// over this replica's share is left to expire rather than renewed).
    pub async fn round_taking(&mut self, now_ms: i64, wall_ms: i64, take: bool) -> Result<bool, kube::Error> {
        let duration_ms = self.timing.duration.as_millis() as i64;
        self.seen = Seen::Unknown;
        let won = match self.store.get().await? {
            None if take => {
                let record = self.record_as_holder(0, None, wall_ms, wall_ms);
                self.store.create(&record).await?
            }
            None => {
                self.seen = Seen::Free;
                false
            }
            Some(current) if current.holder.as_deref() == Some(self.identity.as_str()) && take => {
                let acquired = self.acquired_at_ms.unwrap_or(current.acquired_at_ms);
                let record = self.record_as_holder(current.transitions, current.version, wall_ms, acquired);
                self.store.replace(&record).await?
            }
            Some(current) => {
                self.acquired_at_ms = None;
                let seen = Observed {
                    holder: current.holder.clone(),
                    renewed_at_ms: current.renewed_at_ms,
                    version: current.version.clone(),
                    since_ms: now_ms,
                };
                let unchanged_since = match &self.observed {
                    Some(o)
                        if (&o.holder, o.renewed_at_ms, &o.version)
                            == (&seen.holder, seen.renewed_at_ms, &seen.version) =>
                    {
                        o.since_ms
                    }
                    _ => {
                        self.observed = Some(seen);
                        now_ms
                    }
                };
                let expired = now_ms - unchanged_since > duration_ms;
                let free = current.holder.as_deref().is_none_or(str::is_empty) || expired;
                if free && take {
                    let record = self.record_as_holder(current.transitions + 1, current.version, wall_ms, wall_ms);
                    self.store.replace(&record).await?
                } else {
                    self.seen = match current.holder {
                        Some(holder) if !free => Seen::Held(holder),
                        _ => Seen::Free,
                    };
                    false
                }
            }
        };
        if won {
            self.acquired_at_ms.get_or_insert(wall_ms);
            self.observed = None;
            self.seen = Seen::Mine;
        }
        self.leading_until_ms = won.then(|| now_ms + self.timing.renew_deadline.as_millis() as i64);
        Ok(won)
    }

    fn record_as_holder(
        &self,
        transitions: i32,
        version: Option<String>,
        wall_ms: i64,
        acquired_at_ms: i64,
    ) -> LeaseRecord {
        LeaseRecord {
            holder: Some(self.identity.clone()),
            renewed_at_ms: wall_ms,
            acquired_at_ms,
            duration_secs: self.timing.duration.as_secs() as i32,
            transitions,
            version,
        }
    }

    /// Hands the lease back (on shutdown) so that another replica takes over at once, as
    /// client-go's ReleaseOnCancel does: no holder, a one-second duration.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        self.leading_until_ms = None;
        if let Some(current) = self.store.get().await?
            && current.holder.as_deref() == Some(self.identity.as_str())
        {
            let record = LeaseRecord {
                holder: None,
                duration_secs: 1,
                ..current
            };
            self.store.replace(&record).await?;
        }
        self.acquired_at_ms = None;
        Ok(())
    }
}

/// A Lease object in the cluster.
pub struct KubeLease {
    api: Api<Lease>,
    name: String,
}

impl KubeLease {
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
        }
    }

    fn to_lease(&self, r: &LeaseRecord) -> Lease {
        let time = |ms: i64| jiff::Timestamp::from_millisecond(ms).ok().map(MicroTime);
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: r.version.clone(),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: r.holder.clone(),
                lease_duration_seconds: Some(r.duration_secs),
                renew_time: time(r.renewed_at_ms),
                acquire_time: time(r.acquired_at_ms),
                lease_transitions: Some(r.transitions),
                ..Default::default()
            }),
        }
    }
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaseStore for KubeLease {
    async fn get(&self) -> Result<Option<LeaseRecord>, kube::Error> {
        Ok(self.api.get_opt(&self.name).await?.map(|lease| {
            let spec = lease.spec.unwrap_or_default();
            LeaseRecord {
                holder: spec.holder_identity,
                renewed_at_ms: spec.renew_time.map(|t| t.0.as_millisecond()).unwrap_or(0),
                acquired_at_ms: spec.acquire_time.map(|t| t.0.as_millisecond()).unwrap_or(0),
                duration_secs: spec.lease_duration_seconds.unwrap_or(0),
                transitions: spec.lease_transitions.unwrap_or(0),
                version: lease.metadata.resource_version,
            }
        }))
    }

    async fn create(&self, record: &LeaseRecord) -> Result<bool, kube::Error> {
        match self.api.create(&PostParams::default(), &self.to_lease(record)).await {
            Ok(_) => Ok(true),
            Err(e) if conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn replace(&self, record: &LeaseRecord) -> Result<bool, kube::Error> {
        match self
            .api
            .replace(&self.name, &PostParams::default(), &self.to_lease(record))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// How long one round may wait on the API server: a hung request must not outlive the deadline.
fn round_timeout(timing: &Timing) -> Duration {
    (timing.renew_deadline / 2).max(Duration::from_millis(500))
}

/// Campaigns until `stop` resolves, and hands back the elector. After every round it publishes
/// on `leading` the local time until which this replica leads (None: it does not). It does not
/// release the lease: only a replica that still leads when its work is done may (`release`).
pub async fn campaign<S: LeaseStore>(
    mut elector: Elector<S>,
    leading: tokio::sync::watch::Sender<Option<i64>>,
    stop: impl Future<Output = ()>,
) -> Elector<S> {
    tokio::pin!(stop);
    loop {
        let started = monotonic_ms();
        let round = tokio::time::timeout(round_timeout(elector.timing()), elector.round(started, wall_ms()));
        match round.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "leader election round failed"),
            Err(_) => tracing::warn!("leader election round timed out: the API server did not answer"),
        }
        let until = elector.leading_until().filter(|until| monotonic_ms() < *until);
        crate::runtime::metrics::set_leader(until.is_some());
        leading.send_if_modified(|l| std::mem::replace(l, until) != until);
        tokio::select! {
            _ = tokio::time::sleep(elector.timing().retry) => {}
            _ = &mut stop => break,
        }
    }
    crate::runtime::metrics::set_leader(false);
    leading.send_replace(None);
    elector
}

/// Hands the lease back, boundedly, so that another replica takes over at once. Only for a
/// replica that still leads (its work finished inside the lease).
pub async fn release<S: LeaseStore>(mut elector: Elector<S>) {
    match tokio::time::timeout(round_timeout(elector.timing()), elector.release()).await {
        Ok(Ok(())) => tracing::info!("released the leader lease"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the leader lease"),
        Err(_) => tracing::warn!("releasing the leader lease timed out"),
    }
}

/// Resolves when the leadership published on `leading` ends: its deadline passes without a
/// renewal, on this replica's own timer, or the campaign says so.
pub async fn lease_lost(mut leading: tokio::sync::watch::Receiver<Option<i64>>) {
    loop {
        let Some(until) = *leading.borrow_and_update() else {
            return;
        };
        let left = Duration::from_millis((until - monotonic_ms()).max(0) as u64);
        if left.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            changed = leading.changed() => if changed.is_err() { return },
        }
    }
}

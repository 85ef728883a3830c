//! Leader election on a coordination.k8s.io Lease, so that two replicas never reconcile at once.
//! The lease holder renews it every `retry` and considers itself leader only until `renew_deadline`
//! after the start of its last successful renewal; another replica takes the lease only once
//! `duration` (> `renew_deadline`) has passed since that renewal. Writes use the resourceVersion,
//! so two replicas racing for an expired lease cannot both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};

/// What a lease says, as far as the election is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Option<String>,
    /// Unix time of the last renewal, in milliseconds.
    pub renewed_at_ms: i64,
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

pub struct Elector<S> {
    store: S,
    identity: String,
    timing: Timing,
    leading_until_ms: Option<i64>,
}

impl<S: LeaseStore> Elector<S> {
    pub fn new(store: S, identity: impl Into<String>, timing: Timing) -> Self {
        Self {
            store,
            identity: identity.into(),
            timing,
            leading_until_ms: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Whether this replica may act as leader at `now_ms`.
    pub fn is_leader(&self, now_ms: i64) -> bool {
        self.leading_until_ms.is_some_and(|until| now_ms < until)
    }

    /// One round, started at `now_ms`: renew the lease we hold, or take it when it is free or
    /// expired. Returns whether this replica leads.
    pub async fn round(&mut self, now_ms: i64) -> Result<bool, kube::Error> {
        let mine = |transitions: i32, version: Option<String>| LeaseRecord {
            holder: Some(self.identity.clone()),
            renewed_at_ms: now_ms,
            duration_secs: self.timing.duration.as_secs() as i32,
            transitions,
            version,
        };
        let won = match self.store.get().await? {
            None => self.store.create(&mine(0, None)).await?,
            Some(current) if current.holder.as_deref() == Some(self.identity.as_str()) => {
                self.store.replace(&mine(current.transitions, current.version)).await?
            }
            Some(current) => {
                let expired = current.renewed_at_ms + i64::from(current.duration_secs) * 1000 < now_ms;
                if current.holder.is_none() || expired {
                    self.store
                        .replace(&mine(current.transitions + 1, current.version))
                        .await?
                } else {
                    false
                }
            }
        };
        self.leading_until_ms = won.then(|| now_ms + self.timing.renew_deadline.as_millis() as i64);
        Ok(won)
    }
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
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
        let renewed = jiff::Timestamp::from_millisecond(r.renewed_at_ms).ok().map(MicroTime);
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: r.version.clone(),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: r.holder.clone(),
                lease_duration_seconds: Some(r.duration_secs),
                renew_time: renewed.clone(),
                acquire_time: renewed,
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

/// Campaigns forever: publishes on `leading` whether this replica leads, after every round.
/// A failed round counts as not leading once the renew deadline has passed.
pub async fn campaign<S: LeaseStore>(mut elector: Elector<S>, leading: tokio::sync::watch::Sender<bool>) {
    loop {
        let started = now_ms();
        if let Err(e) = elector.round(started).await {
            tracing::warn!(error = %e, "leader election round failed");
        }
        let is_leader = elector.is_leader(now_ms());
        crate::metrics::set_leader(is_leader);
        leading.send_if_modified(|l| std::mem::replace(l, is_leader) != is_leader);
        tokio::time::sleep(elector.timing().retry).await;
    }
}

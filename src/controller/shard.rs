//! Which shard an object belongs to, each shard's writers to the API server, and the objects to
//! reconcile when this replica starts holding a shard (issue 46; the shards themselves:
//! `runtime::leader::shards`).
//!
//! An object's shard is that of the AWS account it writes, so that one replica writes an account,
//! in AWS and in Kubernetes: a LoggingBaseline's is its `accountId`'s, a LogArchive's its archive
//! account's, the central event wiring's the queue's account's (`drift_events::queue`). What
//! writes no account hashes a key of its own (`key_of`): a LoggingBaselineSet
//! `LoggingBaselineSet/<namespace>/<name>`, a policy's status `<Kind>/<namespace>/<name>`. A
//! set's holder writes its children's spec (creates, updates, deletes them); each child's status,
//! finalizer and Events are its account's holder's.

use std::sync::Arc;

use futures::{SinkExt, Stream};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use super::writer::FencedWrites;
use crate::runtime::leader::shards::Shards;

/// The key of an object that writes no account: `<Kind>/<namespace>/<name>`.
pub fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// A client and an Event recorder per shard, each fenced on its shard's gate: an object's writes
/// go out only while this replica holds its shard, checked before every request.
pub struct Writers {
    writers: Vec<(Client, Recorder)>,
}

impl Writers {
    /// One writer for everything (one shard: the single Lease's fenced client).
    pub fn single(client: Client, reporter: Reporter) -> Self {
        Self {
            writers: vec![(client.clone(), Recorder::new(client, reporter))],
        }
    }

    /// One writer for everything, from its parts.
    pub fn from_parts(client: Client, recorder: Recorder) -> Self {
        Self {
            writers: vec![(client, recorder)],
        }
    }

    /// A client per shard of `shards`, fenced on its gate.
    pub fn fenced(config: &kube::Config, shards: &Shards, reporter: &Reporter) -> Result<Self, kube::Error> {
        let writers = (0..shards.count())
            .map(|shard| {
                let client = kube::client::ClientBuilder::try_from(config.clone())?
                    .with_layer(&FencedWrites::new(shards.gate(shard).clone()))
                    .build();
                Ok((client.clone(), Recorder::new(client, reporter.clone())))
            })
            .collect::<Result<_, kube::Error>>()?;
        Ok(Self { writers })
    }

    /// The client that writes the objects of `shard`.
    pub fn client(&self, shard: u32) -> &Client {
        &self.writers[shard as usize % self.writers.len()].0
    }

    /// The recorder of the Events about the objects of `shard`.
    pub fn recorder(&self, shard: u32) -> &Recorder {
        &self.writers[shard as usize % self.writers.len()].1
    }
}

/// The objects of `store` in each shard this replica starts holding (a new term), for a
/// controller's `reconcile_on`: they were left to another replica, or to nobody, until now.
/// The shards held when it starts count as new (their objects' first reconciles may have come
/// before). Ends when the stream is dropped. Without sharding it yields nothing: the one Lease's
/// holder reconciles everything from its start, as without shards.
pub fn newly_held<K>(
    shards: Arc<Shards>,
    store: Store<K>,
    shard_of: impl Fn(&K) -> u32 + Send + 'static,
) -> impl Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let (mut tx, rx) = futures::channel::mpsc::channel(1024);
    if !shards.is_sharded() {
        // The sender dropped: the stream ends at once, no reconcile added.
        return rx;
    }
    let mut terms = shards.terms();
    tokio::spawn(async move {
        if !crate::runtime::cache::cache_synced(&store).await {
            return;
        }
        let mut known = vec![0u64; shards.count() as usize];
        loop {
            let now: Vec<u64> = terms.borrow_and_update().clone();
            let new: Vec<u32> = (0..shards.count())
                .filter(|s| {
                    let term = now[*s as usize];
                    term != 0 && term != known[*s as usize]
                })
                .collect();
            known = now;
            let mine: Vec<ObjectRef<K>> = store
                .state()
                .iter()
                .filter(|object| new.contains(&shard_of(object)))
                .map(|object| ObjectRef::from_obj(object.as_ref()))
                .collect();
            if !new.is_empty() {
                tracing::info!(kind = %K::kind(&()), shards = ?new, objects = mine.len(), "shards newly held: reconciling their objects");
            }
            for object in mine {
                if tx.send(object).await.is_err() {
                    return;
                }
            }
            if terms.changed().await.is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_without_an_account_is_keyed_by_kind_namespace_and_name() {
        let policy: crate::api::TrailPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "trailkeeper.io/v1alpha1", "kind": "TrailPolicy",
            "metadata": {"name": "org", "namespace": "accounts"}, "spec": {}
        }))
        .unwrap();
        assert_eq!(key_of(&policy), "TrailPolicy/accounts/org");
    }

    #[tokio::test]
    async fn without_sharding_no_reconcile_is_added() {
        let shards = Shards::single("a", crate::fence::WriteGate::open());
        let (store, _writer) = kube::runtime::reflector::store::<k8s_openapi::api::core::v1::ConfigMap>();
        let mut refs = Box::pin(newly_held(shards, store, |_| 0));
        let next = tokio::time::timeout(std::time::Duration::from_secs(1), futures::StreamExt::next(&mut refs));
        assert_eq!(next.await.expect("ends at once"), None);
    }

    #[tokio::test]
    async fn the_objects_of_a_shard_are_reconciled_when_its_term_begins() {
        use kube::runtime::watcher::Event;
        let shards = Shards::sharded("a", 4);
        let (store, mut writer) = kube::runtime::reflector::store::<k8s_openapi::api::core::v1::ConfigMap>();
        writer.apply_watcher_event(&Event::Init);
        for name in ["x", "y", "z"] {
            let map: k8s_openapi::api::core::v1::ConfigMap =
                serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": "ns"}})).unwrap();
            writer.apply_watcher_event(&Event::InitApply(map));
        }
        writer.apply_watcher_event(&Event::InitDone);
        // x in shard 1, the others in 2.
        let mut refs = Box::pin(newly_held(shards.clone(), store, |m| {
            if m.name_any() == "x" { 1 } else { 2 }
        }));
        let leases = crate::runtime::leader::shards::MemoryLeases::default();
        let mut manager = crate::runtime::leader::shards::ShardManager::new(
            leases,
            "tk",
            shards.clone(),
            crate::runtime::leader::Timing::default(),
            std::time::Duration::from_secs(1),
        );
        manager.round(crate::fence::monotonic_ms(), 0).await.unwrap();
        let mut names = Vec::new();
        for _ in 0..3 {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), futures::StreamExt::next(&mut refs));
            names.push(next.await.expect("a reference").expect("open").name);
        }
        names.sort();
        assert_eq!(names, ["x", "y", "z"]);
    }
}

//! The TrailPolicy and RetentionPolicy of a baseline: resolved from the controller's caches (or
//! the API server), checked against the CRDs' rules, and the baselines a changed policy concerns.

use std::time::Duration;

use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use super::context::{Error, PolicyStores};
use crate::api::{
    DEFAULT_POLICY_NAME, LoggingBaseline, PolicyRef, RetentionPolicy, RetentionPolicySpec, TrailPolicy, TrailPolicySpec,
};
use crate::controller::status;

/// A policy reference resolved: the named policy, else `default` in the namespace, else None
/// (the built-in baseline). Err names a reference to a missing policy. Read from the
/// controller's cache of policies when it runs (a reconcile costs no API request for them),
/// else from the API server.
pub(super) async fn resolve<K>(
    client: &Client,
    cache: Option<&Store<K>>,
    ns: &str,
    reference: Option<&PolicyRef>,
) -> Result<Result<Option<K>, String>, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = reference.map_or(DEFAULT_POLICY_NAME, |r| r.name.as_str());
    let found = match cache {
        Some(store) => {
            // Until the cache has listed the policies, an absent one would read as "none": wait,
            // boundedly (a watch that cannot list must not hold the reconcile forever).
            let synced = tokio::time::timeout(POLICY_CACHE_WAIT, crate::runtime::cache::cache_synced(store)).await;
            if !matches!(synced, Ok(true)) {
                return Err(Error::CacheNotSynced(K::plural(&()).to_string()));
            }
            store.get(&ObjectRef::new(name).within(ns)).map(|p| p.as_ref().clone())
        }
        None => Api::<K>::namespaced(client.clone(), ns).get_opt(name).await?,
    };
    match (found, reference) {
        (Some(p), _) => Ok(Ok(Some(p))),
        (None, Some(r)) => Ok(Err(format!(
            "{} {:?} does not exist in namespace {ns:?}",
            K::kind(&()),
            r.name
        ))),
        (None, None) => Ok(Ok(None)),
    }
}

/// How long a reconcile waits for the policy caches to fill after the controller starts.
const POLICY_CACHE_WAIT: Duration = Duration::from_secs(30);

/// Why a baseline cannot be reconciled: (reason, message).
pub(super) type Unusable = (&'static str, String);

fn cel_problems(kind: &str, name: &str, result: Result<(), kube::core::cel::ValidationErrors>) -> Result<(), Unusable> {
    result.map_err(|errors| {
        let problems: Vec<String> = errors
            .into_vec()
            .into_iter()
            .map(|e| format!("{}: {}", e.field_path, e.message))
            .collect();
        (
            status::reasons::INVALID_SPEC,
            format!("{kind} {name} is invalid: {}", problems.join("; ")),
        )
    })
}

/// The policies of a baseline, checked against the CRDs' rules (objects admitted under an older
/// CRD must not reach AWS either), or why they cannot be used.
pub(super) async fn policies(
    client: &Client,
    stores: Option<&PolicyStores>,
    baseline: &LoggingBaseline,
) -> Result<Result<(TrailPolicySpec, RetentionPolicySpec, String), Unusable>, Error> {
    let ns = baseline.namespace().unwrap_or_default();
    let trail = resolve(
        client,
        stores.map(|s| &s.trail),
        &ns,
        baseline.spec.trail.policy_ref.as_ref(),
    )
    .await?;
    let retention = resolve(
        client,
        stores.map(|s| &s.retention),
        &ns,
        baseline.spec.retention_policy_ref.as_ref(),
    )
    .await?;
    let (trail, retention) = match (trail, retention) {
        (Err(e), _) | (_, Err(e)) => return Ok(Err((status::reasons::INVALID_REFERENCE, e))),
        (Ok(t), Ok(r)) => (t, r),
    };
    let checks = cel_problems("LoggingBaseline", &baseline.name_any(), crate::api::check_cel(baseline))
        .and_then(|_| match &trail {
            Some(p) => cel_problems("TrailPolicy", &p.name_any(), crate::api::check_cel(p)),
            None => Ok(()),
        })
        .and_then(|_| match &retention {
            Some(p) => cel_problems("RetentionPolicy", &p.name_any(), crate::api::check_cel(p)),
            None => Ok(()),
        });
    if let Err(unusable) = checks {
        return Ok(Err(unusable));
    }
    let name = retention
        .as_ref()
        .map_or_else(|| "built-in".to_string(), |p| p.name_any());
    Ok(Ok((
        trail.map(|p| p.spec).unwrap_or_default(),
        retention.map(|p| p.spec).unwrap_or_default(),
        name,
    )))
}

/// Whether a policy (by namespace and name) is the one a baseline uses.
fn uses(baseline: &LoggingBaseline, ns: &str, name: &str, reference: Option<&PolicyRef>) -> bool {
    baseline.namespace().as_deref() == Some(ns) && reference.map_or(DEFAULT_POLICY_NAME, |r| r.name.as_str()) == name
}

/// The baselines that use a TrailPolicy or RetentionPolicy, for re-reconciling them on its change.
pub fn baselines_using_trail_policy(
    store: &Store<LoggingBaseline>,
    policy: &TrailPolicy,
) -> Vec<ObjectRef<LoggingBaseline>> {
    let (ns, name) = (policy.namespace().unwrap_or_default(), policy.name_any());
    store
        .state()
        .iter()
        .filter(|b| uses(b, &ns, &name, b.spec.trail.policy_ref.as_ref()))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

pub fn baselines_using_retention_policy(
    store: &Store<LoggingBaseline>,
    policy: &RetentionPolicy,
) -> Vec<ObjectRef<LoggingBaseline>> {
    let (ns, name) = (policy.namespace().unwrap_or_default(), policy.name_any());
    store
        .state()
        .iter()
        .filter(|b| uses(b, &ns, &name, b.spec.retention_policy_ref.as_ref()))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

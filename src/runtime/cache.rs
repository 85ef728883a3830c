//! Waiting on a watch's cache (a reflector's `Store`), for the controllers and the drift-events loop.

use kube::Resource;
use kube::runtime::reflector::Store;

/// Waits until `store` has synced (false: its writer is gone). `Store::wait_until_ready` wakes
/// one of its waiters only (kube-runtime's `DelayedInit` polls a oneshot, which keeps one waker),
/// and several tasks wait on one store: each asks again every second until it answers.
pub async fn cache_synced<K>(store: &Store<K>) -> bool
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(1), store.wait_until_ready()).await {
            Ok(Ok(())) => return true,
            Ok(Err(_)) => return false,
            Err(_) => continue,
        }
    }
}

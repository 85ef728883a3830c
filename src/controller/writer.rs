//! The one writer to the API server: every request the controllers send (status server-side
//! applies, Events, finalizer patches, a set's children and its status) passes through the
//! `FencedWrites` layer of their client. Reads and watches go through; a write (POST, PUT, PATCH,
//! DELETE) goes out only while this replica holds the lease, checked just before the request is
//! handed to the connection, and each write is bounded by the time left until the lease deadline
//! (and by `WRITE_TIMEOUT`), so that a write held up cannot land long after the lease was lost.
//!
//! A layer of the client rather than a function each write calls: the finalizer helper and the
//! Event recorder of kube-runtime write through the client they are given, and no write made
//! with the controller's client can bypass the check. Leader election writes its Lease with a
//! client of its own (it must write while it does not lead).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request};
use tower::{BoxError, Layer, Service};

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::fence::WriteGate;

/// The longest one write to the API server may take, however far the lease deadline.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a write to the API server was not sent, or not waited for.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    #[error("{method} to the API server refused: this replica no longer holds the leader lease")]
    NotLeading { method: &'static str },
    #[error("a write to the API server did not finish before the lease deadline or within {} s", WRITE_TIMEOUT.as_secs())]
    TimedOut,
}

/// Whether a request changes something (a watch is a GET).
pub fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The layer that fences a client's writes on `gate`.
#[derive(Clone, Debug)]
pub struct FencedWrites {
    gate: WriteGate,
}

impl FencedWrites {
    pub fn new(gate: WriteGate) -> Self {
        Self { gate }
    }
}

impl<S> Layer<S> for FencedWrites {
    type Service = Fenced<S>;

    fn layer(&self, inner: S) -> Fenced<S> {
        Fenced {
            inner,
            gate: self.gate.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fenced<S> {
    inner: S,
    gate: WriteGate,
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "write",
    }
}

impl<S, B> Service<Request<B>> for Fenced<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !is_write(request.method()) {
            let response = self.inner.call(request);
            return Box::pin(async move { response.await.map_err(Into::into) });
        }
        let Some(left) = self.gate.remaining() else {
            let refused = Refused::NotLeading {
                method: method_name(request.method()),
            };
            tracing::warn!(uri = %request.uri(), "{refused}");
            return Box::pin(std::future::ready(Err(refused.into())));
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(left.min(WRITE_TIMEOUT), response).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Refused::TimedOut.into()),
            }
        })
    }
}

/// Server-side applies `status` as the status of `object` (the field manager `manager`, forced:
/// the status is this controller's alone).
pub async fn apply_status<K>(
    client: &Client,
    object: &K,
    manager: &str,
    status: &impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Publishes a Kubernetes Event about `object`, its note cut to the API's 1 kB. A failure is only
/// logged: an Event is not worth failing a reconcile for.
pub async fn publish_event<K>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) where
    K: Resource<DynamicType = ()>,
{
    let mut note = note;
    if note.len() > 1000 {
        let cut = (0..=1000).rev().find(|i| note.is_char_boundary(*i)).unwrap_or(0);
        note.truncate(cut);
        note.push('…');
    }
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        let name = format!(
            "{}/{}",
            object.meta().namespace.as_deref().unwrap_or_default(),
            object.name_any()
        );
        tracing::warn!(kind = %K::kind(&()), object = %name, error = %e, "cannot publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::monotonic_ms;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers every request at once, counting them by method.
    #[derive(Clone, Default)]
    struct Counting(Arc<AtomicUsize>);

    impl Service<Request<()>> for Counting {
        type Response = ();
        type Error = BoxError;
        type Future = std::future::Ready<Result<(), BoxError>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<()>) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(()))
        }
    }

    fn request(method: Method) -> Request<()> {
        Request::builder()
            .method(method)
            .uri("/apis/trailkeeper.io/v1alpha1/namespaces/a/loggingbaselines/b/status")
            .body(())
            .expect("a valid request")
    }

    #[tokio::test]
    async fn writes_go_out_only_while_the_lease_is_held_and_reads_always() {
        let gate = WriteGate::shut();
        let sent = Counting::default();
        let mut client = FencedWrites::new(gate.clone()).layer(sent.clone());
        for method in [Method::PATCH, Method::POST, Method::PUT, Method::DELETE] {
            let refused = client.call(request(method)).await.expect_err("refused");
            assert!(
                refused.to_string().contains("no longer holds the leader lease"),
                "{refused}"
            );
        }
        assert_eq!(sent.0.load(Ordering::SeqCst), 0, "no write sent without the lease");
        client.call(request(Method::GET)).await.expect("a read goes out");
        assert_eq!(sent.0.load(Ordering::SeqCst), 1);
        gate.lead_until(Some(monotonic_ms() + 60_000));
        client
            .call(request(Method::PATCH))
            .await
            .expect("a write goes out while leading");
        assert_eq!(sent.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_write_is_bounded_by_the_lease_deadline() {
        #[derive(Clone)]
        struct Hanging;
        impl Service<Request<()>> for Hanging {
            type Response = ();
            type Error = BoxError;
            type Future = std::future::Pending<Result<(), BoxError>>;
            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _request: Request<()>) -> Self::Future {
                std::future::pending()
            }
        }
        let gate = WriteGate::shut();
        gate.lead_until(Some(monotonic_ms() + 200));
        let mut client = FencedWrites::new(gate).layer(Hanging);
        let started = std::time::Instant::now();
        let error = client.call(request(Method::PATCH)).await.expect_err("bounded");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(error.to_string().contains("lease deadline"), "{error}");
    }
}

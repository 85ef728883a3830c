//! The AWS write fence is checked on every attempt the SDK transmits, with an HTTP client that
//! follows a script: an attempt answered 503 after the lease deadline passed is not retried, and
//! a write whose credentials arrive after the deadline sends nothing. Reads are not fenced.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_types::SdkConfig;
use aws_types::region::Region;
use trailkeeper::aws::fence::NOT_LEADING;
use trailkeeper::aws::{AccountClients, CallRecorder, WriteFence};
use trailkeeper::fence::{WriteGate, monotonic_ms};

/// Answers every request 503 after `delay`, counting the requests it was handed.
#[derive(Clone, Debug)]
struct Scripted {
    sent: Arc<AtomicUsize>,
    delay: Duration,
}

impl HttpConnector for Scripted {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        self.sent.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay;
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(delay).await;
            let status = StatusCode::try_from(503).expect("503 is a status code");
            Ok(HttpResponse::new(
                status,
                SdkBody::from("<Error><Code>SlowDown</Code></Error>"),
            ))
        })
    }
}

impl HttpClient for Scripted {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// Credentials that take `delay` to arrive (a slow STS, a process frozen while it waited).
#[derive(Debug)]
struct SlowCredentials(Duration);

impl ProvideCredentials for SlowCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            tokio::time::sleep(self.0).await;
            Ok(Credentials::new("AKIDTEST", "secret", None, None, "slow"))
        })
    }
}

fn config(http: &Scripted, credentials_delay: Duration) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:1")
        .http_client(SharedHttpClient::new(http.clone()))
        .credentials_provider(SharedCredentialsProvider::new(SlowCredentials(credentials_delay)))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build()
}

fn leading_for(ms: i64) -> WriteGate {
    let gate = WriteGate::shut();
    gate.lead_until(Some(monotonic_ms() + ms));
    gate
}

#[tokio::test]
async fn a_retry_after_the_lease_deadline_is_not_sent() {
    let http = Scripted {
        sent: Arc::default(),
        delay: Duration::from_millis(400),
    };
    // The deadline passes while the first attempt waits for its answer (503, retryable).
    let gate = leading_for(200);
    let clients = AccountClients::new_fenced(
        &config(&http, Duration::ZERO),
        "us-east-1",
        None,
        CallRecorder::new(),
        WriteFence::new(gate),
    );
    let result = clients.s3.put_bucket_policy().bucket("logs").policy("{}").send().await;
    assert_eq!(http.sent.load(Ordering::SeqCst), 1, "exactly one request is sent");
    let error = format!("{:?}", result.expect_err("the write fails"));
    assert!(error.contains(NOT_LEADING), "refused by the fence: {error}");
}

#[tokio::test]
async fn a_write_whose_credentials_arrive_after_the_deadline_sends_nothing() {
    let http = Scripted {
        sent: Arc::default(),
        delay: Duration::ZERO,
    };
    let gate = leading_for(100);
    let clients = AccountClients::new_fenced(
        &config(&http, Duration::from_millis(300)),
        "us-east-1",
        None,
        CallRecorder::new(),
        WriteFence::new(gate),
    );
    let result = clients.cloudtrail.start_logging().name("trail").send().await;
    assert_eq!(http.sent.load(Ordering::SeqCst), 0, "no request is sent");
    let error = format!("{:?}", result.expect_err("the write fails"));
    assert!(error.contains(NOT_LEADING), "refused by the fence: {error}");
}

#[tokio::test]
async fn reads_and_unfenced_clients_are_not_refused() {
    let http = Scripted {
        sent: Arc::default(),
        delay: Duration::ZERO,
    };
    let fenced = AccountClients::new_fenced(
        &config(&http, Duration::ZERO),
        "us-east-1",
        None,
        CallRecorder::new(),
        WriteFence::new(WriteGate::shut()),
    );
    // A read goes out (and is retried) while the gate is shut: the standby observes.
    let _ = fenced.s3.get_bucket_policy().bucket("logs").send().await;
    assert_eq!(http.sent.load(Ordering::SeqCst), 3, "three attempts of the read");
    // The offline commands (plan, apply) run without election: their writes are not fenced.
    let offline = AccountClients::new(&config(&http, Duration::ZERO), "us-east-1", None, CallRecorder::new());
    let _ = offline.s3.put_bucket_policy().bucket("logs").policy("{}").send().await;
    assert_eq!(http.sent.load(Ordering::SeqCst), 6, "three attempts of the write");
}

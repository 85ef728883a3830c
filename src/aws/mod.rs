//! One adapter per AWS service: each observes (reads) and applies (writes) and classifies SDK
//! errors into `AwsError`. Nothing above this module sees an SDK type.

pub mod calls;
pub mod cloudtrail;
pub mod error;
pub mod kms;
pub mod s3;
pub mod sts;

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::SdkConfig;
use aws_types::region::Region;

pub use calls::{CallCounts, CallRecorder};
pub use error::{AwsError, ErrorKind};

use crate::api::Credentials;

/// CloudTrail allows one mutating call per second per account (not adjustable).
pub const CLOUDTRAIL_WRITE_INTERVAL: Duration = Duration::from_millis(1000);
/// Attempts per call, with exponential backoff and jitter between them (the SDK's standard retry,
/// which backs off longer on throttling errors).
pub const MAX_ATTEMPTS: u32 = 5;

/// The SDK's standard configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, IRSA, Pod Identity).
pub async fn load_base_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}

/// The clients of one account in one region, sharing one call recorder.
#[derive(Clone, Debug)]
pub struct AccountClients {
    pub region: String,
    pub sts: aws_sdk_sts::Client,
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub calls: CallRecorder,
    cloudtrail_writes: std::sync::Arc<Pacer>,
}

impl AccountClients {
    /// Clients for `region` with the base identity, or with the role of `credentials` assumed
    /// through STS (refreshed by the SDK's identity cache before it expires).
    pub fn new(base: &SdkConfig, region: &str, credentials: Option<&Credentials>, calls: CallRecorder) -> Self {
        let regional = base.to_builder().region(Region::new(region.to_string())).build();
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&regional)
                .interceptor(calls.clone())
                .build(),
        );
        let config = match credentials {
            Some(c) => regional
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(sts::AssumedRole::new(
                    sts.clone(),
                    c.assume_role_arn.clone(),
                    c.external_id.clone(),
                )))
                .build(),
            None => regional,
        };
        // Emulators and S3-compatible endpoints do not resolve virtual-hosted bucket names.
        let path_style = config.endpoint_url().is_some();
        Self {
            region: region.to_string(),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(path_style)
                    .interceptor(calls.clone())
                    .build(),
            ),
            cloudtrail: aws_sdk_cloudtrail::Client::from_conf(
                aws_sdk_cloudtrail::config::Builder::from(&config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            calls,
            cloudtrail_writes: std::sync::Arc::new(Pacer::new(CLOUDTRAIL_WRITE_INTERVAL)),
        }
    }
}

impl AccountClients {
    /// Clients built elsewhere (tests with mocked services, or a cache of clients).
    pub fn from_parts(
        region: &str,
        sts: aws_sdk_sts::Client,
        kms: aws_sdk_kms::Client,
        s3: aws_sdk_s3::Client,
        cloudtrail: aws_sdk_cloudtrail::Client,
        calls: CallRecorder,
    ) -> Self {
        Self {
            region: region.to_string(),
            sts,
            kms,
            s3,
            cloudtrail,
            calls,
            cloudtrail_writes: std::sync::Arc::new(Pacer::new(CLOUDTRAIL_WRITE_INTERVAL)),
        }
    }
}

/// Spaces calls of one kind at least `interval` apart, so an account's quota is respected rather
/// than discovered.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn wait(&self) {
        let mut last = self.last.lock().await;
        if let Some(at) = *last {
            let next = at + self.interval;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        *last = Some(Instant::now());
    }
}

/// The result of a call, with its error classified.
pub(crate) fn check<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    service: &str,
    operation: &str,
    resource: &str,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    result.map_err(|e| error::classify(&e, &calls::iam_action(service, operation), resource))
}

/// Like `check`, with NotFound as `None`.
pub(crate) fn optional<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    service: &str,
    operation: &str,
    resource: &str,
) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match check(result, service, operation, resource) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

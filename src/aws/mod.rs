//! One adapter per AWS service: each observes (reads) and applies (writes) and classifies SDK
//! errors into `AwsError`. Nothing above this module sees an SDK type.

pub mod athena;
pub mod calls;
pub mod cloudtrail;
pub mod cloudwatch;
pub mod config;
pub mod ec2;
pub mod error;
pub mod events;
pub mod fence;
pub mod glue;
pub mod iam;
pub mod kms;
pub mod logs;
pub mod organizations;
pub mod s3;
pub mod s3control;
pub mod securityhub;
pub mod sns;
pub mod sqs;
pub mod ssm;
pub mod sts;

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime::client::retries::RetryPartition;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::SdkConfig;
use aws_types::region::Region;

pub use calls::{CallCounts, CallRecorder};
pub use error::{AwsError, ErrorKind};
pub use fence::WriteFence;

use crate::api::Credentials;

/// CloudTrail allows one mutating call per second per account (not adjustable).
pub const CLOUDTRAIL_WRITE_INTERVAL: Duration = Duration::from_millis(1000);
/// Attempts per call, with exponential backoff and jitter between them (the SDK's standard retry,
/// which backs off longer on throttling errors).
pub const MAX_ATTEMPTS: u32 = 5;

/// How long one attempt of an AWS call may take, and the call with its retries: a response that
/// never completes fails instead of holding a reconcile (and a controller slot) forever.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The timeouts of every AWS call trailkeeper makes.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(3100))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK's standard configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, IRSA, Pod Identity),
/// with one HTTP client for every SDK client built from it.
pub async fn load_base_config() -> SdkConfig {
    base_config_loader().load().await
}

/// What `load_base_config` loads: the retries, timeouts and HTTP client of every AWS call, before
/// the environment is read (the tests add their endpoint, region and credentials to it).
pub fn base_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(timeouts())
        .http_client(shared_http_client())
}

/// The HTTPS client (connection pool, rustls with aws-lc, proxy from the environment) that every
/// service client of every account shares. Without it each SDK client builds its own, loading the
/// system's root certificates into a TLS configuration of its own: measured at about 1.6 MiB per
/// account with a dozen clients per region (docs/performance.md).
pub fn shared_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// The clients of one account in one region, sharing one call recorder. Its services are reached
/// as `clients.s3`, `clients.kms`, ... (through `Deref`).
#[derive(Clone, Debug)]
pub struct AccountClients {
    pub region: String,
    services: Services,
    pub calls: CallRecorder,
    /// Refuses mutating calls once this replica no longer leads (None: offline, no election).
    fence: Option<WriteFence>,
    /// What `for_region` needs to give the clients of another region (None for clients built by
    /// `from_parts`, which serve every region).
    identity: Option<std::sync::Arc<AccountIdentity>>,
    cloudtrail_writes: std::sync::Arc<Pacer>,
    /// The other regions' clients, built on first use by `for_region` and dropped with these.
    regions: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Services>>>,
}

/// An account's identity: its configuration with one credentials provider and identity cache for
/// every region and service (one AssumeRole per credential lifetime, not per region or reconcile),
/// and its CloudTrail write pacer. This, not the clients, is what the controller keeps per
/// baseline between reconciles: a few KiB, where a region's dozen SDK clients are far more.
#[derive(Debug)]
pub struct AccountIdentity {
    config: SdkConfig,
    cloudtrail_writes: std::sync::Arc<Pacer>,
    /// The account's retry budget: one token bucket for all its services and regions, owned here
    /// and dropped with the identity.
    retries: RetryPartition,
}

impl AccountIdentity {
    /// The identity of the base configuration, or the role of `credentials` assumed through STS
    /// (refreshed by the SDK's identity cache before it expires).
    pub fn new(
        base: &SdkConfig,
        region: &str,
        credentials: Option<&Credentials>,
        calls: &CallRecorder,
    ) -> std::sync::Arc<AccountIdentity> {
        let regional = base.to_builder().region(Region::new(region.to_string())).build();
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&regional)
                .interceptor(calls.clone())
                .build(),
        );
        Self::with_sts(base, region, credentials, &sts)
    }

    /// `new`, assuming the role through `sts`: a client of the base identity in `region`, which
    /// many accounts' identities can share (the controller keeps one per region).
    pub fn with_sts(
        base: &SdkConfig,
        region: &str,
        credentials: Option<&Credentials>,
        sts: &aws_sdk_sts::Client,
    ) -> std::sync::Arc<AccountIdentity> {
        let regional = base.to_builder().region(Region::new(region.to_string())).build();
        let config = match credentials {
            Some(c) => regional
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(sts::AssumedRole::new(
                    sts.clone(),
                    c.assume_role_arn.clone(),
                    c.external_id.clone(),
                )))
                // An identity cache of the account's own: the process-wide one holds a bounded
                // number of credential sources and stops caching past it, which with many
                // accounts would assume the role again for every call.
                .identity_cache(aws_config::identity::IdentityCache::lazy().build())
                .build(),
            None => regional,
        };
        // A partition with a token bucket of its own (`RetryPartition::custom`): a named
        // partition (`RetryPartition::new`) puts its bucket in the SDK's process-wide map, where
        // it stays for the life of the process; one per service, region and account was about
        // 3 KiB a baseline at 1,000, never freed when a baseline went (docs/performance.md).
        let account = credentials.map_or("operator", |c| c.assume_role_arn.as_str());
        let retries = RetryPartition::custom(account.to_string())
            .token_bucket(aws_smithy_runtime::client::retries::TokenBucket::default())
            .build();
        std::sync::Arc::new(AccountIdentity {
            config,
            cloudtrail_writes: std::sync::Arc::new(Pacer::new(CLOUDTRAIL_WRITE_INTERVAL)),
            retries,
        })
    }
}

impl AccountClients {
    /// Clients for `region` with the base identity, or with the role of `credentials` assumed.
    pub fn new(base: &SdkConfig, region: &str, credentials: Option<&Credentials>, calls: CallRecorder) -> Self {
        let identity = AccountIdentity::new(base, region, credentials, &calls);
        Self::from_identity(identity, region, calls)
    }

    /// `new`, the clients refusing mutating calls while `fence` is shut.
    pub fn new_fenced(
        base: &SdkConfig,
        region: &str,
        credentials: Option<&Credentials>,
        calls: CallRecorder,
        fence: WriteFence,
    ) -> Self {
        let identity = AccountIdentity::new(base, region, credentials, &calls);
        Self::from_identity_fenced(identity, region, calls, Some(fence))
    }

    /// Clients for `region` with an identity kept from earlier (the controller's, per baseline).
    pub fn from_identity(identity: std::sync::Arc<AccountIdentity>, region: &str, calls: CallRecorder) -> Self {
        Self::from_identity_fenced(identity, region, calls, None)
    }

    /// `from_identity`, the clients refusing mutating calls while `fence` is shut.
    pub fn from_identity_fenced(
        identity: std::sync::Arc<AccountIdentity>,
        region: &str,
        calls: CallRecorder,
        fence: Option<WriteFence>,
    ) -> Self {
        let services = identity.services(region, &calls, fence.as_ref());
        AccountClients {
            region: region.to_string(),
            services,
            calls,
            fence,
            cloudtrail_writes: identity.cloudtrail_writes.clone(),
            identity: Some(identity),
            regions: Default::default(),
        }
    }

    /// The same account's clients in another region, sharing the call recorder, the identity and
    /// the CloudTrail pacer; built on first use, then reused.
    pub fn for_region(&self, region: &str) -> AccountClients {
        if region == self.region {
            return self.clone();
        }
        let services = match &self.identity {
            Some(identity) => {
                let mut regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
                regions
                    .entry(region.to_string())
                    .or_insert_with(|| identity.services(region, &self.calls, self.fence.as_ref()))
                    .clone()
            }
            None => self.services.clone(),
        };
        AccountClients {
            region: region.to_string(),
            services,
            ..self.clone()
        }
    }
}

impl AccountIdentity {
    fn services(&self, region: &str, calls: &CallRecorder, fence: Option<&WriteFence>) -> Services {
        let config = self.config.to_builder().region(Region::new(region.to_string())).build();
        // Emulators and S3-compatible endpoints do not resolve virtual-hosted bucket names.
        let path_style = config.endpoint_url().is_some();
        // The SDK's retry token bucket is shared per service and region unless partitioned: one
        // throttled account would drain the retries of the whole fleet. Each account has its own.
        macro_rules! client {
            ($sdk:ident) => {{
                let mut builder = $sdk::config::Builder::from(&config)
                    .retry_partition(self.retries.clone())
                    .interceptor(calls.clone());
                if let Some(fence) = fence {
                    builder.push_interceptor(SharedInterceptor::new(fence.clone()));
                }
                $sdk::Client::from_conf(builder.build())
            }};
        }
        Services {
            sts: client!(aws_sdk_sts),
            kms: client!(aws_sdk_kms),
            s3: {
                let mut builder = aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(path_style)
                    .retry_partition(self.retries.clone())
                    .interceptor(calls.clone());
                if let Some(fence) = fence {
                    builder.push_interceptor(SharedInterceptor::new(fence.clone()));
                }
                aws_sdk_s3::Client::from_conf(builder.build())
            },
            s3control: client!(aws_sdk_s3control),
            cloudtrail: client!(aws_sdk_cloudtrail),
            ec2: client!(aws_sdk_ec2),
            logs: client!(aws_sdk_cloudwatchlogs),
            iam: client!(aws_sdk_iam),
            ssm: client!(aws_sdk_ssm),
            config: client!(aws_sdk_config),
            glue: client!(aws_sdk_glue),
            athena: client!(aws_sdk_athena),
            organizations: client!(aws_sdk_organizations),
            events: client!(aws_sdk_eventbridge),
            cloudwatch: client!(aws_sdk_cloudwatch),
            sns: client!(aws_sdk_sns),
            securityhub: client!(aws_sdk_securityhub),
        }
    }
}

/// One client per service.
#[derive(Clone, Debug)]
pub struct Services {
    pub sts: aws_sdk_sts::Client,
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
    /// S3 Batch Operations (a log archive's Batch Replication jobs).
    pub s3control: aws_sdk_s3control::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub iam: aws_sdk_iam::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub config: aws_sdk_config::Client,
    pub glue: aws_sdk_glue::Client,
    pub athena: aws_sdk_athena::Client,
    pub organizations: aws_sdk_organizations::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub securityhub: aws_sdk_securityhub::Client,
}

impl AccountClients {
    /// Clients built elsewhere (tests with mocked services).
    pub fn from_parts(region: &str, services: Services, calls: CallRecorder) -> Self {
        Self {
            region: region.to_string(),
            services,
            calls,
            fence: None,
            cloudtrail_writes: std::sync::Arc::new(Pacer::new(CLOUDTRAIL_WRITE_INTERVAL)),
            identity: None,
            regions: Default::default(),
        }
    }
}

impl std::ops::Deref for AccountClients {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
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

#[cfg(test)]
mod tests {
    use super::*;

    // Paused time: the pacer sleeps on tokio's clock, which then advances at once.
    #[tokio::test(start_paused = true)]
    async fn cloudtrail_writes_are_paced_one_per_second() {
        let pacer = Pacer::new(CLOUDTRAIL_WRITE_INTERVAL);
        // tokio's clock: the one the pacer's sleeps advance.
        let started = tokio::time::Instant::now();
        pacer.wait().await;
        assert_eq!(started.elapsed(), Duration::ZERO, "the first write waits for nothing");
        pacer.wait().await;
        pacer.wait().await;
        assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(
            started.elapsed() < Duration::from_millis(2100),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn every_call_has_the_documented_timeouts() {
        let t = timeouts();
        assert_eq!(t.connect_timeout(), Some(Duration::from_millis(3100)));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(20)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(60)));
    }
}

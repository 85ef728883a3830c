//! One adapter per AWS service: each observes (reads) and applies (writes) and classifies SDK
//! errors into `AwsError`. Nothing above this module sees an SDK client, request, response or
//! error: above it go only the shared `aws_types::SdkConfig` (handed down to build clients) and
//! `aws_smithy_types::DateTime`, used as an RFC 3339 date reader and writer.

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

/// How long resolving credentials may take (an AssumeRole, a web identity token exchanged): as
/// long as one attempt of a call. The SDK's default is 5 s ("identity resolver timed out after
/// 5s"), which a slow STS, or a loaded machine with many accounts assuming roles at once,
/// exceeds while nothing is wrong.
pub const IDENTITY_TIMEOUT: Duration = ATTEMPT_TIMEOUT;

/// The identity cache of every credentials provider trailkeeper uses: lazy, with `IDENTITY_TIMEOUT`.
pub fn identity_cache() -> aws_smithy_runtime_api::client::identity::SharedIdentityCache {
    aws_config::identity::IdentityCache::lazy()
        .load_timeout(IDENTITY_TIMEOUT)
        .build()
}

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
        .identity_cache(identity_cache())
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
    /// The regions' clients, built on first use by `for_region` and dropped with these (or kept
    /// by whoever gave them: the controller keeps a baseline's for its next reconcile).
    regions: RegionServices,
}

/// The clients of an account's regions, by region, shared by every clone of its `AccountClients`.
pub type RegionServices = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Services>>>;

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

/// One STS client per region, of the base identity, shared by every account's role assumption
/// there (`AccountIdentity::in_region`).
#[derive(Default)]
pub struct StsByRegion(std::sync::Mutex<std::collections::HashMap<String, aws_sdk_sts::Client>>);

/// An STS client of the base identity in `region`, its calls recorded by `calls`.
fn regional_sts(base: &SdkConfig, region: &str, calls: CallRecorder) -> aws_sdk_sts::Client {
    let regional = base.to_builder().region(Region::new(region.to_string())).build();
    aws_sdk_sts::Client::from_conf(aws_sdk_sts::config::Builder::from(&regional).interceptor(calls).build())
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
        Self::with_sts(base, region, credentials, &regional_sts(base, region, calls.clone()))
    }

    /// An account's identity with the STS client of its primary region from `sts` (built there
    /// once, shared by every account's role assumption).
    pub fn in_region(
        base: &SdkConfig,
        region: &str,
        credentials: Option<&Credentials>,
        sts: &StsByRegion,
    ) -> std::sync::Arc<AccountIdentity> {
        let client = sts
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(region.to_string())
            .or_insert_with(|| regional_sts(base, region, CallRecorder::new()))
            .clone();
        Self::with_sts(base, region, credentials, &client)
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
                .identity_cache(identity_cache())
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
        Self::from_identity_reusing(identity, region, calls, fence, Default::default())
    }

    /// `from_identity_fenced`, with the clients of each region taken from `regions` (built there
    /// on first use): clients kept from an earlier reconcile of the same identity are reused.
    pub fn from_identity_reusing(
        identity: std::sync::Arc<AccountIdentity>,
        region: &str,
        calls: CallRecorder,
        fence: Option<WriteFence>,
        regions: RegionServices,
    ) -> Self {
        let services = regions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(region.to_string())
            .or_insert_with(|| identity.services(region, &calls, fence.as_ref()))
            .clone();
        AccountClients {
            region: region.to_string(),
            services,
            calls,
            fence,
            cloudtrail_writes: identity.cloudtrail_writes.clone(),
            identity: Some(identity),
            regions,
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
        Services::deferred(std::sync::Arc::new(RegionConfig {
            // Emulators and S3-compatible endpoints do not resolve virtual-hosted bucket names.
            path_style: config.endpoint_url().is_some(),
            config,
            retries: self.retries.clone(),
            calls: calls.clone(),
            fence: fence.cloned(),
        }))
    }
}

/// What every SDK client of one account in one region is built from.
#[derive(Debug)]
pub struct RegionConfig {
    config: SdkConfig,
    /// The SDK's retry token bucket is shared per service and region unless partitioned: one
    /// throttled account would drain the retries of the whole fleet. Each account has its own.
    retries: RetryPartition,
    calls: CallRecorder,
    fence: Option<WriteFence>,
    path_style: bool,
}

macro_rules! client_builder {
    ($name:ident, $sdk:ident) => {
        fn $name(c: &RegionConfig) -> $sdk::Client {
            crate::runtime::metrics::record_client_built();
            let mut builder = $sdk::config::Builder::from(&c.config)
                .retry_partition(c.retries.clone())
                .interceptor(c.calls.clone());
            if let Some(fence) = &c.fence {
                builder.push_interceptor(SharedInterceptor::new(fence.clone()));
            }
            $sdk::Client::from_conf(builder.build())
        }
    };
}

client_builder!(build_sts, aws_sdk_sts);
client_builder!(build_kms, aws_sdk_kms);
client_builder!(build_s3control, aws_sdk_s3control);
client_builder!(build_cloudtrail, aws_sdk_cloudtrail);
client_builder!(build_ec2, aws_sdk_ec2);
client_builder!(build_logs, aws_sdk_cloudwatchlogs);
client_builder!(build_iam, aws_sdk_iam);
client_builder!(build_ssm, aws_sdk_ssm);
client_builder!(build_config, aws_sdk_config);
client_builder!(build_glue, aws_sdk_glue);
client_builder!(build_athena, aws_sdk_athena);
client_builder!(build_organizations, aws_sdk_organizations);
client_builder!(build_events, aws_sdk_eventbridge);
client_builder!(build_cloudwatch, aws_sdk_cloudwatch);
client_builder!(build_sns, aws_sdk_sns);
client_builder!(build_securityhub, aws_sdk_securityhub);

fn build_s3(c: &RegionConfig) -> aws_sdk_s3::Client {
    crate::runtime::metrics::record_client_built();
    let mut builder = aws_sdk_s3::config::Builder::from(&c.config)
        .force_path_style(c.path_style)
        .retry_partition(c.retries.clone())
        .interceptor(c.calls.clone());
    if let Some(fence) = &c.fence {
        builder.push_interceptor(SharedInterceptor::new(fence.clone()));
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// An SDK client built on its first use, then shared by every clone. An SDK client costs about
/// 16 KiB (S3's 23 KiB, `cargo bench --bench heap_probe`); a region's reconcile calls about ten
/// of the fifteen services, a sweep of a region three (EC2, Config, KMS), so a region pays for
/// the clients it uses, not for all.
#[derive(Clone)]
pub enum Lazy<T> {
    /// Built elsewhere (tests with mocked services).
    Ready(T),
    Deferred {
        built: std::sync::Arc<std::sync::OnceLock<T>>,
        config: std::sync::Arc<RegionConfig>,
        build: fn(&RegionConfig) -> T,
    },
}

impl<T> Lazy<T> {
    fn deferred(config: &std::sync::Arc<RegionConfig>, build: fn(&RegionConfig) -> T) -> Self {
        Lazy::Deferred {
            built: Default::default(),
            config: config.clone(),
            build,
        }
    }

    /// Whether the client exists (a `Ready` one always does).
    pub fn is_built(&self) -> bool {
        match self {
            Lazy::Ready(_) => true,
            Lazy::Deferred { built, .. } => built.get().is_some(),
        }
    }
}

impl<T> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            Lazy::Ready(client) => client,
            Lazy::Deferred { built, config, build } => built.get_or_init(|| build(config)),
        }
    }
}

impl<T> From<T> for Lazy<T> {
    fn from(client: T) -> Self {
        Lazy::Ready(client)
    }
}

impl<T> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_built() {
            "Lazy(built)"
        } else {
            "Lazy(not built)"
        })
    }
}

/// One client per service, each built on first use.
#[derive(Clone, Debug)]
pub struct Services {
    pub sts: Lazy<aws_sdk_sts::Client>,
    pub kms: Lazy<aws_sdk_kms::Client>,
    pub s3: Lazy<aws_sdk_s3::Client>,
    /// S3 Batch Operations (a log archive's Batch Replication jobs).
    pub s3control: Lazy<aws_sdk_s3control::Client>,
    pub cloudtrail: Lazy<aws_sdk_cloudtrail::Client>,
    pub ec2: Lazy<aws_sdk_ec2::Client>,
    pub logs: Lazy<aws_sdk_cloudwatchlogs::Client>,
    pub iam: Lazy<aws_sdk_iam::Client>,
    pub ssm: Lazy<aws_sdk_ssm::Client>,
    pub config: Lazy<aws_sdk_config::Client>,
    pub glue: Lazy<aws_sdk_glue::Client>,
    pub athena: Lazy<aws_sdk_athena::Client>,
    pub organizations: Lazy<aws_sdk_organizations::Client>,
    pub events: Lazy<aws_sdk_eventbridge::Client>,
    pub cloudwatch: Lazy<aws_sdk_cloudwatch::Client>,
    pub sns: Lazy<aws_sdk_sns::Client>,
    /// Security Hub (the baseline's findings, `spec.securityHub`).
    pub securityhub: Lazy<aws_sdk_securityhub::Client>,
}

impl Services {
    fn deferred(config: std::sync::Arc<RegionConfig>) -> Self {
        let c = &config;
        Services {
            sts: Lazy::deferred(c, build_sts),
            kms: Lazy::deferred(c, build_kms),
            s3: Lazy::deferred(c, build_s3),
            s3control: Lazy::deferred(c, build_s3control),
            cloudtrail: Lazy::deferred(c, build_cloudtrail),
            ec2: Lazy::deferred(c, build_ec2),
            logs: Lazy::deferred(c, build_logs),
            iam: Lazy::deferred(c, build_iam),
            ssm: Lazy::deferred(c, build_ssm),
            config: Lazy::deferred(c, build_config),
            glue: Lazy::deferred(c, build_glue),
            athena: Lazy::deferred(c, build_athena),
            organizations: Lazy::deferred(c, build_organizations),
            events: Lazy::deferred(c, build_events),
            cloudwatch: Lazy::deferred(c, build_cloudwatch),
            sns: Lazy::deferred(c, build_sns),
            securityhub: Lazy::deferred(c, build_securityhub),
        }
    }

    /// The clients built so far.
    pub fn built(&self) -> usize {
        [
            self.sts.is_built(),
            self.kms.is_built(),
            self.s3.is_built(),
            self.s3control.is_built(),
            self.cloudtrail.is_built(),
            self.ec2.is_built(),
            self.logs.is_built(),
            self.iam.is_built(),
            self.ssm.is_built(),
            self.config.is_built(),
            self.glue.is_built(),
            self.athena.is_built(),
            self.organizations.is_built(),
            self.events.is_built(),
            self.cloudwatch.is_built(),
            self.sns.is_built(),
            self.securityhub.is_built(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }
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

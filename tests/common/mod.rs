//! The test harness: one moto server per test binary, on a free loopback port, started on first
//! use (installed by scripts/ensure-moto.sh when missing), and a fresh account id per test so
//! tests run in parallel without sharing state.

#![allow(dead_code)]

pub mod chain;
pub mod cluster;
pub mod helm;
pub mod moto_api;
pub mod policy_eval;
pub mod proxy;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::SdkConfig;
use aws_types::region::Region;
use trailkeeper::api::{LoggingBaseline, LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec};

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub endpoint: String,
    /// The watcher shell; it ends with this process, taking the server with it.
    _watcher: std::process::Child,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn moto_server_path() -> String {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return path;
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/ensure-moto.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/ensure-moto.sh runs");
    assert!(out.status.success(), "scripts/ensure-moto.sh failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// awscli's `aws` (scripts/ensure-awscli.sh installs it when missing): the reference
/// implementation of CloudTrail log file integrity validation that tests/verify.rs compares with.
pub fn awscli_path() -> String {
    if let Ok(path) = std::env::var("TRAILKEEPER_AWSCLI") {
        return path;
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/ensure-awscli.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/ensure-awscli.sh runs");
    assert!(out.status.success(), "scripts/ensure-awscli.sh failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The moto server of this test binary. It stops when the test process ends: a watcher shell
/// kills it once its parent (this process) is gone.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let server = moto_server_path();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // TRAILKEEPER_MOTO_LOG names a file for the emulator's output (to debug a test).
        let log = std::env::var("TRAILKEEPER_MOTO_LOG").unwrap_or_else(|_| "/dev/null".into());
        let script = format!(
            "{server} -H 127.0.0.1 -p {port} >{log} 2>&1 & m=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill $m",
            parent = std::process::id()
        );
        let watcher = Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto server starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto server did not listen on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _watcher: watcher,
        }
    })
}

/// The IAM roles every test account has before trailkeeper runs, as a sandbox account would: the
/// fixtures name them as principals of the policies trailkeeper writes (its own role, the key
/// administrators, operators and auditors), and S3 and KMS refuse a policy naming a role that
/// does not exist (so does the emulator: scripts/emulator/trailkeeper_policies.py).
pub const ACCOUNT_ROLES: [&str; 4] = ["trailkeeper", "admin", "operator", "auditor"];

/// A fresh 12-digit account id, unique in this test process, with the roles of `ACCOUNT_ROLES`.
pub fn new_account() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let account = format!(
        "{:012}",
        200_000_000_000u64 + u64::from(std::process::id() % 1000) * 1_000_000 + n
    );
    create_roles(&account, &ACCOUNT_ROLES);
    account
}

/// Creates the IAM roles `names` in `account` (each assumable by the account), as its
/// administrator would have before naming them in a policy. Blocking, for the fixtures that are
/// not async: on a thread of its own, outside the caller's runtime.
pub fn create_roles(account: &str, names: &[&str]) {
    let account = account.to_string();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let made = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the fixture");
        runtime.block_on(create_roles_in(&account, &names))
    })
    .join();
    assert!(made.is_ok(), "the roles of a test account could not be created");
}

/// As `create_roles`, from async code.
pub async fn create_roles_in(account: &str, names: &[impl AsRef<str>]) {
    let config = base_config().await;
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&config)
            .interceptor(MotoAccount(account.to_string()))
            .build(),
    );
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "sts:AssumeRole"}]});
    for name in names {
        let name = name.as_ref();
        let created = iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await;
        if let Err(e) = created {
            let e = e.into_service_error();
            assert!(
                e.is_entity_already_exists_exception(),
                "role {name} in {account}: {e:?}"
            );
        }
        if name == "trailkeeper" {
            // What `trailkeeper iam-policy` grants a member of a LogArchive (ArchiveKeysForTrails):
            // CloudTrail requires kms:Decrypt of the caller of CreateTrail into a bucket with an
            // S3 Bucket Key, and the emulator judges the role's own policies for it.
            let decrypt = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "ArchiveKeysForTrails",
                "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:*:key/*"}]});
            iam.put_role_policy()
                .role_name(name)
                .policy_name("ArchiveKeysForTrails")
                .policy_document(decrypt.to_string())
                .send()
                .await
                .expect("the account role's policy");
        }
    }
}

/// The SDK configuration trailkeeper runs with against moto: what `AWS_ENDPOINT_URL` and static
/// credentials give a user of the binary. The identity is moto's default account.
pub async fn base_config() -> SdkConfig {
    // The product's own configuration (retries, timeouts, HTTP client), on the emulator.
    trailkeeper::aws::base_config_loader()
        .endpoint_url(&moto().endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(loopback_http_client())
        .load()
        .await
}

/// The product's HTTP client, resolving every name under the emulator's address to it: S3
/// Control prefixes its endpoint with the account (`{account}.127.0.0.1:PORT`), a name no
/// resolver knows.
pub fn loopback_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns};

    #[derive(Clone, Debug)]
    struct Loopback;
    impl ResolveDns for Loopback {
        fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
            if name == "127.0.0.1" || name.ends_with(".127.0.0.1") || name == "localhost" {
                return DnsFuture::ready(Ok(vec![std::net::IpAddr::from([127, 0, 0, 1])]));
            }
            let name = name.to_string();
            DnsFuture::new(async move {
                let found = tokio::net::lookup_host((name.as_str(), 0))
                    .await
                    .map_err(aws_smithy_runtime_api::client::dns::ResolveDnsError::new)?;
                Ok(found.map(|a| a.ip()).collect())
            })
        }
    }
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .build_with_resolver(Loopback)
}

/// Adds moto's account header: independent clients that read back (or break) an account's state.
#[derive(Debug, Clone)]
pub struct MotoAccount(pub String);

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "moto-account"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}

/// Clients acting directly in `account`, not through trailkeeper.
pub struct Inspector {
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub config: aws_sdk_config::Client,
    pub glue: aws_sdk_glue::Client,
    pub athena: aws_sdk_athena::Client,
    pub organizations: aws_sdk_organizations::Client,
    pub iam: aws_sdk_iam::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub securityhub: aws_sdk_securityhub::Client,
}

impl Inspector {
    /// A new SQS queue of the account: its URL.
    pub async fn new_queue(&self, name: &str) -> String {
        let created = self.sqs.create_queue().queue_name(name).send().await.unwrap();
        created.queue_url().unwrap().to_string()
    }

    /// The id of the key trailkeeper created (found by its alias).
    pub async fn trail_key_id(&self) -> String {
        self.trail_key().await.key_id
    }

    /// The names of the account's buckets.
    pub async fn bucket_names(&self) -> Vec<String> {
        let listed = self.s3.list_buckets().send().await.unwrap();
        listed.buckets().iter().filter_map(|b| b.name.clone()).collect()
    }

    /// Whether the trail logs (None when it cannot be read).
    pub async fn trail_is_logging(&self, trail: &str) -> Option<bool> {
        let status = self.cloudtrail.get_trail_status().name(trail).send().await.ok()?;
        status.is_logging
    }

    /// The state of that key (Enabled, PendingDeletion, ...).
    pub async fn trail_key_state(&self) -> String {
        self.trail_key()
            .await
            .key_state
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    }

    async fn trail_key(&self) -> aws_sdk_kms::types::KeyMetadata {
        let described = self
            .kms
            .describe_key()
            .key_id(trailkeeper::desired::KEY_ALIAS)
            .send()
            .await
            .unwrap();
        described.key_metadata.unwrap()
    }
}

pub async fn inspector(account: &str) -> Inspector {
    inspector_in(account, REGION).await
}

pub async fn inspector_in(account: &str, region: &str) -> Inspector {
    let config = base_config()
        .await
        .to_builder()
        .region(Region::new(region.to_string()))
        .build();
    let header = MotoAccount(account.to_string());
    macro_rules! client {
        ($sdk:ident) => {
            $sdk::Client::from_conf(
                $sdk::config::Builder::from(&config)
                    .interceptor(header.clone())
                    .build(),
            )
        };
    }
    Inspector {
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .interceptor(header.clone())
                .build(),
        ),
        kms: client!(aws_sdk_kms),
        cloudtrail: client!(aws_sdk_cloudtrail),
        ec2: client!(aws_sdk_ec2),
        logs: client!(aws_sdk_cloudwatchlogs),
        config: client!(aws_sdk_config),
        glue: client!(aws_sdk_glue),
        athena: client!(aws_sdk_athena),
        organizations: client!(aws_sdk_organizations),
        iam: client!(aws_sdk_iam),
        events: client!(aws_sdk_eventbridge),
        cloudwatch: client!(aws_sdk_cloudwatch),
        sns: client!(aws_sdk_sns),
        sqs: client!(aws_sdk_sqs),
        securityhub: client!(aws_sdk_securityhub),
    }
}

/// The fewest reads an in-sync check of one account needs with what trailkeeper manages in one
/// region, one read per setting that has no batch read:
/// STS GetCallerIdentity (the account must be verified before any write) 1;
/// KMS DescribeKey, GetKeyPolicy, GetKeyRotationStatus, ListResourceTags 4 per key (the trail's and
/// the log groups') 4 + 4;
/// trail bucket: Object Lock, versioning, encryption, public access block, ownership, policy,
/// logging, lifecycle, tags 9; access-log bucket: versioning, encryption, public access block,
/// ownership, policy, lifecycle, tags 7; CloudTrail GetTrail, GetTrailStatus, GetEventSelectors, GetInsightSelectors,
/// ListTags 5; flow logs: IAM GetRole, GetRolePolicy, EC2 DescribeVpcs, DescribeFlowLogs,
/// CloudWatch Logs DescribeLogGroups 5; audit queries: results bucket versioning, encryption,
/// public access block, ownership, policy, lifecycle, tags 7, Glue GetDatabase, GetTable, Athena GetWorkGroup,
/// ListNamedQueries 4, BatchGetNamedQuery 1 (up to 50 queries); the account-wide CIS evidence of
/// the region (3.3, 3.6, 3.7): Config DescribeConfigurationRecorders, KMS ListKeys 2 (its VPC,
/// flow log and key reads are those above). Credentials (AssumeRole) are not counted: the
/// controller caches them for their lifetime.
pub const FLOOR_READS: u32 = 1 + 4 + 4 + 9 + 7 + 5 + 5 + 7 + 4 + 1 + 2;
/// The fewest writes for a fresh account: per key (the trail's, and the log groups' since they are
/// encrypted by default) CreateKey with its policy, CreateAlias, EnableKeyRotation and TagResource
/// (the tags come after the key, under its policy) 4 + 4; access-log bucket: create, versioning,
/// encryption, public access block, policy, lifecycle, tags; trail bucket: create (with lock),
/// default retention, encryption, public access block, policy, logging, lifecycle, tags;
/// CreateTrail (with settings and tags), PutEventSelectors, StartLogging; flow logs: CreateRole,
/// PutRolePolicy, CreateLogGroup, CreateFlowLogs; audit queries: results bucket create,
/// versioning, encryption, public access block, policy, lifecycle, tags, CreateDatabase,
/// CreateTable, CreateWorkGroup, a CreateNamedQuery per named query.
pub const FLOOR_WRITES: u32 = 4 + 4 + 7 + 8 + 3 + 4 + 7 + 3 + 6;
/// The reads of an in-sync check above the floor (docs/performance.md, "The floor"):
/// - one HeadBucket per bucket (trail, access-log, results), which tells a missing bucket from one
///   owned by another account before anything else is read: 3;
/// - CloudTrail DescribeTrails, the account's other trails (adoption, duplicate trails): 1.
///
/// The CIS evidence of the kept region takes the VPCs, flow logs and keys the components read
/// (issue 43: it read them again, 6 more); the other regions are the controller's sweep's.
pub const READS_ABOVE_THE_FLOOR: u32 = 3 + 1;

/// A baseline for `account` with the built-in defaults, reached by assuming a role in it.
pub fn baseline(account: &str) -> LoggingBaseline {
    let manifest = format!(
        r#"
apiVersion: trailkeeper.io/v1alpha1
kind: LoggingBaseline
metadata: {{name: acct-{account}, namespace: accounts}}
spec:
  accountId: "{account}"
  primaryRegion: {REGION}
  # The account-wide CIS reads (3.3, 3.6, 3.7) in this region only: every enabled region would
  # be read otherwise (38 in moto, each with its own EC2 backend to build for a new account).
  complianceRegions: [{REGION}]
  credentials: {{assumeRoleArn: "arn:aws:iam::{account}:role/trailkeeper"}}
  encryption:
    administrators: ["arn:aws:iam::{account}:role/admin"]
    operators: ["arn:aws:iam::{account}:role/operator"]
  # moto lacks SSM associations and Config compliance (HTTP 500): those parts are tested with
  # aws-smithy-mocks, and with moto where it can (tests/regional.rs), not in every test.
  instanceLogs: {{enabled: false}}
  configRules: {{enabled: false}}
  # The audit queries have their own tests (tests/athena.rs); here they would only add calls.
  auditQueries: {{enabled: false}}
"#
    );
    serde_yaml::from_str(&manifest).expect("the test baseline parses")
}

pub fn spec(account: &str) -> LoggingBaselineSpec {
    baseline(account).spec
}

/// The trail, key and storage only: the regional parts have tests of their own.
pub fn trail_only(account: &str) -> LoggingBaselineSpec {
    let mut spec = spec(account);
    spec.flow_logs.enabled = false;
    spec.instance_logs.enabled = false;
    spec.config_rules.enabled = false;
    spec.audit_queries.enabled = false;
    spec
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn default_policies() -> (TrailPolicySpec, RetentionPolicySpec) {
    (TrailPolicySpec::default(), RetentionPolicySpec::default())
}

pub fn error(code: &str, message: &str) -> aws_smithy_types::error::ErrorMetadata {
    aws_smithy_types::error::ErrorMetadata::builder()
        .code(code)
        .message(message)
        .build()
}

/// Clients whose every service answers from `rules` (aws-smithy-mocks), with the product's retry
/// policy but a short first backoff so that tests are quick.
pub fn mocked_clients(
    rules: &[&aws_smithy_mocks::Rule],
    calls: &trailkeeper::aws::CallRecorder,
) -> trailkeeper::aws::AccountClients {
    use aws_smithy_mocks::{MockResponseInterceptor, RuleMode, create_mock_http_client};
    let retry = RetryConfig::standard()
        .with_max_attempts(trailkeeper::aws::MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(5));
    let interceptor = || {
        rules
            .iter()
            .fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, r| {
                i.with_rule(r)
            })
    };
    macro_rules! client {
        ($sdk:ident) => {
            $sdk::Client::from_conf(
                $sdk::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new(REGION))
                    .credentials_provider(Credentials::new("a", "b", None, None, "test"))
                    .http_client(create_mock_http_client())
                    .interceptor(interceptor())
                    .interceptor(calls.clone())
                    .retry_config(retry.clone())
                    .build(),
            )
            .into()
        };
    }
    let services = trailkeeper::aws::Services {
        sts: client!(aws_sdk_sts),
        kms: client!(aws_sdk_kms),
        s3: client!(aws_sdk_s3),
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
    };
    trailkeeper::aws::AccountClients::from_parts(REGION, services, calls.clone())
}

/// One apply of `spec` with `retention` against moto, judged against the approval in force.
pub async fn apply_with_retention(
    spec: &LoggingBaselineSpec,
    retention: &RetentionPolicySpec,
    previous: Option<&str>,
) -> trailkeeper::engine::account::AccountReport {
    use trailkeeper::engine::account::{LastApplied, ReconcileOptions, RunMode, account_clients, reconcile_account};
    let trail_policy = TrailPolicySpec::default();
    let specs = trailkeeper::desired::AccountSpecs {
        baseline: spec,
        trail_policy: &trail_policy,
        retention,
    };
    let options = ReconcileOptions {
        last_applied: LastApplied {
            approval_reference: previous.map(str::to_string),
            ..Default::default()
        },
        ..ReconcileOptions::new(RunMode::Apply)
    };
    reconcile_account(account_clients(&base_config().await, &specs), &specs, options).await
}

/// Brings the account of `spec` to the baseline (built-in policies) and checks that nothing failed.
pub async fn converge(spec: &LoggingBaselineSpec) {
    let report = apply_with_retention(spec, &RetentionPolicySpec::default(), None).await;
    assert!(!report.failed(), "{:?} {:?}", report.error, report.components);
}

/// What CloudTrail requires before someone else's trail (one trailkeeper adopts) can deliver into
/// `bucket`, as the strict emulator checks it: the bucket (created here) with a policy letting
/// CloudTrail check its ACL and write under `[prefix/]AWSLogs/{account}/` (and the Organization's
/// path), a key whose policy lets CloudTrail encrypt for the trail (its ARN is returned), and for
/// an Organization trail CloudTrail's trusted access and service-linked role.
pub async fn trail_destination(
    aws: &Inspector,
    account: &str,
    bucket: &str,
    prefix: Option<&str>,
    trail_name: &str,
    organization: Option<&str>,
) -> String {
    trail_destination_owned_by(aws, account, account, bucket, prefix, trail_name, organization).await
}

/// `trail_destination` in `account` for a trail that `owner` owns (the management account owns
/// the Organization trail a delegated administrator creates).
pub async fn trail_destination_owned_by(
    aws: &Inspector,
    account: &str,
    owner: &str,
    bucket: &str,
    prefix: Option<&str>,
    trail_name: &str,
    organization: Option<&str>,
) -> String {
    let trail = format!("arn:aws:cloudtrail:{REGION}:{owner}:trail/{trail_name}");
    let base = match prefix {
        Some(p) => format!("arn:aws:s3:::{bucket}/{p}/AWSLogs"),
        None => format!("arn:aws:s3:::{bucket}/AWSLogs"),
    };
    let mut paths = vec![format!("{base}/{owner}/*")];
    if let Some(o) = organization {
        paths.push(format!("{base}/{o}/*"));
    }
    let bucket_policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
             "Resource": format!("arn:aws:s3:::{bucket}"), "Condition": {"StringEquals": {"aws:SourceArn": trail}}},
            {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
             "Resource": paths,
             "Condition": {"StringEquals": {"aws:SourceArn": trail, "s3:x-amz-acl": "bucket-owner-full-control"}}}
        ]
    });
    aws.s3.create_bucket().bucket(bucket).send().await.unwrap();
    aws.s3
        .put_bucket_policy()
        .bucket(bucket)
        .policy(bucket_policy.to_string())
        .send()
        .await
        .unwrap();
    let key_policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "kms:GenerateDataKey*",
             "Resource": "*", "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": format!("arn:aws:cloudtrail:*:{owner}:trail/*")}}},
            {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "kms:DescribeKey",
             "Resource": "*", "Condition": {"StringEquals": {"aws:SourceArn": trail}}}
        ]
    });
    let key = aws
        .kms
        .create_key()
        .policy(key_policy.to_string())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    if organization.is_some() {
        aws.organizations
            .enable_aws_service_access()
            .service_principal("cloudtrail.amazonaws.com")
            .send()
            .await
            .unwrap();
        // A second destination in the same account finds the role there already.
        let created = aws
            .iam
            .create_service_linked_role()
            .aws_service_name("cloudtrail.amazonaws.com")
            .send()
            .await;
        if let Err(e) = created {
            let e = e.into_service_error();
            assert!(
                e.is_invalid_input_exception() || e.meta().code() == Some("EntityAlreadyExists"),
                "{e:?}"
            );
        }
    }
    key
}

/// Puts a log file (or digest) into the trail bucket as CloudTrail would have `minutes_ago`.
pub async fn deliver(aws: &Inspector, spec: &LoggingBaselineSpec, kind: &str, minutes_ago: i64) {
    deliver_from(aws, spec, kind, REGION, minutes_ago).await
}

/// As `deliver`, for the deliveries of a multi-Region trail from `region`.
pub async fn deliver_from(aws: &Inspector, spec: &LoggingBaselineSpec, kind: &str, region: &str, minutes_ago: i64) {
    let secs = now_secs() - minutes_ago * 60;
    let stamp = aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    // 2026-11-27T05:26:06Z -> 20261127T0526Z
    let compact: String = stamp.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let compact = format!("{}Z", &compact[..13]);
    let account = &spec.account_id;
    let key = format!(
        "{}/AWSLogs/{account}/{kind}/{region}/{}/{account}_{kind}_{region}_{compact}_test.json.gz",
        spec.storage.key_prefix,
        &stamp[..10].replace('-', "/")
    );
    aws.s3
        .put_object()
        .bucket(trailkeeper::desired::trail_bucket_name(spec))
        .key(key)
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
}

/// Makes the account the management account of a new Organization; returns its id.
pub async fn create_organization(aws: &Inspector) -> String {
    aws.organizations
        .create_organization()
        .send()
        .await
        .unwrap()
        .organization
        .unwrap()
        .id
        .unwrap()
}

/// Creates a member account in the Organization `aws` manages, with the roles of `ACCOUNT_ROLES`
/// its administrator makes; returns its id.
pub async fn create_member_account(aws: &Inspector, name: &str) -> String {
    let account = aws
        .organizations
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .unwrap()
        .create_account_status
        .unwrap()
        .account_id
        .unwrap();
    create_roles_in(&account, &ACCOUNT_ROLES).await;
    account
}

/// A multi-region trail of the test's own (not trailkeeper's) into a bucket and key made for it,
/// recording management events (read and write); an Organization trail when `organization` is
/// given. Returns its ARN; it is not started.
pub async fn create_trail_recording_management_events(
    aws: &Inspector,
    account: &str,
    name: &str,
    organization: Option<&str>,
) -> String {
    let bucket = format!("{name}-{account}");
    let key = trail_destination(aws, account, &bucket, None, name, organization).await;
    let created = aws
        .cloudtrail
        .create_trail()
        .name(name)
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(true)
        .is_organization_trail(organization.is_some())
        .enable_log_file_validation(true)
        .kms_key_id(key)
        .send()
        .await
        .unwrap();
    let arn = created.trail_arn.unwrap();
    // moto returns no selectors for a new trail (AWS returns the default): set them explicitly.
    aws.cloudtrail
        .put_event_selectors()
        .trail_name(&arn)
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::All)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    arn
}

/// The key's policy, parsed.
pub async fn key_policy_of(aws: &Inspector, key_id: &str) -> serde_json::Value {
    let policy = aws
        .kms
        .get_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    serde_json::from_str(policy.policy().unwrap()).unwrap()
}

/// A kB field of `/proc/{process}/status` (`process`: a pid, or `self`), e.g. `VmHWM` (0 when
/// unreadable): the benchmarks' memory figures.
pub fn proc_status_kib(process: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// IAM returns policy documents URL-encoded (RFC 3986); moto may return them plain.
pub fn urlencoding_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! Where the scenarios run: the emulator's accounts, or two sandbox accounts of real AWS reached
//! through named profiles. Every resource a scenario makes is named with the run's suffix, tagged
//! `trailkeeper.io/conformance = <suffix>`, and registered with `Cleanup`, which deletes it at the
//! end of the run whatever happened.

use std::sync::Mutex;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::SdkConfig;
use aws_types::region::Region;

use crate::common;

/// The profile of the sandbox account that plays the log-archive account (and runs every
/// single-account scenario). Without it nothing runs on AWS.
pub const ARCHIVE_PROFILE: &str = "TRAILKEEPER_CONFORMANCE_ARCHIVE_PROFILE";
/// The profile of a second sandbox account, the member whose trail delivers into the archive.
pub const MEMBER_PROFILE: &str = "TRAILKEEPER_CONFORMANCE_MEMBER_PROFILE";
/// The archive's region (default us-east-1) and the replica's (default us-west-2).
pub const REGION: &str = "TRAILKEEPER_CONFORMANCE_REGION";
pub const REPLICA_REGION: &str = "TRAILKEEPER_CONFORMANCE_REPLICA_REGION";
/// How long to wait for what AWS does asynchronously (replication, log delivery), in minutes
/// (default 15: "most objects replicate within 15 minutes" is S3 Replication Time Control's
/// promise; CloudTrail "typically delivers logs within an average of about 5 minutes").
pub const WAIT_MINUTES: &str = "TRAILKEEPER_CONFORMANCE_WAIT_MINUTES";
/// How long a refusal is asked again before it counts, in seconds (default 60): key and bucket
/// policies, and IAM, are eventually consistent.
pub const PROPAGATION_SECONDS: &str = "TRAILKEEPER_CONFORMANCE_PROPAGATION_SECONDS";
/// A subset of the scenarios to run, e.g. `1,3` (default: all).
pub const SCENARIOS: &str = "TRAILKEEPER_CONFORMANCE_SCENARIOS";

/// The tag every resource of a run carries (its value is the run's suffix).
pub const TAG: &str = "trailkeeper.io/conformance";
/// The prefix of every name a run gives.
pub const NAME_PREFIX: &str = "tk-conformance";

/// One account of a target: its configuration and who its calls are made as.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    /// The caller as a policy names it (`aws:PrincipalArn`): a role's ARN (its path included)
    /// for a role session, else the user's or root's ARN.
    pub principal: String,
    pub partition: String,
    config: SdkConfig,
}

macro_rules! client_in {
    ($sdk:ident, $config:expr) => {
        $sdk::Client::from_conf($sdk::config::Builder::from($config).build())
    };
}

impl Account {
    /// The account behind `config`, by STS GetCallerIdentity.
    async fn identify(config: SdkConfig) -> Result<Account, String> {
        let sts = aws_sdk_sts::Client::new(&config);
        let me = sts.get_caller_identity().send().await.map_err(|e| {
            format!(
                "sts:GetCallerIdentity: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )
        })?;
        let (id, arn) = (
            me.account().unwrap_or_default().to_string(),
            me.arn().unwrap_or_default().to_string(),
        );
        let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();
        // arn:aws:sts::111122223333:assumed-role/Name/session: the role's ARN, with its path.
        let principal = match arn.split_once(":assumed-role/") {
            Some((_, rest)) => {
                let name = rest.split('/').next().unwrap_or_default().to_string();
                let iam = client_in!(aws_sdk_iam, &config);
                match iam.get_role().role_name(&name).send().await {
                    Ok(found) => found.role().map(|r| r.arn().to_string()).unwrap_or_default(),
                    Err(_) => format!("arn:{partition}:iam::{id}:role/{name}"),
                }
            }
            None => arn,
        };
        Ok(Account {
            id,
            principal,
            partition,
            config,
        })
    }

    fn regional(&self, region: &str) -> SdkConfig {
        self.config.to_builder().region(Region::new(region.to_string())).build()
    }

    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = self.regional(region);
        // The emulator does not resolve virtual-hosted bucket names (as the product's clients).
        let path_style = config.endpoint_url().is_some();
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(path_style)
                .build(),
        )
    }

    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        client_in!(aws_sdk_kms, &self.regional(region))
    }

    pub fn cloudtrail(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        client_in!(aws_sdk_cloudtrail, &self.regional(region))
    }

    pub fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        client_in!(aws_sdk_sns, &self.regional(region))
    }

    pub fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        client_in!(aws_sdk_cloudwatch, &self.regional(region))
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        client_in!(aws_sdk_iam, &self.config)
    }

    /// The product's clients for `region` (for the product's own S3 calls, e.g. its replication
    /// rule), without its call recorder: the conformance suite's calls are not the product's,
    /// and stay out of the IAM policy test's call log.
    pub fn product_clients(&self, region: &str) -> trailkeeper::aws::AccountClients {
        let config = self.regional(region);
        let services = trailkeeper::aws::Services {
            sts: client_in!(aws_sdk_sts, &config).into(),
            kms: client_in!(aws_sdk_kms, &config).into(),
            s3: self.s3(region).into(),
            s3control: client_in!(aws_sdk_s3control, &config).into(),
            cloudtrail: client_in!(aws_sdk_cloudtrail, &config).into(),
            ec2: client_in!(aws_sdk_ec2, &config).into(),
            logs: client_in!(aws_sdk_cloudwatchlogs, &config).into(),
            iam: client_in!(aws_sdk_iam, &config).into(),
            ssm: client_in!(aws_sdk_ssm, &config).into(),
            config: client_in!(aws_sdk_config, &config).into(),
            glue: client_in!(aws_sdk_glue, &config).into(),
            athena: client_in!(aws_sdk_athena, &config).into(),
            organizations: client_in!(aws_sdk_organizations, &config).into(),
            events: client_in!(aws_sdk_eventbridge, &config).into(),
            cloudwatch: client_in!(aws_sdk_cloudwatch, &config).into(),
            sns: client_in!(aws_sdk_sns, &config).into(),
            securityhub: client_in!(aws_sdk_securityhub, &config).into(),
        };
        trailkeeper::aws::AccountClients::from_parts(region, services, trailkeeper::aws::CallRecorder::new())
    }
}

/// The accounts and settings a run uses.
#[derive(Clone, Debug)]
pub struct Target {
    /// "AWS" or "emulator".
    pub label: &'static str,
    pub archive: Account,
    /// The member account (scenarios 1 and 5); None when no member profile is given.
    pub member: Option<Account>,
    pub region: String,
    pub replica_region: String,
    /// Unique to the run: in every name and tag.
    pub suffix: String,
    /// How long a refusal is asked again (policies propagating); zero on the emulator.
    pub propagation: Duration,
    /// A pause after IAM and replication configuration writes before relying on them.
    pub settle: Duration,
    /// The bound on what AWS does asynchronously (replication, log delivery).
    pub wait: Duration,
    pub poll: Duration,
    /// Whether CloudTrail writes log files here (real AWS): the emulator judges a delivery
    /// (GetTrailStatus's LatestDeliveryError) without writing one.
    pub writes_logs: bool,
}

impl Target {
    /// Two fresh accounts of the emulator, each used through a session of an administrator role
    /// of its own (as a sandbox profile would be), so that the caller is a role on both targets.
    pub async fn emulator() -> Target {
        let archive = emulator_account(&common::new_account()).await;
        let member = emulator_account(&common::new_account()).await;
        Target {
            label: "emulator",
            archive,
            member: Some(member),
            region: common::REGION.to_string(),
            replica_region: "eu-west-1".to_string(),
            suffix: unique_suffix(),
            propagation: Duration::ZERO,
            settle: Duration::ZERO,
            wait: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            writes_logs: false,
        }
    }

    /// The sandbox accounts of the environment's profiles: None without `ARCHIVE_PROFILE` (the
    /// suite then runs on the emulator only); an error when a profile does not resolve.
    pub async fn aws() -> Option<Result<Target, String>> {
        let archive_profile = std::env::var(ARCHIVE_PROFILE).ok().filter(|p| !p.is_empty())?;
        Some(Self::aws_from(&archive_profile).await)
    }

    async fn aws_from(archive_profile: &str) -> Result<Target, String> {
        let region = env_or(REGION, "us-east-1");
        let replica_region = env_or(REPLICA_REGION, "us-west-2");
        if region == replica_region {
            return Err(format!(
                "{REPLICA_REGION} must name another region than {REGION} ({region})"
            ));
        }
        let minutes: u64 = env_or(WAIT_MINUTES, "15")
            .parse()
            .map_err(|_| format!("{WAIT_MINUTES} is a number of minutes"))?;
        let propagation: u64 = env_or(PROPAGATION_SECONDS, "60")
            .parse()
            .map_err(|_| format!("{PROPAGATION_SECONDS} is a number of seconds"))?;
        let archive = profile_account(archive_profile, &region).await?;
        let member = match std::env::var(MEMBER_PROFILE).ok().filter(|p| !p.is_empty()) {
            Some(profile) => Some(profile_account(&profile, &region).await?),
            None => None,
        };
        if let Some(member) = &member
            && member.id == archive.id
        {
            return Err(format!(
                "{ARCHIVE_PROFILE} and {MEMBER_PROFILE} are the same account ({}): the trail scenarios need two",
                member.id
            ));
        }
        Ok(Target {
            label: "AWS",
            archive,
            member,
            region,
            replica_region,
            suffix: unique_suffix(),
            propagation: Duration::from_secs(propagation),
            settle: Duration::from_secs(20),
            wait: Duration::from_secs(minutes * 60),
            poll: Duration::from_secs(10),
            writes_logs: true,
        })
    }

    /// `tk-conformance-<suffix>-<what>`: a bucket, trail, role, topic or alarm name.
    pub fn name(&self, what: &str) -> String {
        format!("{NAME_PREFIX}-{}-{what}", self.suffix)
    }

    pub fn is_emulator(&self) -> bool {
        self.label == "emulator"
    }

    pub fn member(&self) -> Result<&Account, String> {
        self.member
            .as_ref()
            .ok_or_else(|| format!("needs a second account: set {MEMBER_PROFILE}"))
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

async fn profile_account(profile: &str, region: &str) -> Result<Account, String> {
    let config = trailkeeper::aws::base_config_loader()
        .profile_name(profile)
        .region(Region::new(region.to_string()))
        .load()
        .await;
    Account::identify(config)
        .await
        .map_err(|e| format!("profile {profile}: {e}"))
}

/// An emulator account used as a session of its role `conformance`, which may do everything.
async fn emulator_account(id: &str) -> Account {
    let root = common::inspector(id).await;
    root.iam
        .create_role()
        .role_name("conformance")
        .assume_role_policy_document(
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{id}:root")}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("the emulator creates the conformance role");
    root.iam
        .put_role_policy()
        .role_name("conformance")
        .policy_name("administrator")
        .policy_document(
            serde_json::json!({"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("the emulator puts the conformance role's policy");
    let base = common::base_config().await;
    let session = aws_sdk_sts::Client::new(&base)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{id}:role/conformance"))
        .role_session_name("conformance")
        .send()
        .await
        .expect("the emulator assumes the conformance role");
    let credentials = session.credentials.expect("AssumeRole returns credentials");
    let config = base
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_string()),
            None,
            "conformance",
        )))
        .build();
    Account::identify(config)
        .await
        .expect("the emulator answers GetCallerIdentity")
}

/// Lowercase letters and digits, different on every run (bucket names are global).
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40) ^ (n << 56);
    let mut out = String::new();
    let mut rest = mixed;
    for _ in 0..10 {
        out.push(char::from_digit((rest % 36) as u32, 36).unwrap_or('0'));
        rest /= 36;
    }
    out
}

/// What a run made, deleted by `run` in an order that lets each go (trails before the buckets
/// they write into, buckets emptied first, keys scheduled for deletion last).
#[derive(Default)]
pub struct Cleanup {
    items: Mutex<Vec<Item>>,
}

enum Item {
    Trail(aws_sdk_cloudtrail::Client, String),
    Alarm(aws_sdk_cloudwatch::Client, String),
    Topic(aws_sdk_sns::Client, String),
    Bucket(aws_sdk_s3::Client, String),
    Role(aws_sdk_iam::Client, String),
    Key(aws_sdk_kms::Client, String),
}

impl Item {
    fn rank(&self) -> u8 {
        match self {
            Item::Trail(..) => 0,
            Item::Alarm(..) => 1,
            Item::Topic(..) => 2,
            Item::Bucket(..) => 3,
            Item::Role(..) => 4,
            Item::Key(..) => 5,
        }
    }
}

fn shown<E: std::error::Error + 'static>(e: E) -> String {
    format!("{}", aws_smithy_types::error::display::DisplayErrorContext(e))
}

impl Cleanup {
    fn push(&self, item: Item) {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).push(item);
    }

    pub fn trail(&self, client: &aws_sdk_cloudtrail::Client, name: &str) {
        self.push(Item::Trail(client.clone(), name.to_string()));
    }

    pub fn alarm(&self, client: &aws_sdk_cloudwatch::Client, name: &str) {
        self.push(Item::Alarm(client.clone(), name.to_string()));
    }

    pub fn topic(&self, client: &aws_sdk_sns::Client, arn: &str) {
        self.push(Item::Topic(client.clone(), arn.to_string()));
    }

    pub fn bucket(&self, client: &aws_sdk_s3::Client, name: &str) {
        self.push(Item::Bucket(client.clone(), name.to_string()));
    }

    pub fn role(&self, client: &aws_sdk_iam::Client, name: &str) {
        self.push(Item::Role(client.clone(), name.to_string()));
    }

    pub fn key(&self, client: &aws_sdk_kms::Client, arn: &str) {
        self.push(Item::Key(client.clone(), arn.to_string()));
    }

    /// Deletes everything registered; returns what could not be deleted, each with why.
    pub async fn run(&self, poll: Duration) -> Vec<String> {
        let mut items = std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()));
        items.sort_by_key(Item::rank);
        // Replication stops first, so that no replica lands in a bucket being emptied.
        for item in &items {
            if let Item::Bucket(s3, name) = item {
                let _ = s3.delete_bucket_replication().bucket(name).send().await;
            }
        }
        let mut left = Vec::new();
        for item in items {
            if let Err(e) = delete(&item, poll).await {
                left.push(e);
            }
        }
        left
    }
}

/// Ok when the call succeeded or what it deletes is gone already (a trail a scenario deleted
/// itself, a bucket emptied on an earlier try).
fn deleted<T, E, R>(what: &str, result: Result<T, SdkError<E, R>>) -> Result<(), String>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    const GONE: [&str; 5] = [
        "TrailNotFoundException",
        "NoSuchBucket",
        "NoSuchEntity",
        "NotFound",
        "NotFoundException",
    ];
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.code())
                .is_some_and(|c| GONE.contains(&c)) =>
        {
            Ok(())
        }
        Err(e) => Err(format!("{what}: {}", shown(e))),
    }
}

async fn delete(item: &Item, poll: Duration) -> Result<(), String> {
    match item {
        Item::Trail(cloudtrail, name) => {
            let _ = cloudtrail.stop_logging().name(name).send().await;
            deleted(
                &format!("trail {name}"),
                cloudtrail.delete_trail().name(name).send().await,
            )
        }
        Item::Alarm(cloudwatch, name) => deleted(
            &format!("alarm {name}"),
            cloudwatch.delete_alarms().alarm_names(name).send().await,
        ),
        Item::Topic(sns, arn) => deleted(&format!("topic {arn}"), sns.delete_topic().topic_arn(arn).send().await),
        Item::Bucket(s3, name) => {
            // A replica may still arrive just after the rule is gone: try a few times.
            let mut last = String::new();
            for _ in 0..3 {
                match empty_and_delete(s3, name).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
                tokio::time::sleep(poll).await;
            }
            Err(format!("bucket {name}: {last}"))
        }
        Item::Role(iam, name) => {
            if let Ok(listed) = iam.list_role_policies().role_name(name).send().await {
                for policy in listed.policy_names() {
                    let _ = iam
                        .delete_role_policy()
                        .role_name(name)
                        .policy_name(policy)
                        .send()
                        .await;
                }
            }
            deleted(&format!("role {name}"), iam.delete_role().role_name(name).send().await)
        }
        // The shortest waiting period KMS allows (7 days). By its id: moto's ScheduleKeyDeletion
        // fails (HTTP 500) on a key ARN, which AWS accepts.
        Item::Key(kms, arn) => kms
            .schedule_key_deletion()
            .key_id(arn.rsplit('/').next().unwrap_or(arn))
            .pending_window_in_days(7)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("key {arn}: {}", shown(e))),
    }
}

/// Every version and delete marker (Governance retention bypassed: the run's locks are all in
/// Governance mode), then the bucket.
async fn empty_and_delete(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), String> {
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let listed = match s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
        {
            Ok(listed) => listed,
            // Deleted on an earlier try.
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchBucket") => return Ok(()),
            Err(e) => return Err(shown(e)),
        };
        let versions = listed.versions().iter().map(|v| {
            (
                v.key().unwrap_or_default().to_string(),
                v.version_id().map(str::to_string),
            )
        });
        let markers = listed.delete_markers().iter().map(|m| {
            (
                m.key().unwrap_or_default().to_string(),
                m.version_id().map(str::to_string),
            )
        });
        for (key, version) in versions.chain(markers).collect::<Vec<_>>() {
            s3.delete_object()
                .bucket(bucket)
                .key(&key)
                .set_version_id(version)
                .bypass_governance_retention(true)
                .send()
                .await
                .map_err(|e| format!("{key}: {}", shown(e)))?;
        }
        if listed.is_truncated() != Some(true) {
            break;
        }
        key_marker = listed.next_key_marker().map(str::to_string);
        version_marker = listed.next_version_id_marker().map(str::to_string);
    }
    deleted("DeleteBucket", s3.delete_bucket().bucket(bucket).send().await)
}

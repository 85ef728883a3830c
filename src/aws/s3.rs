//! S3: the trail bucket and its access-log bucket.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus,
    BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, LoggingEnabled, NoncurrentVersionExpiration, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use serde_json::Value;

use super::{AccountClients, AwsError, ErrorKind, check, optional};
use crate::api::LockMode;
use crate::desired::{LIFECYCLE_RULE_ABORT, LIFECYCLE_RULE_EXPIRE, Lifecycle, LockRetention};

/// A bucket as S3 reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedBucket {
    pub name: String,
    pub object_lock_enabled: bool,
    pub lock_retention: Option<LockRetention>,
    /// Enabled, Suspended, or empty when never versioned.
    pub versioning: String,
    pub encryption: Option<ObservedEncryption>,
    /// All four public access block settings on.
    pub public_access_blocked: bool,
    /// Object Ownership is BucketOwnerEnforced: ACLs are off, the bucket owner owns every object.
    pub owner_enforced: bool,
    pub policy: Option<Value>,
    pub access_logging: Option<(String, String)>,
    /// The enabled lifecycle rules, folded into the shape trailkeeper writes.
    pub lifecycle: Lifecycle,
    /// Lifecycle rules not written by trailkeeper.
    pub foreign_lifecycle_rules: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedEncryption {
    /// aws:kms, aws:kms:dsse or AES256.
    pub algorithm: String,
    pub kms_key: Option<String>,
    pub bucket_key: bool,
}

fn invalid(action: &str, resource: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError {
        kind: ErrorKind::Invalid,
        action: action.into(),
        resource: resource.into(),
        code: "InvalidRequest".into(),
        message: e.to_string(),
    }
}

/// Reads every setting trailkeeper manages on the bucket, concurrently. `None` when it does not exist.
/// Which optional settings to read: a bucket that should have no Object Lock or access logging
/// (the access-log bucket) is not asked for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reads {
    pub object_lock: bool,
    pub access_logging: bool,
}

pub async fn observe_bucket(
    clients: &AccountClients,
    name: &str,
    reads: Reads,
) -> Result<Option<ObservedBucket>, AwsError> {
    let resource = format!("bucket {name}");
    let r = resource.as_str();
    let s3 = &clients.s3;
    if optional(s3.head_bucket().bucket(name).send().await, "S3", "HeadBucket", r)?.is_none() {
        return Ok(None);
    }
    let lock_read = async {
        match reads.object_lock {
            true => Some(s3.get_object_lock_configuration().bucket(name).send().await),
            false => None,
        }
    };
    let logging_read = async {
        match reads.access_logging {
            true => Some(s3.get_bucket_logging().bucket(name).send().await),
            false => None,
        }
    };
    // Boxed: nine SDK futures side by side would be a very large future on the stack.
    let (lock, versioning, encryption, pab, ownership, policy, logging, lifecycle, tags) = tokio::join!(
        Box::pin(lock_read),
        Box::pin(s3.get_bucket_versioning().bucket(name).send()),
        Box::pin(s3.get_bucket_encryption().bucket(name).send()),
        Box::pin(s3.get_public_access_block().bucket(name).send()),
        Box::pin(s3.get_bucket_ownership_controls().bucket(name).send()),
        Box::pin(s3.get_bucket_policy().bucket(name).send()),
        Box::pin(logging_read),
        Box::pin(s3.get_bucket_lifecycle_configuration().bucket(name).send()),
        Box::pin(s3.get_bucket_tagging().bucket(name).send()),
    );
    let lock = lock
        .map(|l| optional(l, "S3", "GetObjectLockConfiguration", r))
        .transpose()?
        .flatten();
    let lock = lock.as_ref().and_then(|l| l.object_lock_configuration());
    let versioning = check(versioning, "S3", "GetBucketVersioning", r)?;
    let encryption = optional(encryption, "S3", "GetBucketEncryption", r)?;
    let pab = optional(pab, "S3", "GetPublicAccessBlock", r)?;
    let ownership = optional(ownership, "S3", "GetBucketOwnershipControls", r)?;
    let policy = optional(policy, "S3", "GetBucketPolicy", r)?;
    let logging = logging.map(|l| check(l, "S3", "GetBucketLogging", r)).transpose()?;
    let lifecycle = optional(lifecycle, "S3", "GetBucketLifecycleConfiguration", r)?;
    let tags = optional(tags, "S3", "GetBucketTagging", r)?;

    let rules = lifecycle.as_ref().map(|l| l.rules()).unwrap_or_default();
    Ok(Some(ObservedBucket {
        name: name.to_string(),
        object_lock_enabled: lock.and_then(|l| l.object_lock_enabled()) == Some(&ObjectLockEnabled::Enabled),
        lock_retention: lock
            .and_then(|l| l.rule())
            .and_then(|r| r.default_retention())
            .and_then(lock_retention),
        versioning: versioning.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        encryption: encryption
            .as_ref()
            .and_then(|e| e.server_side_encryption_configuration())
            .and_then(default_encryption),
        public_access_blocked: pab
            .as_ref()
            .and_then(|p| p.public_access_block_configuration())
            .is_some_and(blocks_all_public_access),
        owner_enforced: ownership
            .as_ref()
            .and_then(|o| o.ownership_controls())
            .is_some_and(enforces_bucket_owner),
        policy: policy
            .as_ref()
            .and_then(|p| p.policy())
            .and_then(|p| serde_json::from_str(p).ok()),
        access_logging: logging
            .as_ref()
            .and_then(|l| l.logging_enabled())
            .map(|l| (l.target_bucket().to_string(), l.target_prefix().to_string())),
        lifecycle: fold_lifecycle(rules),
        foreign_lifecycle_rules: rules
            .iter()
            .filter_map(|r| r.id())
            .filter(|id| *id != LIFECYCLE_RULE_EXPIRE && *id != LIFECYCLE_RULE_ABORT)
            .map(str::to_string)
            .collect(),
        tags: tags
            .as_ref()
            .map(|t| {
                t.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    }))
}

/// The bucket's default encryption (its first rule: S3 keeps one).
fn default_encryption(configuration: &ServerSideEncryptionConfiguration) -> Option<ObservedEncryption> {
    let rule = configuration.rules().first()?;
    Some(ObservedEncryption {
        algorithm: rule
            .apply_server_side_encryption_by_default()
            .map(|d| d.sse_algorithm().as_str().to_string())
            .unwrap_or_default(),
        kms_key: rule
            .apply_server_side_encryption_by_default()
            .and_then(|d| d.kms_master_key_id())
            .map(str::to_string),
        bucket_key: rule.bucket_key_enabled() == Some(true),
    })
}

/// All four settings of Block Public Access on.
fn blocks_all_public_access(c: &PublicAccessBlockConfiguration) -> bool {
    c.block_public_acls() == Some(true)
        && c.ignore_public_acls() == Some(true)
        && c.block_public_policy() == Some(true)
        && c.restrict_public_buckets() == Some(true)
}

/// Object Ownership is BucketOwnerEnforced (ACLs disabled).
fn enforces_bucket_owner(c: &OwnershipControls) -> bool {
    c.rules()
        .iter()
        .any(|r| r.object_ownership() == &ObjectOwnership::BucketOwnerEnforced)
}

fn lock_retention(d: &DefaultRetention) -> Option<LockRetention> {
    let mode = match d.mode()? {
        ObjectLockRetentionMode::Compliance => LockMode::Compliance,
        _ => LockMode::Governance,
    };
    // S3 stores either days or years; a zero is an absent value (moto reports both).
    let days = match (d.days().filter(|d| *d > 0), d.years().filter(|y| *y > 0)) {
        (Some(days), _) => days,
        (None, Some(years)) => years * 365,
        (None, None) => return None,
    };
    Some(LockRetention { mode, days })
}

/// The shortest expiration of each kind among the enabled rules: what is in force.
fn fold_lifecycle(rules: &[LifecycleRule]) -> Lifecycle {
    let enabled: Vec<&LifecycleRule> = rules
        .iter()
        .filter(|r| r.status() == &ExpirationStatus::Enabled)
        .collect();
    let min = |f: &dyn Fn(&LifecycleRule) -> Option<i32>| enabled.iter().filter_map(|r| f(r)).min();
    Lifecycle {
        expire_current_after_days: min(&|r| r.expiration().and_then(|e| e.days())),
        expire_noncurrent_after_days: min(&|r| r.noncurrent_version_expiration().and_then(|e| e.noncurrent_days())),
        abort_incomplete_uploads_after_days: min(&|r| {
            r.abort_incomplete_multipart_upload()
                .and_then(|a| a.days_after_initiation())
        })
        .unwrap_or(0),
    }
}

/// Creates the bucket (with Object Lock when asked: it can only be enabled at creation), ACLs off.
/// A bucket this account already owns counts as created.
pub async fn create_bucket(clients: &AccountClients, name: &str, object_lock: bool) -> Result<(), AwsError> {
    let mut request = clients
        .s3
        .create_bucket()
        .bucket(name)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .object_lock_enabled_for_bucket(object_lock);
    if clients.region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(clients.region.as_str()))
                .build(),
        );
    }
    match check(request.send().await, "S3", "CreateBucket", &format!("bucket {name}")) {
        Ok(_) => Ok(()),
        Err(e) if e.code == "BucketAlreadyOwnedByYou" => Ok(()),
        Err(e) if e.code == "BucketAlreadyExists" => Err(AwsError {
            message: format!(
                "the name {name} is taken by another AWS account: set spec.storage.bucketName or namePrefix"
            ),
            ..e
        }),
        Err(e) => Err(e),
    }
}

/// ACLs off: the bucket owner owns every object, whoever wrote it (S3 user guide, "Controlling
/// ownership of objects and disabling ACLs for your bucket").
pub async fn enforce_bucket_owner(clients: &AccountClients, name: &str) -> Result<(), AwsError> {
    let controls = OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                .build()
                .map_err(|e| invalid("s3:PutBucketOwnershipControls", name, e))?,
        )
        .build()
        .map_err(|e| invalid("s3:PutBucketOwnershipControls", name, e))?;
    let sent = clients
        .s3
        .put_bucket_ownership_controls()
        .bucket(name)
        .ownership_controls(controls)
        .send()
        .await;
    check(sent, "S3", "PutBucketOwnershipControls", &format!("bucket {name}")).map(|_| ())
}

pub async fn enable_versioning(clients: &AccountClients, name: &str) -> Result<(), AwsError> {
    let config = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Enabled)
        .build();
    let sent = clients
        .s3
        .put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(config)
        .send()
        .await;
    check(sent, "S3", "PutBucketVersioning", &format!("bucket {name}")).map(|_| ())
}

/// Object Lock on, with the default retention (or none).
pub async fn put_object_lock(
    clients: &AccountClients,
    name: &str,
    retention: Option<&LockRetention>,
) -> Result<(), AwsError> {
    let mut config = ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled);
    if let Some(r) = retention {
        let mode = match r.mode {
            LockMode::Compliance => ObjectLockRetentionMode::Compliance,
            _ => ObjectLockRetentionMode::Governance,
        };
        config = config.rule(
            ObjectLockRule::builder()
                .default_retention(DefaultRetention::builder().mode(mode).days(r.days).build())
                .build(),
        );
    }
    let sent = clients
        .s3
        .put_object_lock_configuration()
        .bucket(name)
        .object_lock_configuration(config.build())
        .send()
        .await;
    check(sent, "S3", "PutObjectLockConfiguration", &format!("bucket {name}")).map(|_| ())
}

/// Default encryption: SSE-KMS with `kms_key` and an S3 bucket key, or SSE-S3 when `None`.
pub async fn put_encryption(clients: &AccountClients, name: &str, kms_key: Option<&str>) -> Result<(), AwsError> {
    let resource = format!("bucket {name}");
    let action = "s3:PutEncryptionConfiguration";
    let default = match kms_key {
        Some(key) => ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(key),
        None => ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256),
    };
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default.build().map_err(|e| invalid(action, &resource, e))?)
        .bucket_key_enabled(kms_key.is_some())
        .build();
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| invalid(action, &resource, e))?;
    let sent = clients
        .s3
        .put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(config)
        .send()
        .await;
    check(sent, "S3", "PutBucketEncryption", &resource).map(|_| ())
}

pub async fn block_public_access(clients: &AccountClients, name: &str) -> Result<(), AwsError> {
    let config = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    let sent = clients
        .s3
        .put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(config)
        .send()
        .await;
    check(sent, "S3", "PutPublicAccessBlock", &format!("bucket {name}")).map(|_| ())
}

pub async fn put_policy(clients: &AccountClients, name: &str, policy: &Value) -> Result<(), AwsError> {
    let sent = clients
        .s3
        .put_bucket_policy()
        .bucket(name)
        .policy(policy.to_string())
        .send()
        .await;
    check(sent, "S3", "PutBucketPolicy", &format!("bucket {name}"))
        .map(|_| ())
        .map_err(|e| e.naming_principals_of(policy))
}

pub async fn put_access_logging(
    clients: &AccountClients,
    name: &str,
    target_bucket: &str,
    target_prefix: &str,
) -> Result<(), AwsError> {
    let resource = format!("bucket {name}");
    let enabled = LoggingEnabled::builder()
        .target_bucket(target_bucket)
        .target_prefix(target_prefix)
        .build()
        .map_err(|e| invalid("s3:PutBucketLogging", &resource, e))?;
    let status = BucketLoggingStatus::builder().logging_enabled(enabled).build();
    let sent = clients
        .s3
        .put_bucket_logging()
        .bucket(name)
        .bucket_logging_status(status)
        .send()
        .await;
    check(sent, "S3", "PutBucketLogging", &resource).map(|_| ())
}

/// Replaces the bucket's lifecycle with trailkeeper's rules: abort incomplete uploads always, and
/// an expiration rule only when a retention is set (absent means keep forever).
pub async fn put_lifecycle(clients: &AccountClients, name: &str, lifecycle: &Lifecycle) -> Result<(), AwsError> {
    let resource = format!("bucket {name}");
    let action = "s3:PutLifecycleConfiguration";
    let whole_bucket = || LifecycleRuleFilter::builder().prefix("").build();
    let mut rules = vec![
        LifecycleRule::builder()
            .id(LIFECYCLE_RULE_ABORT)
            .status(ExpirationStatus::Enabled)
            .filter(whole_bucket())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(lifecycle.abort_incomplete_uploads_after_days)
                    .build(),
            )
            .build()
            .map_err(|e| invalid(action, &resource, e))?,
    ];
    if lifecycle.expire_current_after_days.is_some() || lifecycle.expire_noncurrent_after_days.is_some() {
        let mut rule = LifecycleRule::builder()
            .id(LIFECYCLE_RULE_EXPIRE)
            .status(ExpirationStatus::Enabled)
            .filter(whole_bucket());
        if let Some(days) = lifecycle.expire_current_after_days {
            rule = rule.expiration(LifecycleExpiration::builder().days(days).build());
        }
        if let Some(days) = lifecycle.expire_noncurrent_after_days {
            rule = rule
                .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(days).build());
        }
        rules.push(rule.build().map_err(|e| invalid(action, &resource, e))?);
    }
    let config = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| invalid(action, &resource, e))?;
    let sent = clients
        .s3
        .put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(config)
        .send()
        .await;
    check(sent, "S3", "PutBucketLifecycleConfiguration", &resource).map(|_| ())
}

/// Sets the bucket's tags (S3 replaces the whole set: callers pass the merged set).
pub async fn put_tags(clients: &AccountClients, name: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
    let resource = format!("bucket {name}");
    let action = "s3:PutBucketTagging";
    let tag_set = tags
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| invalid(action, &resource, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .map_err(|e| invalid(action, &resource, e))?;
    let sent = clients
        .s3
        .put_bucket_tagging()
        .bucket(name)
        .tagging(tagging)
        .send()
        .await;
    check(sent, "S3", "PutBucketTagging", &resource).map(|_| ())
}

/// Whether the bucket exists (and is this account's).
pub async fn exists(clients: &AccountClients, name: &str) -> Result<bool, AwsError> {
    let sent = clients.s3.head_bucket().bucket(name).send().await;
    Ok(optional(sent, "S3", "HeadBucket", &format!("bucket {name}"))?.is_some())
}

/// Whether the bucket holds any object version or delete marker.
pub async fn holds_objects(clients: &AccountClients, name: &str) -> Result<bool, AwsError> {
    let sent = clients.s3.list_object_versions().bucket(name).max_keys(1).send().await;
    let out = check(sent, "S3", "ListObjectVersions", &format!("bucket {name}"))?;
    Ok(!out.versions().is_empty() || !out.delete_markers().is_empty())
}

/// Deletes an empty bucket (S3 refuses to delete one that holds objects).
pub async fn delete_bucket(clients: &AccountClients, name: &str) -> Result<(), AwsError> {
    let sent = clients.s3.delete_bucket().bucket(name).send().await;
    check(sent, "S3", "DeleteBucket", &format!("bucket {name}")).map(|_| ())
}

/// The region of a bucket (GetBucketLocation): S3 answers requests for a bucket through another
/// region's endpoint with a redirect. No constraint is us-east-1; `EU` is the old name of
/// eu-west-1 (GetBucketLocation reference,
/// https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html).
pub async fn bucket_region(clients: &AccountClients, bucket: &str) -> Result<String, AwsError> {
    let sent = clients.s3.get_bucket_location().bucket(bucket).send().await;
    let out = check(sent, "S3", "GetBucketLocation", &format!("bucket {bucket}"))?;
    Ok(match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(region) => region.to_string(),
    })
}

/// The common prefixes one level below `prefix` (folders), all pages.
pub async fn list_folders(clients: &AccountClients, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError> {
    let mut folders = Vec::new();
    let mut pages = clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = check(page, "S3", "ListBucket", &format!("s3://{bucket}/{prefix}"))?;
        folders.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_string)),
        );
    }
    Ok(folders)
}

/// The keys under `prefix`, all pages.
pub async fn list_keys(clients: &AccountClients, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError> {
    let mut keys = Vec::new();
    let mut pages = clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = check(page, "S3", "ListBucket", &format!("s3://{bucket}/{prefix}"))?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    Ok(keys)
}

/// The first key under `prefix` after `start_after` (in S3's order, UTF-8 binary), if any: one
/// request of one key.
pub async fn first_key_after(
    clients: &AccountClients,
    bucket: &str,
    prefix: &str,
    start_after: &str,
) -> Result<Option<String>, AwsError> {
    let sent = clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .start_after(start_after)
        .max_keys(1)
        .send()
        .await;
    let page = check(sent, "S3", "ListBucket", &format!("s3://{bucket}/{prefix}"))?;
    Ok(page.contents().first().and_then(|o| o.key().map(str::to_string)))
}

/// An object's bytes and user metadata; None when it does not exist.
pub async fn get_object(
    clients: &AccountClients,
    bucket: &str,
    key: &str,
) -> Result<Option<(Vec<u8>, std::collections::HashMap<String, String>)>, AwsError> {
    let resource = format!("s3://{bucket}/{key}");
    let Some(out) = optional(
        clients.s3.get_object().bucket(bucket).key(key).send().await,
        "S3",
        "GetObject",
        &resource,
    )?
    else {
        return Ok(None);
    };
    let metadata = out.metadata().cloned().unwrap_or_default();
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| invalid("s3:GetObject", &resource, e))?
        .into_bytes()
        .to_vec();
    Ok(Some((body, metadata)))
}

/// The archive's replication as S3 reports it: trailkeeper's rule (by id) and whether others exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedReplication {
    pub role: String,
    /// trailkeeper's rule, when present.
    pub rule: Option<ReplicationRule>,
    /// Ids of rules trailkeeper did not write.
    pub other_rules: Vec<String>,
}

/// One replication rule, in the shape trailkeeper writes: every object, to one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationRule {
    pub id: String,
    pub enabled: bool,
    /// Destination bucket ARN.
    pub destination: String,
    pub replica_kms_key: Option<String>,
    pub sse_kms_objects: bool,
    pub delete_markers: bool,
}

/// GetBucketReplication: None when the bucket has no replication configuration.
pub async fn observe_replication(
    clients: &AccountClients,
    bucket: &str,
) -> Result<Option<ObservedReplication>, AwsError> {
    use aws_sdk_s3::types::{DeleteMarkerReplicationStatus, ReplicationRuleStatus, SseKmsEncryptedObjectsStatus};
    let got = optional(
        clients.s3.get_bucket_replication().bucket(bucket).send().await,
        "S3",
        "GetBucketReplication",
        &format!("bucket {bucket}"),
    )?;
    let Some(config) = got.and_then(|g| g.replication_configuration) else {
        return Ok(None);
    };
    let mut observed = ObservedReplication {
        role: config.role.clone(),
        rule: None,
        other_rules: Vec::new(),
    };
    for rule in &config.rules {
        let id = rule.id.clone().unwrap_or_default();
        if id != crate::desired::archive::REPLICATION_RULE_ID {
            observed.other_rules.push(id);
            continue;
        }
        let destination = rule.destination.as_ref();
        observed.rule = Some(ReplicationRule {
            id,
            enabled: rule.status == ReplicationRuleStatus::Enabled,
            destination: destination.map(|d| d.bucket.clone()).unwrap_or_default(),
            replica_kms_key: destination
                .and_then(|d| d.encryption_configuration.as_ref())
                .and_then(|e| e.replica_kms_key_id.clone()),
            sse_kms_objects: rule
                .source_selection_criteria
                .as_ref()
                .and_then(|c| c.sse_kms_encrypted_objects.as_ref())
                .is_some_and(|o| o.status == SseKmsEncryptedObjectsStatus::Enabled),
            delete_markers: rule
                .delete_marker_replication
                .as_ref()
                .and_then(|d| d.status.as_ref())
                .is_some_and(|s| *s == DeleteMarkerReplicationStatus::Enabled),
        });
    }
    Ok(Some(observed))
}

/// PutBucketReplication with trailkeeper's one rule (it replaces the whole configuration).
pub async fn put_replication(
    clients: &AccountClients,
    bucket: &str,
    role: &str,
    rule: &ReplicationRule,
) -> Result<(), AwsError> {
    use aws_sdk_s3::types::{
        DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration,
        ReplicationConfiguration, ReplicationRuleFilter, ReplicationRuleStatus, SourceSelectionCriteria,
        SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus,
    };
    let resource = format!("bucket {bucket}");
    let invalid_request = |e| invalid("s3:PutReplicationConfiguration", &resource, e);
    let mut destination = Destination::builder().bucket(&rule.destination);
    if let Some(key) = &rule.replica_kms_key {
        destination =
            destination.encryption_configuration(EncryptionConfiguration::builder().replica_kms_key_id(key).build());
    }
    let status = |on| {
        if on {
            DeleteMarkerReplicationStatus::Enabled
        } else {
            DeleteMarkerReplicationStatus::Disabled
        }
    };
    let built = aws_sdk_s3::types::ReplicationRule::builder()
        .id(&rule.id)
        .priority(1)
        .status(if rule.enabled {
            ReplicationRuleStatus::Enabled
        } else {
            ReplicationRuleStatus::Disabled
        })
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(status(rule.delete_markers))
                .build(),
        )
        .source_selection_criteria(
            SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(
                    SseKmsEncryptedObjects::builder()
                        .status(if rule.sse_kms_objects {
                            SseKmsEncryptedObjectsStatus::Enabled
                        } else {
                            SseKmsEncryptedObjectsStatus::Disabled
                        })
                        .build()
                        .map_err(invalid_request)?,
                )
                .build(),
        )
        .destination(destination.build().map_err(invalid_request)?)
        .build()
        .map_err(invalid_request)?;
    let config = ReplicationConfiguration::builder()
        .role(role)
        .rules(built)
        .build()
        .map_err(invalid_request)?;
    let sent = clients
        .s3
        .put_bucket_replication()
        .bucket(bucket)
        .replication_configuration(config)
        .send()
        .await;
    check(sent, "S3", "PutBucketReplication", &resource).map(|_| ())
}

/// S3's replication status of an object (COMPLETED, PENDING, FAILED; None: not replicated or gone).
pub async fn replication_status(clients: &AccountClients, bucket: &str, key: &str) -> Result<Option<String>, AwsError> {
    let head = optional(
        clients.s3.head_object().bucket(bucket).key(key).send().await,
        "S3",
        "HeadObject",
        &format!("s3://{bucket}/{key}"),
    )?;
    Ok(head.and_then(|h| h.replication_status).map(|s| s.as_str().to_string()))
}

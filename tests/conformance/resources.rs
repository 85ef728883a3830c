//! Making the scenarios' resources, each tagged with the run and registered for cleanup.

use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::Value;

use super::report::Outcome;
use super::target::{Account, Cleanup, TAG, Target};

/// The error code of a refusal, or the whole error when AWS sent none (a timeout, a network
/// error).
pub fn code_of<E, R>(error: SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error().and_then(|e| e.code()) {
        Some(code) => code.to_string(),
        None => format!("{}", DisplayErrorContext(&error)),
    }
}

/// Accepted, or refused with the code.
pub fn outcome<T, E, R>(result: Result<T, SdkError<E, R>>) -> Outcome
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Outcome::Accepted,
        Err(e) => Outcome::Refused(code_of(e)),
    }
}

/// A setup step that must succeed, as an error naming it.
pub fn step<T, E, R>(what: &str, result: Result<T, SdkError<E, R>>) -> Result<T, String>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    result.map_err(|e| format!("{what}: {}", DisplayErrorContext(&e)))
}

/// A customer managed key of `account` in `region` with `policy` (CreateKey), registered for
/// deletion; its ARN.
pub async fn create_key(
    target: &Target,
    cleanup: &Cleanup,
    account: &Account,
    region: &str,
    policy: &Value,
    what: &str,
) -> Result<String, String> {
    let kms = account.kms(region);
    let tag = aws_sdk_kms::types::Tag::builder()
        .tag_key(TAG)
        .tag_value(&target.suffix)
        .build()
        .map_err(|e| e.to_string())?;
    let created = step(
        &format!("kms:CreateKey ({what})"),
        kms.create_key()
            .description(format!("trailkeeper conformance run {}: {what}", target.suffix))
            .policy(policy.to_string())
            .tags(tag)
            .send()
            .await,
    )?;
    let arn = created
        .key_metadata()
        .map(|m| m.arn().unwrap_or_default().to_string())
        .unwrap_or_default();
    cleanup.key(&kms, &arn);
    Ok(arn)
}

/// A bucket of `account` in `region`, tagged and registered; with Object Lock and a default
/// Governance retention of `lock_days` when given (Governance: the run deletes its objects with
/// BypassGovernanceRetention).
pub async fn create_bucket(
    target: &Target,
    cleanup: &Cleanup,
    account: &Account,
    region: &str,
    name: &str,
    lock_days: Option<i32>,
) -> Result<(), String> {
    let s3 = account.s3(region);
    let mut create = s3.create_bucket().bucket(name);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    if lock_days.is_some() {
        create = create.object_lock_enabled_for_bucket(true);
    }
    step(&format!("s3:CreateBucket {name}"), create.send().await)?;
    cleanup.bucket(&s3, name);
    let tag = Tag::builder()
        .key(TAG)
        .value(&target.suffix)
        .build()
        .map_err(|e| e.to_string())?;
    let tagging = Tagging::builder().tag_set(tag).build().map_err(|e| e.to_string())?;
    step(
        &format!("s3:PutBucketTagging {name}"),
        s3.put_bucket_tagging().bucket(name).tagging(tagging).send().await,
    )?;
    match lock_days {
        Some(days) => {
            let retention = DefaultRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .days(days)
                .build();
            let lock = ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(ObjectLockRule::builder().default_retention(retention).build())
                .build();
            step(
                &format!("s3:PutObjectLockConfiguration {name}"),
                s3.put_object_lock_configuration()
                    .bucket(name)
                    .object_lock_configuration(lock)
                    .send()
                    .await,
            )?;
        }
        None => {
            let versioning = aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build();
            step(
                &format!("s3:PutBucketVersioning {name}"),
                s3.put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(versioning)
                    .send()
                    .await,
            )?;
        }
    }
    Ok(())
}

/// SSE-KMS with `key` by default, with an S3 Bucket Key when `bucket_key` (trailkeeper's
/// buckets have one).
pub async fn encrypt_bucket(
    account: &Account,
    region: &str,
    bucket: &str,
    key: &str,
    bucket_key: bool,
) -> Result<(), String> {
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(key)
        .build()
        .map_err(|e| e.to_string())?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(by_default)
        .bucket_key_enabled(bucket_key)
        .build();
    let configuration = ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| e.to_string())?;
    step(
        &format!("s3:PutBucketEncryption {bucket}"),
        account
            .s3(region)
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(configuration)
            .send()
            .await,
    )
    .map(|_| ())
}

/// PutBucketPolicy: accepted or refused with the code.
pub async fn put_bucket_policy(account: &Account, region: &str, bucket: &str, policy: &Value) -> Outcome {
    outcome(
        account
            .s3(region)
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy.to_string())
            .send()
            .await,
    )
}

/// `policy` without the statements of these Sids; an error when one is missing (the product's
/// policy changed and the check would prove nothing).
pub fn without(mut policy: Value, sids: &[String]) -> Result<Value, String> {
    let statements = policy["Statement"]
        .as_array_mut()
        .ok_or("a policy without statements")?;
    for sid in sids {
        let before = statements.len();
        statements.retain(|s| s["Sid"].as_str() != Some(sid.as_str()));
        if statements.len() == before {
            return Err(format!("the product's policy has no statement {sid}"));
        }
    }
    Ok(policy)
}

/// The size AWS counts: the document as sent (compact JSON), as trailkeeper measures it.
pub fn size(policy: &Value) -> usize {
    policy.to_string().len()
}

/// Sleeps `duration` (nothing on the emulator, where it is zero).
pub async fn pause(duration: std::time::Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

//! The writes of the resources the account engine keeps in more than one place: a KMS key (the
//! trail key, a region's log-group key) and an S3 bucket (the trail's, the access logs', the
//! audit queries' results), one planned action at a time.

use crate::aws::{AccountClients, AwsError, kms, s3};
use crate::desired::{self, BucketEncryption, DesiredBucket, KeySource};
use crate::judge::diff::Action;

/// One write to a key trailkeeper keeps (the trail key, a region's log-group key). `key` is its
/// (id, ARN), set by CreateKey for the writes after it.
pub(crate) async fn apply_key(
    clients: &AccountClients,
    desired: &desired::DesiredKey,
    key: &mut Option<(String, String)>,
    action: &Action,
) -> Result<(), AwsError> {
    let key_id = key.as_ref().map(|(id, _)| id.clone()).unwrap_or_default();
    match (action, &desired.source) {
        (Action::CreateKey, KeySource::Create { description, .. }) => {
            *key = Some(kms::create_key(clients, description, &desired.policy).await?);
            Ok(())
        }
        (Action::CreateAlias, KeySource::Create { alias, .. }) => kms::create_alias(clients, alias, &key_id).await,
        (Action::RestoreKey { state }, _) => kms::restore_key(clients, &key_id, state).await,
        (Action::PutKeyPolicy(policy), _) => kms::put_key_policy(clients, &key_id, policy).await,
        (Action::EnableKeyRotation, _) => kms::enable_rotation(clients, &key_id).await,
        (Action::TagKey(tags), _) => kms::tag_key(clients, &key_id, tags).await,
        _ => Ok(()),
    }
}

pub(crate) async fn apply_bucket(
    clients: &AccountClients,
    bucket: &DesiredBucket,
    key_arn: Option<&str>,
    action: &Action,
) -> Result<(), AwsError> {
    let name = bucket.name.as_str();
    match action {
        Action::CreateBucket { object_lock } => s3::create_bucket(clients, name, *object_lock).await,
        Action::EnableVersioning => s3::enable_versioning(clients, name).await,
        Action::PutObjectLock(retention) | Action::EnableObjectLockInPlace(retention) => {
            s3::put_object_lock(clients, name, retention.as_ref()).await
        }
        Action::PutEncryption => {
            let kms_key = match bucket.encryption {
                BucketEncryption::KmsTrailKey => key_arn,
                BucketEncryption::S3Managed => None,
            };
            s3::put_encryption(clients, name, kms_key).await
        }
        Action::BlockPublicAccess => s3::block_public_access(clients, name).await,
        Action::EnforceBucketOwner => s3::enforce_bucket_owner(clients, name).await,
        Action::PutBucketPolicy(policy) => s3::put_policy(clients, name, policy).await,
        Action::PutAccessLogging {
            target_bucket,
            target_prefix,
        } => s3::put_access_logging(clients, name, target_bucket, target_prefix).await,
        Action::PutLifecycle(lifecycle) => s3::put_lifecycle(clients, name, lifecycle).await,
        Action::PutBucketTags(tags) => s3::put_tags(clients, name, tags).await,
        _ => Ok(()),
    }
}

//! Object Lock turned on in place for an existing trail bucket. S3 has allowed it since November
//! 2023 ("You can enable Object Lock for new or existing buckets", PutObjectLockConfiguration), but
//! it cannot be undone ("After you enable Object Lock on a bucket, you can't disable Object Lock or
//! suspend versioning for that bucket"), and the rule applies "to every new object placed in the
//! specified bucket": the log files written before keep no lock. So it is done only when the
//! baseline says so, acknowledges it, and carries an approval that `trailkeeper diff` reviews.
//! https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectLockConfiguration.html
//! https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-configure.html

use kube::KubeSchema;
use kube::core::{Message, Rule};
use serde::{Deserialize, Serialize};

use super::Approval;

/// Turn Object Lock on in place for the trail bucket, when it exists without it (a bucket
/// trailkeeper did not create): versioning first, then Object Lock with the RetentionPolicy's
/// default retention. It cannot be undone, and the log files written before keep no lock (S3
/// Batch Operations can lock them).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.acknowledgeIrreversible").message("turning Object Lock on cannot be undone, and versioning can never be suspended again: set acknowledgeIrreversible: true to confirm"))]
pub struct LockExistingBucket {
    /// Must be true: Object Lock, once on, stays on, and the bucket's versioning stays Enabled.
    pub acknowledge_irreversible: bool,
    /// The change ticket that approves it, reviewed by `trailkeeper diff` like a shorter retention
    /// (its reference must be new in the change that adds it).
    pub approval: Approval,
}

/// On a LoggingBaseline: only the trail bucket of a Managed trail, outside a LogArchive, is
/// trailkeeper's to lock.
pub fn lock_existing_bucket_of_a_managed_trail() -> Rule {
    Rule::new(
        "!has(self.storage) || !has(self.storage.lockExistingBucket) || (!has(self.storage.archiveRef) && (!has(self.trail) || !has(self.trail.source) || self.trail.source == 'Managed'))",
    )
    .message(Message::Message(
        "storage.lockExistingBucket locks the trail bucket of a Managed trail: an Existing trail's bucket is its owner's, and a LogArchive member has none"
            .to_string(),
    ))
}

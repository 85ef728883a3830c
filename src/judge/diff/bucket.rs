//! A bucket: versioning, Object Lock, encryption, public access, ownership, policy, access
//! logging, lifecycle and tags.

use std::collections::BTreeMap;

use super::{Action, Delta, describe_lifecycle, describe_lock, key_matches, keys, missing_tags};
use crate::aws::s3::ObservedBucket;
use crate::desired::{BucketEncryption, DesiredBucket, Lifecycle, policy};

/// `key_arn` is the trail key's ARN when known (None while the key is still to be created).
pub fn diff_bucket(desired: &DesiredBucket, observed: Option<&ObservedBucket>, key_arn: Option<&str>) -> Delta {
    let mut delta = Delta::default();
    let resource = format!("s3://{}", desired.name);
    let absent;
    let bucket = match observed {
        Some(b) => b,
        None => {
            delta.differs(&resource, "exists", true, false);
            delta.act(Action::CreateBucket {
                object_lock: desired.object_lock,
            });
            absent = bucket_as_created(desired);
            &absent
        }
    };
    let mut diff = BucketDiff {
        desired,
        bucket,
        resource,
        // A bucket still to be created has no drift but "exists": only the writes after CreateBucket.
        report_drift: observed.is_some(),
        delta,
    };
    diff.versioning_and_lock();
    diff.encryption(key_arn);
    diff.access();
    diff.logging_lifecycle_and_tags();
    diff.delta
}

/// What a bucket is right after CreateBucket: Object Lock implies versioning.
fn bucket_as_created(desired: &DesiredBucket) -> ObservedBucket {
    ObservedBucket {
        name: desired.name.clone(),
        object_lock_enabled: desired.object_lock,
        lock_retention: None,
        versioning: if desired.object_lock {
            "Enabled".into()
        } else {
            String::new()
        },
        encryption: None,
        public_access_blocked: false,
        // CreateBucket sets it.
        owner_enforced: true,
        policy: None,
        access_logging: None,
        lifecycle: Lifecycle {
            expire_current_after_days: None,
            expire_noncurrent_after_days: None,
            abort_incomplete_uploads_after_days: 0,
        },
        foreign_lifecycle_rules: Vec::new(),
        tags: BTreeMap::new(),
    }
}

/// One bucket's comparison, built up setting by setting.
struct BucketDiff<'a> {
    desired: &'a DesiredBucket,
    bucket: &'a ObservedBucket,
    resource: String,
    /// False for a bucket still to be created: its settings are written, not reported as drift.
    report_drift: bool,
    delta: Delta,
}

impl BucketDiff<'_> {
    fn differs(&mut self, field: &str, expected: impl std::fmt::Display, actual: impl std::fmt::Display) {
        if self.report_drift {
            self.delta.differs(&self.resource, field, expected, actual);
        }
    }

    fn versioning_and_lock(&mut self) {
        let (desired, bucket) = (self.desired, self.bucket);
        if bucket.versioning != "Enabled" {
            let actual = if bucket.versioning.is_empty() {
                "never enabled"
            } else {
                bucket.versioning.as_str()
            };
            self.differs("versioning", "Enabled", actual);
            self.delta.act(Action::EnableVersioning);
        }
        if desired.object_lock && (!bucket.object_lock_enabled || bucket.lock_retention != desired.lock_retention) {
            let actual = if bucket.object_lock_enabled {
                describe_lock(&bucket.lock_retention)
            } else {
                "disabled".into()
            };
            self.differs("objectLock", describe_lock(&desired.lock_retention), actual);
            self.delta.act(if bucket.object_lock_enabled {
                Action::PutObjectLock(desired.lock_retention.clone())
            } else {
                Action::EnableObjectLockInPlace(desired.lock_retention.clone())
            });
        }
    }

    fn encryption(&mut self, key_arn: Option<&str>) {
        let (desired, bucket) = (self.desired, self.bucket);
        let encryption_ok = match (&desired.encryption, &bucket.encryption) {
            (BucketEncryption::S3Managed, Some(e)) => e.algorithm == "AES256",
            (BucketEncryption::KmsTrailKey, Some(e)) => {
                e.algorithm == "aws:kms"
                    && e.bucket_key
                    && matches!((e.kms_key.as_deref(), key_arn), (Some(k), Some(arn)) if key_matches(k, arn))
            }
            (_, None) => false,
        };
        if encryption_ok {
            return;
        }
        let expected = match &desired.encryption {
            BucketEncryption::S3Managed => "SSE-S3 (AES256)".to_string(),
            BucketEncryption::KmsTrailKey => {
                format!(
                    "SSE-KMS with {} and a bucket key",
                    key_arn.unwrap_or("the trail key (to be created)")
                )
            }
        };
        let actual = bucket.encryption.as_ref().map_or_else(
            || "none".to_string(),
            |e| {
                format!("{} {}", e.algorithm, e.kms_key.as_deref().unwrap_or(""))
                    .trim()
                    .to_string()
            },
        );
        self.differs("encryption", expected, actual);
        self.delta.act(Action::PutEncryption);
    }

    /// Who may reach the bucket: public access, ACLs and the bucket policy.
    fn access(&mut self) {
        let (desired, bucket) = (self.desired, self.bucket);
        if !bucket.public_access_blocked {
            self.differs("publicAccessBlock", "all four settings on", "off or partial");
            self.delta.act(Action::BlockPublicAccess);
        }
        if !bucket.owner_enforced {
            self.differs("objectOwnership", "BucketOwnerEnforced", "ACLs enabled");
            self.delta.act(Action::EnforceBucketOwner);
        }
        if !bucket
            .policy
            .as_ref()
            .is_some_and(|p| policy::equivalent(p, &desired.policy))
        {
            let actual = bucket
                .policy
                .as_ref()
                .map_or_else(|| "(none)".to_string(), |p| p.to_string());
            self.differs("policy", desired.policy.to_string(), actual);
            self.delta.act(Action::PutBucketPolicy(desired.policy.clone()));
        }
    }

    fn logging_lifecycle_and_tags(&mut self) {
        let (desired, bucket) = (self.desired, self.bucket);
        if let Some((target, prefix)) = &desired.access_logging
            && bucket.access_logging.as_ref() != Some(&(target.clone(), prefix.clone()))
        {
            let actual = bucket
                .access_logging
                .as_ref()
                .map_or_else(|| "off".to_string(), |(t, p)| format!("s3://{t}/{p}"));
            self.differs("accessLogging", format!("s3://{target}/{prefix}"), actual);
            self.delta.act(Action::PutAccessLogging {
                target_bucket: target.clone(),
                target_prefix: prefix.clone(),
            });
        }
        if bucket.lifecycle != desired.lifecycle || !bucket.foreign_lifecycle_rules.is_empty() {
            let mut actual = describe_lifecycle(&bucket.lifecycle);
            if !bucket.foreign_lifecycle_rules.is_empty() {
                actual.push_str(&format!(
                    " (other rules: {})",
                    bucket.foreign_lifecycle_rules.join(", ")
                ));
            }
            self.differs("lifecycle", describe_lifecycle(&desired.lifecycle), actual);
            self.delta.act(Action::PutLifecycle(desired.lifecycle.clone()));
        }
        let missing = missing_tags(&desired.tags, &bucket.tags);
        if !missing.is_empty() {
            self.differs("tags", keys(&missing), "missing");
            let mut merged = bucket.tags.clone();
            merged.extend(missing);
            self.delta.act(Action::PutBucketTags(merged));
        }
    }
}

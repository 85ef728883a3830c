//! Every AWS call trailkeeper makes goes through `CallRecorder`: it counts reads and writes per
//! account (status, plan and apply report them) and, for the IAM policy test, can log each
//! operation to the file named by `TRAILKEEPER_CALL_LOG`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Environment variable naming a file to which every operation is appended as `iam-action` lines.
pub const CALL_LOG_ENV: &str = "TRAILKEEPER_CALL_LOG";

/// Counts of the calls made through one recorder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub reads: u32,
    pub writes: u32,
    /// Calls by IAM action (`s3:GetBucketPolicy`), with how many failed. The actions are
    /// interned: each baseline keeps its counts for as long as it exists.
    pub by_action: BTreeMap<&'static str, (u32, u32)>,
}

impl CallCounts {
    /// The calls made since `earlier` (a snapshot of the same recorder).
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        let by_action = self
            .by_action
            .iter()
            .filter_map(|(action, (n, failed))| {
                let (n0, failed0) = earlier.by_action.get(action).copied().unwrap_or_default();
                (n > &n0).then_some((*action, (n - n0, failed - failed0)))
            })
            .collect();
        CallCounts {
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            by_action,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CallRecorder {
    counts: Arc<Mutex<CallCounts>>,
}

/// The file of `TRAILKEEPER_CALL_LOG`, opened once per process (None without the variable).
fn call_log() -> Option<&'static Mutex<std::fs::File>> {
    static LOG: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let path = std::env::var(CALL_LOG_ENV).ok()?;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok()?;
        Some(Mutex::new(file))
    })
    .as_ref()
}

impl CallRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> CallCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, service: &str, operation: &str, failed: bool) {
        let action = crate::runtime::intern::intern(&iam_action(service, operation));
        if let Ok(mut counts) = self.counts.lock() {
            if is_read(operation) {
                counts.reads += 1;
            } else {
                counts.writes += 1;
            }
            let entry = counts.by_action.entry(action).or_default();
            entry.0 += 1;
            if failed {
                entry.1 += 1;
            }
        }
        crate::runtime::metrics::record_aws_call(action, failed);
        if let Some(log) = call_log()
            && let Ok(mut file) = log.lock()
        {
            // Best effort: the log only feeds the IAM policy test. One write per line, so that
            // concurrent appends do not interleave.
            let _ = file.write_all(format!("{action}\n").as_bytes());
        }
    }
}

/// Operations that change nothing in the account. AssumeRole only mints credentials.
pub fn is_read(operation: &str) -> bool {
    ["Get", "Describe", "List", "Head", "Lookup", "BatchGet", "Receive"]
        .iter()
        .any(|p| operation.starts_with(p))
        || operation == "AssumeRole"
}

/// The IAM action that authorises an SDK operation (`S3`, `PutBucketEncryption` ->
/// `s3:PutEncryptionConfiguration`): what an AccessDenied error names and the IAM policy grants.
pub fn iam_action(service: &str, operation: &str) -> String {
    let prefix = match service {
        "S3" | "S3 Control" => "s3",
        "CloudTrail" => "cloudtrail",
        "KMS" => "kms",
        "STS" => "sts",
        "EC2" => "ec2",
        "CloudWatch Logs" => "logs",
        "IAM" => "iam",
        "SSM" => "ssm",
        "Config Service" => "config",
        "EventBridge" => "events",
        "SQS" => "sqs",
        other => return format!("{}:{operation}", other.to_lowercase().replace(' ', "")),
    };
    let action = match (prefix, operation) {
        ("s3", "HeadBucket") | ("s3", "ListObjectsV2") => "ListBucket",
        ("s3", "ListObjectVersions") => "ListBucketVersions",
        ("s3", "GetBucketEncryption") => "GetEncryptionConfiguration",
        ("s3", "PutBucketEncryption") => "PutEncryptionConfiguration",
        ("s3", "GetBucketLifecycleConfiguration") => "GetLifecycleConfiguration",
        ("s3", "PutBucketLifecycleConfiguration") => "PutLifecycleConfiguration",
        ("s3", "DeleteBucketLifecycle") => "PutLifecycleConfiguration",
        ("s3", "GetPublicAccessBlock") => "GetBucketPublicAccessBlock",
        ("s3", "PutPublicAccessBlock") => "PutBucketPublicAccessBlock",
        ("s3", "GetObjectLockConfiguration") => "GetBucketObjectLockConfiguration",
        ("s3", "PutObjectLockConfiguration") => "PutBucketObjectLockConfiguration",
        ("s3", "GetBucketReplication") => "GetReplicationConfiguration",
        ("s3", "PutBucketReplication") => "PutReplicationConfiguration",
        ("s3", "HeadObject") => "GetObject",
        ("sqs", "DeleteMessageBatch") => "DeleteMessage",
        ("sqs", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        (_, op) => op,
    };
    format!("{prefix}:{action}")
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "trailkeeper-call-recorder"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let failed = matches!(context.output_or_error(), Some(Err(_)));
            self.record(metadata.service(), metadata.name(), failed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_told_from_writes_by_operation_name() {
        assert!(is_read("GetBucketPolicy"));
        assert!(is_read("HeadBucket"));
        assert!(is_read("AssumeRole"));
        assert!(is_read("BatchGetNamedQuery"));
        assert!(!is_read("PutBucketPolicy"));
        assert!(!is_read("StartLogging"));
    }

    #[test]
    fn s3_operations_map_to_their_iam_actions() {
        assert_eq!(iam_action("S3", "PutBucketEncryption"), "s3:PutEncryptionConfiguration");
        assert_eq!(iam_action("S3", "HeadBucket"), "s3:ListBucket");
        assert_eq!(
            iam_action("S3", "PutBucketReplication"),
            "s3:PutReplicationConfiguration"
        );
        assert_eq!(iam_action("S3", "HeadObject"), "s3:GetObject");
        assert_eq!(iam_action("CloudTrail", "StartLogging"), "cloudtrail:StartLogging");
        assert_eq!(
            iam_action("CloudWatch Logs", "PutRetentionPolicy"),
            "logs:PutRetentionPolicy"
        );
    }
}

//! What happens in AWS when a LoggingBaseline is deleted. `Retain` (the default): nothing.
//! `Delete`: the managed trail is stopped and deleted, each bucket is deleted only when it holds no
//! objects, and the key trailkeeper created is scheduled for deletion (longest window) only when
//! no log encrypted with it is kept. Idempotent; works when apply never ran.

use std::fmt;

use crate::api::{DeletionPolicy, TrailSource};
use crate::aws::{AccountClients, AwsError, cloudtrail, kms, s3, sts};
use crate::desired::{self, AccountSpecs, KeySource};
use crate::reconcile::account::EngineError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Deleted,
    /// Scheduled for deletion (a key).
    Scheduled,
    /// Did not exist (apply never ran, or a previous cleanup deleted it).
    Absent,
    /// Kept on purpose, with the reason.
    Retained(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub resource: String,
    pub outcome: Outcome,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Deleted => write!(f, "{}: deleted", self.resource),
            Outcome::Scheduled => write!(
                f,
                "{}: scheduled for deletion in {} days (cancel with kms:CancelKeyDeletion)",
                self.resource,
                kms::MAX_DELETION_WINDOW_DAYS
            ),
            Outcome::Absent => write!(f, "{}: already absent", self.resource),
            Outcome::Retained(why) => write!(f, "{}: retained: {why}", self.resource),
        }
    }
}

/// Removes what the deletion policy says may be removed. With `Retain`, makes no AWS call.
pub async fn cleanup(clients: &AccountClients, specs: &AccountSpecs<'_>) -> Result<Vec<Step>, EngineError> {
    let spec = specs.baseline;
    if spec.deletion_policy == DeletionPolicy::Retain {
        return Ok(Vec::new());
    }
    let identity = sts::caller_identity(clients).await.map_err(EngineError::Aws)?;
    if identity.account != spec.account_id {
        return Err(EngineError::WrongAccount {
            expected: spec.account_id.clone(),
            actual: identity.account,
            arn: identity.arn,
        });
    }
    let aws = |e: AwsError| EngineError::Aws(e);
    let mut steps = Vec::new();
    if spec.trail.source == TrailSource::Existing {
        // The account's or Organization's trail is not trailkeeper's to delete.
        return Ok(steps);
    }
    let trail_arn = desired::trail_arn(spec);
    let trail = cloudtrail::observe_trail(clients, &spec.trail.name)
        .await
        .map_err(aws)?;
    let outcome = match trail {
        Some(t) => {
            cloudtrail::stop_logging(clients, &t.arn).await.map_err(aws)?;
            cloudtrail::delete_trail(clients, &t.arn).await.map_err(aws)?;
            Outcome::Deleted
        }
        None => Outcome::Absent,
    };
    steps.push(Step {
        resource: trail_arn,
        outcome,
    });

    // Only the trail bucket holds logs encrypted with the key (access logs are SSE-S3).
    let mut encrypted_logs_kept = false;
    let trail_bucket = desired::trail_bucket_name(spec);
    for bucket in [trail_bucket.clone(), desired::access_log_bucket_name(spec)] {
        let outcome = match s3::exists(clients, &bucket).await.map_err(aws)? {
            false => Outcome::Absent,
            true if s3::holds_objects(clients, &bucket).await.map_err(aws)? => {
                encrypted_logs_kept |= bucket == trail_bucket;
                Outcome::Retained("it holds objects: trailkeeper never deletes logs".into())
            }
            true => {
                s3::delete_bucket(clients, &bucket).await.map_err(aws)?;
                Outcome::Deleted
            }
        };
        steps.push(Step {
            resource: format!("s3://{bucket}"),
            outcome,
        });
    }

    let key_source = desired::account(specs).key.source;
    if let KeySource::Create { .. } = &key_source {
        let outcome = match kms::observe_key(clients, &key_source).await.map_err(aws)? {
            None => Outcome::Absent,
            Some(k) if k.state == "PendingDeletion" => Outcome::Scheduled,
            Some(_) if encrypted_logs_kept => Outcome::Retained("retained logs are encrypted with it".into()),
            Some(k) => {
                kms::schedule_deletion(clients, &k.key_id).await.map_err(aws)?;
                Outcome::Scheduled
            }
        };
        steps.push(Step {
            resource: format!("kms:{}", desired::KEY_ALIAS),
            outcome,
        });
    }
    Ok(steps)
}

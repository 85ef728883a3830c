//! What happens in AWS when a LoggingBaseline is deleted. `Retain` (the default): nothing.
//! `Delete`: the managed trail is stopped and deleted, each bucket is deleted only when it holds no
//! objects, and the key trailkeeper created is scheduled for deletion (longest window) only when
//! no log encrypted with it is kept; the audit queries' table, database (when it holds no other
//! table), workgroup (when it holds no query of people's own) and empty results bucket go too.
//! Idempotent; works when apply never ran.

use std::fmt;

use crate::api::{DeletionPolicy, TrailSource};
use crate::aws::{AccountClients, AwsError, athena, cloudtrail, glue, iam, kms, s3, sts};
use crate::desired::{self, AccountSpecs, KeySource};
use crate::engine::report::EngineError;

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
    let mut steps = cleanup_forwarding(clients, specs).await.map_err(aws)?;
    if spec.audit_queries.enabled {
        steps.extend(cleanup_audit_queries(clients, specs).await.map_err(aws)?);
    }
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
        let step = delete_empty_bucket(clients, &bucket).await.map_err(aws)?;
        encrypted_logs_kept |= bucket == trail_bucket && matches!(step.outcome, Outcome::Retained(_));
        steps.push(step);
    }

    let key_source = desired::account(specs).key.source;
    if let KeySource::Create { .. } = &key_source {
        let outcome = match kms::observe_key(clients, &key_source, None).await.map_err(aws)? {
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

/// Deletes the bucket unless it holds objects.
/// The forwarding of tampering events: the rule of each region (the kept ones and the primary,
/// and those the controller's sweep keeps a rule in: every region judged) and the role
/// EventBridge forwards as. Whether or not events are on now: a baseline may have had them.
async fn cleanup_forwarding(clients: &AccountClients, specs: &AccountSpecs<'_>) -> Result<Vec<Step>, AwsError> {
    use crate::desired::events::{FORWARD_ROLE, FORWARD_ROLE_POLICY, FORWARD_RULE};
    let listed = &specs.baseline.compliance_regions;
    let enabled = if listed.is_empty() {
        Some(crate::aws::ec2::enabled_regions(clients).await?)
    } else {
        None
    };
    let kept = desired::regional::regions(specs, enabled.as_deref());
    let mut regions = super::cis_evidence::judged_regions(&kept, listed, enabled.as_deref());
    regions.push(clients.region.clone());
    regions.sort();
    regions.dedup();
    let mut steps = Vec::new();
    for region in regions {
        let outcome = match super::forwarding::delete_forwarding_rule(&clients.for_region(&region)).await? {
            true => Outcome::Deleted,
            false => Outcome::Absent,
        };
        steps.push(Step {
            resource: format!("events:{region}:rule/{FORWARD_RULE}"),
            outcome,
        });
    }
    let outcome = match iam::delete_role(clients, FORWARD_ROLE, &[FORWARD_ROLE_POLICY]).await? {
        true => Outcome::Deleted,
        false => Outcome::Absent,
    };
    steps.push(Step {
        resource: format!("iam:role/{FORWARD_ROLE}"),
        outcome,
    });
    Ok(steps)
}

async fn delete_empty_bucket(clients: &AccountClients, bucket: &str) -> Result<Step, AwsError> {
    let outcome = match s3::exists(clients, bucket).await? {
        false => Outcome::Absent,
        true if s3::holds_objects(clients, bucket).await? => {
            Outcome::Retained("it holds objects: trailkeeper never deletes logs".into())
        }
        true => {
            s3::delete_bucket(clients, bucket).await?;
            Outcome::Deleted
        }
    };
    Ok(Step {
        resource: format!("s3://{bucket}"),
        outcome,
    })
}

/// The audit queries' resources hold no logs (the table only points at them), but the workgroup
/// and database may hold people's own queries and tables: those are kept.
async fn cleanup_audit_queries(clients: &AccountClients, specs: &AccountSpecs<'_>) -> Result<Vec<Step>, AwsError> {
    let audit = &specs.baseline.audit_queries;
    let mut steps = Vec::new();
    let work_group = &audit.work_group;
    let outcome = match athena::observe_work_group(clients, work_group).await? {
        None => Outcome::Absent,
        Some(_) => {
            let queries = athena::list_named_queries(clients, work_group).await?;
            if queries
                .iter()
                .all(|q| q.query.name.starts_with(desired::athena::NAMED_QUERY_PREFIX))
            {
                athena::delete_work_group(clients, work_group).await?;
                Outcome::Deleted
            } else {
                Outcome::Retained("it holds named queries that are not trailkeeper's".into())
            }
        }
    };
    steps.push(Step {
        resource: format!("athena:workgroup/{work_group}"),
        outcome,
    });
    let outcome = match glue::delete_table(clients, &audit.database, &audit.table).await? {
        true => Outcome::Deleted,
        false => Outcome::Absent,
    };
    steps.push(Step {
        resource: format!("glue:{}.{}", audit.database, audit.table),
        outcome,
    });
    let outcome = match glue::delete_database_if_empty(clients, &audit.database).await? {
        None => Outcome::Absent,
        Some(true) => Outcome::Deleted,
        Some(false) => Outcome::Retained("it holds tables that are not trailkeeper's".into()),
    };
    steps.push(Step {
        resource: format!("glue:{}", audit.database),
        outcome,
    });
    steps.push(delete_empty_bucket(clients, &desired::athena::results_bucket_name(specs.baseline)).await?);
    Ok(steps)
}

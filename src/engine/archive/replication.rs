//! The archive's replica: its key and bucket in the replica's region, the role S3 replicates
//! with, and the replication rule on the archive bucket, applied in that order so that the rule
//! never points at a replica S3 would fail every object into. Then the proof: what S3 reports of
//! the newest log file (PENDING, COMPLETED, FAILED), and S3 Batch Replication of what live
//! replication never brings over (objects older than the rule, FAILED ones), one job per need.

use super::super::account::{AccountReconcile, observe_bucket_if_managed};
use super::super::regional::{RegionOutcome, ServiceRole, reconcile_service_role};
use super::super::report::{Component, ComponentState, LastApplied};
use super::super::storage::retention_guard;
use super::super::writes::{apply_bucket, apply_key};
use crate::api::{BatchReplicationStatus, LogArchiveSpec};
use crate::aws::s3::{self, ReplicationRule};
use crate::aws::{AwsError, ErrorKind, kms, s3control};
use crate::desired::archive::{
    self, BATCH_REPLICATION_ROLE, BATCH_REPLICATION_ROLE_POLICY, DesiredReplication, REPLICATION_ROLE,
    REPLICATION_ROLE_POLICY, REPLICATION_RULE_ID,
};
use crate::desired::partition;
use crate::judge::diff::{self, Delta};

/// The replica as this reconcile left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationReport {
    pub bucket: String,
    pub key_arn: Option<String>,
    pub role_arn: String,
    /// trailkeeper's rule is the one in force on the archive bucket.
    pub rule_in_force: bool,
    /// `{status} {key}` of the newest delivered log file (S3's x-amz-replication-status).
    pub newest_object: Option<String>,
    /// The need for S3 Batch Replication and its job, to keep in status across reconciles.
    pub batch: Option<BatchReplicationStatus>,
}

/// What the reconcile knows before it reads the replica: the newest log file delivered into the
/// archive (its key and when), and the Batch Replication the last reconcile left.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub newest_log_file: Option<(String, i64)>,
    pub batch_replication: Option<BatchReplicationStatus>,
}

/// ReplicationReady reasons: S3 reports an object FAILED; one still PENDING past the archive's
/// delivery alarm; a Batch Replication job running; one that failed (a person must look).
pub const REPLICATION_FAILING: &str = "ReplicationFailing";
pub const REPLICATION_LATE: &str = "ReplicationLate";
pub const BATCH_REPLICATION_RUNNING: &str = "BatchReplicationRunning";
pub const BATCH_REPLICATION_FAILED: &str = "BatchReplicationFailed";

const C: Component = Component::Replication;

impl AccountReconcile<'_> {
    /// Reconciles the replica once the archive bucket and key are in line (`source_key`).
    pub(super) async fn reconcile_replication(
        &mut self,
        spec: &LogArchiveSpec,
        desired: &DesiredReplication,
        source_key: Option<&str>,
        observed: Observed,
        last_applied: &LastApplied,
    ) -> Option<ReplicationReport> {
        let source_ready = matches!(
            self.report.components.get(&Component::Storage),
            Some(ComponentState::InSync | ComponentState::Repaired)
        );
        let Some(source_key) = source_key.filter(|_| source_ready) else {
            self.merge_state(C, ComponentState::Waiting(Component::Storage));
            return None;
        };
        let replica_clients = self.clients.for_region(&desired.region);
        let mut report = ReplicationReport {
            bucket: desired.bucket.name.clone(),
            key_arn: None,
            role_arn: desired.role_arn.clone(),
            rule_in_force: false,
            newest_object: None,
            batch: observed.batch_replication.clone(),
        };

        // The replica's key.
        let observed_key = match kms::observe_key(&replica_clients, &desired.key.source, None).await {
            Ok(k) => k,
            Err(e) => {
                self.merge_state(C, ComponentState::Failed(e));
                return Some(report);
            }
        };
        let delta = diff::diff_key(&desired.key, observed_key.as_ref());
        let resource = format!("kms:{} ({})", archive::REPLICA_KEY_ALIAS, desired.region);
        let mut key = observed_key.map(|k| (k.key_id, k.arn));
        let actions = self.begin(C, &resource, &delta);
        let mut result = Ok(());
        for action in actions {
            let step = apply_key(&replica_clients, &desired.key, &mut key, &action).await;
            result = self.record(&resource, &action, step);
            if result.is_err() {
                break;
            }
        }
        if !self.finish(C, result) {
            return Some(report);
        }
        report.key_arn = key.map(|(_, arn)| arn);

        // The replica bucket: locked as the archive is, its lock never weakened without approval.
        let observed_bucket = match observe_bucket_if_managed(&replica_clients, Some(&desired.bucket)).await {
            Ok(b) => b,
            Err(e) => {
                self.merge_state(C, ComponentState::Failed(e));
                return Some(report);
            }
        };
        let mut delta = diff::diff_bucket(&desired.bucket, observed_bucket.as_ref(), report.key_arn.as_deref());
        let held = retention_guard(
            &mut Delta::default(),
            &mut delta,
            None,
            observed_bucket.as_ref(),
            self.specs.retention.approval.as_ref().map(|a| a.reference.as_str()),
            last_applied,
        );
        let resource = format!("s3://{}", desired.bucket.name);
        let actions = self.begin(C, &resource, &delta);
        let wrote_all = actions.len() == delta.actions.len();
        let mut result = Ok(());
        for action in actions {
            let step = apply_bucket(&replica_clients, &desired.bucket, report.key_arn.as_deref(), &action).await;
            result = self.record(&resource, &action, step);
            if result.is_err() {
                break;
            }
        }
        if !self.finish(C, result) {
            return Some(report);
        }
        // An existing replica left without Object Lock (the guard holds an in-place lock back) is
        // never replicated into.
        let locked = observed_bucket.as_ref().is_none_or(|b| b.object_lock_enabled);
        if let Some(message) = held {
            let message = if locked {
                format!("replica: {message}")
            } else {
                format!(
                    "replica: {message}; it is not replicated into until it has Object Lock (turned on by its owner: s3api put-object-lock-configuration)"
                )
            };
            self.merge_state(C, ComponentState::ApprovalRequired(message));
        }
        // What the replica is now: as desired when every write was made, else as observed.
        let replica_ready = if !locked {
            false
        } else if delta.actions.is_empty() || (self.write && wrote_all) {
            true
        } else {
            observed_bucket
                .as_ref()
                .is_some_and(|b| b.object_lock_enabled && b.versioning == "Enabled")
        };

        // The role S3 replicates with.
        let Some(replica_key) = report.key_arn.clone() else {
            return Some(report);
        };
        let role = ServiceRole {
            name: REPLICATION_ROLE,
            policy_name: REPLICATION_ROLE_POLICY,
            arn: desired.role_arn.clone(),
            description: "trailkeeper: lets S3 replicate the log archive into its replica",
            trust: archive::replication_role_trust(spec),
            permissions: archive::replication_role_policy(spec, source_key, &replica_key),
            // Only S3 may assume it, for this bucket; its policy is kept each reconcile.
            boundary: None,
            tags: crate::desired::resource_tags(self.specs.baseline),
        };
        let mut outcome = RegionOutcome {
            region: "global".into(),
            ..Default::default()
        };
        let mut role_result = reconcile_service_role(&self.clients, &role, C, self.write, &mut outcome).await;
        if role_result.is_ok() {
            // The role S3 Batch Operations replicates the archive's older and FAILED objects with.
            let batch_role = ServiceRole {
                name: BATCH_REPLICATION_ROLE,
                policy_name: BATCH_REPLICATION_ROLE_POLICY,
                arn: archive::batch_replication_role_arn(spec),
                description: "trailkeeper: lets S3 Batch Operations replicate what live replication of the log archive did not",
                trust: archive::batch_replication_role_trust(spec),
                permissions: archive::batch_replication_role_policy(spec),
                boundary: None,
                tags: crate::desired::resource_tags(self.specs.baseline),
            };
            role_result = reconcile_service_role(&self.clients, &batch_role, C, self.write, &mut outcome).await;
        }
        self.absorb_changes(outcome);
        if let Err(e) = role_result {
            self.merge_state(C, ComponentState::Failed(e));
            return Some(report);
        }

        // The rule, last. S3 accepts a rule into a replica without Object Lock and fails every
        // object of the locked archive (DstBucketObjectLockConfigMissing): it is never sent
        // before the replica is locked and versioned.
        let source = archive::bucket_name(spec);
        let desired_rule = ReplicationRule {
            id: REPLICATION_RULE_ID.into(),
            enabled: true,
            destination: format!("arn:{}:s3:::{}", partition(&desired.region), desired.bucket.name),
            replica_kms_key: Some(replica_key),
            sse_kms_objects: true,
            delete_markers: false,
        };
        let observed_rule = match s3::observe_replication(&self.clients, &source).await {
            Ok(o) => o,
            Err(e) => {
                self.merge_state(C, ComponentState::Failed(e));
                return Some(report);
            }
        };
        let in_force = observed_rule.as_ref().is_some_and(|o| {
            o.role == desired.role_arn && o.rule.as_ref() == Some(&desired_rule) && o.other_rules.is_empty()
        });
        let resource = format!("s3://{source} replication");
        let mut put_rule = false;
        if !in_force {
            let mut delta = Delta::default();
            delta.differs(
                &resource,
                "replication",
                describe(Some(&desired_rule), &desired.role_arn, &[]),
                observed_rule.map_or("(none)".into(), |o| describe(o.rule.as_ref(), &o.role, &o.other_rules)),
            );
            delta.act(diff::Action::PutReplication);
            if !locked {
                // Held back by the guard: ApprovalRequired already says why and what to do.
                self.report.drift.extend(delta.drift);
                return Some(report);
            }
            if !replica_ready {
                let e = AwsError {
                    kind: ErrorKind::Invalid,
                    action: "s3:PutReplicationConfiguration".into(),
                    resource: resource.clone(),
                    code: "ReplicaNotLocked".into(),
                    message: format!(
                        "the replica bucket {} is not versioned with Object Lock on: S3 would fail every object of the locked archive into it (DstBucketObjectLockConfigMissing), so the rule was not sent",
                        desired.bucket.name
                    ),
                };
                self.report.drift.extend(delta.drift);
                self.merge_state(C, ComponentState::Failed(e));
                return Some(report);
            }
            let actions = self.begin(C, &resource, &delta);
            let mut result = Ok(());
            for action in actions {
                let step = s3::put_replication(&self.clients, &source, &desired.role_arn, &desired_rule).await;
                result = self.record(&resource, &action, step);
            }
            if !self.finish(C, result) {
                return Some(report);
            }
            report.rule_in_force = self.write;
            put_rule = self.write;
        } else {
            self.merge_state(C, ComponentState::InSync);
            report.rule_in_force = true;
        }
        if report.rule_in_force {
            let late_after = i64::from(spec.delivery_alarm_after_minutes) * 60;
            self.prove_replication(
                spec,
                &source,
                put_rule,
                observed.newest_log_file,
                late_after,
                &mut report,
            )
            .await;
        }
        Some(report)
    }

    /// What S3 reports of the newest log file, and S3 Batch Replication of what live replication
    /// never brings over: the objects already in the archive when the rule was put ("Amazon S3
    /// doesn't replicate objects retroactively") and FAILED ones. One job per need, created only
    /// when a need is found and never twice for it; a job is observed until it ends.
    /// https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-what-is-isnot-replicated.html
    /// https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-batch-replication-batch.html
    async fn prove_replication(
        &mut self,
        spec: &LogArchiveSpec,
        source: &str,
        put_rule: bool,
        newest_log_file: Option<(String, i64)>,
        late_after: i64,
        report: &mut ReplicationReport,
    ) {
        let now = jiff::Timestamp::now();
        let (mut failed, mut late) = (None, None);
        if let Some((key, delivered_at)) = &newest_log_file {
            match s3::replication_status(&self.clients, source, key).await {
                Ok(status) => {
                    match status.as_deref() {
                        Some("FAILED") => failed = Some(key.clone()),
                        Some("PENDING") if now.as_second() - delivered_at > late_after => {
                            late = Some((key.clone(), (now.as_second() - delivered_at) / 60))
                        }
                        _ => {}
                    }
                    report.newest_object = status.map(|s| format!("{s} {key}"));
                }
                Err(e) => tracing::warn!(bucket = source, key, error = %e, "replication status not read"),
            }
        }

        // A new need, unless one is still being answered.
        let busy = report
            .batch
            .as_ref()
            .is_some_and(|b| b.job_id.is_none() || !job_finished(b.job_status.as_deref()));
        let mut need = None;
        if put_rule && !busy {
            match s3::holds_objects(&self.clients, source).await {
                Ok(true) => {
                    need = Some(format!(
                        "the archive held objects when the replication rule was put ({now}), which S3 does not replicate retroactively"
                    ))
                }
                Ok(false) => {}
                Err(e) => self.merge_state(C, ComponentState::Failed(e)),
            }
        }
        if need.is_none() && !busy {
            need = failed
                .as_ref()
                .map(|key| format!("S3 reported replication FAILED for {key}"));
        }
        if let Some(need) = need
            && report.batch.as_ref().map(|b| &b.need) != Some(&need)
        {
            report.batch = Some(BatchReplicationStatus {
                need,
                needed_since: now.round(jiff::Unit::Second).unwrap_or(now).to_string(),
                ..Default::default()
            });
        }

        // The job: created once per need, then observed until it ends.
        let batch_role = archive::batch_replication_role_arn(spec);
        if let Some(batch) = report.batch.as_mut() {
            let resource = format!("s3://{source} batch replication");
            if batch.job_id.is_none() {
                let mut delta = Delta::default();
                delta.differs(&resource, "batch replication", &batch.need, "(no job)");
                delta.act(diff::Action::CreateBatchReplication);
                let actions = self.begin(C, &resource, &delta);
                let mut result = Ok(());
                for action in actions {
                    let token = job_token(&spec.account_id, &batch.need);
                    let description = format!("trailkeeper: {}", batch.need);
                    let source_arn = format!("arn:{}:s3:::{source}", partition(&spec.region));
                    let created = s3control::create_batch_replication(
                        &self.clients,
                        &spec.account_id,
                        &source_arn,
                        &batch_role,
                        &token,
                        &description,
                    )
                    .await;
                    let step = created.map(|id| {
                        batch.job_id = Some(id);
                        batch.created_at = Some(now.round(jiff::Unit::Second).unwrap_or(now).to_string());
                        batch.job_status = Some("New".into());
                    });
                    result = self.record(&resource, &action, step);
                }
                if !self.finish(C, result) {
                    return;
                }
            } else if let Some(id) = batch.job_id.clone()
                && !job_finished(batch.job_status.as_deref())
            {
                match s3control::describe_job(&self.clients, &spec.account_id, &id).await {
                    Ok(Some(job)) => {
                        batch.job_status = Some(job.status.clone());
                        batch.objects_replicated = job.tasks_succeeded;
                        batch.objects_failed = job.tasks_failed;
                        batch.finished_at = job.terminated_at.clone();
                        batch.failure = (!job.failures.is_empty()).then(|| job.failures.join("; "));
                    }
                    Ok(None) => {
                        batch.job_status = Some("Unknown".into());
                        batch.failure = Some(format!("S3 no longer knows job {id}"));
                    }
                    Err(e) => {
                        self.merge_state(C, ComponentState::Failed(e));
                        return;
                    }
                }
            }
        }

        if let Some(state) = replication_state(report, failed.as_deref(), late, &batch_role) {
            self.merge_state(C, state);
        }
    }
}

/// A Batch Replication job S3 will not change any more (`Unknown`: S3 no longer knows it).
pub fn job_finished(status: Option<&str>) -> bool {
    matches!(status, Some("Complete" | "Failed" | "Cancelled" | "Unknown"))
}

/// CreateJob's idempotency token for a need: the same need sent again is the same job.
fn job_token(account: &str, need: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{account}\n{need}").as_bytes());
    hex::encode(&digest.as_ref()[..16])
}

/// ReplicationReady as S3 reports it, when it is not True: an object FAILED, a job running or
/// failed, the newest object PENDING past the alarm; each message names what to check.
fn replication_state(
    report: &ReplicationReport,
    failed: Option<&str>,
    late: Option<(String, i64)>,
    batch_role: &str,
) -> Option<ComponentState> {
    let check = format!(
        "check the role {} (its trust admits s3.amazonaws.com; s3:GetObjectVersionForReplication, s3:GetObjectVersionAcl, s3:GetObjectRetention, s3:GetObjectLegalHold on the archive, s3:ReplicateObject on the replica, kms:Decrypt of the archive's key, kms:GenerateDataKey and kms:Decrypt of the replica's key), both key policies, and the replica's Object Lock and versioning",
        report.role_arn
    );
    let job = report.batch.as_ref().and_then(|b| {
        let id = b.job_id.as_deref()?;
        Some((b, id))
    });
    if let Some(key) = failed {
        let then = match job {
            Some((b, id)) if !job_finished(b.job_status.as_deref()) => {
                format!(
                    "; S3 Batch Replication job {id} ({}) brings it over",
                    b.job_status.as_deref().unwrap_or("New")
                )
            }
            Some((b, id)) => format!(
                "; S3 Batch Replication job {id} ended {} and it is still FAILED: fix the cause, then re-run the job",
                b.job_status.as_deref().unwrap_or_default()
            ),
            None => String::new(),
        };
        return Some(ComponentState::NotEffective {
            reason: REPLICATION_FAILING,
            message: format!("S3 reports replication FAILED for {key}: {check}{then}"),
        });
    }
    if let Some((b, id)) = job {
        let status = b.job_status.as_deref().unwrap_or("New");
        if !job_finished(Some(status)) {
            return Some(ComponentState::NotEffective {
                reason: BATCH_REPLICATION_RUNNING,
                message: format!(
                    "S3 Batch Replication job {id} ({status}, created {}) replicates what live replication did not: {}",
                    b.created_at.as_deref().unwrap_or_default(),
                    b.need
                ),
            });
        }
        if status != "Complete" || b.objects_failed > 0 {
            return Some(ComponentState::NotEffective {
                reason: BATCH_REPLICATION_FAILED,
                message: format!(
                    "S3 Batch Replication job {id} ended {status} at {} with {} objects not replicated{}: {check}; and the job's role {batch_role} (its trust admits batchoperations.s3.amazonaws.com; s3:InitiateReplication, s3:GetReplicationConfiguration, s3:PutInventoryConfiguration on the archive); then run the job again (S3 console, Batch Operations: clone job {id})",
                    b.finished_at.as_deref().unwrap_or_default(),
                    b.objects_failed,
                    b.failure.as_deref().map(|f| format!(" ({f})")).unwrap_or_default()
                ),
            });
        }
    }
    late.map(|(key, minutes)| ComponentState::NotEffective {
        reason: REPLICATION_LATE,
        message: format!("{key} has been PENDING replication for {minutes} minutes: {check}"),
    })
}

/// A replication configuration as people read it in a plan.
fn describe(rule: Option<&ReplicationRule>, role: &str, others: &[String]) -> String {
    let mut text = match rule {
        Some(r) => format!(
            "rule {} {} into {} (SSE-KMS objects {}, replica key {}, delete markers {}) as {role}",
            r.id,
            if r.enabled { "enabled" } else { "disabled" },
            r.destination,
            if r.sse_kms_objects { "replicated" } else { "skipped" },
            r.replica_kms_key.as_deref().unwrap_or("(none)"),
            if r.delete_markers {
                "replicated"
            } else {
                "not replicated"
            },
        ),
        None => format!("no trailkeeper rule, as {role}"),
    };
    if !others.is_empty() {
        text.push_str(&format!("; other rules {}", others.join(", ")));
    }
    text
}

//! The archive's replica: its key and bucket in the replica's region, the role S3 replicates
//! with, and the replication rule on the archive bucket, applied in that order so that S3 never
//! receives a configuration it would refuse.

use super::super::account::{AccountReconcile, observe_bucket_if_managed};
use super::super::regional::{RegionOutcome, ServiceRole, reconcile_service_role};
use super::super::report::{Component, ComponentState, LastApplied};
use super::super::storage::retention_guard;
use super::super::writes::{apply_bucket, apply_key};
use crate::api::LogArchiveSpec;
use crate::aws::s3::{self, ReplicationRule};
use crate::aws::{AwsError, ErrorKind, kms};
use crate::desired::archive::{
    self, DesiredReplication, REPLICATION_ROLE, REPLICATION_ROLE_POLICY, REPLICATION_RULE_ID,
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
}

const C: Component = Component::Replication;

impl AccountReconcile<'_> {
    /// Reconciles the replica once the archive bucket and key are in line (`source_key`).
    pub(super) async fn reconcile_replication(
        &mut self,
        spec: &LogArchiveSpec,
        desired: &DesiredReplication,
        source_key: Option<&str>,
        newest_log_file: Option<&str>,
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
        let role_result = reconcile_service_role(&self.clients, &role, C, self.write, &mut outcome).await;
        self.absorb_changes(outcome);
        if let Err(e) = role_result {
            self.merge_state(C, ComponentState::Failed(e));
            return Some(report);
        }

        // The rule, last: S3 refuses it unless both buckets are versioned and, the archive being
        // locked, the replica is locked too; checked here so that it is never attempted then.
        let source = archive::bucket_name(spec);
        let desired_rule = ReplicationRule {
            id: REPLICATION_RULE_ID.into(),
            enabled: true,
            destination: format!("arn:{}:s3:::{}", partition(&desired.region), desired.bucket.name),
            replica_kms_key: Some(replica_key),
            sse_kms_objects: true,
            delete_markers: false,
        };
        let observed = match s3::observe_replication(&self.clients, &source).await {
            Ok(o) => o,
            Err(e) => {
                self.merge_state(C, ComponentState::Failed(e));
                return Some(report);
            }
        };
        let in_force = observed.as_ref().is_some_and(|o| {
            o.role == desired.role_arn && o.rule.as_ref() == Some(&desired_rule) && o.other_rules.is_empty()
        });
        let resource = format!("s3://{source} replication");
        if !in_force {
            let mut delta = Delta::default();
            delta.differs(
                &resource,
                "replication",
                describe(Some(&desired_rule), &desired.role_arn, &[]),
                observed.map_or("(none)".into(), |o| describe(o.rule.as_ref(), &o.role, &o.other_rules)),
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
                        "the replica bucket {} is not versioned with Object Lock on, which S3 requires of the destination of a locked bucket: nothing was attempted",
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
        } else {
            self.merge_state(C, ComponentState::InSync);
            report.rule_in_force = true;
        }
        if let Some(key) = newest_log_file {
            match s3::replication_status(&self.clients, &source, key).await {
                Ok(status) => report.newest_object = status.map(|s| format!("{s} {key}")),
                Err(e) => tracing::warn!(bucket = source, key, error = %e, "replication status not read"),
            }
        }
        Some(report)
    }
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

//! One reconcile of one account: observe everything it manages, diff against the desired state,
//! apply only the difference (in dependency order: key, access-log bucket, trail bucket, trail),
//! and report what it saw and did.

use std::time::Instant;

use aws_types::SdkConfig;
use futures::StreamExt;

use super::regional;
use crate::api::Mode;
use crate::aws::cloudtrail::{self, ObservedTrail};
use crate::aws::kms;
use crate::aws::organizations::{self, Organization};
use crate::aws::s3::{self, ObservedBucket};
use crate::aws::sts;
use crate::aws::{AccountClients, AwsError, CallRecorder, ErrorKind};
use crate::desired::archive::ArchiveTarget;
use crate::desired::events::Forwarding;
use crate::desired::{self, AccountSpecs, DesiredAccount, DesiredBucket, DesiredTrail, athena};
use crate::judge::diff::{Action, Delta};
use crate::judge::evidence::OtherRegions;

pub use super::report::{AccountReport, Change, Component, ComponentState, EngineError, LastApplied, RunMode};

/// Regions of one account reconciled at once.
pub(super) const REGION_CONCURRENCY: usize = 4;

pub(super) struct AccountReconcile<'a> {
    pub(super) clients: AccountClients,
    pub(super) desired: DesiredAccount,
    pub(super) specs: &'a AccountSpecs<'a>,
    pub(super) write: bool,
    /// The RetentionPolicy carries an approval that is new: retention may be shortened.
    pub(super) approved: bool,
    /// The trail as observed before any write (for the audit queries' table location).
    pub(super) observed_trail: Option<ObservedTrail>,
    /// For a managed Organization trail: the account's Organization as read this reconcile.
    pub(super) organization: Option<Result<Option<Organization>, AwsError>>,
    /// Where tampering is forwarded (the controller's central bus), when events are on.
    pub(super) forwarding: Option<Forwarding>,
    /// A member of a LogArchive: where its trail delivers, as the archive last reported.
    pub(super) archive: Option<ArchiveTarget>,
    pub(super) report: AccountReport,
}

/// Where the account-wide controls (CIS 3.3, 3.6, 3.7) are read by a reconcile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EvidenceScope {
    /// The regions the baseline keeps (plan, apply, the controller): a reconcile reads what it may
    /// write; the controller's sweep judges the other regions.
    #[default]
    KeptRegions,
    /// Every region judged, read now (`report`).
    EveryRegion,
}

/// How one account is reconciled.
#[derive(Clone, Debug)]
pub struct ReconcileOptions {
    /// Plan (read only) or apply (writes in Enforce mode).
    pub mode: RunMode,
    /// What the last reconcile applied, as its status reports it.
    pub last_applied: LastApplied,
    /// Where tampering events are forwarded (the controller's central bus), when events are on.
    pub forwarding: Option<Forwarding>,
    /// For a baseline with `storage.archiveRef`: its LogArchive as last reported (None: not found
    /// or without a key yet; the trail then waits).
    pub archive: Option<ArchiveTarget>,
    /// Where the account-wide controls are read.
    pub evidence: EvidenceScope,
}

impl ReconcileOptions {
    /// `mode`, with nothing known of a last reconcile and no forwarding of tampering events.
    pub fn new(mode: RunMode) -> Self {
        ReconcileOptions {
            mode,
            last_applied: LastApplied::default(),
            forwarding: None,
            archive: None,
            evidence: EvidenceScope::default(),
        }
    }
}

/// The clients of the account a baseline names: its primary region, its credentials.
pub fn account_clients(base: &SdkConfig, specs: &AccountSpecs<'_>) -> AccountClients {
    let spec = specs.baseline;
    AccountClients::new(
        base,
        &spec.primary_region,
        spec.credentials.as_ref(),
        CallRecorder::new(),
    )
}

/// Reconciles (or plans) one account with `clients` (from `account_clients`, a cache of clients,
/// or mocked services). Never panics; every failure is in the report.
pub async fn reconcile_account(
    clients: AccountClients,
    specs: &AccountSpecs<'_>,
    options: ReconcileOptions,
) -> AccountReport {
    let ReconcileOptions {
        mode,
        last_applied,
        forwarding,
        archive,
        evidence,
    } = options;
    let started = Instant::now();
    let spec = specs.baseline;
    let calls = clients.calls.clone();
    let calls_before = calls.snapshot();
    let mut desired = desired::account(specs);
    let archive = archive.filter(|_| spec.storage.archive_ref.is_some());
    if let Some(target) = &archive {
        desired::archive::with_archive(&mut desired, target);
    }
    let report = AccountReport::new(&spec.account_id, &spec.primary_region, spec.mode);
    let write = mode == RunMode::Apply && spec.mode == Mode::Enforce;
    let approved = specs
        .retention
        .approval
        .as_ref()
        .is_some_and(|a| last_applied.approval_reference.as_deref() != Some(&a.reference));
    let mut run = AccountReconcile {
        approved,
        clients,
        desired,
        specs,
        write,
        observed_trail: None,
        organization: None,
        forwarding,
        archive,
        report,
    };
    // Boxed so that callers on small-stack threads (tokio workers, tests) can hold it.
    Box::pin(run.reconcile(&last_applied, evidence)).await;
    let mut report = run.report;
    report.calls = calls.snapshot().since(&calls_before);
    report.duration = started.elapsed();
    report
}

impl AccountReconcile<'_> {
    /// Whether the credentials resolve to the account: nothing is read or written otherwise.
    pub(super) async fn check_identity(&mut self) -> bool {
        match sts::caller_identity(&self.clients).await {
            Err(e) => {
                self.report.error = Some(EngineError::Aws(e));
                false
            }
            Ok(identity) if identity.account != self.desired.account_id => {
                self.report.error = Some(EngineError::WrongAccount {
                    expected: self.desired.account_id.clone(),
                    actual: identity.account.clone(),
                    arn: identity.arn.clone(),
                });
                self.report.identity = Some(identity);
                false
            }
            Ok(identity) => {
                self.report.identity = Some(identity);
                true
            }
        }
    }

    async fn reconcile(&mut self, last_applied: &LastApplied, evidence: EvidenceScope) {
        if !self.check_identity().await {
            return;
        }
        self.report.regions = self.kept_regions().await;

        if matches!(&self.desired.trail, DesiredTrail::Managed(s) if s.organization) {
            let found = organizations::describe(&self.clients).await;
            if let Ok(Some(o)) = &found {
                desired::with_organization_trail(&mut self.desired, self.specs, &o.id, &o.management_account);
            }
            self.organization = Some(found);
        }
        let storage = self.desired.storage.clone();
        let (trail_ref, foreign_trail) = match &self.desired.trail {
            DesiredTrail::Managed(s) => (s.name.clone(), false),
            DesiredTrail::Existing { arn, .. } => (
                arn.clone(),
                arn.split(':')
                    .nth(4)
                    .is_some_and(|owner| owner != self.desired.account_id),
            ),
        };
        let c = &self.clients;
        let (key, access_log_bucket, trail_bucket, trail) = tokio::join!(
            Box::pin(kms::observe_key(
                c,
                &self.desired.key.source,
                last_applied.key_arn.as_deref()
            )),
            Box::pin(observe_bucket_if_managed(
                c,
                storage.as_ref().map(|s| &s.access_log_bucket)
            )),
            Box::pin(observe_bucket_if_managed(c, storage.as_ref().map(|s| &s.trail_bucket))),
            Box::pin(async {
                if foreign_trail {
                    cloudtrail::observe_foreign_trail(c, &trail_ref).await
                } else {
                    cloudtrail::observe_trail(c, &trail_ref).await
                }
            }),
        );

        // Beside AWS Control Tower's trail, a trail trailkeeper will not create needs no key or
        // buckets either: nothing is created until a person decides.
        let refused = match (&self.desired.trail, &trail) {
            (DesiredTrail::Managed(settings), Ok(None)) => {
                let settings = settings.clone();
                Box::pin(self.control_tower_refusal(&settings)).await
            }
            _ => false,
        };
        if refused {
            for component in [Component::Key, Component::Storage, Component::Retention] {
                self.report
                    .components
                    .insert(component, ComponentState::Waiting(Component::Trail));
            }
        }
        let key_arn = if refused { None } else { self.reconcile_key(key).await };
        let storage_ok = match &storage {
            Some(_) if refused => false,
            Some(storage) => {
                self.report.bucket_name = Some(storage.trail_bucket.name.clone());
                self.report.access_log_bucket_name = Some(storage.access_log_bucket.name.clone());
                self.reconcile_storage(
                    storage,
                    access_log_bucket,
                    trail_bucket,
                    key_arn.as_deref(),
                    last_applied,
                )
                .await
            }
            None => {
                self.report
                    .components
                    .insert(Component::Retention, ComponentState::NotManaged);
                match self.archive_waiting() {
                    Some(message) => {
                        self.report
                            .components
                            .insert(Component::Storage, ComponentState::WaitingForArchive(message));
                        false
                    }
                    None => {
                        self.report.bucket_name = self.archive.as_ref().map(|a| a.bucket.clone());
                        self.report
                            .components
                            .insert(Component::Storage, ComponentState::NotManaged);
                        true
                    }
                }
            }
        };
        self.observed_trail = trail.as_ref().ok().and_then(|t| t.clone());
        let trail_ok = trail.is_ok() && !refused;
        if !refused {
            self.reconcile_trail(trail, key_arn.as_deref(), storage_ok).await;
        }
        if let Some(late) = self.archive.as_ref().and_then(|a| a.late.clone()) {
            // The archive's own listing of this account's path: what arrives there is the proof.
            self.report.delivery.push(crate::judge::delivery::DeliveryFinding {
                component: "log-archive".into(),
                age_seconds: None,
                error: None,
                problem: Some(late),
            });
            self.report.delivery_observed = true;
        }
        Box::pin(self.reconcile_monitoring()).await;
        Box::pin(self.judge_duplicate_trails()).await;
        self.reconcile_audit_queries(key_arn.as_deref(), trail_ok).await;
        self.reconcile_regions().await;
        self.read_account_wide_evidence(evidence).await;
    }

    /// The regions this baseline keeps: with `regions: ["*"]`, every region enabled for the
    /// account (one DescribeRegions; when it fails, the primary region alone, and FlowLogs says
    /// why the others are not kept).
    async fn kept_regions(&mut self) -> Vec<String> {
        if !crate::desired::regional::keeps_every_region(self.specs.baseline) {
            return crate::desired::regional::regions(self.specs, None);
        }
        match crate::aws::ec2::enabled_regions(&self.clients).await {
            Ok(enabled) => crate::desired::regional::regions(self.specs, Some(&enabled)),
            Err(e) => {
                self.report
                    .details
                    .entry(Component::FlowLogs)
                    .or_default()
                    .push(format!(
                        "regions: [\"*\"]: the enabled regions could not be listed: {e}"
                    ));
                self.merge_state(Component::FlowLogs, ComponentState::Failed(e));
                crate::desired::regional::regions(self.specs, None)
            }
        }
    }

    /// CIS 3.3, 3.6 and 3.7: read in the regions kept (sharing what the parts read there), and
    /// for `report` in every region judged. A reconcile leaves the others to the sweep.
    async fn read_account_wide_evidence(&mut self, scope: EvidenceScope) {
        let spec = self.specs.baseline;
        let kept = &self.report.regions;
        let (regions, other) = match scope {
            EvidenceScope::KeptRegions => {
                let complete = super::cis_evidence::kept_covers_judged(self.specs, kept);
                let other = if complete {
                    OtherRegions::None
                } else {
                    OtherRegions::NotSwept
                };
                (Ok(kept.clone()), other)
            }
            EvidenceScope::EveryRegion => {
                let listed = &spec.compliance_regions;
                let enabled = if listed.is_empty() && !crate::desired::regional::keeps_every_region(spec) {
                    super::cis_evidence::enabled_regions(&self.clients).await.map(Some)
                } else {
                    Ok(None)
                };
                let judged =
                    enabled.map(|enabled| super::cis_evidence::judged_regions(kept, listed, enabled.as_deref()));
                (judged, OtherRegions::None)
            }
        };
        self.report.evidence.regions = Some(match regions {
            Ok(regions) => Ok(super::cis_evidence::gather(&self.clients, &regions, &self.report.known).await),
            Err(e) => Err(e),
        });
        self.report.evidence.other_regions = other;
    }

    /// For a member of a LogArchive: why its trail may not be created or changed yet (the archive
    /// is unknown, or its policies do not admit this trail: CloudTrail would refuse it).
    fn archive_waiting(&self) -> Option<String> {
        let archive_ref = self.specs.baseline.storage.archive_ref.as_ref()?;
        let trail = desired::trail_arn(self.specs.baseline);
        match &self.archive {
            None => Some(format!(
                "the LogArchive {} has no bucket and key yet (or does not exist): the trail is created once it admits {trail}",
                archive_ref.name
            )),
            Some(target) if !target.admitted => Some(format!(
                "the LogArchive {} does not admit {trail} yet: the trail is created once its bucket and key policies do",
                target.name
            )),
            Some(_) => None,
        }
    }

    /// Records the delta's drift and returns the actions to apply now: none when nothing differs
    /// or nothing may be written (then the actions are recorded as pending).
    pub(super) fn begin(&mut self, component: Component, resource: &str, delta: &Delta) -> Vec<Action> {
        self.report.drift.extend(delta.drift.iter().cloned());
        let state = if delta.actions.is_empty() {
            ComponentState::InSync
        } else if !self.write {
            self.report.pending.extend(delta.actions.iter().map(|a| Change {
                resource: resource.to_string(),
                action: a.to_string(),
            }));
            ComponentState::Drifted
        } else {
            if delta.drift.iter().any(|d| d.field == "exists") {
                self.report.created.insert(component);
            }
            ComponentState::Repaired
        };
        self.merge_state(component, state);
        if self.write { delta.actions.clone() } else { Vec::new() }
    }

    pub(super) fn record(
        &mut self,
        resource: &str,
        action: &Action,
        step: Result<(), AwsError>,
    ) -> Result<(), AwsError> {
        let change = Change {
            resource: resource.to_string(),
            action: action.to_string(),
        };
        match &step {
            Ok(()) => {
                tracing::info!(account = %self.desired.account_id, resource, action = %change.action, "applied");
                self.report.applied.push(change);
            }
            Err(e) => tracing::warn!(account = %self.desired.account_id, resource, error = %e, "apply failed"),
        }
        step
    }

    /// Folds the outcome of a resource's writes into its component; false when they failed.
    pub(super) fn finish(&mut self, component: Component, result: Result<(), AwsError>) -> bool {
        match result {
            Ok(()) => true,
            Err(e) => {
                self.merge_state(component, ComponentState::Failed(e));
                false
            }
        }
    }

    /// A component made of several resources keeps its worst state.
    pub(super) fn merge_state(&mut self, component: Component, state: ComponentState) {
        let merged = match self.report.components.remove(&component) {
            Some(previous) if previous.severity() >= state.severity() => previous,
            _ => state,
        };
        self.report.components.insert(component, merged);
    }

    /// Athena over the trail's logs, in the primary region, once the key and the trail are known.
    async fn reconcile_audit_queries(&mut self, key_arn: Option<&str>, trail_observed: bool) {
        let specs = self.specs;
        let spec = specs.baseline;
        if !spec.audit_queries.enabled {
            return;
        }
        if spec.storage.archive_ref.is_some() {
            // A member's logs are in its archive, queried there (the archive's auditQueries).
            self.merge_state(Component::AuditQueries, ComponentState::NotManaged);
            return;
        }
        let managed = matches!(self.desired.trail, DesiredTrail::Managed(_));
        let waiting = if !trail_observed || (!managed && self.observed_trail.is_none()) {
            Some(Component::Trail)
        } else if managed && key_arn.is_none() && self.write {
            Some(Component::Key)
        } else {
            None
        };
        if let Some(on) = waiting {
            self.merge_state(Component::AuditQueries, ComponentState::Waiting(on));
            return;
        }
        // Checked before any call: nothing invalid reaches AWS.
        let (location, key, organization) = self.audit_target(key_arn);
        let results_bucket = athena::results_bucket_name(spec);
        let log_buckets = [
            Some(location.bucket.as_str()),
            self.desired.storage.as_ref().map(|s| s.access_log_bucket.name.as_str()),
        ];
        let invalid = if log_buckets.contains(&Some(results_bucket.as_str())) {
            // Results expire: a bucket that holds logs must never get that lifecycle.
            Some((
                format!("s3://{results_bucket}"),
                "auditQueries.resultsBucketName names a bucket that holds logs: give the query results a bucket of their own",
            ))
        } else if !managed && key.is_none() {
            Some((
                format!("Athena workgroup {}", spec.audit_queries.work_group),
                "the existing trail is not encrypted with a KMS key, and query results must be: \
                 set spec.encryption.kmsKeyArn to the key for the results",
            ))
        } else {
            None
        };
        if let Some((resource, message)) = invalid {
            let e = AwsError {
                kind: ErrorKind::Invalid,
                action: "trailkeeper:ValidateSpec".into(),
                resource,
                code: "InvalidSpec".into(),
                message: message.into(),
            };
            self.merge_state(Component::AuditQueries, ComponentState::Failed(e));
            return;
        }
        let location = if organization {
            // Read once per reconcile: a managed Organization trail read it already.
            let known = match &self.organization {
                Some(Ok(found)) => Some(Ok(found.as_ref().map(|o| o.id.clone()))),
                _ => None,
            };
            let organization_id = match known {
                Some(id) => id,
                None => organizations::organization_id(&self.clients).await,
            };
            match organization_id {
                Ok(organization_id) => athena::TrailLocation {
                    organization_id,
                    ..location
                },
                Err(e) => {
                    self.merge_state(Component::AuditQueries, ComponentState::Failed(e));
                    return;
                }
            }
        } else {
            location
        };
        let mut outcome = regional::RegionOutcome {
            region: spec.primary_region.clone(),
            ..Default::default()
        };
        let status = Box::pin(super::audit_queries::reconcile_audit_queries(
            &self.clients,
            specs,
            self.write,
            key.as_deref(),
            &location.bucket,
            &[athena::cloudtrail_table(spec, &location)],
            &mut outcome,
        ))
        .await;
        self.report.audit_queries = Some(status);
        self.absorb(outcome);
    }

    /// Where the trail delivers, the key the query results are encrypted with, and whether the
    /// trail is an Organization trail (its keys then carry the Organization's id). A managed trail
    /// is known from the desired state (it may have just been created); an existing one as observed.
    fn audit_target(&self, key_arn: Option<&str>) -> (athena::TrailLocation, Option<String>, bool) {
        match (&self.desired.trail, self.observed_trail.as_ref()) {
            (DesiredTrail::Managed(settings), _) => (
                athena::TrailLocation {
                    bucket: settings.bucket.clone().unwrap_or_default(),
                    key_prefix: settings.key_prefix.clone(),
                    organization_id: None,
                },
                key_arn.map(str::to_string),
                settings.organization,
            ),
            (DesiredTrail::Existing { .. }, trail) => (
                athena::TrailLocation {
                    bucket: trail.and_then(|t| t.bucket.clone()).unwrap_or_default(),
                    key_prefix: trail.and_then(|t| t.key_prefix.clone()),
                    organization_id: None,
                },
                self.specs
                    .baseline
                    .encryption
                    .kms_key_arn
                    .clone()
                    .or_else(|| trail.and_then(|t| t.kms_key.clone())),
                trail.is_some_and(|t| t.organization),
            ),
        }
    }

    fn absorb(&mut self, outcome: regional::RegionOutcome) {
        self.report.delivery.extend(outcome.delivery.clone());
        self.absorb_changes(outcome);
    }

    /// The drift, writes and component states of an outcome (not its evidence).
    pub(super) fn absorb_changes(&mut self, outcome: regional::RegionOutcome) {
        self.report.drift.extend(outcome.drift);
        self.report.pending.extend(outcome.pending);
        self.report.applied.extend(outcome.applied);
        self.report.created.extend(outcome.created);
        self.report.retry_soon |= outcome.retry_soon;
        for (component, state, detail) in outcome.parts {
            self.merge_state(component, state);
            self.report.details.entry(component).or_default().push(detail);
        }
    }

    /// The regional parts, in every region concurrently (the flow log role, global, first).
    async fn reconcile_regions(&mut self) {
        let specs = self.specs;
        let regions = self.report.regions.clone();
        let needs_role = matches!(
            crate::desired::regional::flow_logs(specs).map(|f| f.target),
            Some(crate::desired::regional::FlowLogTarget::CloudWatchLogs { .. })
        );
        let mut outcomes = Vec::new();
        let mut role_ok = true;
        if needs_role {
            let mut outcome = regional::RegionOutcome {
                region: "global".into(),
                ..Default::default()
            };
            if let Err(e) = regional::reconcile_flow_log_role(&self.clients, specs, self.write, &mut outcome).await {
                role_ok = false;
                outcome.parts.push((
                    Component::FlowLogs,
                    ComponentState::Failed(e.clone()),
                    format!("IAM: {e}"),
                ));
            }
            outcomes.push(outcome);
        }
        if specs.baseline.config_rules.create_recorder {
            let mut outcome = regional::RegionOutcome {
                region: "global".into(),
                ..Default::default()
            };
            if let Err(e) = regional::reconcile_config_role(&self.clients, self.write, &mut outcome).await {
                outcome.parts.push((
                    Component::ConfigRules,
                    ComponentState::Failed(e.clone()),
                    format!("IAM: {e}"),
                ));
            }
            outcomes.push(outcome);
        }
        let approved = self.approved;
        let write = self.write && role_ok;
        // Bounded: a baseline of 30 regions times the controller's concurrency would otherwise
        // run hundreds of region reconciles (and build their clients) at once.
        let account = &self.clients;
        let key_arn = self.report.key_arn.as_deref();
        let runs: Vec<futures::future::BoxFuture<'_, _>> = regions
            .iter()
            .map(|region| {
                let run = async move {
                    let clients = account.for_region(region);
                    regional::reconcile_region(&clients, specs, key_arn, write, approved).await
                };
                Box::pin(run) as futures::future::BoxFuture<'_, _>
            })
            .collect();
        let regional: Vec<_> = futures::stream::iter(runs).buffered(REGION_CONCURRENCY).collect().await;
        outcomes.extend(regional);
        for mut outcome in outcomes {
            let known = std::mem::take(&mut outcome.known);
            self.report
                .known
                .entry(outcome.region.clone())
                .or_default()
                .merge(known);
            self.absorb(outcome);
        }
        if let Some(forwarding) = self.forwarding.clone() {
            for outcome in self.reconcile_forwarding(&forwarding, regions).await {
                self.absorb_changes(outcome);
            }
        }
    }
}

/// A bucket the baseline manages (None: its storage is not managed, nothing to read).
pub(super) async fn observe_bucket_if_managed(
    clients: &AccountClients,
    bucket: Option<&DesiredBucket>,
) -> Result<Option<ObservedBucket>, AwsError> {
    match bucket {
        Some(b) => {
            let reads = s3::Reads {
                object_lock: b.object_lock,
                access_logging: b.access_logging.is_some(),
            };
            s3::observe_bucket(clients, &b.name, reads).await
        }
        None => Ok(None),
    }
}

//! One reconcile of one account: observe everything it manages, diff against the desired state,
//! apply only the difference (in dependency order: key, access-log bucket, trail bucket, trail),
//! and report what it saw and did.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_types::SdkConfig;
use futures::StreamExt;

use crate::judge::diff::{self, Action, Delta};

/// Regions of one account reconciled at once.
const REGION_CONCURRENCY: usize = 4;
const CLOUDTRAIL_PRINCIPAL: &str = "cloudtrail.amazonaws.com";
use super::regional;
use crate::api::Mode;
use crate::aws::cloudtrail::{self, ObservedTrail};
use crate::aws::kms::{self, ObservedKey};
use crate::aws::organizations::{self, Organization};
use crate::aws::s3::{self, ObservedBucket};
use crate::aws::sts;
use crate::aws::{AccountClients, AwsError, CallCounts, CallRecorder, ErrorKind, iam};
use crate::desired::events::Forwarding;
use crate::desired::{self, AccountSpecs, DesiredAccount, DesiredBucket, DesiredTrail, KeySource, athena};

pub use super::report::{AccountReport, Change, Component, ComponentState, EngineError, PreviousApproval, RunMode};
pub(crate) use super::writes::{apply_bucket, apply_key};

struct Run<'a> {
    clients: AccountClients,
    desired: DesiredAccount,
    specs: &'a AccountSpecs<'a>,
    write: bool,
    /// The RetentionPolicy carries an approval that is new: retention may be shortened.
    approved: bool,
    /// The trail as observed before any write (for the audit queries' table location).
    observed_trail: Option<ObservedTrail>,
    /// For a managed Organization trail: the account's Organization as read this reconcile.
    organization: Option<Result<Option<Organization>, AwsError>>,
    /// Where tampering is forwarded (the controller's central bus), when events are on.
    forwarding: Option<Forwarding>,
    report: AccountReport,
}

/// Reconciles (or plans) one account. Never panics; every failure is in the report.
pub async fn run_account(
    base: &SdkConfig,
    specs: &AccountSpecs<'_>,
    mode: RunMode,
    previous: &PreviousApproval,
) -> AccountReport {
    let spec = specs.baseline;
    let clients = AccountClients::new(
        base,
        &spec.primary_region,
        spec.credentials.as_ref(),
        CallRecorder::new(),
    );
    run_account_with(clients, specs, mode, previous).await
}

/// `run_account` with clients made by the caller (a cache of clients, or mocked services).
pub async fn run_account_with(
    clients: AccountClients,
    specs: &AccountSpecs<'_>,
    mode: RunMode,
    previous: &PreviousApproval,
) -> AccountReport {
    run_account_forwarding(clients, specs, mode, previous, None).await
}

/// `run_account_with`, keeping the forwarding of tampering events to `forwarding` too.
pub async fn run_account_forwarding(
    clients: AccountClients,
    specs: &AccountSpecs<'_>,
    mode: RunMode,
    previous: &PreviousApproval,
    forwarding: Option<Forwarding>,
) -> AccountReport {
    let started = Instant::now();
    let spec = specs.baseline;
    let calls = clients.calls.clone();
    let calls_before = calls.snapshot();
    let desired = desired::account(specs);
    let report = AccountReport {
        account_id: spec.account_id.clone(),
        region: spec.primary_region.clone(),
        mode: spec.mode,
        identity: None,
        drift: Vec::new(),
        not_compliant: Vec::new(),
        pending: Vec::new(),
        applied: Vec::new(),
        components: BTreeMap::new(),
        details: BTreeMap::new(),
        error: None,
        key_arn: None,
        trail_arn: None,
        bucket_name: None,
        access_log_bucket_name: None,
        audit_queries: None,
        delivery: Vec::new(),
        delivery_observed: false,
        evidence: Default::default(),
        calls: CallCounts::default(),
        duration: Duration::ZERO,
    };
    let write = mode == RunMode::Apply && spec.mode == Mode::Enforce;
    let approved = specs
        .retention
        .approval
        .as_ref()
        .is_some_and(|a| previous.reference.as_deref() != Some(&a.reference));
    let mut run = Run {
        approved,
        clients,
        desired,
        specs,
        write,
        observed_trail: None,
        organization: None,
        forwarding,
        report,
    };
    // Boxed so that callers on small-stack threads (tokio workers, tests) can hold it.
    Box::pin(run.reconcile(previous)).await;
    let mut report = run.report;
    report.calls = calls.snapshot().since(&calls_before);
    report.duration = started.elapsed();
    report
}

impl Run<'_> {
    async fn reconcile(&mut self, previous: &PreviousApproval) {
        match sts::caller_identity(&self.clients).await {
            Err(e) => {
                self.report.error = Some(EngineError::Aws(e));
                return;
            }
            Ok(identity) if identity.account != self.desired.account_id => {
                self.report.error = Some(EngineError::WrongAccount {
                    expected: self.desired.account_id.clone(),
                    actual: identity.account.clone(),
                    arn: identity.arn.clone(),
                });
                self.report.identity = Some(identity);
                return;
            }
            Ok(identity) => self.report.identity = Some(identity),
        }

        if matches!(&self.desired.trail, DesiredTrail::Managed(s) if s.organization) {
            let found = organizations::describe(&self.clients).await;
            let account = &self.desired.account_id;
            if let (Ok(Some(o)), Some(storage)) = (&found, self.desired.storage.as_mut())
                && &o.management_account == account
            {
                storage.trail_bucket.policy = desired::trail_bucket_policy(self.specs.baseline, Some(&o.id));
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
                previous.key_arn.as_deref()
            )),
            Box::pin(observe_optional_bucket(
                c,
                storage.as_ref().map(|s| &s.access_log_bucket)
            )),
            Box::pin(observe_optional_bucket(c, storage.as_ref().map(|s| &s.trail_bucket))),
            Box::pin(async {
                if foreign_trail {
                    cloudtrail::observe_foreign_trail(c, &trail_ref).await
                } else {
                    cloudtrail::observe_trail(c, &trail_ref).await
                }
            }),
        );

        let key_arn = self.reconcile_key(key).await;
        let storage_ok = match &storage {
            Some(storage) => {
                self.report.bucket_name = Some(storage.trail_bucket.name.clone());
                self.report.access_log_bucket_name = Some(storage.access_log_bucket.name.clone());
                self.reconcile_storage(storage, access_log_bucket, trail_bucket, key_arn.as_deref(), previous)
                    .await
            }
            None => {
                self.report
                    .components
                    .insert(Component::Storage, ComponentState::NotManaged);
                self.report
                    .components
                    .insert(Component::Retention, ComponentState::NotManaged);
                true
            }
        };
        self.observed_trail = trail.as_ref().ok().and_then(|t| t.clone());
        let trail_ok = trail.is_ok();
        self.reconcile_trail(trail, key_arn.as_deref(), storage_ok).await;
        self.reconcile_audit_queries(key_arn.as_deref(), trail_ok).await;
        self.reconcile_regions().await;
    }

    /// Returns the key ARN when the key exists (or was just created).
    async fn reconcile_key(&mut self, observed: Result<Option<ObservedKey>, AwsError>) -> Option<String> {
        let desired = self.desired.key.clone();
        if desired.source == KeySource::None {
            self.report
                .components
                .insert(Component::Key, ComponentState::NotManaged);
            return None;
        }
        let observed = match observed {
            Ok(o) => o,
            Err(e) => {
                self.report.components.insert(Component::Key, ComponentState::Failed(e));
                return None;
            }
        };
        let delta = diff::diff_key(&desired, observed.as_ref());
        let resource = delta.drift.first().map(|d| d.resource.clone()).unwrap_or_default();
        let rotation_before = observed.as_ref().is_some_and(|k| k.rotation);
        let mut key = observed.map(|k| (k.key_id, k.arn));
        let actions = self.begin(Component::Key, &resource, &delta);
        let mut result = Ok(());
        for action in actions {
            let step = apply_key(&self.clients, &desired, &mut key, &action).await;
            result = self.record(&resource, &action, step);
            if result.is_err() {
                break;
            }
        }
        let ok = self.finish(Component::Key, result);
        let arn = key.map(|(_, arn)| arn);
        self.report.key_arn = arn.clone();
        // What holds now: rotation as read, or as just enabled.
        let rotation = rotation_before || (ok && self.write && desired.rotation);
        self.report.evidence.key = Some(arn.clone().map(|arn| (arn, rotation)));
        if ok { arn } else { None }
    }

    async fn reconcile_storage(
        &mut self,
        storage: &desired::DesiredStorage,
        access_log_bucket: Result<Option<ObservedBucket>, AwsError>,
        trail_bucket: Result<Option<ObservedBucket>, AwsError>,
        key_arn: Option<&str>,
        previous: &PreviousApproval,
    ) -> bool {
        let key_ready = !matches!(
            self.report.components.get(&Component::Key),
            Some(ComponentState::Failed(_)) | Some(ComponentState::Waiting(_))
        );
        let (access_log_bucket, trail_bucket) = match (access_log_bucket, trail_bucket) {
            (Ok(a), Ok(t)) => (a, t),
            (Err(e), _) | (_, Err(e)) => {
                self.report
                    .components
                    .insert(Component::Storage, ComponentState::Failed(e));
                self.report
                    .components
                    .insert(Component::Retention, ComponentState::Waiting(Component::Storage));
                return false;
            }
        };
        if !key_ready && self.write {
            self.report
                .components
                .insert(Component::Storage, ComponentState::Waiting(Component::Key));
            self.report
                .components
                .insert(Component::Retention, ComponentState::Waiting(Component::Key));
            return false;
        }
        let access_delta = diff::diff_bucket(&storage.access_log_bucket, access_log_bucket.as_ref(), key_arn);
        let mut trail_delta = diff::diff_bucket(&storage.trail_bucket, trail_bucket.as_ref(), key_arn);
        let mut access_delta = access_delta;
        let blocked = retention_guard(
            &mut access_delta,
            &mut trail_delta,
            access_log_bucket.as_ref(),
            trail_bucket.as_ref(),
            self.specs.retention.approval.as_ref().map(|a| a.reference.as_str()),
            previous,
        );
        let retention_changes = [&access_delta, &trail_delta].iter().any(|d| {
            d.actions
                .iter()
                .any(|a| matches!(a, Action::PutLifecycle(_) | Action::PutObjectLock(_)))
        });

        let mut ok = true;
        for (bucket, delta, kms_key) in [
            (&storage.access_log_bucket, access_delta, None),
            (&storage.trail_bucket, trail_delta, key_arn),
        ] {
            let resource = format!("s3://{}", bucket.name);
            let actions = self.begin(Component::Storage, &resource, &delta);
            let mut result = Ok(());
            for action in actions {
                let step = apply_bucket(&self.clients, bucket, kms_key, &action).await;
                result = self.record(&resource, &action, step);
                if result.is_err() {
                    break;
                }
            }
            ok = self.finish(Component::Storage, result);
            if !ok {
                break;
            }
        }
        let logging_now = if ok && self.write {
            storage
                .trail_bucket
                .access_logging
                .as_ref()
                .map(|(target, _)| target.clone())
        } else {
            trail_bucket
                .as_ref()
                .and_then(|b| b.access_logging.as_ref().map(|(target, _)| target.clone()))
        };
        self.report.evidence.trail_bucket = Some(crate::judge::compliance::BucketEvidence {
            name: storage.trail_bucket.name.clone(),
            exists: trail_bucket.is_some() || (ok && self.write),
            access_logs_to: logging_now,
        });
        let retention_state = match (blocked, ok) {
            (Some(message), _) => ComponentState::ApprovalRequired(message),
            (None, false) => ComponentState::Waiting(Component::Storage),
            (None, true) if retention_changes && !self.write => ComponentState::Drifted,
            (None, true) if retention_changes => ComponentState::Repaired,
            (None, true) => ComponentState::InSync,
        };
        self.report.components.insert(Component::Retention, retention_state);
        ok
    }

    async fn reconcile_trail(
        &mut self,
        observed: Result<Option<ObservedTrail>, AwsError>,
        key_arn: Option<&str>,
        storage_ok: bool,
    ) {
        let observed = match observed {
            Ok(o) => o,
            Err(e) => {
                self.report
                    .components
                    .insert(Component::Trail, ComponentState::Failed(e));
                return;
            }
        };
        let foreign = observed.as_ref().is_some_and(|t| !t.details_observable);
        if let Some((trail, delivery)) = observed.as_ref().and_then(|t| t.delivery.as_ref().map(|d| (t, d))) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let alarm_after = i64::from(self.specs.trail_policy.delivery_alarm_after_minutes) * 60;
            self.report.delivery.extend(crate::judge::delivery::trail(
                delivery,
                trail.logging,
                trail.log_file_validation,
                trail.cloud_watch_logs.is_some(),
                now,
                alarm_after,
            ));
            self.report.delivery_observed = true;
        }
        let (settings, manage) = match &self.desired.trail {
            DesiredTrail::Managed(s) => (s.clone(), None),
            // Another account's trail: nothing of it can be changed from here.
            DesiredTrail::Existing { expected, .. } if foreign => (expected.clone(), Some(Vec::new())),
            DesiredTrail::Existing { expected, manage, .. } => (expected.clone(), Some(manage.clone())),
        };
        if foreign {
            self.report.details.entry(Component::Trail).or_default().push(
                "the trail belongs to another account (an Organization trail seen from a member): its settings \
                 were verified, its logging status and deliveries read (GetTrailStatus on its ARN); its event \
                 selectors and tags are not observable from this account (check them in the trail owner's account)"
                    .to_string(),
            );
        }
        self.report.trail_arn = observed
            .as_ref()
            .map(|t| t.arn.clone())
            .or_else(|| Some(settings.arn.clone()));
        if manage.is_none() && self.write && (!storage_ok || key_arn.is_none()) {
            let waiting_for = if key_arn.is_none() {
                Component::Key
            } else {
                Component::Storage
            };
            self.report
                .components
                .insert(Component::Trail, ComponentState::Waiting(waiting_for));
            return;
        }
        let mut delta = diff::diff_trail(&settings, observed.as_ref(), key_arn, manage.as_deref());
        if manage.is_none() && settings.organization {
            match self.organization_trail_prerequisites(&settings.arn).await {
                Ok(prerequisites) => delta.prepend(prerequisites),
                Err(e) => {
                    self.report
                        .components
                        .insert(Component::Trail, ComponentState::Failed(e));
                    return;
                }
            }
        }
        let not_compliant = delta.unrepairable.clone();
        let mut arn = observed
            .as_ref()
            .map(|t| t.arn.clone())
            .unwrap_or_else(|| settings.arn.clone());
        let resource = settings.arn.clone();
        let actions = self.begin(Component::Trail, &resource, &delta);
        let mut result = Ok(());
        for action in actions {
            let c = &self.clients;
            let step = match &action {
                Action::CreateTrail => cloudtrail::create_trail(c, &settings, key_arn.unwrap_or_default())
                    .await
                    .map(|created| arn = created),
                Action::UpdateTrail(u) => cloudtrail::update_trail(c, &arn, u).await,
                Action::PutEventSelectors(s) => cloudtrail::put_event_selectors(c, &arn, s).await,
                Action::PutInsightSelectors(i) => cloudtrail::put_insight_selectors(c, &arn, i).await,
                Action::AddTrailTags(t) => cloudtrail::add_tags(c, &arn, t).await,
                Action::StartLogging => cloudtrail::start_logging(c, &arn).await,
                Action::EnableCloudTrailTrustedAccess => {
                    organizations::enable_trusted_access(c, CLOUDTRAIL_PRINCIPAL).await
                }
                Action::CreateCloudTrailServiceRole => {
                    iam::ensure_service_linked_role(c, diff::CLOUDTRAIL_SERVICE_ROLE, CLOUDTRAIL_PRINCIPAL)
                        .await
                        .map(|_| ())
                }
                _ => Ok(()),
            };
            result = self.record(&resource, &action, step);
            if result.is_err() {
                break;
            }
        }
        let ok = self.finish(Component::Trail, result);
        let repaired_all = ok && self.write && manage.is_none() && not_compliant.is_empty();
        self.report.evidence.trail = match (&observed, repaired_all) {
            // What holds now: the settings just written.
            (_, true) => Some(crate::judge::compliance::TrailEvidence::of(
                &settings,
                &arn,
                true,
                key_arn.map(str::to_string),
            )),
            (Some(t), false) => Some(crate::judge::compliance::TrailEvidence::observed(t)),
            (None, false) => None,
        };
        if ok && !not_compliant.is_empty() {
            self.report
                .components
                .insert(Component::Trail, ComponentState::NotCompliant);
        }
        self.report.not_compliant.extend(not_compliant);
        self.report.trail_arn = Some(arn);
    }

    /// An Organization trail is created by the Organization's management account, with CloudTrail's
    /// trusted access and service-linked role (CloudTrail user guide, "Prepare for creating a
    /// trail for your organization"): what of that is missing, or why it cannot be had.
    async fn organization_trail_prerequisites(&self, trail_arn: &str) -> Result<Delta, AwsError> {
        let account = &self.desired.account_id;
        match &self.organization {
            Some(Err(e)) => return Err(e.clone()),
            Some(Ok(Some(o))) if &o.management_account == account => {}
            found => {
                let whose = match found {
                    Some(Ok(Some(o))) => format!(
                        "it is a member of {} whose management account is {}",
                        o.id, o.management_account
                    ),
                    _ => "it belongs to no AWS Organization".to_string(),
                };
                return Err(AwsError {
                    kind: ErrorKind::Precondition,
                    action: "cloudtrail:CreateTrail".into(),
                    resource: trail_arn.to_string(),
                    code: "NotOrganizationManagementAccount".into(),
                    message: format!(
                        "organizationTrail needs account {account} to be an Organization's management account, but {whose}; \
                         set organizationTrail: false in the TrailPolicy, or adopt the Organization's trail (trail.source: Existing)"
                    ),
                });
            }
        }
        let c = &self.clients;
        let (trusted, role) = tokio::try_join!(
            organizations::trusted_access(c, CLOUDTRAIL_PRINCIPAL),
            iam::role_exists(c, diff::CLOUDTRAIL_SERVICE_ROLE)
        )?;
        Ok(diff::diff_organization_trail_prerequisites(trusted, role))
    }

    /// Records the delta's drift and returns the actions to apply now: none when nothing differs
    /// or nothing may be written (then the actions are recorded as pending).
    fn begin(&mut self, component: Component, resource: &str, delta: &Delta) -> Vec<Action> {
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
            ComponentState::Repaired
        };
        self.merge_state(component, state);
        if self.write { delta.actions.clone() } else { Vec::new() }
    }

    fn record(&mut self, resource: &str, action: &Action, step: Result<(), AwsError>) -> Result<(), AwsError> {
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
    fn finish(&mut self, component: Component, result: Result<(), AwsError>) -> bool {
        match result {
            Ok(()) => true,
            Err(e) => {
                self.merge_state(component, ComponentState::Failed(e));
                false
            }
        }
    }

    /// A component made of several resources keeps its worst state.
    fn merge_state(&mut self, component: Component, state: ComponentState) {
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
            &location,
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
        self.report
            .evidence
            .config
            .push((outcome.region.clone(), outcome.config_recording));
        self.report
            .evidence
            .flow_logs
            .push((outcome.region.clone(), outcome.flow_log_coverage));
        self.absorb_changes(outcome);
    }

    /// The drift, writes and component states of an outcome (not its evidence).
    fn absorb_changes(&mut self, outcome: regional::RegionOutcome) {
        self.report.drift.extend(outcome.drift);
        self.report.pending.extend(outcome.pending);
        self.report.applied.extend(outcome.applied);
        for (component, state, detail) in outcome.parts {
            self.merge_state(component, state);
            self.report.details.entry(component).or_default().push(detail);
        }
    }

    /// The regional parts, in every region concurrently (the flow log role, global, first).
    async fn reconcile_regions(&mut self) {
        let specs = self.specs;
        let regions = crate::desired::regional::regions(specs);
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
        if specs.baseline.config_rules.enabled && specs.baseline.config_rules.create_recorder {
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
        for outcome in outcomes {
            self.absorb(outcome);
        }
        if let Some(forwarding) = self.forwarding.clone() {
            for outcome in self.reconcile_forwarding(&forwarding, regions).await {
                self.absorb_changes(outcome);
            }
        }
    }

    /// The forwarding of tampering events: the role (IAM, global), then the rule of each region
    /// trailkeeper enforces and of the primary region.
    async fn reconcile_forwarding(
        &self,
        forwarding: &Forwarding,
        mut regions: Vec<String>,
    ) -> Vec<regional::RegionOutcome> {
        let account = self.desired.account_id.as_str();
        let tags = desired::resource_tags(self.specs.baseline);
        let mut role = regional::RegionOutcome {
            region: "global".into(),
            ..Default::default()
        };
        if let Err(e) = super::forwarding::reconcile_forwarding_role(
            &self.clients,
            account,
            forwarding,
            &tags,
            self.write,
            &mut role,
        )
        .await
        {
            role.parts.push((
                Component::DriftEvents,
                ComponentState::Failed(e.clone()),
                format!("IAM: {e}"),
            ));
            return vec![role];
        }
        regions.push(self.clients.region.clone());
        regions.sort();
        regions.dedup();
        let (clients, tags, write) = (&self.clients, &tags, self.write);
        let runs: Vec<futures::future::BoxFuture<'_, _>> = regions
            .into_iter()
            .map(|region| {
                Box::pin(async move {
                    let mut outcome = regional::RegionOutcome {
                        region: region.clone(),
                        ..Default::default()
                    };
                    let clients = clients.for_region(&region);
                    super::forwarding::reconcile_forwarding_rule(
                        &clients,
                        account,
                        forwarding,
                        tags,
                        write,
                        &mut outcome,
                    )
                    .await;
                    outcome
                }) as futures::future::BoxFuture<'_, _>
            })
            .collect();
        let mut outcomes = vec![role];
        outcomes.extend(
            futures::stream::iter(runs)
                .buffered(REGION_CONCURRENCY)
                .collect::<Vec<_>>()
                .await,
        );
        outcomes
    }
}

async fn observe_optional_bucket(
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

/// Removes the retention writes that would shorten how long logs are kept, or weaken the lock,
/// unless the RetentionPolicy carries an approval that is new (not the one already in force).
/// Returns the reason when something was held back.
fn retention_guard(
    access_delta: &mut Delta,
    trail_delta: &mut Delta,
    access_observed: Option<&ObservedBucket>,
    trail_observed: Option<&ObservedBucket>,
    approval: Option<&str>,
    previous: &PreviousApproval,
) -> Option<String> {
    let approved = approval.is_some_and(|a| previous.reference.as_deref() != Some(a));
    if approved {
        return None;
    }
    let mut held = Vec::new();
    for (delta, observed, label) in [
        (trail_delta, trail_observed, "trail logs"),
        (access_delta, access_observed, "access logs"),
    ] {
        let Some(observed) = observed else { continue };
        delta.actions.retain(|action| {
            let weakening = match action {
                Action::PutObjectLock(desired) => diff::weakens_lock(&observed.lock_retention, desired)
                    .then(|| format!("{label}: Object Lock would be weakened")),
                Action::PutLifecycle(desired) => {
                    let current = diff::shortens(
                        observed.lifecycle.expire_current_after_days,
                        desired.expire_current_after_days,
                    );
                    let noncurrent = diff::shortens(
                        observed.lifecycle.expire_noncurrent_after_days,
                        desired.expire_noncurrent_after_days,
                    );
                    (current || noncurrent).then(|| format!("{label}: expiration would be shortened"))
                }
                _ => None,
            };
            match weakening {
                Some(reason) => {
                    held.push(reason);
                    false
                }
                None => true,
            }
        });
    }
    (!held.is_empty()).then(|| {
        format!(
            "{}: set spec.approval in the RetentionPolicy with a reference that is new in this change",
            held.join("; ")
        )
    })
}

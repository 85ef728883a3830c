//! The trail: its delivery health, its settings (repaired only as far as the baseline allows on
//! a trail trailkeeper does not own), and an Organization trail's prerequisites.

use super::account::AccountReconcile;
use super::report::{Component, ComponentState};
use crate::aws::cloudtrail::{self, ObservedTrail};
use crate::aws::{AwsError, ErrorKind, iam, organizations};
use crate::desired::DesiredTrail;
use crate::judge::diff::{self, Action, Delta};

const CLOUDTRAIL_PRINCIPAL: &str = "cloudtrail.amazonaws.com";

/// How long after a LogArchive admits a member's trail CloudTrail's refusal of the archive's
/// policies is taken for their propagation, not for a failure.
pub const ARCHIVE_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(600);

impl AccountReconcile<'_> {
    pub(super) async fn reconcile_trail(
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
        self.judge_delivery(observed.as_ref());
        self.judge_delivery_in_other_regions(observed.as_ref()).await;
        let (settings, manage) = match &self.desired.trail {
            DesiredTrail::Managed(s) => (s.clone(), None),
            // Another account's trail: nothing of it can be changed from here.
            DesiredTrail::Existing { expected, .. } if foreign => (expected.clone(), Some(Vec::new())),
            DesiredTrail::Existing { expected, manage, .. } => (expected.clone(), Some(manage.clone())),
        };
        if foreign {
            self.note_foreign_trail();
        }
        if let (DesiredTrail::Existing { arn, .. }, Some(trail)) = (&self.desired.trail, observed.as_ref()) {
            let arn = arn.clone();
            self.note_control_tower(&arn, trail.bucket.as_deref());
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
            let step = step.map_err(|e| self.not_an_organization_administrator(e));
            result = self.record(&resource, &action, step);
            if result.is_err() {
                break;
            }
        }
        let ok = match result.as_ref().err().and_then(|e| self.archive_not_seen_yet(e)) {
            Some(Ok(waiting)) => {
                self.report
                    .components
                    .insert(Component::Trail, ComponentState::WaitingForArchive(waiting));
                self.report.retry_soon = true;
                false
            }
            Some(Err(failed)) => self.finish(Component::Trail, Err(failed)),
            None => self.finish(Component::Trail, result),
        };
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

    /// The trail's delivery health, from its status (read with the trail).
    fn judge_delivery(&mut self, observed: Option<&ObservedTrail>) {
        let Some((trail, delivery)) = observed.and_then(|t| t.delivery.as_ref().map(|d| (t, d))) else {
            return;
        };
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

    /// A multi-Region trail's deliveries from the other Regions the baseline enforces: each
    /// Region's CloudTrail answers for its own (GetTrailStatus speaks for one Region). A Region
    /// that cannot be read says so in the details; it fails nothing.
    async fn judge_delivery_in_other_regions(&mut self, observed: Option<&ObservedTrail>) {
        let Some(trail) = observed.filter(|t| t.multi_region && t.logging && t.delivery.is_some()) else {
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let alarm_after = i64::from(self.specs.trail_policy.delivery_alarm_after_minutes) * 60;
        let regions = self.report.regions.clone();
        for region in regions.iter().filter(|r| **r != self.clients.region) {
            let clients = self.clients.for_region(region);
            match cloudtrail::observe_status_in_region(&clients, &trail.arn).await {
                Ok(Some((logging, delivery))) => {
                    let findings = crate::judge::delivery::trail(
                        &delivery,
                        logging,
                        trail.log_file_validation,
                        false,
                        now,
                        alarm_after,
                    );
                    self.report
                        .delivery
                        .extend(crate::judge::delivery::in_region(region, findings));
                }
                Ok(None) => {}
                Err(e) => self
                    .report
                    .details
                    .entry(Component::Trail)
                    .or_default()
                    .push(format!("the deliveries from {region} could not be read: {e}")),
            }
        }
    }

    fn note_foreign_trail(&mut self) {
        self.report.details.entry(Component::Trail).or_default().push(
            "the trail belongs to another account (an Organization trail seen from a member): its settings \
             were verified, its logging status and deliveries read (GetTrailStatus on its ARN); its event \
             selectors and tags are not observable from this account (check them in the trail owner's account)"
                .to_string(),
        );
    }

    /// A member's CreateTrail or UpdateTrail refused for the archive's policies although the
    /// archive admits its trail: S3 and KMS apply a new policy after a while (AWS KMS: "changes to
    /// a key policy ... might take up to five minutes"), so within `ARCHIVE_PROPAGATION` of the
    /// admission the member waits and tries again soon (Ok: why); later the refusal is a failure
    /// that names the archive (Err). None for any other error.
    /// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying.html
    fn archive_not_seen_yet(&self, e: &AwsError) -> Option<Result<String, AwsError>> {
        const POLICY_REFUSALS: [&str; 2] = [
            "InsufficientS3BucketPolicyException",
            "InsufficientEncryptionPolicyException",
        ];
        let target = self.archive.as_ref().filter(|t| t.admitted)?;
        if !POLICY_REFUSALS.contains(&e.code.as_str()) {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let window = ARCHIVE_PROPAGATION.as_secs() as i64;
        let trail = crate::desired::trail_arn(self.specs.baseline);
        match target.admitted_at.map(|at| now - at) {
            Some(since) if since > window => Some(Err(AwsError {
                message: format!(
                    "{}; the LogArchive {} has admitted {trail} for {} minutes, yet CloudTrail refuses its policies: compare the archive's status.admits and the trail's bucket, prefix and key",
                    e.message,
                    target.name,
                    since / 60
                ),
                ..e.clone()
            })),
            _ => Some(Ok(format!(
                "the LogArchive {} admits {trail}, but CloudTrail still refuses it ({}: {}): S3 and KMS apply new policies after a moment; trying again shortly, for up to {} minutes after the admission",
                target.name,
                e.code,
                e.message,
                window / 60
            ))),
        }
    }

    /// CloudTrail's refusal of an Organization trail to an account that is neither the management
    /// account nor its delegated administrator, with what to do.
    fn not_an_organization_administrator(&self, e: AwsError) -> AwsError {
        if e.code != "NotOrganizationMasterAccountException" {
            return e;
        }
        let whose = match &self.organization {
            Some(Ok(Some(o))) => format!(
                "a member of {} whose management account is {}",
                o.id, o.management_account
            ),
            _ => "a member of an Organization".to_string(),
        };
        AwsError {
            kind: ErrorKind::Precondition,
            message: format!(
                "CloudTrail refuses the Organization trail: account {} is {whose}, and not CloudTrail's delegated administrator; \
                 register it (from the management account: aws cloudtrail register-organization-delegated-admin --member-account-id {}), \
                 set organizationTrail: false in the TrailPolicy, or adopt the Organization's trail (trail.source: Existing)",
                self.desired.account_id, self.desired.account_id
            ),
            ..e
        }
    }

    /// An Organization trail is created by the Organization's management account, with CloudTrail's
    /// trusted access and service-linked role (CloudTrail user guide, "Prepare for creating a
    /// trail for your organization"): what of that is missing, or why it cannot be had.
    async fn organization_trail_prerequisites(&self, trail_arn: &str) -> Result<Delta, AwsError> {
        let account = &self.desired.account_id;
        match &self.organization {
            Some(Err(e)) => return Err(e.clone()),
            Some(Ok(Some(o))) if &o.management_account == account => {}
            // Another account of the Organization creates it as CloudTrail's delegated
            // administrator, or CloudTrail refuses (see `not_an_organization_administrator`):
            // trusted access and the service-linked role are the management account's, which
            // registering a delegated administrator sets up.
            // https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-delegated-administrator.html
            Some(Ok(Some(_))) => return Ok(Delta::default()),
            _ => {
                return Err(AwsError {
                    kind: ErrorKind::Precondition,
                    action: "cloudtrail:CreateTrail".into(),
                    resource: trail_arn.to_string(),
                    code: "NotOrganizationManagementAccount".into(),
                    message: format!(
                        "organizationTrail needs account {account} to be an Organization's management account or CloudTrail's delegated administrator, but it belongs to no AWS Organization; \
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
}

//! The trail: its delivery health, its settings (repaired only as far as the baseline allows on
//! a trail trailkeeper does not own), and an Organization trail's prerequisites.

use super::account::AccountReconcile;
use super::report::{Component, ComponentState};
use crate::aws::cloudtrail::{self, ObservedTrail};
use crate::aws::{AwsError, ErrorKind, iam, organizations};
use crate::desired::DesiredTrail;
use crate::judge::diff::{self, Action, Delta};

const CLOUDTRAIL_PRINCIPAL: &str = "cloudtrail.amazonaws.com";

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
}

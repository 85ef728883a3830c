//! AWS Control Tower next door: a Managed trail is not created beside the landing zone's trail
//! when both would record the account's management events (a second, charged copy); an Existing
//! trail that is Control Tower's is said to cover the account.

use super::account::AccountReconcile;
use super::duplicate_trails::records_management;
use super::report::{Component, ComponentState};
use crate::aws::cloudtrail;
use crate::desired::TrailSettings;
use crate::judge::control_tower::{self, ControlTowerTrail};

impl AccountReconcile<'_> {
    /// Before a Managed trail is created: Control Tower's trail when it logs in the primary Region
    /// and both trails would record management events; the Trail component then refuses (and the
    /// key and buckets, which only that trail would use, are not created). One DescribeTrails, read
    /// only while the trail is still to be created; a Control Tower trail that does not log (or
    /// whose status cannot be read) refuses nothing: the account would otherwise log nowhere.
    pub(super) async fn control_tower_refusal(&mut self, settings: &TrailSettings) -> bool {
        if self.specs.baseline.trail.allow_beside_control_tower || !records_management(&settings.event_selectors) {
            return false;
        }
        let trails = match cloudtrail::describe_trails_in_region(&self.clients).await {
            Ok(trails) => trails,
            Err(e) => {
                tracing::warn!(account = %self.desired.account_id, error = %e, "the trails of the primary region could not be listed");
                return false;
            }
        };
        let Some(ct) = control_tower::recognise(&trails) else {
            return false;
        };
        match cloudtrail::observe_status_in_region(&self.clients, &ct.arn).await {
            Ok(Some((true, _))) => {}
            Ok(_) | Err(_) => {
                self.report
                    .details
                    .entry(Component::Trail)
                    .or_default()
                    .push(format!(
                        "Control Tower's trail {} does not log here (or its status cannot be read): trailkeeper creates its own",
                        ct.arn
                    ));
                return false;
            }
        }
        let message = control_tower::refusal(&ct, &self.desired.account_id);
        self.report.components.insert(
            Component::Trail,
            ComponentState::Refused {
                reason: control_tower::REASON,
                message,
            },
        );
        self.report.control_tower = Some(ct);
        true
    }

    /// The account's trail is Control Tower's (an Existing trail by its name or bucket): status
    /// and `report` say it covers the account.
    pub(super) fn note_control_tower(&mut self, arn: &str, bucket: Option<&str>) {
        let named = control_tower::names_control_tower(arn);
        let archived = bucket.is_some_and(|b| control_tower::log_archive_bucket(b).is_some());
        if !named && !archived {
            return;
        }
        let ct = ControlTowerTrail {
            arn: arn.to_string(),
            bucket: bucket.map(str::to_string),
        };
        self.report
            .details
            .entry(Component::Trail)
            .or_default()
            .push(ct.covered());
        self.report.control_tower = Some(ct);
    }
}

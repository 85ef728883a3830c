//! A trail: where it delivers, its settings, logging, selectors and tags; for a trail trailkeeper
//! does not own, only the settings the baseline lets it manage are repaired.

use std::collections::BTreeMap;

use super::{Action, Delta, describe_selectors, key_matches, keys, missing_tags, on_off};
use crate::api::{Drift, ExistingTrailSetting};
use crate::aws::cloudtrail::{ObservedTrail, TrailUpdate};
use crate::desired::TrailSettings;

/// A trail setting that differs: the drift, and the existing-trail setting that governs whether
/// trailkeeper may repair it on a trail it does not own (None: never).
struct TrailField {
    drift: Drift,
    setting: Option<ExistingTrailSetting>,
}

/// `manage`: for an existing trail, the settings trailkeeper may change (None for its own trail:
/// all of them). `key_arn`: the key a managed trail must use.
pub fn diff_trail(
    desired: &TrailSettings,
    observed: Option<&ObservedTrail>,
    key_arn: Option<&str>,
    manage: Option<&[ExistingTrailSetting]>,
) -> Delta {
    let mut delta = Delta::default();
    let Some(trail) = observed else {
        delta.differs(&desired.arn, "exists", true, false);
        if manage.is_none() {
            delta.act(Action::CreateTrail);
            delta.act(Action::PutEventSelectors(desired.event_selectors.clone()));
            if !desired.insight_selectors.is_empty() {
                delta.act(Action::PutInsightSelectors(desired.insight_selectors.clone()));
            }
            delta.act(Action::StartLogging);
        } else {
            delta.unrepairable = delta.drift.clone();
        }
        return delta;
    };
    let mut found = TrailFields {
        resource: desired.arn.clone(),
        fields: Vec::new(),
        update: TrailUpdate::default(),
    };
    found.delivery(desired, trail, key_arn, manage);
    found.settings(desired, trail, manage);
    let missing = found.logging_selectors_and_tags(desired, trail, manage);

    let allowed = |f: &TrailField| match (manage, f.setting) {
        (None, _) => true,
        (Some(m), Some(s)) => m.contains(&s),
        (Some(_), None) => false,
    };
    let repairable = |name: &str| found.fields.iter().any(|f| f.drift.field == name && allowed(f));
    let allowed_update = repairable_update(&found.update, repairable);
    if !allowed_update.is_empty() {
        delta.act(Action::UpdateTrail(allowed_update));
    }
    if repairable("eventSelectors") {
        delta.act(Action::PutEventSelectors(desired.event_selectors.clone()));
    }
    if repairable("insightSelectors") {
        delta.act(Action::PutInsightSelectors(desired.insight_selectors.clone()));
    }
    if repairable("tags") {
        delta.act(Action::AddTrailTags(missing));
    }
    if repairable("logging") {
        delta.act(Action::StartLogging);
    }
    for f in found.fields {
        // A managed trail whose key is still to be created is repaired once the key exists.
        let pending_key = manage.is_none() && f.drift.field == "kmsKeyId";
        if allowed(&f) || pending_key {
            delta.drift.push(f.drift);
        } else {
            delta.unrepairable.push(f.drift);
        }
    }
    delta
}

/// The part of `update` whose fields may be repaired.
fn repairable_update(update: &TrailUpdate, repairable: impl Fn(&str) -> bool) -> TrailUpdate {
    let mut allowed = TrailUpdate::default();
    if repairable("s3BucketName") {
        allowed.bucket = update.bucket.clone();
    }
    if repairable("s3KeyPrefix") {
        allowed.key_prefix = update.key_prefix.clone();
    }
    if repairable("kmsKeyId") {
        allowed.kms_key = update.kms_key.clone();
    }
    if repairable("isMultiRegionTrail") {
        allowed.multi_region = update.multi_region;
    }
    if repairable("includeGlobalServiceEvents") {
        allowed.global_service_events = update.global_service_events;
    }
    if repairable("logFileValidation") {
        allowed.log_file_validation = update.log_file_validation;
    }
    if repairable("isOrganizationTrail") {
        allowed.organization = update.organization;
    }
    if repairable("cloudWatchLogs") {
        allowed.cloud_watch_logs = update.cloud_watch_logs.clone();
    }
    allowed
}

fn show(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "(none)".to_string())
}

/// The fields of one trail that differ, and the UpdateTrail that would repair them all.
struct TrailFields {
    resource: String,
    fields: Vec<TrailField>,
    update: TrailUpdate,
}

impl TrailFields {
    fn differs(&mut self, name: &str, expected: String, actual: String, setting: Option<ExistingTrailSetting>) {
        self.fields.push(TrailField {
            drift: Drift {
                resource: self.resource.clone(),
                field: name.to_string(),
                expected,
                actual,
            },
            setting,
        });
    }

    /// Where the trail delivers: bucket, prefix and key.
    fn delivery(
        &mut self,
        desired: &TrailSettings,
        trail: &ObservedTrail,
        key_arn: Option<&str>,
        manage: Option<&[ExistingTrailSetting]>,
    ) {
        if desired.bucket.is_some() && trail.bucket != desired.bucket {
            self.differs("s3BucketName", show(&desired.bucket), show(&trail.bucket), None);
            self.update.bucket = desired.bucket.clone();
        }
        if desired.key_prefix.is_some() && trail.key_prefix != desired.key_prefix {
            self.differs("s3KeyPrefix", show(&desired.key_prefix), show(&trail.key_prefix), None);
            self.update.key_prefix = desired.key_prefix.clone();
        }
        match (manage, key_arn) {
            // A managed trail uses the trail key.
            (None, Some(arn)) if !trail.kms_key.as_deref().is_some_and(|k| key_matches(k, arn)) => {
                self.differs("kmsKeyId", arn.to_string(), show(&trail.kms_key), None);
                self.update.kms_key = Some(arn.to_string());
            }
            (None, None) => {
                self.differs(
                    "kmsKeyId",
                    "the trail key (to be created)".into(),
                    show(&trail.kms_key),
                    None,
                );
            }
            (Some(_), _) if desired.encrypted && trail.kms_key.is_none() => {
                self.differs(
                    "kmsKeyId",
                    "encrypted with a KMS key".into(),
                    "not encrypted (SSE-S3 only)".into(),
                    None,
                );
            }
            _ => {}
        }
    }

    /// The settings UpdateTrail changes besides delivery.
    fn settings(&mut self, desired: &TrailSettings, trail: &ObservedTrail, manage: Option<&[ExistingTrailSetting]>) {
        if trail.multi_region != desired.multi_region {
            self.differs(
                "isMultiRegionTrail",
                desired.multi_region.to_string(),
                trail.multi_region.to_string(),
                Some(ExistingTrailSetting::MultiRegion),
            );
            self.update.multi_region = Some(desired.multi_region);
        }
        if trail.global_service_events != desired.global_service_events {
            self.differs(
                "includeGlobalServiceEvents",
                desired.global_service_events.to_string(),
                trail.global_service_events.to_string(),
                Some(ExistingTrailSetting::GlobalServiceEvents),
            );
            self.update.global_service_events = Some(desired.global_service_events);
        }
        if trail.log_file_validation != desired.log_file_validation {
            self.differs(
                "logFileValidation",
                on_off(desired.log_file_validation).into(),
                on_off(trail.log_file_validation).into(),
                Some(ExistingTrailSetting::LogFileValidation),
            );
            self.update.log_file_validation = Some(desired.log_file_validation);
        }
        if manage.is_none() && trail.organization != desired.organization {
            self.differs(
                "isOrganizationTrail",
                desired.organization.to_string(),
                trail.organization.to_string(),
                None,
            );
            self.update.organization = Some(desired.organization);
        }
        if manage.is_none() && trail.cloud_watch_logs != desired.cloud_watch_logs {
            let show_cw =
                |c: &Option<(String, String)>| c.as_ref().map_or_else(|| "(none)".to_string(), |(g, _)| g.clone());
            self.differs(
                "cloudWatchLogs",
                show_cw(&desired.cloud_watch_logs),
                show_cw(&trail.cloud_watch_logs),
                None,
            );
            self.update.cloud_watch_logs = desired.cloud_watch_logs.clone();
        }
    }

    /// Logging, the selectors and the tags (each its own call). Returns the tags to add.
    fn logging_selectors_and_tags(
        &mut self,
        desired: &TrailSettings,
        trail: &ObservedTrail,
        manage: Option<&[ExistingTrailSetting]>,
    ) -> BTreeMap<String, String> {
        if trail.details_observable && trail.logging != desired.logging {
            self.differs(
                "logging",
                on_off(desired.logging).into(),
                on_off(trail.logging).into(),
                Some(ExistingTrailSetting::Logging),
            );
        }
        if trail.details_observable && trail.event_selectors != desired.event_selectors {
            self.differs(
                "eventSelectors",
                describe_selectors(&desired.event_selectors),
                describe_selectors(&trail.event_selectors),
                Some(ExistingTrailSetting::EventSelectors),
            );
        }
        let insights_differ = trail.details_observable && trail.insight_selectors != desired.insight_selectors;
        if insights_differ && manage.is_none() {
            self.differs(
                "insightSelectors",
                desired.insight_selectors.join(", "),
                trail.insight_selectors.join(", "),
                None,
            );
        }
        let missing = if manage.is_none() {
            missing_tags(&desired.tags, &trail.tags)
        } else {
            BTreeMap::new()
        };
        if !missing.is_empty() {
            self.differs("tags", keys(&missing), "missing".into(), None);
        }
        missing
    }
}

//! Management events recorded more than once in the primary Region: the trails that apply there,
//! which management events each records (its selectors), and an hour of the account's management
//! and network activity events counted from its trail's log files, for the estimate.

use super::account::AccountReconcile;
use crate::aws::{cloudtrail, s3};
use crate::desired::{DesiredTrail, EventSelectors};
use crate::judge::archive_delivery::{day_of, delivered_at};
use crate::judge::duplicate_trails::{HourOfEvents, Recording, TrailCopy, duplicates};

/// Log files read to count an hour of events (CloudTrail delivers about one every five minutes
/// per Region; a busier account's count says "at least").
const LOG_FILES_COUNTED: usize = 12;

/// Whether any selector records management events.
pub(super) fn records_management(selectors: &EventSelectors) -> bool {
    match selectors {
        EventSelectors::Basic(basic) => basic.iter().any(|s| s.include_management_events),
        EventSelectors::Advanced(advanced) => advanced.iter().any(|s| {
            s.field_selectors
                .iter()
                .any(|f| f.field == "eventCategory" && f.equals.iter().any(|v| v == "Management"))
        }),
    }
}

impl AccountReconcile<'_> {
    /// Reads the trails of the primary Region (one read); with more than one, their status and
    /// selectors (own trails) and an hour of events, and reports the duplicates.
    pub(super) async fn judge_duplicate_trails(&mut self) {
        let account = self.desired.account_id.clone();
        let trails = match cloudtrail::trails_in_region(&self.clients).await {
            Ok(trails) if trails.len() > 1 => trails,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(account, error = %e, "the trails of the primary region could not be listed");
                return;
            }
        };
        if self.report.control_tower.is_none()
            && let Some((arn, _)) = trails
                .iter()
                .find(|(arn, _)| crate::judge::control_tower::names_control_tower(arn))
        {
            self.report.control_tower = Some(crate::judge::control_tower::ControlTowerTrail {
                arn: arn.clone(),
                bucket: None,
            });
        }
        let mut copies = Vec::new();
        for (arn, home) in trails {
            let own = arn.split(':').nth(4) == Some(account.as_str());
            let recording = if own {
                let clients = self.clients.for_region(&home);
                match cloudtrail::observe_trail(&clients, &arn).await {
                    Ok(Some(t)) if t.logging => Recording::Selected(t.event_selectors),
                    _ => Recording::Nothing,
                }
            } else {
                Recording::Everything
            };
            copies.push(TrailCopy { arn, recording });
        }
        // Counting the events costs reads: only when some events are recorded twice.
        if duplicates(&self.clients.region, &copies, None).is_none() {
            return;
        }
        let hour = self.hour_of_events().await;
        self.report.duplicate_trails = duplicates(&self.clients.region, &copies, hour.as_ref());
    }

    /// The management events (by kind) and network activity events of the last hour in the log
    /// files of trailkeeper's trail (None:
    /// the trail or its bucket is not trailkeeper's, or nothing could be read).
    async fn hour_of_events(&self) -> Option<HourOfEvents> {
        let DesiredTrail::Managed(settings) = &self.desired.trail else {
            return None;
        };
        let bucket = settings.bucket.as_deref()?;
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now()).secs();
        let since = now - 3600;
        let region = &self.clients.region;
        let account = &self.desired.account_id;
        let base = match settings.key_prefix.as_deref() {
            Some(p) if !p.is_empty() => format!("{p}/AWSLogs/{account}/CloudTrail/{region}/"),
            _ => format!("AWSLogs/{account}/CloudTrail/{region}/"),
        };
        let mut days = vec![day_of(since), day_of(now)];
        days.dedup();
        let mut recent = Vec::new();
        for day in days {
            let keys = s3::list_keys(&self.clients, bucket, &format!("{base}{day}/"))
                .await
                .ok()?;
            recent.extend(keys.into_iter().filter(|k| delivered_at(k).is_some_and(|t| t >= since)));
        }
        recent.sort();
        let mut hour = HourOfEvents {
            at_least: recent.len() > LOG_FILES_COUNTED,
            ..HourOfEvents::default()
        };
        for key in recent.iter().rev().take(LOG_FILES_COUNTED) {
            let Ok(Some((bytes, _))) = s3::get_object(&self.clients, bucket, key).await else {
                continue;
            };
            let text = super::verify::gunzip(&bytes).unwrap_or(bytes);
            if let Ok(log) = serde_json::from_slice::<serde_json::Value>(&text) {
                hour.add_log_file(&log);
            }
        }
        Some(hour)
    }
}

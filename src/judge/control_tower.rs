//! AWS Control Tower next door: a landing zone's trail, recognised by what Control Tower names and
//! tags, and what a baseline does beside it. Pure functions.
//!
//! Control Tower sets up "an organization-level trail ... in your organization's management
//! account" when a landing zone is set up (landing zone 3.0 and later; earlier versions created a
//! trail in each enrolled account), named `aws-controltower-BaselineCloudTrail`, delivering into
//! the log archive account's bucket `aws-controltower-logs-{log archive account}-{home Region}`;
//! what it provisions is tagged ("AWS Config resources provisioned by AWS Control Tower are tagged
//! automatically with aws-control-tower and a value of managed-by-control-tower"). "If you have an
//! existing deployment of a CloudTrail trail in that account, you may see duplicate charges": a
//! second trail recording management events pays for every copy.
//! https://docs.aws.amazon.com/controltower/latest/userguide/about-logging.html

use crate::aws::cloudtrail::ObservedTrail;
use crate::judge::duplicate_trails::PRICE_PER_100K_COPIED_EVENTS_USD;

/// The name of Control Tower's trail.
pub const TRAIL_NAME: &str = "aws-controltower-BaselineCloudTrail";
/// The prefix of Control Tower's log archive bucket: `aws-controltower-logs-{account}-{region}`.
pub const LOGS_BUCKET_PREFIX: &str = "aws-controltower-logs-";
/// The tag Control Tower puts on what it provisions.
pub const TAG_KEY: &str = "aws-control-tower";
pub const TAG_VALUE: &str = "managed-by-control-tower";
/// The reason a baseline gives for the trail it will not create.
pub const REASON: &str = "ControlTowerTrail";

/// A landing zone's trail, as trailkeeper saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlTowerTrail {
    pub arn: String,
    /// The log archive bucket (`aws-controltower-logs-...`), when the trail's is readable.
    pub bucket: Option<String>,
}

impl ControlTowerTrail {
    /// What status and `report` say of an account the trail records.
    pub fn covered(&self) -> String {
        match &self.bucket {
            Some(b) => format!("covered by Control Tower's trail {} (log archive s3://{b})", self.arn),
            None => format!("covered by Control Tower's trail {}", self.arn),
        }
    }
}

/// The account and home Region of Control Tower's log archive bucket, from its name.
pub fn log_archive_bucket(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(LOGS_BUCKET_PREFIX)?;
    let (account, region) = rest.split_once('-')?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !region.is_empty())
        .then_some((account, region))
}

/// The trail's name from its ARN (`arn:...:trail/NAME`).
fn name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or_default()
}

/// Whether an ARN names Control Tower's trail.
pub fn names_control_tower(arn: &str) -> bool {
    name_of(arn) == TRAIL_NAME
}

/// Control Tower's trail among `trails` (by its name, its log archive bucket or its tag).
pub fn recognise(trails: &[ObservedTrail]) -> Option<ControlTowerTrail> {
    trails
        .iter()
        .find(|t| {
            t.name == TRAIL_NAME
                || names_control_tower(&t.arn)
                || t.bucket.as_deref().is_some_and(|b| log_archive_bucket(b).is_some())
                || t.tags.get(TAG_KEY).map(String::as_str) == Some(TAG_VALUE)
        })
        .map(|t| ControlTowerTrail {
            arn: t.arn.clone(),
            bucket: t.bucket.clone(),
        })
}

/// Why a baseline creates no trail of its own in `account` beside Control Tower's.
pub fn refusal(trail: &ControlTowerTrail, account: &str) -> String {
    format!(
        "account {account} is {}, which records its management events: a second trail recording them would be charged ${PRICE_PER_100K_COPIED_EVENTS_USD:.2} per 100,000 events (AWS CloudTrail pricing). \
         Integrate it instead (trail.source: Existing, existingTrailArn: {}; its evidence is judged in status and report), record no management events in the TrailPolicy (data or network activity events only), \
         or set trail.allowBesideControlTower: true to pay for the copy",
        trail.covered(),
        trail.arn
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(name: &str, bucket: Option<&str>) -> ObservedTrail {
        ObservedTrail {
            name: name.into(),
            arn: format!("arn:aws:cloudtrail:us-east-1:111122223333:trail/{name}"),
            bucket: bucket.map(str::to_string),
            key_prefix: None,
            kms_key: None,
            multi_region: true,
            global_service_events: true,
            log_file_validation: true,
            organization: true,
            cloud_watch_logs: None,
            logging: true,
            event_selectors: crate::desired::EventSelectors::Basic(Vec::new()),
            insight_selectors: Vec::new(),
            tags: Default::default(),
            details_observable: false,
            delivery: None,
        }
    }

    #[test]
    fn control_towers_trail_is_recognised_by_its_name_bucket_or_tag() {
        assert!(recognise(&[trail("team", Some("team-logs"))]).is_none());
        let by_name = recognise(&[trail("team", None), trail(TRAIL_NAME, None)]).expect("by name");
        assert!(by_name.arn.ends_with(TRAIL_NAME));
        let bucket = "aws-controltower-logs-444455556666-eu-west-1";
        assert_eq!(log_archive_bucket(bucket), Some(("444455556666", "eu-west-1")));
        assert_eq!(log_archive_bucket("aws-controltower-logs-12-eu-west-1"), None);
        assert_eq!(
            recognise(&[trail("renamed", Some(bucket))]).and_then(|t| t.bucket),
            Some(bucket.to_string())
        );
        let mut tagged = trail("renamed", None);
        tagged.tags.insert(TAG_KEY.into(), TAG_VALUE.into());
        assert!(recognise(&[tagged]).is_some());
    }

    #[test]
    fn the_refusal_names_the_trail_the_cost_and_each_way_out() {
        let ct = ControlTowerTrail {
            arn: format!("arn:aws:cloudtrail:us-east-1:111122223333:trail/{TRAIL_NAME}"),
            bucket: Some("aws-controltower-logs-444455556666-us-east-1".into()),
        };
        let why = refusal(&ct, "999988887777");
        for needle in [
            "covered by Control Tower's trail arn:",
            "log archive s3://aws-controltower-logs-",
            "$2.00 per 100,000",
            "trail.source: Existing",
            "allowBesideControlTower",
        ] {
            assert!(why.contains(needle), "{needle}: {why}");
        }
    }
}

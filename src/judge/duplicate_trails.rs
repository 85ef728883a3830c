//! Trails that record the same management events twice, and what the copies cost. CloudTrail
//! delivers the first copy of management events in each Region free; "additional copies of
//! management events" are charged per 100,000 events delivered (AWS CloudTrail pricing,
//! https://aws.amazon.com/cloudtrail/pricing/), an Organization trail's copy included in each
//! member account. Pure functions.

pub use crate::api::DuplicateTrails;

/// CloudTrail's published price of an additional copy of management events, in US dollars per
/// 100,000 events delivered (AWS CloudTrail pricing, "Trails": $2.00 per 100,000).
pub const PRICE_PER_100K_COPIED_EVENTS_USD: f64 = 2.00;

/// The price of network activity events, charged as data events are: on every trail that records
/// them, the first copy included ($0.10 per 100,000 events delivered; "Additional charges apply
/// for network activity events", CloudTrail user guide, "Logging network activity events").
pub const PRICE_PER_100K_NETWORK_ACTIVITY_EVENTS_USD: f64 = 0.10;

/// Hours in an average month (365 * 24 / 12), for a monthly estimate from an hour of events.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// One trail that applies in the Region judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailCopy {
    pub arn: String,
    /// Logging, and recording management events (another account's trail is taken as the
    /// CloudTrail console creates trails: both, which a member account cannot read).
    pub records_management_events: bool,
}

/// Events the account's trail delivered in the last hour, as counted from its log files, by
/// `eventCategory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourOfEvents {
    /// Management events (a record without `eventCategory` is one).
    pub events: u64,
    /// Network activity events (`eventCategory` NetworkActivity): charged on the trail that
    /// records them whatever the other trails do.
    pub network_activity: u64,
    /// The count stopped at the files read: the real number is higher.
    pub at_least: bool,
}

/// The duplicates among `trails` in `region`; None when at most one records management events.
pub fn duplicates(region: &str, trails: &[TrailCopy], hour: Option<HourOfEvents>) -> Option<DuplicateTrails> {
    let recording: Vec<String> = trails
        .iter()
        .filter(|t| t.records_management_events)
        .map(|t| t.arn.clone())
        .collect();
    let paid = recording.len().checked_sub(1).filter(|n| *n > 0)? as u32;
    let monthly = |n: u64| (n as f64 * HOURS_PER_MONTH).round() as u64;
    let per_month = hour.map(|h| monthly(h.events));
    let network = hour.map(|h| monthly(h.network_activity)).filter(|n| *n > 0);
    let cost = per_month.map(|events| {
        let copies = f64::from(paid) * events as f64 / 100_000.0 * PRICE_PER_100K_COPIED_EVENTS_USD;
        let network = network.unwrap_or(0) as f64 / 100_000.0 * PRICE_PER_100K_NETWORK_ACTIVITY_EVENTS_USD;
        ((copies + network) * 100.0).round() / 100.0
    });
    let note = match hour {
        Some(h) => {
            let at_least = if h.at_least { "at least " } else { "" };
            let network = match h.network_activity {
                0 => String::new(),
                n => format!(
                    "; {at_least}{n} network activity events in the same hour x {HOURS_PER_MONTH} hours at ${PRICE_PER_100K_NETWORK_ACTIVITY_EVENTS_USD:.2} per 100,000, charged on this trail whatever the others record"
                ),
            };
            format!(
                "{at_least}{} management events in the last hour of the trail's log files x {HOURS_PER_MONTH} hours, at ${PRICE_PER_100K_COPIED_EVENTS_USD:.2} per 100,000 copied events (AWS CloudTrail pricing){network}; data events, Insights and CloudWatch Logs ingestion are not included",
                h.events
            )
        }
        None => "events not counted (the trail's log files are not in a bucket trailkeeper reads); each copy costs $2.00 per 100,000 management events".to_string(),
    };
    Some(DuplicateTrails {
        region: region.to_string(),
        trails: recording,
        paid_copies: paid,
        events_per_month: per_month,
        network_activity_events_per_month: network,
        estimated_monthly_cost_usd: cost,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(arn: &str, on: bool) -> TrailCopy {
        TrailCopy {
            arn: arn.into(),
            records_management_events: on,
        }
    }

    #[test]
    fn one_trail_or_one_recording_is_no_duplicate() {
        assert_eq!(duplicates("us-east-1", &[copy("a", true)], None), None);
        assert_eq!(
            duplicates("us-east-1", &[copy("a", true), copy("b", false)], None),
            None
        );
        assert_eq!(duplicates("us-east-1", &[], None), None);
    }

    #[test]
    fn each_copy_after_the_first_is_priced_from_the_hour_of_events() {
        let hour = HourOfEvents {
            events: 1_000,
            network_activity: 0,
            at_least: false,
        };
        let d = duplicates("us-east-1", &[copy("org", true), copy("own", true)], Some(hour)).expect("a duplicate");
        assert_eq!(d.paid_copies, 1);
        assert_eq!(d.events_per_month, Some(730_000));
        // 730,000 events x $2.00 / 100,000.
        assert_eq!(d.estimated_monthly_cost_usd, Some(14.6));
        let three = duplicates(
            "us-east-1",
            &[copy("a", true), copy("b", true), copy("c", true)],
            Some(hour),
        )
        .expect("duplicates");
        assert_eq!(three.paid_copies, 2);
        assert_eq!(three.estimated_monthly_cost_usd, Some(29.2));
        let uncounted = duplicates("us-east-1", &[copy("a", true), copy("b", true)], None).expect("a duplicate");
        assert_eq!(uncounted.estimated_monthly_cost_usd, None);
        assert!(uncounted.note.contains("not counted"));
    }

    #[test]
    fn network_activity_events_are_priced_apart_from_the_copies_of_management_events() {
        let hour = HourOfEvents {
            events: 1_000,
            network_activity: 10_000,
            at_least: false,
        };
        let d = duplicates("us-east-1", &[copy("org", true), copy("own", true)], Some(hour)).expect("a duplicate");
        assert_eq!(d.events_per_month, Some(730_000));
        assert_eq!(d.network_activity_events_per_month, Some(7_300_000));
        // 730,000 x $2.00 / 100,000 + 7,300,000 x $0.10 / 100,000.
        assert_eq!(d.estimated_monthly_cost_usd, Some(14.6 + 7.3));
        assert!(d.note.contains("10000 network activity events"), "{}", d.note);
    }
}

//! Trails that record the same management events twice, and what the copies cost. CloudTrail
//! delivers the first copy of management events in each Region free; "additional copies of
//! management events" are charged per 100,000 events delivered (AWS CloudTrail pricing,
//! https://aws.amazon.com/cloudtrail/pricing/), an Organization trail's copy included in each
//! member account. A copy is charged per event: a trail recording only the read-only (or only the
//! write) management events, or not some event sources, copies only the events it records as
//! well, so each event is priced by how many trails record it. Only the primary Region is judged.
//! Pure functions.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub use crate::api::DuplicateTrails;
use crate::desired::{AdvancedField, EventSelectors};

/// CloudTrail's published price of an additional copy of management events, in US dollars per
/// 100,000 events delivered (AWS CloudTrail pricing, "Trails": $2.00 per 100,000).
pub const PRICE_PER_100K_COPIED_EVENTS_USD: f64 = 2.00;

/// The price of network activity events, charged as data events are: on every trail that records
/// them, the first copy included ($0.10 per 100,000 events delivered; "Additional charges apply
/// for network activity events", CloudTrail user guide, "Logging network activity events").
pub const PRICE_PER_100K_NETWORK_ACTIVITY_EVENTS_USD: f64 = 0.10;

/// Hours in an average month (365 * 24 / 12), for a monthly estimate from an hour of events.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// A management event as a log file records it: what event selectors choose by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManagementEvent {
    pub read_only: bool,
    pub event_source: String,
    pub event_name: String,
}

/// Which management events a trail records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recording {
    /// Not logging, or no selector includes management events.
    Nothing,
    /// Every management event: another account's trail (an Organization trail), whose selectors
    /// a member cannot read, taken as the CloudTrail console creates trails.
    Everything,
    /// What the trail's own selectors choose.
    Selected(EventSelectors),
}

impl Recording {
    /// Whether a trail recording this records `event`. Basic selectors: IncludeManagementEvents,
    /// the ReadWriteType, ExcludeManagementEventSources. Advanced selectors (those with
    /// `eventCategory` = Management): every field holds, a field on readOnly, eventSource or
    /// eventName by its operators (a value matching one of Equals, StartsWith, EndsWith when any is
    /// given, and none of the Not... ones); a field a log record does not carry is taken to hold.
    /// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-management-events-with-cloudtrail.html
    /// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_AdvancedFieldSelector.html
    pub fn records(&self, event: &ManagementEvent) -> bool {
        match self {
            Recording::Nothing => false,
            Recording::Everything => true,
            Recording::Selected(EventSelectors::Basic(basic)) => basic.iter().any(|s| {
                s.include_management_events
                    && match s.read_write_type.as_str() {
                        "ReadOnly" => event.read_only,
                        "WriteOnly" => !event.read_only,
                        _ => true,
                    }
                    && !s.exclude_management_event_sources.contains(&event.event_source)
            }),
            Recording::Selected(EventSelectors::Advanced(advanced)) => advanced.iter().any(|s| {
                let management = s
                    .field_selectors
                    .iter()
                    .any(|f| f.field == "eventCategory" && f.equals.iter().any(|v| v == "Management"));
                management && s.field_selectors.iter().all(|f| field_holds(f, event))
            }),
        }
    }
}

fn field_holds(field: &AdvancedField, event: &ManagementEvent) -> bool {
    let read_only = event.read_only.to_string();
    let value = match field.field.as_str() {
        "eventCategory" => "Management",
        "readOnly" => read_only.as_str(),
        "eventSource" => event.event_source.as_str(),
        "eventName" => event.event_name.as_str(),
        _ => return true,
    };
    let positive = field.equals.len() + field.starts_with.len() + field.ends_with.len() > 0;
    let matched = field.equals.iter().any(|v| v == value)
        || field.starts_with.iter().any(|v| value.starts_with(v.as_str()))
        || field.ends_with.iter().any(|v| value.ends_with(v.as_str()));
    let excluded = field.not_equals.iter().any(|v| v == value)
        || field.not_starts_with.iter().any(|v| value.starts_with(v.as_str()))
        || field.not_ends_with.iter().any(|v| value.ends_with(v.as_str()));
    (!positive || matched) && !excluded
}

/// One trail that applies in the Region judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailCopy {
    pub arn: String,
    pub recording: Recording,
}

/// The events the account's trail delivered in the last hour, counted from its log files: the
/// management events by what selectors choose them by, and the network activity events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourOfEvents {
    pub events: BTreeMap<ManagementEvent, u64>,
    /// Network activity events (`eventCategory` NetworkActivity): charged on the trail that
    /// records them whatever the other trails do.
    pub network_activity: u64,
    /// The count stopped at the files read: the real number is higher.
    pub at_least: bool,
}

impl HourOfEvents {
    /// Adds the management and network activity events of one CloudTrail log file (`{"Records": [...]}`).
    pub fn add_log_file(&mut self, log: &Value) {
        for event in management_events(log) {
            *self.events.entry(event).or_default() += 1;
        }
        let records = log["Records"].as_array().into_iter().flatten();
        self.network_activity += records
            .filter(|r| r["eventCategory"] == crate::api::NETWORK_ACTIVITY)
            .count() as u64;
    }

    pub fn total(&self) -> u64 {
        self.events.values().sum()
    }
}

/// The management events among a log file's records: `managementEvent` true where the record
/// carries it, else `eventCategory` "Management"; data, network activity and Insights records are
/// not (they are priced apart, on every copy).
/// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
pub fn management_events(log: &Value) -> Vec<ManagementEvent> {
    let Some(records) = log["Records"].as_array() else {
        return Vec::new();
    };
    records
        .iter()
        .filter(|r| match r["managementEvent"].as_bool() {
            Some(flag) => flag,
            None => r["eventCategory"] == "Management",
        })
        .map(|r| ManagementEvent {
            read_only: r["readOnly"].as_bool().unwrap_or(false),
            event_source: r["eventSource"].as_str().unwrap_or_default().to_string(),
            event_name: r["eventName"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Events standing for every kind the trails' selectors tell apart: read and write, each event
/// source and event name a selector names, and one no selector names.
fn kinds_of_event(trails: &[TrailCopy]) -> Vec<ManagementEvent> {
    let mut sources = BTreeSet::from(["unnamed.amazonaws.com".to_string()]);
    let mut names = BTreeSet::from(["UnnamedCall".to_string()]);
    for trail in trails {
        match &trail.recording {
            Recording::Selected(EventSelectors::Basic(basic)) => {
                for s in basic {
                    sources.extend(s.exclude_management_event_sources.iter().cloned());
                }
            }
            Recording::Selected(EventSelectors::Advanced(advanced)) => {
                for f in advanced.iter().flat_map(|s| &s.field_selectors) {
                    let values = [
                        &f.equals,
                        &f.starts_with,
                        &f.ends_with,
                        &f.not_equals,
                        &f.not_starts_with,
                        &f.not_ends_with,
                    ];
                    match f.field.as_str() {
                        "eventSource" => sources.extend(values.into_iter().flatten().cloned()),
                        "eventName" => names.extend(values.into_iter().flatten().cloned()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for read_only in [true, false] {
        for source in &sources {
            for name in &names {
                out.push(ManagementEvent {
                    read_only,
                    event_source: source.clone(),
                    event_name: name.clone(),
                });
            }
        }
    }
    out
}

fn copies_of(trails: &[TrailCopy], event: &ManagementEvent) -> u32 {
    trails.iter().filter(|t| t.recording.records(event)).count() as u32
}

/// The duplicates among `trails` in `region` (the primary Region): None when no management event
/// is recorded by two of them (two complementary trails, ReadOnly and WriteOnly, are none). With
/// `hour`, each event counted is priced by its copies after the first.
pub fn duplicates(region: &str, trails: &[TrailCopy], hour: Option<&HourOfEvents>) -> Option<DuplicateTrails> {
    let kinds = kinds_of_event(trails);
    let overlapping: Vec<&ManagementEvent> = kinds.iter().filter(|e| copies_of(trails, e) > 1).collect();
    let paid = overlapping.iter().map(|e| copies_of(trails, e) - 1).max()?;
    let duplicating: Vec<String> = trails
        .iter()
        .filter(|t| overlapping.iter().any(|e| t.recording.records(e)))
        .map(|t| t.arn.clone())
        .collect();
    let per_month = |per_hour: u64| (per_hour as f64 * HOURS_PER_MONTH).round() as u64;
    let copied = hour.map(|h| {
        h.events
            .iter()
            .map(|(event, n)| u64::from(copies_of(trails, event).saturating_sub(1)) * n)
            .sum::<u64>()
    });
    let copied_per_month = copied.map(per_month);
    let network = hour.map(|h| per_month(h.network_activity)).filter(|n| *n > 0);
    let cost = copied_per_month.map(|copies| {
        let copies = copies as f64 / 100_000.0 * PRICE_PER_100K_COPIED_EVENTS_USD;
        let network = network.unwrap_or(0) as f64 / 100_000.0 * PRICE_PER_100K_NETWORK_ACTIVITY_EVENTS_USD;
        ((copies + network) * 100.0).round() / 100.0
    });
    let partial = trails.iter().any(|t| matches!(t.recording, Recording::Selected(_)))
        && overlapping.len() < kinds.iter().filter(|e| copies_of(trails, e) > 0).count();
    let mut note = match hour {
        Some(h) => {
            let at_least = if h.at_least { "at least " } else { "" };
            let network = match h.network_activity {
                0 => String::new(),
                n => format!(
                    "; {at_least}{n} network activity events in the same hour x {HOURS_PER_MONTH} hours at ${PRICE_PER_100K_NETWORK_ACTIVITY_EVENTS_USD:.2} per 100,000, charged on this trail whatever the others record"
                ),
            };
            format!(
                "{at_least}{} management events in the last hour of the trail's log files in {region}, each priced by the trails that record it ({at_least}{} copies after the first) x {HOURS_PER_MONTH} hours, at ${PRICE_PER_100K_COPIED_EVENTS_USD:.2} per 100,000 copied events (AWS CloudTrail pricing){network}; data events, Insights and CloudWatch Logs ingestion are not included",
                h.total(),
                copied.unwrap_or_default(),
            )
        }
        None => format!(
            "events not counted (the trail's log files are not in a bucket trailkeeper reads); each copy after the first costs ${PRICE_PER_100K_COPIED_EVENTS_USD:.2} per 100,000 management events"
        ),
    };
    if partial {
        note.push_str("; some trails record only part of the management events (read-only or write, or some event sources): only the events two of them record are copies");
    }
    if trails.iter().any(|t| t.recording == Recording::Everything) {
        note.push_str("; another account's trail (an Organization trail, whose selectors a member cannot read) is taken as recording every management event");
    }
    note.push_str(&format!(
        "; {region} only, the primary Region: a multi-Region trail copies the events of every other Region it applies to the same way, not counted here"
    ));
    Some(DuplicateTrails {
        region: region.to_string(),
        trails: duplicating,
        paid_copies: paid,
        events_per_month: hour.map(|h| per_month(h.total())),
        copied_events_per_month: copied_per_month,
        network_activity_events_per_month: network,
        estimated_monthly_cost_usd: cost,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{AdvancedSelector, BasicSelector};

    fn basic(read_write: &str) -> Recording {
        Recording::Selected(EventSelectors::Basic(vec![BasicSelector {
            read_write_type: read_write.into(),
            include_management_events: true,
            exclude_management_event_sources: Vec::new(),
            data_resources: Vec::new(),
        }]))
    }

    fn copy(arn: &str, recording: Recording) -> TrailCopy {
        TrailCopy {
            arn: arn.into(),
            recording,
        }
    }

    fn event(read_only: bool, source: &str) -> ManagementEvent {
        ManagementEvent {
            read_only,
            event_source: source.into(),
            event_name: "Call".into(),
        }
    }

    /// An hour of `reads` read-only and `writes` write events of `source`.
    fn hour(reads: u64, writes: u64, source: &str) -> HourOfEvents {
        let mut h = HourOfEvents::default();
        h.events.insert(event(true, source), reads);
        h.events.insert(event(false, source), writes);
        h
    }

    #[test]
    fn one_trail_or_one_recording_is_no_duplicate() {
        assert_eq!(duplicates("us-east-1", &[copy("a", basic("All"))], None), None);
        assert_eq!(
            duplicates(
                "us-east-1",
                &[copy("a", basic("All")), copy("b", Recording::Nothing)],
                None
            ),
            None
        );
        assert_eq!(duplicates("us-east-1", &[], None), None);
    }

    #[test]
    fn a_log_file_counts_its_management_events_only() {
        let mut records: Vec<Value> = (0..10)
            .map(|n| serde_json::json!({"eventCategory": "Management", "readOnly": n % 2 == 0, "eventSource": "iam.amazonaws.com", "eventName": "GetRole"}))
            .collect();
        records.extend((0..10).map(|_| {
            serde_json::json!({"eventCategory": "Data", "managementEvent": false, "readOnly": true, "eventSource": "s3.amazonaws.com", "eventName": "GetObject"})
        }));
        records.push(serde_json::json!({"eventCategory": "NetworkActivity", "eventSource": "kms.amazonaws.com"}));
        let mut h = HourOfEvents::default();
        h.add_log_file(&serde_json::json!({ "Records": records }));
        assert_eq!(h.total(), 10);
        assert_eq!(h.network_activity, 1, "priced apart");
        assert_eq!(
            h.events[&ManagementEvent {
                read_only: true,
                event_source: "iam.amazonaws.com".into(),
                event_name: "GetRole".into()
            }],
            5
        );
        // managementEvent, where a record carries it, decides.
        let flagged = serde_json::json!({"Records": [{"eventCategory": "Management", "managementEvent": true}, {"eventCategory": "Management", "managementEvent": false}]});
        assert_eq!(management_events(&flagged).len(), 1);
    }

    #[test]
    fn each_copy_after_the_first_is_priced_from_the_hour_of_events() {
        let h = hour(500, 500, "iam.amazonaws.com");
        let d = duplicates(
            "us-east-1",
            &[copy("org", Recording::Everything), copy("own", basic("All"))],
            Some(&h),
        )
        .expect("a duplicate");
        assert_eq!(d.paid_copies, 1);
        assert_eq!(d.events_per_month, Some(730_000));
        assert_eq!(d.copied_events_per_month, Some(730_000));
        // 730,000 copied events x $2.00 / 100,000.
        assert_eq!(d.estimated_monthly_cost_usd, Some(14.6));
        assert!(d.note.contains("another account's trail"), "{}", d.note);
        assert!(d.note.contains("us-east-1 only, the primary Region"), "{}", d.note);
        let three = duplicates(
            "us-east-1",
            &[
                copy("a", basic("All")),
                copy("b", basic("All")),
                copy("c", basic("All")),
            ],
            Some(&h),
        )
        .expect("duplicates");
        assert_eq!(three.paid_copies, 2);
        assert_eq!(three.estimated_monthly_cost_usd, Some(29.2));
        let uncounted =
            duplicates("us-east-1", &[copy("a", basic("All")), copy("b", basic("All"))], None).expect("a duplicate");
        assert_eq!(uncounted.estimated_monthly_cost_usd, None);
        assert!(uncounted.note.contains("not counted"));
    }

    #[test]
    fn network_activity_events_are_priced_apart_from_the_copies_of_management_events() {
        let mut h = hour(500, 500, "iam.amazonaws.com");
        h.network_activity = 10_000;
        let d = duplicates(
            "us-east-1",
            &[copy("org", Recording::Everything), copy("own", basic("All"))],
            Some(&h),
        )
        .expect("a duplicate");
        assert_eq!(d.events_per_month, Some(730_000));
        assert_eq!(d.network_activity_events_per_month, Some(7_300_000));
        // 730,000 x $2.00 / 100,000 + 7,300,000 x $0.10 / 100,000.
        assert_eq!(d.estimated_monthly_cost_usd, Some(14.6 + 7.3));
        assert!(d.note.contains("10000 network activity events"), "{}", d.note);
    }

    #[test]
    fn a_write_only_trail_beside_a_full_one_copies_the_write_events_only() {
        let h = hour(300, 100, "ec2.amazonaws.com");
        let d = duplicates(
            "us-east-1",
            &[copy("all", basic("All")), copy("writes", basic("WriteOnly"))],
            Some(&h),
        )
        .expect("the write events are copied");
        assert_eq!(d.paid_copies, 1);
        assert_eq!(d.events_per_month, Some(400 * 730));
        // Only the 100 readOnly == false events of the hour are copies.
        assert_eq!(d.copied_events_per_month, Some(100 * 730));
        assert_eq!(d.estimated_monthly_cost_usd, Some(1.46));
        assert!(d.note.contains("only part of the management events"), "{}", d.note);
    }

    #[test]
    fn complementary_trails_read_only_and_write_only_are_no_duplicate() {
        let h = hour(300, 100, "ec2.amazonaws.com");
        let trails = [copy("reads", basic("ReadOnly")), copy("writes", basic("WriteOnly"))];
        assert_eq!(duplicates("us-east-1", &trails, Some(&h)), None);
        assert_eq!(duplicates("us-east-1", &trails, None), None);
    }

    #[test]
    fn excluded_event_sources_and_advanced_selectors_copy_only_what_both_record() {
        let no_kms = Recording::Selected(EventSelectors::Basic(vec![BasicSelector {
            read_write_type: "All".into(),
            include_management_events: true,
            exclude_management_event_sources: vec!["kms.amazonaws.com".into()],
            data_resources: Vec::new(),
        }]));
        let only_kms_writes = Recording::Selected(EventSelectors::Advanced(vec![AdvancedSelector {
            name: "kms writes".into(),
            field_selectors: vec![
                AdvancedField {
                    field: "eventCategory".into(),
                    equals: vec!["Management".into()],
                    ..Default::default()
                },
                AdvancedField {
                    field: "readOnly".into(),
                    equals: vec!["false".into()],
                    ..Default::default()
                },
                AdvancedField {
                    field: "eventSource".into(),
                    equals: vec!["kms.amazonaws.com".into()],
                    ..Default::default()
                },
            ],
        }]));
        // A trail without KMS's events and one with only KMS's writes: nothing recorded twice.
        assert_eq!(
            duplicates(
                "us-east-1",
                &[copy("a", no_kms.clone()), copy("b", only_kms_writes.clone())],
                None
            ),
            None
        );
        // Beside a full trail, only KMS's write events are copied.
        let mut h = hour(50, 20, "kms.amazonaws.com");
        h.events.insert(event(false, "iam.amazonaws.com"), 7);
        let d = duplicates(
            "us-east-1",
            &[copy("all", basic("All")), copy("b", only_kms_writes)],
            Some(&h),
        )
        .expect("KMS's writes are copied");
        assert_eq!(d.copied_events_per_month, Some(20 * 730));
        // An advanced selector of data events only records no management event.
        let data = Recording::Selected(EventSelectors::Advanced(vec![AdvancedSelector {
            name: "s3".into(),
            field_selectors: vec![AdvancedField {
                field: "eventCategory".into(),
                equals: vec!["Data".into()],
                ..Default::default()
            }],
        }]));
        assert_eq!(
            duplicates("us-east-1", &[copy("all", basic("All")), copy("data", data)], None),
            None
        );
    }
}

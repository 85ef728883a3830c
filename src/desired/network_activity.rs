//! A trail's selectors when its TrailPolicy records network activity events: CloudTrail records
//! them with advanced event selectors only ("You can't use EventSelectors to log network activity
//! events", PutEventSelectors) and takes one kind of selector per trail, so the policy's
//! management and data events are written as the advanced selectors that record the same events.
//! https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_PutEventSelectors.html
//! https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-network-events-with-cloudtrail.html

use super::{AdvancedField, AdvancedSelector, EventSelectors, sorted};
use crate::api::{NETWORK_ACTIVITY, NetworkActivityEvents, ReadWriteType, TrailPolicySpec, VPCE_ACCESS_DENIED};

/// The name of the selector of one event source's network activity.
pub fn selector_name(event_source: &str) -> String {
    format!("trailkeeper: network activity of {event_source}")
}

fn field(name: &str, equals: &[&str]) -> AdvancedField {
    AdvancedField {
        field: name.to_string(),
        equals: equals.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

/// `readOnly` for a read/write type: none for All.
fn read_only(rw: ReadWriteType) -> Option<AdvancedField> {
    match rw {
        ReadWriteType::All => None,
        ReadWriteType::ReadOnly => Some(field("readOnly", &["true"])),
        ReadWriteType::WriteOnly => Some(field("readOnly", &["false"])),
    }
}

/// The policy's events as advanced selectors, with one selector per event source of `network`.
pub fn selectors(policy: &TrailPolicySpec, network: &NetworkActivityEvents) -> EventSelectors {
    let mut selectors: Vec<AdvancedSelector> = if policy.advanced_event_selectors.is_empty() {
        basic_as_advanced(policy)
    } else {
        match super::advanced_selectors(policy) {
            EventSelectors::Advanced(advanced) => advanced,
            EventSelectors::Basic(_) => Vec::new(),
        }
    };
    let mut sources: Vec<&str> = network.event_sources.iter().map(|s| s.event_source()).collect();
    sources.sort_unstable();
    sources.dedup();
    for source in sources {
        let mut fields = vec![
            field("eventCategory", &[NETWORK_ACTIVITY]),
            field("eventSource", &[source]),
        ];
        if network.only_access_denied {
            fields.push(field("errorCode", &[VPCE_ACCESS_DENIED]));
        }
        fields.sort();
        selectors.push(AdvancedSelector {
            name: selector_name(source),
            field_selectors: fields,
        });
    }
    selectors.sort();
    EventSelectors::Advanced(selectors)
}

/// `managementEvents` and `dataEvents` as the advanced selectors that record the same events
/// (CloudTrail user guide, "Logging management events" and "Logging data events" with advanced
/// event selectors): management events of the read/write type, the excluded sources as
/// `eventSource` NotEquals; each data resource type with its values as `resources.ARN` prefixes.
fn basic_as_advanced(policy: &TrailPolicySpec) -> Vec<AdvancedSelector> {
    let events = &policy.management_events;
    let mut out = Vec::new();
    if events.enabled {
        let mut fields = vec![field("eventCategory", &["Management"])];
        fields.extend(read_only(events.read_write_type));
        let excluded = sorted(&events.exclude_event_sources);
        if !excluded.is_empty() {
            fields.push(AdvancedField {
                field: "eventSource".into(),
                not_equals: excluded,
                ..Default::default()
            });
        }
        fields.sort();
        out.push(AdvancedSelector {
            name: "trailkeeper: management events".into(),
            field_selectors: fields,
        });
    }
    for data in &policy.data_events {
        let mut fields = vec![
            field("eventCategory", &["Data"]),
            field("resources.type", &[data.resource_type.as_str()]),
        ];
        fields.extend(read_only(events.read_write_type));
        fields.push(AdvancedField {
            field: "resources.ARN".into(),
            starts_with: sorted(&data.values),
            ..Default::default()
        });
        fields.sort();
        out.push(AdvancedSelector {
            name: format!("trailkeeper: data events of {}", data.resource_type),
            field_selectors: fields,
        });
    }
    out
}

/// Whether the selectors record network activity events.
pub fn records_network_activity(selectors: &EventSelectors) -> bool {
    match selectors {
        EventSelectors::Basic(_) => false,
        EventSelectors::Advanced(advanced) => advanced.iter().any(|s| {
            s.field_selectors
                .iter()
                .any(|f| f.field == "eventCategory" && f.equals.iter().any(|v| v == NETWORK_ACTIVITY))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DataEventSelector, NetworkActivitySource};
    use crate::judge::evidence::selectors as evidence;

    fn network(only_denied: bool) -> NetworkActivityEvents {
        NetworkActivityEvents {
            event_sources: vec![NetworkActivitySource::Kms, NetworkActivitySource::Ec2],
            only_access_denied: only_denied,
        }
    }

    #[test]
    fn each_event_source_gets_a_selector_of_its_own_and_denied_calls_only_add_the_error_code() {
        let policy = TrailPolicySpec {
            network_activity_events: Some(network(true)),
            ..Default::default()
        };
        let EventSelectors::Advanced(selectors) = super::super::event_selectors(&policy) else {
            panic!("advanced selectors");
        };
        let network: Vec<&AdvancedSelector> = selectors
            .iter()
            .filter(|s| s.name.contains("network activity"))
            .collect();
        assert_eq!(network.len(), 2);
        for s in network {
            let names: Vec<&str> = s.field_selectors.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(names, ["errorCode", "eventCategory", "eventSource"]);
            let source = s.field_selectors.iter().find(|f| f.field == "eventSource").unwrap();
            assert_eq!(source.equals.len(), 1);
            let code = s.field_selectors.iter().find(|f| f.field == "errorCode").unwrap();
            assert_eq!(code.equals, [VPCE_ACCESS_DENIED]);
        }
        assert!(records_network_activity(&EventSelectors::Advanced(selectors)));
    }

    /// The CIS controls read the same management and S3 object events from the advanced
    /// selectors as from the basic ones they replace.
    #[test]
    fn management_and_data_events_keep_their_meaning_as_advanced_selectors() {
        let mut policy = TrailPolicySpec {
            data_events: vec![DataEventSelector {
                resource_type: "AWS::S3::Object".into(),
                values: vec!["arn:aws:s3".into()],
            }],
            ..Default::default()
        };
        let basic = super::super::event_selectors(&policy);
        policy.network_activity_events = Some(network(false));
        let advanced = super::super::event_selectors(&policy);
        assert!(matches!(advanced, EventSelectors::Advanced(_)));
        assert_eq!(evidence(&basic), (true, true, true));
        assert_eq!(evidence(&advanced), (true, true, true));
        policy.management_events.read_write_type = ReadWriteType::WriteOnly;
        assert_eq!(evidence(&super::super::event_selectors(&policy)), (false, true, false));
        policy.management_events.enabled = false;
        let EventSelectors::Advanced(selectors) = super::super::event_selectors(&policy) else {
            panic!("advanced");
        };
        assert!(!selectors.iter().any(|s| {
            s.field_selectors
                .iter()
                .any(|f| f.equals.contains(&"Management".to_string()))
        }));
    }
}
